"""Model checkpoints: ``model.ckpt`` holds the weights and everything needed to use them.

Format (a ``torch.save`` dict, loadable with ``weights_only=True``)::

    format: "posetok.tokenizer"   format_version: 1
    kind: "pct"                   skeleton: "coco17"      num_joints: 17
    dims: {encoder: {...}, decoder: {...}, codebook: {...}}
    codec: {input_size: [w, h], padding: 1.25}
    state_dict: model weights and codebook buffers
    config: the resolved training config (plain dict)
    meta: {global_step, train_time_s, posetok_version}

A Lightning ``last.ckpt`` of a tokenizer run loads too: its hyper-parameters hold the config. Sequence tokenizer
checkpoints (``format: "posetok.sequence_tokenizer"``, layout in :mod:`posetok.tasks.sequence`) load through the
same :func:`load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .codecs.pct import PCTCodec
from .errors import PosetokError
from .io import atomic_path
from .models.pct import PCTDims, PCTTokenizerModel
from .skeletons import get_skeleton

if TYPE_CHECKING:
    from .tasks.sequence import SequenceCodec

FORMAT = "posetok.tokenizer"
FORMAT_VERSION = 1


def tokenizer_payload(model: PCTTokenizerModel, skeleton: str, input_size: list[int], padding: float,
                      config: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``model.ckpt`` dict for ``model``."""
    from . import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "pct",
        "skeleton": skeleton,
        "num_joints": model.num_joints,
        "dims": model.dims.to_dict(),
        "codec": {"input_size": [int(v) for v in input_size], "padding": float(padding)},
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "config": config or {},
        "meta": {"posetok_version": __version__, **(meta or {})},
    }


def save_tokenizer(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _read(path: Path) -> dict[str, Any]:
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


def _from_lightning(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    """Turn a Lightning checkpoint of a tokenizer run into the ``model.ckpt`` layout."""
    cfg = (obj.get("hyper_parameters") or {}).get("config")
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise PosetokError(f"{path}: field 'hyper_parameters.config': missing; not a posetok training checkpoint")
    m = cfg["model"]
    state = {k[len("model."):]: v for k, v in obj["state_dict"].items() if k.startswith("model.")}
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": m["kind"], "skeleton": m["skeleton"],
        "num_joints": get_skeleton(m["skeleton"]).num_joints,
        "dims": {s: m[s] for s in ("encoder", "decoder", "codebook")},
        "codec": {"input_size": m["input_size"], "padding": m["padding"]},
        "state_dict": state, "config": cfg, "meta": {"global_step": obj.get("global_step")},
    }


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw dict of a checkpoint file (``torch.load`` with ``weights_only=True``), or a one-line error."""
    return _read(Path(path))


def is_sequence_checkpoint(obj: dict[str, Any]) -> bool:
    """Whether a raw checkpoint dict (``model.ckpt`` or a Lightning ``last.ckpt``) holds a sequence tokenizer."""
    if "pytorch-lightning_version" in obj:
        cfg = (obj.get("hyper_parameters") or {}).get("config")
        return isinstance(cfg, dict) and (cfg.get("model") or {}).get("kind") == "sequence"
    return obj.get("format") == "posetok.sequence_tokenizer"


def read_tokenizer_payload(path: str | Path, obj: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read and check a checkpoint file (or its already read dict ``obj``); returns the ``model.ckpt`` dict."""
    path = Path(path)
    obj = _read(path) if obj is None else obj
    if "pytorch-lightning_version" in obj:
        obj = _from_lightning(path, obj)
    if obj.get("format") != FORMAT:
        raise PosetokError(f"{path}: field 'format': expected '{FORMAT}', got {obj.get('format')!r}")
    if obj.get("format_version", 0) > FORMAT_VERSION:
        raise PosetokError(f"{path}: field 'format_version': {obj['format_version']} is newer than this "
                           f"posetok reads ({FORMAT_VERSION}); upgrade posetok")
    for key in ("kind", "skeleton", "dims", "codec", "state_dict"):
        if key not in obj:
            raise PosetokError(f"{path}: field '{key}': missing")
    return obj


def load(path: str | Path, batch_size: int | None = None) -> PCTCodec | SequenceCodec:
    """Load a tokenizer checkpoint, pose or sequence, and return it ready to use.

    >>> tok = posetok.load("runs/pct/model.ckpt")            # a PCTCodec
    >>> tokens = tok.encode(keypoints)            # (N, K, 3) pixels -> (N, M) int64
    >>> poses = tok.decode(tokens, boxes)         # (N, M), (N, 4) xywh -> (N, K, 2) pixels
    >>> seq = posetok.load("runs/sequence/model.ckpt")       # a SequenceCodec
    >>> tokens, params = seq.encode(poses, mask, return_params=True)   # (T, N, D) -> (W, T', G, Q), dict
    >>> recon = seq.decode(tokens, params)        # (T, N, Dc) in the file's units

    ``batch_size``: items per forward pass (default 4096 poses, 64 sequence windows).
    """
    obj = _read(Path(path))
    if is_sequence_checkpoint(obj):
        from .tasks.sequence import load_sequence_tokenizer

        return load_sequence_tokenizer(path, batch_size or 64, obj=obj)
    return load_pose_tokenizer(path, batch_size or 4096, obj=obj)


def load_pose_tokenizer(path: str | Path, batch_size: int = 4096, obj: dict[str, Any] | None = None) -> PCTCodec:
    """Load a pose (PCT) tokenizer checkpoint as a :class:`PCTCodec`; ``obj``: the file's dict, if read."""
    payload = read_tokenizer_payload(path, obj)
    if payload["kind"] != "pct":
        raise PosetokError(f"{path}: field 'kind': unknown tokenizer kind {payload['kind']!r}")
    try:
        skeleton = get_skeleton(payload["skeleton"])
        model = PCTTokenizerModel(skeleton.num_joints, PCTDims.from_dict(payload["dims"]))
        model.load_state_dict(payload["state_dict"])
    except PosetokError as e:
        raise PosetokError(f"{path}: field 'skeleton': {e}") from None
    except (RuntimeError, TypeError, KeyError) as e:
        reason = str(e).splitlines()[0][:160]
        raise PosetokError(f"{path}: field 'state_dict': does not fit the model it describes ({reason})") from None
    model.eval()
    codec = PCTCodec(model, skeleton, tuple(payload["codec"]["input_size"]), payload["codec"]["padding"],
                     batch_size=batch_size)
    codec.info = {k: v for k, v in payload.items() if k != "state_dict"}
    return codec
