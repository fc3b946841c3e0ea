"""Model checkpoints: the ``model.ckpt`` envelope and the registry of checkpoint kinds.

Every posetok model file is a ``torch.save`` dict, loadable with ``weights_only=True``, written atomically
(temporary file, then rename). The envelope is common to all tasks::

    format: "posetok.<...>"   format_version: N   kind: "pct" | "sequence" | ...
    state_dict: model weights and buffers
    config: the resolved training config (plain dict)
    meta: {global_step, train_time_s, posetok_version, ...}

plus the fields of its kind, documented by the task module that registers the kind. A task registers a
:class:`CheckpointKind` (:func:`register`): the ``format`` it writes, the fields it requires, how a checked
payload becomes a ready codec, and how a Lightning ``last.ckpt`` of its runs becomes a payload. This module
imports no task: :func:`posetok.load` imports the tasks (each registers itself) and then calls :func:`load`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import PosetokError
from .io import atomic_path
from .version import __version__

#: Fields every payload has, whatever its kind.
ENVELOPE = ("format", "kind", "state_dict")


@dataclass(frozen=True)
class CheckpointKind:
    """How one task's ``model.ckpt`` is read and used.

    Attributes:
        name: the payload's ``kind`` (``"pct"``, ``"sequence"``).
        task: the config ``task`` whose runs write it (``"tokenizer"``, ``"sequence"``).
        format: the payload's ``format`` string; ``format_version`` the newest layout this code reads.
        fields: payload fields required besides the envelope.
        build: ``(path, payload, batch_size)`` -> the ready codec; ``batch_size`` None means the kind's default.
            Raises :class:`PosetokError` naming ``path`` and the field when the payload does not fit.
        from_lightning: ``(path, lightning_dict)`` -> the ``model.ckpt`` payload of a run's ``last.ckpt``.
    """

    name: str
    task: str
    format: str
    format_version: int
    fields: tuple[str, ...]
    build: Callable[[Path, dict[str, Any], int | None], Any]
    from_lightning: Callable[[Path, dict[str, Any]], dict[str, Any]]


_KINDS: dict[str, CheckpointKind] = {}


def register(kind: CheckpointKind) -> CheckpointKind:
    """Make ``kind`` loadable by :func:`load`; registering the same name again replaces it."""
    _KINDS[kind.name] = kind
    return kind


def registered() -> dict[str, CheckpointKind]:
    """The registered kinds by name."""
    return dict(_KINDS)


def envelope(kind: CheckpointKind, state_dict: dict[str, torch.Tensor], config: dict[str, Any] | None = None,
             meta: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A ``model.ckpt`` payload of ``kind``: the envelope around ``fields`` (the kind's own)."""
    return {
        "format": kind.format,
        "format_version": kind.format_version,
        "kind": kind.name,
        **fields,
        "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
        "config": config or {},
        "meta": {"posetok_version": __version__, **(meta or {})},
    }


def save(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (temporary file, then rename): a crash leaves the old file or none."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw dict of a checkpoint file (``torch.load`` with ``weights_only=True``), or a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise PosetokError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load fails on foreign bytes with many types (KeyError, EOFError, ...)
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise PosetokError(f"{path}: not a readable posetok checkpoint (corrupt or truncated: {reason})") from None
    if not isinstance(obj, dict):
        raise PosetokError(f"{path}: not a posetok checkpoint (top level is {type(obj).__name__})")
    return obj


def is_lightning(obj: dict[str, Any]) -> bool:
    """Whether a raw checkpoint dict is a Lightning checkpoint (a run's ``last.ckpt``)."""
    return "pytorch-lightning_version" in obj


def lightning_config(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    """The training config a Lightning checkpoint of a posetok run keeps in its hyper-parameters."""
    cfg = (obj.get("hyper_parameters") or {}).get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise PosetokError(f"{path}: field 'hyper_parameters.config': missing; not a posetok training checkpoint")
    return cfg


def lightning_weights(obj: dict[str, Any], prefix: str = "model.") -> dict[str, torch.Tensor]:
    """The network weights of a Lightning checkpoint: its ``state_dict`` entries under ``prefix``, unprefixed."""
    return {k[len(prefix):]: v for k, v in obj["state_dict"].items() if k.startswith(prefix)}


def _kind_of(path: Path, obj: dict[str, Any]) -> CheckpointKind:
    if is_lightning(obj):
        name = lightning_config(path, obj)["model"].get("kind")
        field = "hyper_parameters.config.model.kind"
    else:
        fmt = obj.get("format")
        by_format = {k.format: k for k in _KINDS.values()}
        if fmt not in by_format:
            known = ", ".join(sorted(repr(k) for k in by_format)) or "none registered"
            raise PosetokError(f"{path}: field 'format': expected one of {known}, got {fmt!r}")
        name = obj.get("kind", by_format[fmt].name)
        field = "kind"
    if name not in _KINDS:
        raise PosetokError(f"{path}: field '{field}': unknown checkpoint kind {name!r} "
                           f"(known: {', '.join(sorted(_KINDS)) or 'none registered'})")
    return _KINDS[name]


def read_payload(path: str | Path, obj: dict[str, Any] | None = None, kind: str | None = None
                 ) -> tuple[CheckpointKind, dict[str, Any]]:
    """Read and check a checkpoint (``model.ckpt`` or a run's Lightning ``last.ckpt``).

    Args:
        path: the file, named in every error.
        obj: the file's dict, if already read.
        kind: the kind the caller needs; another kind is an error naming the field.
    Returns:
        The registered kind and the ``model.ckpt`` payload (converted from Lightning's layout when needed).
    """
    path = Path(path)
    obj = read_checkpoint(path) if obj is None else obj
    found = _kind_of(path, obj)
    if kind is not None and found.name != kind:
        want = _KINDS[kind].format if kind in _KINDS else kind
        raise PosetokError(f"{path}: field 'format': expected '{want}', got {obj.get('format', found.format)!r} "
                           f"(a '{found.name}' checkpoint)")
    payload = found.from_lightning(path, obj) if is_lightning(obj) else obj
    if payload.get("format") != found.format:
        raise PosetokError(f"{path}: field 'format': expected '{found.format}', got {payload.get('format')!r}")
    if payload.get("format_version", 0) > found.format_version:
        raise PosetokError(f"{path}: field 'format_version': {payload['format_version']} is newer than this "
                           f"posetok reads ({found.format_version}); upgrade posetok")
    for key in ENVELOPE + found.fields:
        if key not in payload:
            raise PosetokError(f"{path}: field '{key}': missing")
    return found, payload


def load_as(path: str | Path, batch_size: int | None = None, obj: dict[str, Any] | None = None,
            kind: str | None = None) -> tuple[CheckpointKind, Any]:
    """Load a checkpoint of any registered kind: ``(kind, codec)``; see :func:`load`."""
    found, payload = read_payload(path, obj, kind)
    codec = found.build(Path(path), payload, batch_size)
    codec.info = {k: v for k, v in payload.items() if k != "state_dict"}
    return found, codec


def load(path: str | Path, batch_size: int | None = None) -> Any:
    """Load a checkpoint of any registered kind and return its codec, ready to use (weights in eval mode).

    ``batch_size``: items per forward pass (None: the kind's default). The codec's ``info`` holds the
    checkpoint's fields besides the weights (``config``, ``meta``, ...).
    """
    return load_as(path, batch_size)[1]


def state_dict_error(path: str | Path, error: Exception) -> PosetokError:
    """The one-line error for weights that do not fit the model their checkpoint describes."""
    reason = str(error).splitlines()[0][:160]
    return PosetokError(f"{path}: field 'state_dict': does not fit the model it describes ({reason})")
