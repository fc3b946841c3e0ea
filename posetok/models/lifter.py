"""2D-to-3D lifters: plain ``nn.Module``s that map keypoint windows to keypoint windows.

Every network here takes ``x`` float32 ``(B, T, K_in, C_in)`` and an optional ``visible`` bool ``(B, T, K_in)``
and returns ``(B, T, K_out, C_out)``:

* ``2d_3d`` (the lifter): ``x`` holds normalised 2D ``x, y`` and a confidence
  (:mod:`posetok.codecs.lifting` says how pixels become these), the output is 3D in metres in the camera frame
  (``x`` right, ``y`` down, ``z`` forward), **root-relative**: the output skeleton's root (joint ``root`` /
  ``pelvis``, or the hips' midpoint) is subtracted inside the network, so it is exactly 0.
* ``2d_2d`` (masked 2D pose modelling): the output is the 2D ``x, y`` in the input's normalised units.
* ``3d_3d`` (masked 3D pose modelling): ``x`` is root-relative 3D (no confidence), the output too.

``visible`` False (or, with a confidence channel and ``visible`` None, a confidence of 0) marks a joint as missing
or masked: token models replace its embedding by a learned mask token, SimpleBaseline zeroes its inputs.

Networks (:func:`build_lifter`):

* :class:`DualStreamLifter` (``arch: transformer``): one token per joint and frame, a lite MotionBERT DSTformer:
  every block runs spatial-then-temporal and temporal-then-spatial attention and mixes the two streams with
  learned weights; single-frame networks (``frames == 1``) keep the spatial attention only. Any ``T``.
* :class:`ViTLifter` (``arch: vit``): joints as patches: one token per joint (and frame), full self-attention
  over all of them, the 2D->2D, 3D->3D and 2D->3D mappings of the seed.
* :class:`SimpleBaseline` (``arch: simplebaseline``): Martinez et al.'s MLP, ``Linear(K C_in -> 1024)``, two
  residual blocks of two ``Linear + BatchNorm + ReLU + Dropout``, ``Linear(1024 -> K_out C_out)``; frame by frame.

Parameters named ``head.*`` are the output head; everything else is the encoder that a fine-tuning run takes from a
pretrained network (:meth:`LifterModel.encoder_state`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from ..skeletons import Skeleton, get_skeleton
from .lifter_layers import DualStreamBlock, JointEmbedding, LiftHead, TransformerBlock, init_weights

ARCHS = ("transformer", "vit", "simplebaseline")


@dataclass
class LifterDims:
    """What a lifter network is: its architecture, skeletons, channels and sizes (stored in checkpoints)."""

    arch: str = "transformer"
    skeleton_in: str = "h36m17"
    skeleton_out: str = "h36m17"
    in_channels: int = 3  # x, y, conf (or x, y, z)
    out_channels: int = 3
    has_conf: bool = True  # the last input channel is a confidence (0: missing joint)
    frames: int = 27
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    attn_dropout: float = 0.0
    drop_path: float = 0.0
    hidden: int = 1024
    blocks: int = 2
    mlp_dropout: float = 0.25

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LifterDims:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown lifter dims {unknown}")
        dims = cls(**d)
        dims.validate()
        return dims

    def validate(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r} (known: {', '.join(ARCHS)})")
        if self.arch != "simplebaseline" and (self.dim % self.heads or self.depth < 1):
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}, depth >= 1")
        if self.frames < 1 or self.in_channels < 2 or self.out_channels not in (2, 3):
            raise ValueError("frames >= 1, in_channels >= 2 and out_channels 2 or 3 are required")
        get_skeleton(self.skeleton_in)
        get_skeleton(self.skeleton_out)

    @property
    def root_relative(self) -> bool:
        """3D outputs are root-relative (the root is subtracted inside the network)."""
        return self.out_channels == 3


def root_joints(skeleton: Skeleton) -> tuple[int, ...]:
    """The joints whose mean is the skeleton's root: ``root`` / ``pelvis`` where it has one, else the hips."""
    names = skeleton.joint_names
    for name in ("root", "pelvis"):
        if name in names:
            return (names.index(name),)
    return (names.index("left_hip"), names.index("right_hip"))


class LifterModel(nn.Module):
    """Base of the lifters: the skeletons, the visibility rule and the root-relative output."""

    def __init__(self, dims: LifterDims) -> None:
        super().__init__()
        dims.validate()
        self.dims = dims
        self.skeleton_in = get_skeleton(dims.skeleton_in)
        self.skeleton_out = get_skeleton(dims.skeleton_out)
        self.register_buffer("root_index", torch.tensor(root_joints(self.skeleton_out)), persistent=False)

    def visibility(self, x: torch.Tensor, visible: torch.Tensor | None) -> torch.Tensor:
        if visible is not None:
            return visible.bool()
        if self.dims.has_conf:
            return x[..., -1] > 0
        return torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)

    def finish(self, y: torch.Tensor) -> torch.Tensor:
        """Root-relative 3D: subtract the output skeleton's root from every joint."""
        if not self.dims.root_relative:
            return y
        return y - y.index_select(-2, self.root_index).mean(-2, keepdim=True)

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The weights a fine-tuning run takes over: everything but the output head (``head.*``)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("head.")}


class DualStreamLifter(LifterModel):
    """Lite MotionBERT DSTformer (module docstring): joint embedding, ``depth`` dual-stream blocks (spatial only
    when ``frames == 1``), LayerNorm, :class:`~posetok.models.lifter_layers.LiftHead`."""

    def __init__(self, dims: LifterDims) -> None:
        super().__init__(dims)
        temporal = dims.frames > 1
        k = self.skeleton_in.num_joints
        self.embed = JointEmbedding(dims.in_channels, dims.dim, k, dims.frames, temporal)
        self.drop = nn.Dropout(dims.dropout)
        rates = torch.linspace(0, dims.drop_path, dims.depth).tolist()
        args = (dims.dim, dims.heads, dims.mlp_ratio, dims.dropout, dims.attn_dropout)
        self.blocks = nn.ModuleList(
            DualStreamBlock(*args, drop_path=r) if temporal else TransformerBlock(*args, drop_path=r) for r in rates)
        self.norm = nn.LayerNorm(dims.dim)
        self.head = LiftHead(dims.dim, dims.out_channels, self.skeleton_in, self.skeleton_out)
        init_weights(self)
        self.head.reset_output()
        for blk in self.blocks:
            if isinstance(blk, DualStreamBlock):
                blk.reset_fusion()

    def forward(self, x: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        h = self.drop(self.embed(x, self.visibility(x, visible)))
        for blk in self.blocks:
            if isinstance(blk, DualStreamBlock):
                h = blk(h)
            else:
                b, t, k, c = h.shape
                h = blk(h.reshape(b * t, k, c)).reshape(b, t, k, c)
        return self.finish(self.head(self.norm(h)))


class ViTLifter(LifterModel):
    """Joints as patches: joint embedding, ``depth`` transformer blocks with full attention over the ``T K``
    tokens, LayerNorm, :class:`~posetok.models.lifter_layers.LiftHead`."""

    def __init__(self, dims: LifterDims) -> None:
        super().__init__(dims)
        k = self.skeleton_in.num_joints
        self.embed = JointEmbedding(dims.in_channels, dims.dim, k, dims.frames, dims.frames > 1)
        self.drop = nn.Dropout(dims.dropout)
        rates = torch.linspace(0, dims.drop_path, dims.depth).tolist()
        self.blocks = nn.ModuleList(
            TransformerBlock(dims.dim, dims.heads, dims.mlp_ratio, dims.dropout, dims.attn_dropout, r) for r in rates)
        self.norm = nn.LayerNorm(dims.dim)
        self.head = LiftHead(dims.dim, dims.out_channels, self.skeleton_in, self.skeleton_out)
        init_weights(self)
        self.head.reset_output()

    def forward(self, x: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        h = self.drop(self.embed(x, self.visibility(x, visible)))
        b, t, k, c = h.shape
        h = h.reshape(b, t * k, c)
        for blk in self.blocks:
            h = blk(h)
        return self.finish(self.head(self.norm(h).reshape(b, t, k, c)))


class _Residual(nn.Module):
    def __init__(self, width: int, p: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(p),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class SimpleBaseline(LifterModel):
    """Martinez et al. (2017), frame by frame: missing joints enter as zeros (their confidence too)."""

    def __init__(self, dims: LifterDims) -> None:
        super().__init__(dims)
        k_in, k_out = self.skeleton_in.num_joints, self.skeleton_out.num_joints
        self.inp = nn.Sequential(nn.Linear(k_in * dims.in_channels, dims.hidden), nn.BatchNorm1d(dims.hidden),
                                 nn.ReLU(), nn.Dropout(dims.mlp_dropout))
        self.blocks = nn.Sequential(*[_Residual(dims.hidden, dims.mlp_dropout) for _ in range(dims.blocks)])
        self.head = nn.Linear(dims.hidden, k_out * dims.out_channels)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)  # Martinez et al. initialise with He's normal
                nn.init.zeros_(m.bias)
        # Martinez et al. predict z-scored coordinates; these are metres (joints ~0.4 m from the root), and He's
        # init would start the outputs at ~5 m: a small head starts them near the root instead
        nn.init.normal_(self.head.weight, std=1e-3)

    def forward(self, x: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        b, t, k, c = x.shape
        x = x * self.visibility(x, visible)[..., None].to(x.dtype)
        h = self.blocks(self.inp(x.reshape(b * t, k * c)))
        return self.finish(self.head(h).reshape(b, t, self.skeleton_out.num_joints, self.dims.out_channels))


def build_lifter(dims: LifterDims) -> LifterModel:
    """The network ``dims`` describes (random weights)."""
    dims.validate()
    return {"transformer": DualStreamLifter, "vit": ViTLifter, "simplebaseline": SimpleBaseline}[dims.arch](dims)
