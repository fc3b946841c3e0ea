"""Config schema of ``task: lifter``: 2D-to-3D lifting (and masked 2D / 3D pose modelling) with a transformer, a
ViT-style or a SimpleBaseline network.

``model.mapping`` says what a run learns: ``2d_3d`` lifts 2D keypoints ``(x, y, conf)`` to root-relative 3D in metres
(the lifter), ``2d_2d`` reconstructs masked, noisy 2D (self-supervised pretraining on 2D alone) and ``3d_3d``
reconstructs masked, noisy 3D. A ``2d_3d`` run starts from a pretrained encoder with ``model.pretrained`` (a
``2d_2d`` or ``2d_3d`` lifter checkpoint of the same network and input skeleton), or runs the masked 2D
pretraining itself first when ``pretrain.enabled`` is true (``out/pretrain/model.ckpt``, then the fine-tuning in
``out``).

Data: synthetic 2D-3D pairs out of the box (:func:`posetok.data.lifting_pairs.synthetic_pairs`); Human3.6M in the
VideoPose3D form (``data.h36m_3d`` + ``data.cameras``, optionally ``data.h36m_2d``) or the MMPose form
(``data.h36m_train`` / ``data.h36m_test``, optionally ``data.cameras``); 2D-only sources for ``2d_2d`` runs
(``data.pretrain_2d``: COCO keypoint files, sequence ``.npz`` files or folders, VideoPose3D 2D files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from ..errors import PosetokError
from ..skeletons import get_skeleton
from .common import TrainerConfig

ARCHS = ("transformer", "vit", "simplebaseline")
MAPPINGS = ("2d_3d", "2d_2d", "3d_3d")


@dataclass
class LifterModelConfig:
    kind: str = "lifter"
    arch: str = "transformer"  # transformer (dual-stream) | vit (joints as patches) | simplebaseline
    mapping: str = "2d_3d"  # 2d_3d | 2d_2d (masked 2D pretraining) | 3d_3d (masked 3D modelling)
    skeleton_in: str = "h36m17"  # layout of the 2D input (or 3D input of 3d_3d)
    skeleton_out: str = "h36m17"  # layout of the 3D output (2d_2d: the input's)
    frames: int = 27  # window length T the network sees (1: single frames)
    dim: int = 128  # token width (transformer, vit)
    depth: int = 4  # blocks (transformer: dual-stream blocks; vit: transformer blocks)
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    attn_dropout: float = 0.0
    drop_path: float = 0.0
    hidden: int = 1024  # simplebaseline: width of the residual blocks
    blocks: int = 2  # simplebaseline: residual blocks
    mlp_dropout: float = 0.25  # simplebaseline: dropout (Martinez et al.: 0.5 for 200 epochs)
    pretrained: str | None = None  # a lifter model.ckpt (2d_2d or 2d_3d) whose encoder starts this run


@dataclass
class LifterDataConfig:
    # synthetic pairs (used when no Human3.6M file is given)
    synthetic_train: int = 2000  # clips (or single people when model.frames == 1)
    synthetic_val: int = 64
    synthetic_test: int = 200  # ``posetok eval --data synthetic``: held-out people and cameras
    synthetic_length: int = 81  # frames per synthetic clip (>= model.frames)
    synthetic_people: int = 100_000  # single-frame runs: people drawn for training
    noise_px: float = 2.0  # detector-like 2D noise (pixels, s.d. at 1000 px wide images)
    drop_prob: float = 0.02  # share of joints a detector misses
    image_size: list[int] = field(default_factory=lambda: [1000, 1000])
    train_fraction: float = 1.0  # share of the 3D training pairs kept (pretraining with fewer 3D labels)
    # Human3.6M, VideoPose3D form
    h36m_3d: str | None = None  # data_3d_h36m.npz (positions_3d)
    h36m_2d: str | None = None  # data_2d_h36m_gt.npz / data_2d_h36m_cpn_ft_h36m_dbb.npz; None: 2D projected
    # Human3.6M, MMPose form
    h36m_train: str | None = None  # annotation_body3d/fps*/h36m_train.npz
    h36m_test: str | None = None  # annotation_body3d/fps*/h36m_test.npz
    cameras: str | None = None  # MMPose cameras.pkl (required with h36m_3d: the extrinsics)
    train_subjects: list[str] = field(default_factory=lambda: ["S1", "S5", "S6", "S7", "S8"])
    test_subjects: list[str] = field(default_factory=lambda: ["S9", "S11"])
    actions: list[str] | None = None  # keep these actions only (sub-actions merged); None: all 15
    stride: int = 1  # Human3.6M: keep every stride-th frame
    # 2D-only sources for 2d_2d runs and the pretraining stage
    pretrain_2d: list[str] = field(default_factory=list)  # COCO keypoint files, sequence .npz files/folders, ...
    real_sample: bool = False  # add the bundled real track (COCO-17) to the 2D-only sources
    real_sample_repeat: int = 8
    # windows and augmentation
    window_stride: int | None = None  # training windows' stride; None: frames // 3 (at least 1)
    box_norm_prob: float = 0.5  # share of training windows normalised by the person box instead of the image
    flip_prob: float = 0.5  # horizontal flip of 2D and 3D together
    scale_jitter: float = 0.1  # 2D scaled by a factor in [1 - s, 1 + s]
    batch_size: int = 32
    val_batch_size: int = 64
    num_workers: int = 0
    seed: int = 0


@dataclass
class LifterMaskConfig:
    """Masking and noise on the input: masked pose modelling (``2d_2d``, ``3d_3d``) or the supervised variant that
    lifts masked, noisy 2D (``2d_3d``, MotionBERT's). Masked joints enter as the learned mask token."""

    joint_ratio: float = 0.0  # share of joints masked in each frame
    frame_ratio: float = 0.0  # share of frames masked entirely
    noise_std: float = 0.0  # Gaussian noise on the visible input (normalised units; 0.004 ~ 2 px at 1000 px)


@dataclass
class LifterLossConfig:
    mpjpe: float = 1.0  # mean joint distance, metres
    n_mpjpe: float = 0.5  # after the least-squares scale per frame
    velocity: float = 1.0  # mean distance of the frame-to-frame differences (T > 1)
    bone: float = 0.1  # |bone length - true length| over the output skeleton's limbs
    bone_time: float = 0.1  # standard deviation of each bone's length over the window (T > 1)
    recon_2d: float = 1.0  # 2d_2d: mean 2D distance (normalised units)
    masked_weight: float = 1.0  # 2d_2d / 3d_3d: extra weight of the masked joints in the reconstruction


@dataclass
class LifterOptimConfig:
    lr: float = 5e-4
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 200
    min_lr_ratio: float = 0.01


@dataclass
class LifterTrainerConfig(TrainerConfig):
    max_steps: int = 20000
    val_every_n_steps: int = 250
    early_stopping_patience: int | None = 8  # validations without a better val metric; None: no early stopping


@dataclass
class LifterEvalConfig:
    flip_test: bool = True  # x negated, left/right swapped, averaged with the plain prediction


@dataclass
class LifterPretrainConfig:
    """An optional first stage: masked 2D pretraining (``2d_2d``) on the 2D of every training pair and the 2D-only
    sources, written to ``out/pretrain``; the ``2d_3d`` run then starts from its encoder."""

    enabled: bool = False
    max_steps: int = 5000
    max_time: float | None = None  # minutes
    lr: float | None = None  # None: optim.lr
    joint_ratio: float = 0.15
    frame_ratio: float = 0.3
    noise_std: float = 0.004


@dataclass
class LifterConfig:
    task: str = "lifter"
    out: str = "runs/lifter"
    model: LifterModelConfig = field(default_factory=LifterModelConfig)
    data: LifterDataConfig = field(default_factory=LifterDataConfig)
    mask: LifterMaskConfig = field(default_factory=LifterMaskConfig)
    loss: LifterLossConfig = field(default_factory=LifterLossConfig)
    optim: LifterOptimConfig = field(default_factory=LifterOptimConfig)
    trainer: LifterTrainerConfig = field(default_factory=LifterTrainerConfig)
    eval: LifterEvalConfig = field(default_factory=LifterEvalConfig)
    pretrain: LifterPretrainConfig = field(default_factory=LifterPretrainConfig)


def _fraction(value: float, key: str, source: str, top: float = 1.0, closed: bool = False) -> None:
    ok = 0.0 <= value <= top if closed else 0.0 <= value < top
    if not ok:
        raise PosetokError(f"{source}: field '{key}': expected a number in [0, {top}{']' if closed else ')'}, "
                           f"got {value}")


def resolve_lifter(cfg: DictConfig, source: str = "config") -> DictConfig:
    """Check the fixed sets of values and the sizes; a ``2d_2d`` run's output skeleton is its input's."""
    m, d = cfg.model, cfg.data
    for key, value, known in (("model.kind", m.kind, ("lifter",)), ("model.arch", m.arch, ARCHS),
                              ("model.mapping", m.mapping, MAPPINGS)):
        if value not in known:
            raise PosetokError(f"{source}: field '{key}': unknown value {value!r} (known: {', '.join(known)})")
    for key in ("skeleton_in", "skeleton_out"):
        try:
            get_skeleton(m[key])
        except PosetokError as e:
            raise PosetokError(f"{source}: field 'model.{key}': {e}") from None
    if m.mapping != "2d_3d":
        m.skeleton_out = m.skeleton_in  # reconstruction: the same joints come out
    if m.frames < 1:
        raise PosetokError(f"{source}: field 'model.frames': must be >= 1, got {m.frames}")
    if m.arch != "simplebaseline":
        if m.dim < 1 or m.heads < 1 or m.dim % m.heads:
            raise PosetokError(f"{source}: field 'model.dim': {m.dim} is not a multiple of model.heads={m.heads}")
        if m.depth < 1:
            raise PosetokError(f"{source}: field 'model.depth': must be >= 1, got {m.depth}")
    elif m.hidden < 1 or m.blocks < 0:
        raise PosetokError(f"{source}: field 'model.hidden': expected hidden >= 1 and blocks >= 0")
    if m.frames > 1 and not (d.h36m_3d or d.h36m_train) and d.synthetic_length < m.frames:
        raise PosetokError(f"{source}: field 'data.synthetic_length': {d.synthetic_length} frames per clip, fewer "
                           f"than model.frames={m.frames}")
    if len(d.image_size) != 2 or min(d.image_size) < 16:
        raise PosetokError(f"{source}: field 'data.image_size': expected [width, height] of at least 16 px")
    if not 0.0 < d.train_fraction <= 1.0:
        raise PosetokError(f"{source}: field 'data.train_fraction': expected a number in (0, 1], "
                           f"got {d.train_fraction}")
    for key in ("box_norm_prob", "flip_prob"):
        _fraction(d[key], f"data.{key}", source, closed=True)
    _fraction(d.scale_jitter, "data.scale_jitter", source, top=0.9, closed=True)
    for key in ("joint_ratio", "frame_ratio"):
        _fraction(cfg.mask[key], f"mask.{key}", source)
        _fraction(cfg.pretrain[key], f"pretrain.{key}", source)
    if d.stride < 1:
        raise PosetokError(f"{source}: field 'data.stride': must be >= 1, got {d.stride}")
    if d.h36m_3d and not d.cameras:
        raise PosetokError(f"{source}: field 'data.cameras': required with data.h36m_3d (VideoPose3D files): the "
                           "camera-frame 3D needs each subject's extrinsics (MMPose's cameras.pkl)")
    if d.h36m_3d and (d.h36m_train or d.h36m_test):
        raise PosetokError(f"{source}: field 'data.h36m_train': give one Human3.6M form (VideoPose3D data.h36m_3d "
                           "or MMPose data.h36m_train/h36m_test), not both")
    if d.actions is not None:
        from ..data.h36m import action_name

        for i, a in enumerate(d.actions):
            try:
                action_name(a)
            except PosetokError as e:
                raise PosetokError(f"{source}: field 'data.actions[{i}]': {e}") from None
    t = cfg.trainer
    if t.early_stopping_patience is not None and t.early_stopping_patience < 1:
        raise PosetokError(f"{source}: field 'trainer.early_stopping_patience': must be >= 1 or null")
    if cfg.pretrain.enabled and m.mapping != "2d_3d":
        raise PosetokError(f"{source}: field 'pretrain.enabled': the pretraining stage starts a 2d_3d run; this run "
                           f"is {m.mapping}")
    return cfg


def lifter_dims_dict(cfg: Any) -> dict[str, Any]:
    """The network description (:class:`~posetok.models.lifter.LifterDims` fields) of a resolved lifter config."""
    m = cfg["model"]
    in_ch = 3  # 2D: x, y, conf; 3D: x, y, z
    out_ch = 2 if m["mapping"] == "2d_2d" else 3
    return {"arch": m["arch"], "skeleton_in": m["skeleton_in"], "skeleton_out": m["skeleton_out"],
            "in_channels": in_ch, "out_channels": out_ch, "has_conf": m["mapping"] != "3d_3d",
            "frames": int(m["frames"]), "dim": int(m["dim"]), "depth": int(m["depth"]), "heads": int(m["heads"]),
            "mlp_ratio": float(m["mlp_ratio"]), "dropout": float(m["dropout"]),
            "attn_dropout": float(m["attn_dropout"]), "drop_path": float(m["drop_path"]),
            "hidden": int(m["hidden"]), "blocks": int(m["blocks"]), "mlp_dropout": float(m["mlp_dropout"])}
