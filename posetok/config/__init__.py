"""Training configs: one dataclass schema per task, chosen by the top-level ``task`` key (OmegaConf).

A config file is YAML checked against its task's schema: unknown keys and wrong types are errors naming the file
(or ``command line``) and the key. A file may name parent files in ``_base_`` (a path or a list, relative to the
file); parents merge first, the file on top, then ``key=value`` overrides from the command line. Defaults live in
the schema modules of this package. Model sizes left empty (null) take the preset's value when the config is
resolved, so the saved ``config.yaml`` holds every number the run used.

Tasks (``task:``):

* ``tokenizer``: the PCT pose tokenizer, :class:`TokenizerConfig`;
* ``sequence``: the pose sequence tokenizer (ST-GCN + residual VQ), :class:`SequenceConfig`;
* ``estimator``: top-down 2D pose estimation from images (heatmap heads), :class:`EstimatorConfig`;
* ``lifter``: 2D-to-3D lifting and masked 2D / 3D pose modelling, :class:`LifterConfig`.

Each task's schema lives in its own module of this package; the mechanism (files, ``_base_``, overrides, errors)
is here.

``trainer.precision: auto`` (the default) is resolved when a run starts (:func:`resolve_precision`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import PosetokError
from .common import OptimConfig, TrainerConfig, WandbConfig
from .estimator import EstimatorConfig, resolve_estimator
from .lifter import LifterConfig, lifter_dims_dict, resolve_lifter
from .sequence import SequenceConfig, resolve_sequence, sequence_dims
from .tokenizer import TokenizerConfig, resolve_tokenizer

__all__ = [
    "SCHEMAS", "TASKS", "LOGGERS", "OptimConfig", "TrainerConfig", "WandbConfig", "TokenizerConfig", "SequenceConfig",
    "EstimatorConfig", "LifterConfig", "build_config", "load_config", "resolve", "resolve_precision", "save_config",
    "schema", "sequence_dims", "resolve_tokenizer", "resolve_sequence", "resolve_estimator", "resolve_lifter",
    "lifter_dims_dict",
]

# ----------------------------------------------------------------------------------------------------------
# The mechanism
# ----------------------------------------------------------------------------------------------------------

#: Config ``task`` -> (schema, resolver). The resolver fills preset values and checks fixed sets of values.
SCHEMAS: dict[str, tuple[type, Any]] = {
    "tokenizer": (TokenizerConfig, resolve_tokenizer),
    "sequence": (SequenceConfig, resolve_sequence),
    "estimator": (EstimatorConfig, resolve_estimator),
    "lifter": (LifterConfig, resolve_lifter),
}
#: Config ``task`` values.
TASKS = tuple(SCHEMAS)


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read ``path`` and its ``_base_`` parents into one plain dict (parents first)."""
    path = path.resolve()
    if path in chain:
        raise PosetokError(f"{path}: field '_base_': inheritance cycle through {' -> '.join(map(str, chain))}")
    try:
        text = path.read_text()
    except OSError as e:
        raise PosetokError(f"{path}: cannot read config ({e.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PosetokError(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise PosetokError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    bases = data.pop("_base_", [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise PosetokError(f"{path}: field '_base_': expected a path or a list of paths")
    merged = OmegaConf.create()
    for base in bases:
        merged = OmegaConf.merge(merged, _read_yaml(path.parent / base, chain + (path,)))
    merged = OmegaConf.merge(merged, OmegaConf.create(data))
    return OmegaConf.to_container(merged)  # type: ignore[return-value]


def _merge_checked(schema: DictConfig, data: Any, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(schema, data)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = str(e).splitlines()[0]
        if "Key '" in msg and "not in" in msg:
            msg = "unknown key"
        raise PosetokError(f"{source}: field '{key}': {msg}") from None


def _check_task(task: Any, source: str) -> str:
    if task not in SCHEMAS:
        raise PosetokError(f"{source}: field 'task': unknown task {task!r} (known: {', '.join(TASKS)})")
    return task


def schema(task: str) -> DictConfig:
    """The defaults of a task's config, closed to unknown keys."""
    return OmegaConf.structured(SCHEMAS[_check_task(task, "config")][0])


LOGGERS = ("tensorboard", "wandb", "csv")


def resolve(cfg: DictConfig, source: str = "config") -> DictConfig:
    """Check a config merged over its schema and fill what follows from presets (the task's resolver)."""
    cfg = SCHEMAS[_check_task(cfg.task, source)][1](cfg, source)
    loggers = cfg.trainer.logger
    names = [loggers] if isinstance(loggers, str) else list(loggers or [])
    bad = [n for n in names if n not in LOGGERS]
    if bad or not names:
        raise PosetokError(f"{source}: field 'trainer.logger': expected one or more of {', '.join(LOGGERS)}, "
                           f"got {bad[0] if bad else 'none'!r}")
    if cfg.trainer.wandb.mode not in ("auto", "online", "offline"):
        raise PosetokError(f"{source}: field 'trainer.wandb.mode': expected auto, online or offline, "
                           f"got {cfg.trainer.wandb.mode!r}")
    if cfg.data.batch_size <= 0:
        raise PosetokError(f"{source}: field 'data.batch_size': must be positive")
    return cfg


def build_config(task: str, data: dict[str, Any] | DictConfig | None = None, source: str = "config"
                 ) -> DictConfig:
    """``data`` (a plain dict or a config, possibly partial) merged over ``task``'s schema, checked and resolved.

    The Python API's way to make a config: ``build_config("sequence", {"model": {"preset": "small"}})``.
    A resolved config passes through unchanged.
    """
    data = OmegaConf.to_container(data, resolve=True) if isinstance(data, DictConfig) else dict(data or {})
    given = data.get("task", task)
    if given != task:
        raise PosetokError(f"{source}: field 'task': expected '{task}', got {given!r}")
    return resolve(_merge_checked(schema(task), data, source), source)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> DictConfig:
    """Load a config file (or the defaults when ``path`` is None), apply ``key=value`` overrides, resolve.

    The top-level ``task`` picks the schema (:data:`SCHEMAS`; default ``tokenizer``); a ``task=...`` override
    on the command line picks it too.

    Raises :class:`PosetokError` naming the file (or ``command line``) and the key for unknown keys, wrong
    types, malformed YAML or an unknown task or preset.
    """
    data = _read_yaml(Path(path)) if path is not None else {}
    source = "defaults" if path is None else str(path)
    dot = None
    if overrides:
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise PosetokError(f"command line: override '{bad[0]}' is not of the form key=value")
        try:
            dot = OmegaConf.from_dotlist(list(overrides))
        except OmegaConfBaseException as e:
            raise PosetokError(f"command line: {str(e).splitlines()[0]}") from None
    on_line = dot is not None and "task" in dot
    task = _check_task(dot.get("task") if on_line else data.get("task", "tokenizer"),  # type: ignore[union-attr]
                       "command line" if on_line else source)
    cfg = schema(task)
    if path is not None:
        cfg = _merge_checked(cfg, data, source)
    if dot is not None:
        cfg = _merge_checked(cfg, dot, "command line")
    return resolve(cfg, "command line" if dot is not None and path is None else source)


def resolve_precision(cfg: DictConfig) -> str:
    """Turn ``trainer.precision: auto`` into what this machine runs best (in place); returns the precision.

    ``auto`` becomes ``bf16-mixed`` on GPUs with bf16 (when the accelerator allows them) and on CPUs with native
    bf16 (AVX512-BF16 or AMX), where both tokenizers train faster in bf16 (``posetok bench``, docs/benchmarks.md);
    else ``32-true``: on an AVX2-only CPU bf16 is emulated, about 30x slower than fp32. Any other value is kept.
    """
    from ..perf import default_precision

    t = cfg.trainer
    if t.precision == "auto":
        t.precision = default_precision(t.accelerator)
    return t.precision


def save_config(cfg: DictConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(cfg))
