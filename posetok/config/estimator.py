"""Config schema of ``task: estimator``: top-down 2D pose estimation from images with a heatmap head.

Defaults follow MMPose's top-down heatmap recipes (HRNet-W32, COCO, 256 x 192): padding 1.25, MSRA heatmaps of
sigma 2 at a quarter of the input, flip 0.5, half-body 0.3, shift 0.16 (p 0.3), scale 0.5-1.5, rotation 80 deg
(p 0.6), Adam 5e-4 with a 500-step linear warm-up and steps at epochs 170 and 200 of 210.

``model.head.kind: pct`` makes the estimator the PCT token classifier (Stage II of PCT): ``model.tokenizer`` names
a trained pose tokenizer checkpoint (its skeleton, input size and padding must be the estimator's), whose token
ids of the ground truth are the targets and whose frozen decoder turns the predicted soft tokens into joints.
``model.kind`` then becomes ``pct_estimator`` and ``model.codec.type`` ``pct`` (both follow from the head).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from ..errors import PosetokError
from ..skeletons import get_skeleton
from .common import TrainerConfig

BACKBONES = ("hrnet_w18_small", "hrnet_w18_small_v2", "hrnet_w32", "hrnet_w48", "hrformer_s", "hrformer_b",
             "swin_tiny", "swin_base", "swin_large", "swinv2_tiny", "swinv2_base", "swinv2_large")
HEADS = ("heatmap", "fusion", "pct")
CODECS = ("msra", "udp", "fusion", "pct")
KINDS = ("heatmap", "pct_estimator")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("multistep", "cosine")
NMS = ("oks", "soft-oks", "none")
SCORE_MODES = ("bbox", "keypoint", "bbox_keypoint")


@dataclass
class BackboneConfig:
    name: str = "hrnet_w32"
    weights: str | None = None  # a local timm / ImageNet state dict, or an estimator model.ckpt (its backbone.*)
    pretrained: bool = False  # timm's own download (needs the internet; never in tests or the demo)
    drop_path: float | None = None  # None: the network's default
    frozen: bool = False  # no training of the backbone (pct: also kept in eval mode, the official Stage II)


@dataclass
class HeadConfig:
    kind: str = "heatmap"  # heatmap | fusion
    deconv_channels: list[int] = field(default_factory=list)  # SimpleBaseline-style 4x4 deconvolutions
    final_bias: float = 0.0  # initial bias of the last layer


@dataclass
class CodecConfig:
    type: str = "msra"  # msra | udp | fusion (the fusion head's heatmap + offset targets) | pct (set by the head)
    heatmap_size: list[int] | None = None  # width, height; None: a quarter of the input
    sigma: float = 2.0
    unbiased: bool = True  # msra: DARK encoding and decoding (False: argmax + quarter offset)
    target: str = "gaussian"  # udp: gaussian | combined


@dataclass
class PCTHeadConfig:
    """The PCT classifier head (``model.head.kind: pct``); defaults: the official ``pct_base_classifier.py``."""

    conv_channels: int = 256
    conv_blocks: int = 2
    hidden_dim: int = 64
    num_blocks: int = 4  # Mixer layers
    token_inter_dim: int = 64
    hidden_inter_dim: int = 256
    dropout: float = 0.0
    score: str = "logit"  # joint score: logit (official: mean top-1 logit) | prob (mean top-1 softmax, in [0, 1])
    # The tokenizer decoder's dims (SoftDecoderDims), filled from model.tokenizer when training starts, so the
    # run's config and checkpoints rebuild the network without the tokenizer file. Not set by hand.
    decoder: dict[str, Any] | None = None


@dataclass
class EstimatorModelConfig:
    kind: str = "heatmap"  # follows model.head.kind: heatmap, or pct_estimator for the pct head
    skeleton: str = "coco17"
    tokenizer: str | None = None  # pct head: a trained pose tokenizer model.ckpt (same skeleton, input, padding)
    input_size: list[int] = field(default_factory=lambda: [192, 256])  # width, height of the crop
    padding: float = 1.25  # box -> crop padding
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    pct: PCTHeadConfig = field(default_factory=PCTHeadConfig)


@dataclass
class ImageAugmentConfig:
    """MMPose's top-down augmentation (``RandomFlip``, ``RandomHalfBody``, ``RandomBBoxTransform``, colour)."""

    enabled: bool = True
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_padding: float = 1.5
    shift_factor: float = 0.16
    shift_prob: float = 0.3
    scale_range: list[float] = field(default_factory=lambda: [0.5, 1.5])
    rot_factor: float = 80.0
    rot_prob: float = 0.6
    color_jitter: bool = True
    # the official PCT recipes' grid dropout (TopdownAugment rule 7): probability, unit size range in pixels
    grid_dropout: float = 0.0
    grid_unit: list[int] = field(default_factory=lambda: [10, 40])


@dataclass
class EstimatorDataConfig:
    train: str | None = None  # COCO / COCO-WholeBody keypoint JSON or MPII JSON; None: the bundled real frames
    train_images: str | None = None  # the images of ``train``
    val: str | None = None  # None: the held-out frames of the bundled real sample
    val_images: str | None = None
    val_boxes: str | None = None  # person detections for validation ([{image_id, category_id, bbox, score}])
    box_score_thr: float = 0.0
    val_head_boxes: str | None = None  # MPII: head boxes for PCKh (gt_valid.mat, or .npy / JSON x1, y1, x2, y2)
    train_fraction: float = 0.8  # bundled real sample: the first 80 % of frames train, the rest is held out
    # bundled real sample: "time" (held-out = the end of the video: new scenes and poses) or "spread" (every 5th
    # frame held out: seen scenes, a measure of localisation)
    real_split: str = "time"
    # Rendered synthetic people mixed into training (posetok.data.synthetic_images): a prior on body shape and
    # pose for small real sets; 0 = none. ``synthetic_share`` of each batch is synthetic on average.
    synthetic: int = 0
    synthetic_share: float = 0.5
    synthetic_size: list[int] = field(default_factory=lambda: [256, 256])
    batch_size: int = 32
    val_batch_size: int = 32
    num_workers: int = 2
    seed: int = 0
    augment: ImageAugmentConfig = field(default_factory=ImageAugmentConfig)


@dataclass
class EstimatorLossConfig:
    heatmap: float = 1.0
    # fusion head only (the seed's six terms)
    offset: float = 1.0
    peak: float = 0.5
    variance: float = 0.1
    overlap: float = 0.05
    shape: float = 0.05
    # an integral (soft-argmax) L1 term on the joint coordinates beside the heatmap loss, in heatmap pixels;
    # 0 = off (MMPose's recipes)
    coord: float = 0.0
    # pct head: cross-entropy on the tokenizer's token ids, and Smooth-L1 (beta in input-crop pixels) on the joints
    # decoded from the soft tokens, both weight 1 as the official Stage II
    token: float = 1.0
    joint: float = 1.0
    joint_beta: float = 0.05


@dataclass
class EstimatorOptimConfig:
    name: str = "adam"  # adam | adamw
    lr: float = 5e-4
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 500
    warmup_ratio: float = 1e-3  # starting lr multiplier of the linear warm-up
    schedule: str = "multistep"  # multistep (milestones in epochs, x gamma) | cosine (to min_lr_ratio)
    milestones: list[int] = field(default_factory=lambda: [170, 200])
    gamma: float = 0.1
    min_lr_ratio: float = 1e-3
    # layer-wise learning-rate decay: layer l of L gets lr x layer_decay^(L - 1 - l) (the head is layer L - 1;
    # Swin's layers as the official SwinLayerDecayOptimizerConstructor, HRNet / HRFormer by stage); 1 = off
    layer_decay: float = 1.0


@dataclass
class EstimatorTrainerConfig(TrainerConfig):
    max_epochs: int | None = 210  # when set, bounds the run instead of max_steps
    max_steps: int = -1
    val_every_n_steps: int = 1000


@dataclass
class EstimatorEvalConfig:
    flip_test: bool = True
    nms: str = "oks"  # oks | soft-oks | none
    nms_thr: float = 0.9
    score_mode: str = "bbox_keypoint"  # bbox | keypoint | bbox_keypoint
    keypoint_score_thr: float = 0.2


@dataclass
class EstimatorConfig:
    task: str = "estimator"
    out: str = "runs/estimator"
    model: EstimatorModelConfig = field(default_factory=EstimatorModelConfig)
    data: EstimatorDataConfig = field(default_factory=EstimatorDataConfig)
    loss: EstimatorLossConfig = field(default_factory=EstimatorLossConfig)
    optim: EstimatorOptimConfig = field(default_factory=EstimatorOptimConfig)
    trainer: EstimatorTrainerConfig = field(default_factory=EstimatorTrainerConfig)
    eval: EstimatorEvalConfig = field(default_factory=EstimatorEvalConfig)


def _one_of(value: str, known: tuple[str, ...], key: str, source: str) -> None:
    if value not in known:
        raise PosetokError(f"{source}: field '{key}': unknown value {value!r} (known: {', '.join(known)})")


def resolve_estimator(cfg: DictConfig, source: str = "config") -> DictConfig:
    """Check the fixed sets of values and fill the heatmap size (a quarter of the input by default)."""
    m = cfg.model
    _one_of(m.kind, KINDS, "model.kind", source)
    _one_of(m.backbone.name, BACKBONES, "model.backbone.name", source)
    _one_of(m.head.kind, HEADS, "model.head.kind", source)
    _one_of(m.codec.type, CODECS, "model.codec.type", source)
    _one_of(m.codec.target, ("gaussian", "combined"), "model.codec.target", source)
    _one_of(cfg.optim.name, OPTIMIZERS, "optim.name", source)
    _one_of(cfg.optim.schedule, SCHEDULES, "optim.schedule", source)
    _one_of(cfg.eval.nms, NMS, "eval.nms", source)
    _one_of(cfg.eval.score_mode, SCORE_MODES, "eval.score_mode", source)
    _one_of(cfg.data.real_split, ("time", "spread"), "data.real_split", source)
    a = cfg.data.augment
    if not 0.0 <= a.grid_dropout <= 1.0:
        raise PosetokError(f"{source}: field 'data.augment.grid_dropout': a probability in [0, 1], got "
                           f"{a.grid_dropout}")
    if len(a.grid_unit) != 2 or not 0 < a.grid_unit[0] <= a.grid_unit[1]:
        raise PosetokError(f"{source}: field 'data.augment.grid_unit': expected [low, high] pixels with 0 < low <= "
                           f"high, got {list(a.grid_unit)}")
    if cfg.loss.coord > 0 and m.codec.type == "udp" and m.codec.target == "combined":
        raise PosetokError(f"{source}: field 'loss.coord': the integral term reads heatmaps; UDP's combined "
                           "target interleaves offset maps with them")
    _one_of(m.pct.score, ("logit", "prob"), "model.pct.score", source)
    if m.head.kind == "pct":
        # the tokenizer is the codec and the checkpoint is of its own kind: both follow from the head
        m.kind, m.codec.type = "pct_estimator", "pct"
        if not m.tokenizer and not m.pct.decoder:
            raise PosetokError(f"{source}: field 'model.tokenizer': the pct head needs a trained pose tokenizer "
                               "checkpoint (posetok train configs/tokenizer/...; its input_size and padding must "
                               "be this config's)")
        if any(int(v) % 32 for v in m.input_size):
            raise PosetokError(f"{source}: field 'model.input_size': the pct head needs a width and height "
                               f"divisible by 32 (its stride-32 map is flattened), got {list(m.input_size)}")
        if cfg.loss.coord > 0:
            raise PosetokError(f"{source}: field 'loss.coord': the integral term reads heatmaps; the pct head has "
                               "none (its joint term is loss.joint)")
    else:
        if m.kind != "heatmap":
            raise PosetokError(f"{source}: field 'model.kind': '{m.kind}' goes with model.head.kind: pct")
        if m.codec.type == "pct":
            raise PosetokError(f"{source}: field 'model.codec.type': the pct codec goes with model.head.kind: pct")
    if not 0 < cfg.optim.layer_decay <= 1:
        raise PosetokError(f"{source}: field 'optim.layer_decay': expected 0 < decay <= 1 (1: off)")
    if (m.head.kind == "fusion") != (m.codec.type == "fusion"):
        raise PosetokError(f"{source}: field 'model.codec.type': the fusion head needs the fusion codec and the "
                           f"heatmap head a heatmap codec (got head {m.head.kind!r}, codec {m.codec.type!r})")
    try:
        get_skeleton(m.skeleton)
    except (KeyError, PosetokError) as e:
        raise PosetokError(f"{source}: field 'model.skeleton': {e}") from None
    if len(m.input_size) != 2 or min(m.input_size) < 16:
        raise PosetokError(f"{source}: field 'model.input_size': expected [width, height] of at least 16 px")
    if m.codec.heatmap_size is None:
        m.codec.heatmap_size = [int(m.input_size[0]) // 4, int(m.input_size[1]) // 4]
    elif len(m.codec.heatmap_size) != 2 or min(m.codec.heatmap_size) < 4:
        raise PosetokError(f"{source}: field 'model.codec.heatmap_size': expected [width, height] of at least 4")
    a = cfg.data.augment
    if len(a.scale_range) != 2 or not 0 < a.scale_range[0] <= a.scale_range[1]:
        raise PosetokError(f"{source}: field 'data.augment.scale_range': expected [low, high] with 0 < low <= high")
    if cfg.data.synthetic < 0 or not 0 <= cfg.data.synthetic_share < 1:
        raise PosetokError(f"{source}: field 'data.synthetic_share': expected 0 <= share < 1 (and data.synthetic "
                           ">= 0)")
    if cfg.data.synthetic and m.skeleton != "coco17":
        raise PosetokError(f"{source}: field 'data.synthetic': synthetic people are rendered for coco17 only, "
                           f"not {m.skeleton!r}")
    if not 0 < cfg.data.train_fraction < 1:
        raise PosetokError(f"{source}: field 'data.train_fraction': expected a number between 0 and 1")
    for split in ("train", "val"):
        if cfg.data[split] and not cfg.data[f"{split}_images"]:
            raise PosetokError(f"{source}: field 'data.{split}_images': the image folder of data.{split} is "
                               "required")
    t = cfg.trainer
    if (t.max_epochs is None or t.max_epochs <= 0) and t.max_steps <= 0 and not t.max_time:
        raise PosetokError(f"{source}: field 'trainer.max_epochs': set max_epochs, max_steps or max_time to "
                           "bound the run")
    return cfg
