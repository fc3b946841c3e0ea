"""Config schema of ``task: tokenizer`` (the PCT pose tokenizer)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

from ..errors import PosetokError
from ..models.pct import PRESETS as PCT_PRESETS
from ..models.pct import QUANTIZERS as PCT_QUANTIZERS
from ..models.pct import check_codebook
from ..models.pct import preset_dims as pct_preset_dims
from .common import OptimConfig, TrainerConfig


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
    levels: list[int] | None = None  # fsq: levels per dimension; V = prod(levels)
    commitment_weight: float | None = None  # vq, lfq
    entropy_loss_weight: float | None = None  # lfq
    diversity_gamma: float | None = None  # lfq
    quantizer: str | None = None  # set from model.quantizer (the resolved config records it here too)


@dataclass
class GuideConfig:
    """The guide backbone of an image-guided tokenizer, filled at the start of training from
    ``model.guide_backbone`` (so a run's ``last.ckpt`` rebuilds the network without that file)."""

    backbone: str | None = None
    channels: int | None = None


@dataclass
class ModelConfig:
    kind: str = "pct"
    preset: str = "pct_small"
    # vq: EMA vector quantization (PCT); fsq: finite scalar quantization (codebook.levels); lfq: lookup-free
    # quantization (codebook.size = 2^bits). fsq and lfq have no codebook to warm up: optim.vq_start_step is
    # ignored for them and they quantize from the first step.
    quantizer: str = "vq"
    skeleton: str = "coco17"
    input_size: list[int] = field(default_factory=lambda: [256, 256])  # width, height of the crop
    padding: float = 1.25
    # Image guidance (the official PCT tokenizer's): the share of the encoder width given to the image feature at
    # each joint (official 0.5), read from the stride-32 map of a frozen heatmap-trained backbone, the backbone of
    # the estimator model.ckpt in guide_backbone (same skeleton, input size and padding). 0: keypoints alone.
    guide_ratio: float = 0.0
    guide_backbone: str | None = None
    guide: GuideConfig = field(default_factory=GuideConfig)
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
    grid_dropout: float = 0.0  # image-guided tokenizers only: the official PCT's grid dropout of the crops
    enabled: bool = True


@dataclass
class DataConfig:
    train: str | None = None  # COCO keypoint JSON (or MPII JSON); None: synthetic poses (guided: the real sample)
    val: str | None = None  # COCO keypoint JSON; None: held-out synthetic poses (guided: the real sample's)
    # Image-guided tokenizers train on crops: the image folders of train and val. Without data.train, the bundled
    # real frames, split as data.real_split says (time: the first 80 % train; spread: every 5th frame held out).
    train_images: str | None = None
    val_images: str | None = None
    real_split: str = "time"
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
    if not 0.0 <= m.guide_ratio < 1.0:
        raise PosetokError(f"{source}: field 'model.guide_ratio': expected a share in [0, 1) (official 0.5), got "
                           f"{m.guide_ratio}")
    if m.guide_ratio > 0 and not (m.guide_backbone or m.guide.backbone):
        raise PosetokError(f"{source}: field 'model.guide_backbone': an image-guided tokenizer (model.guide_ratio > "
                           "0) needs the model.ckpt of a heatmap-trained estimator")
    if m.guide_backbone and m.guide_ratio == 0:
        raise PosetokError(f"{source}: field 'model.guide_ratio': 0 leaves model.guide_backbone unused; set the "
                           "image share (official 0.5)")
    if cfg.data.real_split not in ("time", "spread"):
        raise PosetokError(f"{source}: field 'data.real_split': expected time or spread, got '{cfg.data.real_split}'")
    if m.quantizer not in PCT_QUANTIZERS:
        raise PosetokError(f"{source}: field 'model.quantizer': unknown quantizer '{m.quantizer}' "
                           f"(known: {', '.join(PCT_QUANTIZERS)})")
    cb = m.codebook
    if cb.quantizer is not None and cb.quantizer != m.quantizer:
        raise PosetokError(f"{source}: field 'model.codebook.quantizer': '{cb.quantizer}' contradicts "
                           f"model.quantizer '{m.quantizer}' (set model.quantizer only)")
    overrides = {s: OmegaConf.to_container(m[s]) for s in ("encoder", "decoder", "codebook")}
    overrides["codebook"]["quantizer"] = m.quantizer  # type: ignore[index]
    if m.quantizer == "fsq" and cb.levels and cb.size is None:
        overrides["codebook"]["size"] = math.prod(cb.levels)  # type: ignore[index]  # fsq: V follows the levels
    dims = pct_preset_dims(m.preset, overrides)  # type: ignore[arg-type]
    try:
        check_codebook(dims.codebook)
    except ValueError as e:
        field, problem = str(e).split(": ", 1)
        name = "model.quantizer" if field == "quantizer" else f"model.codebook.{field}"
        raise PosetokError(f"{source}: field '{name}': {problem}") from None
    dims = dims.to_dict()  # type: ignore[assignment]
    for section, values in dims.items():
        if section == "guide":  # model.guide_* and model.guide are the config's own keys (guide.ratio from them)
            continue
        for key, value in values.items():
            m[section][key] = value
    return cfg

