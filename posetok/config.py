"""Structured training configs (OmegaConf).

A config file is YAML checked against the schema below: unknown keys and wrong types are errors. A file may
name parent files in ``_base_`` (a path or a list, relative to the file); parents merge first, the file on top,
then ``key=value`` overrides from the command line. Model dimensions left empty (null) take the preset's value
when the config is resolved, so the saved ``config.yaml`` holds every number the run used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import PosetokError
from .models.pct import PRESETS, preset_dims


@dataclass
class EncoderConfig:
    num_blocks: int | None = None
    hidden_dim: int | None = None
    token_inter_dim: int | None = None
    hidden_inter_dim: int | None = None
    dropout: float | None = None
    drop_rate: float | None = None


@dataclass
class DecoderConfig:
    num_blocks: int | None = None
    hidden_dim: int | None = None
    token_inter_dim: int | None = None
    hidden_inter_dim: int | None = None
    dropout: float | None = None


@dataclass
class CodebookConfig:
    num_tokens: int | None = None
    token_dim: int | None = None
    size: int | None = None
    ema_decay: float | None = None
    kmeans_init: bool | None = None
    kmeans_iters: int | None = None
    dead_code_threshold: float | None = None


@dataclass
class ModelConfig:
    kind: str = "pct"
    preset: str = "pct_small"
    skeleton: str = "coco17"
    input_size: list[int] = field(default_factory=lambda: [256, 256])  # width, height of the crop
    padding: float = 1.25
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    codebook: CodebookConfig = field(default_factory=CodebookConfig)


@dataclass
class AugmentConfig:
    """Keyword arguments of :class:`posetok.data.transforms.KeypointAugment` (MMPose top-down defaults)."""

    flip_prob: float = 0.5
    rot_deg: float = 40.0  # hard limit of the uniform rotation angle
    rot_prob: float = 0.6
    scale_range: list[float] = field(default_factory=lambda: [0.75, 1.25])
    shift_factor: float = 0.16
    shift_prob: float = 0.3
    half_body_prob: float = 0.3
    enabled: bool = True


@dataclass
class DataConfig:
    train: str | None = None  # COCO keypoint JSON; None: synthetic poses
    val: str | None = None  # COCO keypoint JSON; None: held-out synthetic poses
    synthetic_train: int = 200_000
    synthetic_val: int = 2_000
    seed: int = 0
    batch_size: int = 128
    num_workers: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class LossConfig:
    joint_weight: float = 1.0
    commit_weight: float = 15.0  # PCT's e_loss_w
    beta: float = 0.01  # Smooth-L1 transition, in crop units (0.01 = 2.56 px on a 256 px crop)


@dataclass
class OptimConfig:
    lr: float = 1e-2
    weight_decay: float = 0.15
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 100
    min_lr_ratio: float = 1e-3
    # Steps during which the decoder reads continuous encoder features; the first quantized step then
    # k-means-initialises the codebook on trained features instead of random ones.
    vq_start_step: int = 500


@dataclass
class TrainerConfig:
    max_steps: int = 2000
    max_time: float | None = None  # minutes
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    log_every_n_steps: int = 25
    val_every_n_steps: int = 500
    seed: int = 0
    progress_bar: bool = True
    threads: int | None = None  # torch intra-op threads; None: all cores


@dataclass
class TrainConfig:
    task: str = "tokenizer"
    out: str = "runs/tokenizer"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


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


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> DictConfig:
    """Load a config file (or the defaults when ``path`` is None), apply ``key=value`` overrides, resolve.

    The top-level ``task`` picks the schema: ``tokenizer`` (default, the pose tokenizer, :class:`TrainConfig`)
    or ``sequence`` (the pose sequence tokenizer, :data:`posetok.tasks.sequence.DEFAULTS`).

    Raises :class:`PosetokError` naming the file (or ``command line``) and the key for unknown keys, wrong
    types, malformed YAML or an unknown preset.
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
    task = dot.get("task") if dot is not None and "task" in dot else data.get("task", "tokenizer")
    if task not in TASKS:
        where = "command line" if dot is not None and "task" in dot else source
        raise PosetokError(f"{where}: field 'task': unknown task {task!r} (known: {', '.join(TASKS)})")
    cfg = _schema(task)
    if path is not None:
        cfg = _merge_checked(cfg, data, source)
    if dot is not None:
        cfg = _merge_checked(cfg, dot, "command line")
    if task == "sequence":
        from .tasks.sequence import resolve_sequence_config

        return OmegaConf.create(resolve_sequence_config(cfg, source))
    return resolve_config(cfg, source)


#: Config ``task`` values: the pose (PCT) tokenizer and the pose sequence tokenizer.
TASKS = ("tokenizer", "sequence")


def _schema(task: str) -> DictConfig:
    """The defaults of a task, closed to unknown keys."""
    if task == "sequence":
        from .tasks.sequence import DEFAULTS

        # A plain dict schema (the model's sizes come from a dataclass with many optional fields); struct mode
        # still rejects unknown keys, and resolve_sequence_config checks the values.
        schema = OmegaConf.create(DEFAULTS)
        OmegaConf.set_struct(schema, True)
        return schema
    return OmegaConf.structured(TrainConfig)


def resolve_config(cfg: DictConfig, source: str = "config") -> DictConfig:
    """Fill the model's empty dimensions from its preset and check the values that have a fixed set."""
    m = cfg.model
    if m.kind != "pct":
        raise PosetokError(f"{source}: field 'model.kind': unknown model kind '{m.kind}' (known: pct)")
    if m.preset not in PRESETS:
        raise PosetokError(f"{source}: field 'model.preset': unknown preset '{m.preset}' "
                           f"(known: {', '.join(PRESETS)})")
    if len(m.input_size) != 2 or min(m.input_size) <= 0:
        raise PosetokError(f"{source}: field 'model.input_size': expected [width, height] > 0")
    overrides = {s: OmegaConf.to_container(m[s]) for s in ("encoder", "decoder", "codebook")}
    dims = preset_dims(m.preset, overrides).to_dict()  # type: ignore[arg-type]
    for section, values in dims.items():
        for key, value in values.items():
            m[section][key] = value
    if cfg.data.batch_size <= 0:
        raise PosetokError(f"{source}: field 'data.batch_size': must be positive")
    return cfg


def save_config(cfg: DictConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(cfg))
