"""Building blocks of the lifters (:mod:`posetok.models.lifter`): the joint embedding with its mask token, attention
along one axis of a ``(B, T, K, C)`` token grid, the dual-stream block, and the output head with its learned
joint mapping between skeletons."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..skeletons import Skeleton


def init_weights(module: nn.Module) -> None:
    """Truncated normal (s.d. 0.02) linear weights and zero biases, as ViT-style transformers start."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch of a whole sample with probability ``p`` in training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class Attention(nn.Module):
    """Multi-head self-attention over the middle axis of ``(N, L, C)`` (``F.scaled_dot_product_attention``)."""

    def __init__(self, dim: int, heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, c = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2],
                                             dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(n, length, c)))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block (attention, then a GELU MLP, each residual) on ``(N, L, C)`` tokens."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, attn_drop, drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(drop), nn.Linear(hidden, dim),
                                 nn.Dropout(drop))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class AxisBlock(TransformerBlock):
    """A :class:`TransformerBlock` on a ``(B, T, K, C)`` grid, attending over the joints of each frame
    (``axis="space"``) or over the frames of each joint (``axis="time"``)."""

    def __init__(self, axis: str, *args: float, **kwargs: float) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if axis not in ("space", "time"):
            raise ValueError(f"axis must be 'space' or 'time', got {axis!r}")
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b, t, k, c = x.shape
        if self.axis == "space":
            return super().forward(x.reshape(b * t, k, c)).reshape(b, t, k, c)
        y = super().forward(x.transpose(1, 2).reshape(b * k, t, c))
        return y.reshape(b, k, t, c).transpose(1, 2)


class DualStreamBlock(nn.Module):
    """MotionBERT's dual-stream unit, lite: spatial-then-temporal and temporal-then-spatial attention on the same
    input, mixed per token by weights a linear layer computes from both results (softmax over the two)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        args = (dim, heads, mlp_ratio, drop, attn_drop, drop_path)
        self.st = nn.Sequential(AxisBlock("space", *args), AxisBlock("time", *args))
        self.ts = nn.Sequential(AxisBlock("time", *args), AxisBlock("space", *args))
        self.fuse = nn.Linear(2 * dim, 2)

    def reset_fusion(self) -> None:
        """Start with equal weights for both streams."""
        nn.init.zeros_(self.fuse.weight)
        nn.init.zeros_(self.fuse.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.st(x), self.ts(x)
        w = torch.softmax(self.fuse(torch.cat([a, b], dim=-1)), dim=-1)
        return a * w[..., :1] + b * w[..., 1:]


class JointEmbedding(nn.Module):
    """Per-joint tokens: ``Linear(C_in -> dim)`` of each joint's channels, the learned mask token where a joint is
    missing or masked, and learned joint (and frame) position embeddings.

    A window longer than the ``frames`` the embedding was built for gets the frame embedding linearly
    interpolated; a shorter one takes its first rows.
    """

    def __init__(self, in_channels: int, dim: int, joints: int, frames: int, temporal: bool) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.joint_pos = nn.Parameter(torch.zeros(1, 1, joints, dim))
        self.frame_pos = nn.Parameter(torch.zeros(1, frames, 1, dim)) if temporal else None
        self.frames = frames
        for p in (self.mask_token, self.joint_pos, self.frame_pos):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        h = torch.where(visible[..., None], h, self.mask_token.to(h.dtype))
        h = h + self.joint_pos
        if self.frame_pos is not None:
            t = x.shape[1]
            if t <= self.frames:
                h = h + self.frame_pos[:, :t]
            else:
                pos = F.interpolate(self.frame_pos[0, :, 0].t()[None], size=t, mode="linear", align_corners=True)
                h = h + pos[0].t()[None, :, None]
        return h


_ALIASES: dict[str, tuple[str, ...]] = {
    # a joint missing from one layout, as points of the other (averaged)
    "root": ("left_hip", "right_hip"), "pelvis": ("left_hip", "right_hip"),
    "right_foot": ("right_ankle",), "left_foot": ("left_ankle",),
    "right_ankle": ("right_foot",), "left_ankle": ("left_foot",),
    "thorax": ("left_shoulder", "right_shoulder"), "neck_base": ("left_shoulder", "right_shoulder", "nose"),
    "upper_neck": ("neck_base", "left_shoulder", "right_shoulder"),
    "spine": ("left_shoulder", "right_shoulder", "left_hip", "right_hip"),
    "head": ("nose", "left_eye", "right_eye", "left_ear", "right_ear"), "head_top": ("head", "nose"),
    "nose": ("head",), "left_eye": ("head",), "right_eye": ("head",), "left_ear": ("head",), "right_ear": ("head",),
}  # fmt: skip


def correspondence(source: Skeleton, target: Skeleton) -> np.ndarray:
    """``(K_target, K_source)`` averaging matrix that builds each target joint from the source joints of the same
    name, else from the source joints of :data:`_ALIASES` (the hips' midpoint for a root, the ankles for feet,
    the face for the head), else from all of them: the starting point of the lifter's learned joint mapping."""
    m = np.zeros((target.num_joints, source.num_joints), np.float32)
    names = {n: i for i, n in enumerate(source.joint_names)}
    for j, name in enumerate(target.joint_names):
        picks = [names[name]] if name in names else [names[a] for a in _ALIASES.get(name, ()) if a in names]
        if picks:
            m[j, picks] = 1.0 / len(picks)
        else:
            m[j] = 1.0 / source.num_joints
    return m


class LiftHead(nn.Module):
    """Per-token output: ``Linear + tanh`` (MotionBERT's representation layer), the learned joint mapping
    ``(K_out, K_in)`` when the output skeleton differs from the input's, then ``Linear(dim -> C_out)``."""

    def __init__(self, dim: int, out_channels: int, source: Skeleton, target: Skeleton) -> None:
        super().__init__()
        self.pre = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())
        self.joint_map = (None if source.name == target.name
                          else nn.Parameter(torch.from_numpy(correspondence(source, target))))
        self.out = nn.Linear(dim, out_channels)

    def reset_output(self) -> None:
        """PyTorch's default initialisation for the last layer: outputs start at the scale of a pose (tenths of a
        metre) rather than near 0, where scale-free terms (N-MPJPE) have their largest gradients."""
        self.out.reset_parameters()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.pre(h)
        if self.joint_map is not None:
            h = torch.matmul(self.joint_map, h)  # (K_out, K_in) @ (B, T, K_in, C)
        return self.out(h)
