"""Config schema of ``task: sequence`` (the pose sequence tokenizer: ST-GCN + residual VQ)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..data.sequences import CENTERS, COORDS, coords_dims
from ..errors import PosetokError
from ..models.sequence import PRESETS as SEQUENCE_PRESETS
from ..models.sequence import QUANTIZERS as SEQUENCE_QUANTIZERS
from ..models.sequence import SequenceDims
from ..models.sequence import preset_dims as sequence_preset_dims
from ..skeletons import get_skeleton
from .common import OptimConfig, TrainerConfig


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
    # rvq: residual VQ (EMA codebooks, k-means init); rfsq: residual FSQ (levels, codebook_size = prod(levels));
    # rlfq: residual LFQ (codebook_size = 2^bits, entropy_loss_weight, diversity_gamma). rfsq and rlfq have no
    # codebook to warm up: optim.vq_start_step is ignored for them and they quantize from the first step.
    quantizer: str | None = None
    levels: list[int] | None = None
    entropy_loss_weight: float | None = None
    diversity_gamma: float | None = None


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
    if m.quantizer is not None and m.quantizer not in SEQUENCE_QUANTIZERS:
        raise PosetokError(f"{source}: field 'model.quantizer': unknown quantizer '{m.quantizer}' "
                           f"(known: {', '.join(SEQUENCE_QUANTIZERS)})")
    if m.quantizer == "rfsq" and m.levels and m.codebook_size is None:
        overrides["codebook_size"] = math.prod(m.levels)  # rfsq: V follows the levels
    dims = sequence_preset_dims(m.preset, {**overrides, **derived, "skeleton": sk.name})
    try:
        dims.validate_quantizer()
    except ValueError as e:
        field, problem = str(e).split(": ", 1)
        raise PosetokError(f"{source}: field 'model.{field}': {problem}") from None
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
    return SequenceDims.from_dict({k: _plain(m[k]) for k in _DIMS_FIELDS if k in m})


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value

