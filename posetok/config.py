"""Training configs: one dataclass schema per task, chosen by the top-level ``task`` key (OmegaConf).

A config file is YAML checked against its task's schema: unknown keys and wrong types are errors naming the file
(or ``command line``) and the key. A file may name parent files in ``_base_`` (a path or a list, relative to the
file); parents merge first, the file on top, then ``key=value`` overrides from the command line. Defaults live in
the dataclasses below. Model sizes left empty (null) take the preset's value when the config is resolved, so the
saved ``config.yaml`` holds every number the run used.

Tasks (``task:``):

* ``tokenizer``: the PCT pose tokenizer, :class:`TokenizerConfig`;
* ``sequence``: the pose sequence tokenizer (ST-GCN + residual VQ), :class:`SequenceConfig`.

``trainer.precision: auto`` (the default) is resolved when a run starts (:func:`resolve_precision`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .data.sequences import CENTERS, COORDS, coords_dims
from .errors import PosetokError
from .models.pct import PRESETS as PCT_PRESETS
from .models.pct import preset_dims as pct_preset_dims
from .models.sequence import PRESETS as SEQUENCE_PRESETS
from .models.sequence import SequenceDims
from .models.sequence import preset_dims as sequence_preset_dims
from .skeletons import get_skeleton

# ----------------------------------------------------------------------------------------------------------
# Sections shared by every task
# ----------------------------------------------------------------------------------------------------------


@dataclass
class WandbConfig:
    """Weights & Biases (``trainer.logger`` with ``wandb``; needs the ``wandb`` extra)."""

    project: str = "posetok"
    name: str | None = None  # run name; None: the name of the run folder
    mode: str = "auto"  # auto: online when an API key is set and the service answers, else offline; online; offline


@dataclass
class TrainerConfig:
    max_steps: int = 2000
    max_time: float | None = None  # minutes
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    # auto: bf16-mixed on GPUs and on CPUs with native bf16 (AVX512-BF16, AMX), else 32-true (resolve_precision)
    precision: str = "auto"
    log_every_n_steps: int = 25
    val_every_n_steps: int = 500
    seed: int = 0
    progress_bar: bool = True
    threads: int | None = None  # torch intra-op threads; None: all cores
    logger: Any = "tensorboard"  # tensorboard, wandb, csv, or a list of them
    wandb: WandbConfig = field(default_factory=WandbConfig)


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


# ----------------------------------------------------------------------------------------------------------
# task: tokenizer (PCT)
# ----------------------------------------------------------------------------------------------------------


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
class TokenizerConfig:
    task: str = "tokenizer"
    out: str = "runs/tokenizer"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def resolve_tokenizer(cfg: DictConfig, source: str = "config") -> DictConfig:
    """Fill the model's empty dimensions from its preset and check the values that have a fixed set."""
    m = cfg.model
    if m.kind != "pct":
        raise PosetokError(f"{source}: field 'model.kind': unknown model kind '{m.kind}' (known: pct)")
    if m.preset not in PCT_PRESETS:
        raise PosetokError(f"{source}: field 'model.preset': unknown preset '{m.preset}' "
                           f"(known: {', '.join(PCT_PRESETS)})")
    if len(m.input_size) != 2 or min(m.input_size) <= 0:
        raise PosetokError(f"{source}: field 'model.input_size': expected [width, height] > 0")
    overrides = {s: OmegaConf.to_container(m[s]) for s in ("encoder", "decoder", "codebook")}
    dims = pct_preset_dims(m.preset, overrides).to_dict()  # type: ignore[arg-type]
    for section, values in dims.items():
        for key, value in values.items():
            m[section][key] = value
    return cfg


# ----------------------------------------------------------------------------------------------------------
# task: sequence
# ----------------------------------------------------------------------------------------------------------


@dataclass
class SequenceModelConfig:
    """The sequence tokenizer's model section: ``kind``, ``preset``, ``skeleton``, ``coords`` (``2d``,
    ``2d+conf``, ``3d``), ``center`` (root-centring per ``frame`` or per ``window``, see
    :mod:`posetok.data.sequences`), and every :class:`~posetok.models.sequence.SequenceDims` field (null: the
    preset's value; ``num_keypoints``, ``keypoint_dim`` and ``has_confidence`` follow from skeleton and coords)."""

    kind: str = "sequence"
    preset: str = "small"
    skeleton: str = "coco17"
    coords: str = "2d+conf"
    center: str = "frame"
    num_keypoints: int | None = None
    keypoint_dim: int | None = None
    has_confidence: bool | None = None
    sequence_length: int | None = None
    hidden_dim: int | None = None
    num_layers: int | None = None
    temporal_kernel: int | None = None
    temporal_downsample: int | None = None
    joint_dim: int | None = None
    token_dim: int | None = None
    num_quantizers: int | None = None
    codebook_size: int | None = None
    ema_decay: float | None = None
    kmeans_init: bool | None = None
    kmeans_iters: int | None = None
    dead_code_threshold: float | None = None
    quantize_dropout: bool | None = None
    quantize_dropout_cutoff_index: int | None = None
    commitment_weight: float | None = None
    dropout: float | None = None
    graph_strategy: str | None = None
    joint_groups: Any = None  # "parts", "single" or lists of joint indices


@dataclass
class SequenceDataConfig:
    root: str | None = None  # a folder with train/ and val/ of .npz sequences; None: synthetic motion
    synthetic_train: int = 512
    synthetic_val: int = 64
    synthetic_length: int = 128
    real_sample: bool = False  # add the bundled real track to the training set
    real_sample_repeat: int = 8
    stride: int | None = None  # training window stride; None: sequence_length // 2
    min_conf: float = 0.3
    batch_size: int = 32
    num_workers: int = 0
    seed: int = 0


@dataclass
class SequenceLossConfig:
    recon: float = 1.0
    velocity: float = 0.1
    bone: float = 0.1
    commit: float = 1.0
    kind: str = "l1"  # l1 | smooth_l1
    beta: float = 0.05
    conf_threshold: float = 0.0


@dataclass
class SequenceOptimConfig(OptimConfig):
    lr: float = 2e-3
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    min_lr_ratio: float = 0.01
    vq_start_step: int = 300


@dataclass
class SequenceTrainerConfig(TrainerConfig):
    max_steps: int = 3000


@dataclass
class SequenceConfig:
    task: str = "sequence"
    out: str = "runs/sequence"
    model: SequenceModelConfig = field(default_factory=SequenceModelConfig)
    data: SequenceDataConfig = field(default_factory=SequenceDataConfig)
    loss: SequenceLossConfig = field(default_factory=SequenceLossConfig)
    optim: SequenceOptimConfig = field(default_factory=SequenceOptimConfig)
    trainer: SequenceTrainerConfig = field(default_factory=SequenceTrainerConfig)


_DIMS_FIELDS = tuple(f.name for f in fields(SequenceDims))
_DERIVED = ("num_keypoints", "keypoint_dim", "has_confidence", "skeleton")


def resolve_sequence(cfg: DictConfig, source: str = "config") -> DictConfig:
    """Fill the model's empty sizes from its preset; check preset, coords, centre, skeleton and the sizes that
    follow from skeleton and coords."""
    m = cfg.model
    if m.preset not in SEQUENCE_PRESETS:
        raise PosetokError(f"{source}: field 'model.preset': unknown preset '{m.preset}' "
                           f"(known: {', '.join(SEQUENCE_PRESETS)})")
    if m.coords not in COORDS:
        raise PosetokError(f"{source}: field 'model.coords': unknown coords '{m.coords}' (known: {', '.join(COORDS)})")
    if m.center not in CENTERS:
        raise PosetokError(f"{source}: field 'model.center': unknown center '{m.center}' "
                           f"(known: {', '.join(CENTERS)})")
    try:
        sk = get_skeleton(m.skeleton)
    except (KeyError, PosetokError) as e:
        raise PosetokError(f"{source}: field 'model.skeleton': {e}") from None
    derived = {"num_keypoints": sk.num_joints, "keypoint_dim": coords_dims(m.coords),
               "has_confidence": m.coords == "2d+conf"}
    for key, value in derived.items():
        if m[key] is not None and m[key] != value:
            raise PosetokError(f"{source}: field 'model.{key}': {m[key]} contradicts skeleton '{sk.name}' and "
                               f"coords '{m.coords}' ({value})")
    given = OmegaConf.to_container(m)
    overrides = {k: given[k] for k in _DIMS_FIELDS if k not in _DERIVED}  # type: ignore[index]
    dims = sequence_preset_dims(m.preset, {**overrides, **derived, "skeleton": sk.name})
    try:
        dims.validate()
    except ValueError as e:
        raise PosetokError(f"{source}: field 'model': {e}") from None
    for key, value in dims.to_dict().items():
        if key != "skeleton":
            m[key] = value
    return cfg


def sequence_dims(cfg: Any) -> SequenceDims:
    """The :class:`~posetok.models.sequence.SequenceDims` of a resolved sequence config's ``model`` section."""
    m = cfg["model"]
    return SequenceDims.from_dict({k: (m[k] if k != "joint_groups" else _plain(m[k])) for k in _DIMS_FIELDS})


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


# ----------------------------------------------------------------------------------------------------------
# The mechanism
# ----------------------------------------------------------------------------------------------------------

#: Config ``task`` -> (schema, resolver). The resolver fills preset values and checks fixed sets of values.
SCHEMAS: dict[str, tuple[type, Any]] = {
    "tokenizer": (TokenizerConfig, resolve_tokenizer),
    "sequence": (SequenceConfig, resolve_sequence),
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
    from .perf import default_precision

    t = cfg.trainer
    if t.precision == "auto":
        t.precision = default_precision(t.accelerator)
    return t.precision


def save_config(cfg: DictConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(cfg))
