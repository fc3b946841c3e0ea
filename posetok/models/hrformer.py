"""HRFormer, the High-Resolution Transformer (Yuan et al., NeurIPS 2021), as used for top-down pose.

timm has no HRFormer, so posetok writes it here. The layout is HRNet's: a convolutional stem (two 3x3 stride-2
convs, 64 channels), stage 1 of two bottlenecks (64 planes, 256 output channels), then stages 2/3/4 of 1/4/2
modules with 2/3/4 parallel branches at strides 4/8/16/32. Within a module every branch runs two transformer
blocks, then the branches exchange information by HRNet's multi-resolution fusion (sums of resampled maps).

A block is ``x + DropPath(W-MSA(LN(x)))`` followed by ``x + DropPath(CrossFFN(LN(x)))``: multi-head self-attention
inside non-overlapping 7 x 7 windows with a learned relative position bias (no shifted windows: the fusion and
the depthwise conv of the FFN carry information across windows), on a map centre-padded with zeros to a multiple
of 7; CrossFFN is 1x1 conv, BN, GELU, 3x3 depthwise conv, BN, GELU, 1x1 conv, BN, GELU.

Module and parameter names follow MMPose 1.x's ``HRFormer`` (``stage2.0.branches.1.0.attn.attn.qkv.weight``,
``...ffn.dw3x3.weight``, ``...fuse_layers.1.0.0.2.weight``) so :func:`posetok.models.convert.
convert_mmpose_state_dict` is close to a rename-free copy; the names were written from the description of that
code, not checked against a real checkpoint (see the note in ``convert.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from timm.models.resnet import Bottleneck
from torch import nn


@dataclass(frozen=True)
class HRFormerSpec:
    """Sizes of one HRFormer variant; per-branch tuples run from the highest resolution down."""

    channels: tuple[int, int, int, int]
    heads: tuple[int, int, int, int]
    drop_path: float
    modules: tuple[int, int, int] = (1, 4, 2)  # stages 2, 3, 4
    blocks: int = 2  # transformer blocks per branch and module
    stem_blocks: int = 2  # bottlenecks of stage 1
    window: int = 7
    mlp_ratio: float = 4.0


SPECS: dict[str, HRFormerSpec] = {
    "hrformer_s": HRFormerSpec(channels=(32, 64, 128, 256), heads=(1, 2, 4, 8), drop_path=0.1),
    "hrformer_b": HRFormerSpec(channels=(78, 156, 312, 624), heads=(2, 4, 8, 16), drop_path=0.2),
}

_BN_MOMENTUM = 0.1


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout, momentum=_BN_MOMENTUM),
                         nn.ReLU(inplace=True))


class WindowMSA(nn.Module):
    """Multi-head self-attention inside non-overlapping windows, plus a relative position bias.

    Equivalent to MMPose's order (zero-pad the map, ``qkv``, attention per window, ``proj``, crop) but cheaper:
    a zero token's ``qkv`` output is exactly the ``qkv`` bias, so the projection runs on the ``H x W`` real tokens
    and the padding is filled with the bias; ``proj`` runs after the crop, as padded outputs are discarded. The
    attention itself still spans the whole padded window, as in HRFormer.

    Args:
        dim: channels ``C``.
        num_heads: heads; ``C`` must divide by it.
        window: window side ``Wh = Ww``.
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"{dim} channels do not split into {num_heads} heads")
        self.num_heads = num_heads
        self.window = window
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        # One bias per head for each of the (2w-1)^2 relative offsets (Swin's table layout).
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]) + (window - 1)  # (2, N, N), offsets shifted to >= 0
        # Derived from the window size alone, so it is not saved in state dicts.
        self.register_buffer("relative_position_index", rel[0] * (2 * window - 1) + rel[1], persistent=False)
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def position_bias(self) -> torch.Tensor:
        """``(heads, N, N)`` additive attention bias, ``N = window^2``."""
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        return bias.reshape(n, n, self.num_heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C)`` -> ``(B, H, W, C)``; the map is centre-padded to a multiple of the window."""
        b, h, w, c = x.shape
        s, heads = self.window, self.num_heads
        ph, pw = (-h) % s, (-w) % s
        top, left = ph // 2, pw // 2
        qkv = self.qkv(x)
        if ph or pw:
            full = self.qkv.bias.to(qkv.dtype).expand(b, h + ph, w + pw, 3 * c).clone()
            full[:, top:top + h, left:left + w] = qkv
            qkv = full
        nh, nw = (h + ph) // s, (w + pw) // s
        # (B, nh, s, nw, s, 3, heads, hd) -> (3, B * windows, heads, s * s, hd); the (3, heads, hd) split of the
        # qkv output is the layout of MMPose's and Swin's checkpoints.
        qkv = qkv.reshape(b, nh, s, nw, s, 3, heads, c // heads).permute(5, 0, 1, 3, 6, 2, 4, 7)
        q, k, v = qkv.reshape(3, b * nh * nw, heads, s * s, c // heads)
        # The bias goes in as a float mask; under FlopCounterMode this runs as bmm, so the matmuls are counted.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.position_bias().to(q.dtype))
        out = out.reshape(b, nh, nw, heads, s, s, c // heads).permute(0, 1, 4, 2, 5, 3, 6)
        out = out.reshape(b, nh * s, nw * s, c)[:, top:top + h, left:left + w]
        return self.proj(out)


class LocalWindowSelfAttention(nn.Module):
    """Window attention on a ``(B, H, W, C)`` map (the wrapper keeps MMPose's ``attn.attn.*`` parameter names).

    Padded tokens take part in the attention unmasked (MMPose's default, ``with_pad_mask=False``).
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.attn = WindowMSA(dim, num_heads, window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x)


class CrossFFN(nn.Module):
    """The feed-forward part of a block: 1x1 conv, BN, GELU, 3x3 depthwise, BN, GELU, 1x1 conv, BN, GELU.

    The depthwise 3x3 conv is what lets neighbouring windows talk inside a branch.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.norm1 = nn.BatchNorm2d(hidden, momentum=_BN_MOMENTUM)
        self.act1 = nn.GELU()
        self.dw3x3 = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.norm2 = nn.BatchNorm2d(hidden, momentum=_BN_MOMENTUM)
        self.act2 = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.norm3 = nn.BatchNorm2d(dim, momentum=_BN_MOMENTUM)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        x = self.act1(self.norm1(self.fc1(x)))
        x = self.act2(self.norm2(self.dw3x3(x)))
        return self.act3(self.norm3(self.fc2(x)))


class HRFormerBlock(nn.Module):
    """One transformer block on a ``(B, C, H, W)`` map (pre-norm LayerNorms, eps 1e-6, as HRFormer)."""

    def __init__(self, dim: int, num_heads: int, window: int = 7, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = LocalWindowSelfAttention(dim, num_heads, window)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.ffn = CrossFFN(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.permute(0, 2, 3, 1)  # channels last for LayerNorm and the window tokens
        t = t + self.drop_path(self.attn(self.norm1(t)))
        y = self.ffn(self.norm2(t).permute(0, 3, 1, 2))
        return t.permute(0, 3, 1, 2) + self.drop_path(y)


class HRFormerModule(nn.Module):
    """Parallel branches of blocks, then multi-resolution fusion.

    Fusion into branch ``i`` sums branch ``i`` itself, the lower-resolution branches ``j > i`` (1x1 conv, BN,
    bilinear upsampling to branch ``i``'s size) and the higher ones ``j < i`` (``i - j`` stride-2 steps, each a
    3x3 depthwise conv, BN, 1x1 conv, BN, with ReLU between steps), then a ReLU. With ``multi_scale_output``
    False only branch 0 is fused and returned (the last module of the pose network).
    """

    def __init__(self, channels: tuple[int, ...], heads: tuple[int, ...], blocks: int, window: int,
                 mlp_ratio: float, drop_paths: list[float], multi_scale_output: bool = True) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*(HRFormerBlock(c, h, window, mlp_ratio, drop_paths[k]) for k in range(blocks)))
            for c, h in zip(channels, heads))
        n = len(channels)
        self.fuse_layers = nn.ModuleList()
        for i in range(n if multi_scale_output else 1):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, bias=False),
                                             nn.BatchNorm2d(channels[i], momentum=_BN_MOMENTUM)))
                elif j == i:
                    row.append(nn.Identity())  # no parameters: the index stays aligned with MMPose's None
                else:
                    steps = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = channels[i] if last else channels[j]
                        step = [nn.Conv2d(channels[j], channels[j], 3, 2, 1, groups=channels[j], bias=False),
                                nn.BatchNorm2d(channels[j], momentum=_BN_MOMENTUM),
                                nn.Conv2d(channels[j], cout, 1, bias=False),
                                nn.BatchNorm2d(cout, momentum=_BN_MOMENTUM)]
                        if not last:
                            step.append(nn.ReLU(inplace=False))
                        steps.append(nn.Sequential(*step))
                    row.append(nn.Sequential(*steps))
            self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                z = layer(xs[j])
                if j > i:
                    # Resize to the exact target size (not a fixed x2^k) so odd map sizes still line up.
                    z = F.interpolate(z, size=y.shape[-2:], mode="bilinear", align_corners=False)
                y = y + z
            out.append(self.relu(y))
        return out


class HRFormer(nn.Module):
    """HRFormer backbone: ``(B, 3, H, W)`` image -> list of feature maps, highest resolution first.

    Args:
        spec: the variant's sizes (:data:`SPECS`).
        drop_path: stochastic-depth rate of the last block (None: the variant's default); rates rise linearly
            from 0 over the blocks of stages 2-4, one rate per block position of a module, as MMPose.
        highest_only: the last module fuses and returns only the stride-4 branch (the pose network); False
            keeps all four outputs (strides 4, 8, 16, 32).

    Attributes:
        out_channels: channels of each returned map; ``strides``: their strides.
    """

    def __init__(self, spec: HRFormerSpec, drop_path: float | None = None, highest_only: bool = True) -> None:
        super().__init__()
        self.spec = spec
        rate = spec.drop_path if drop_path is None else drop_path
        depths = [spec.blocks * m for m in spec.modules]
        total = sum(depths)
        # torch.linspace would break under a meta default device (tests count sizes on meta).
        dpr = [rate * k / (total - 1) for k in range(total)]

        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=_BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=_BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        down = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256, momentum=_BN_MOMENTUM))
        self.layer1 = nn.Sequential(Bottleneck(64, 64, downsample=down),
                                    *(Bottleneck(256, 64) for _ in range(spec.stem_blocks - 1)))

        prev = [256]
        start = 0
        for s, num_modules in enumerate(spec.modules):
            nb = s + 2
            chans, heads = spec.channels[:nb], spec.heads[:nb]
            self.add_module(f"transition{s + 1}", self._transition(prev, list(chans)))
            mods = []
            for m in range(num_modules):
                rates = dpr[start + m * spec.blocks:start + (m + 1) * spec.blocks]
                last = s == 2 and m == num_modules - 1
                mods.append(HRFormerModule(chans, heads, spec.blocks, spec.window, spec.mlp_ratio, rates,
                                           multi_scale_output=not (last and highest_only)))
            start += depths[s]
            self.add_module(f"stage{s + 2}", nn.Sequential(*mods))
            prev = list(chans)
        self.out_channels = [spec.channels[0]] if highest_only else list(spec.channels)
        self.strides = [4] if highest_only else [4, 8, 16, 32]
        self.lowest_only = False  # set by models.backbones.build_backbone: return the stride-32 map alone
        self.apply(self._init)

    @staticmethod
    def _transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
        """HRNet's transition: adapt existing branches' channels, grow a new branch from the lowest one."""
        layers = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(prev):
                layers.append(_conv_bn_relu(prev[i], c, 1) if prev[i] != c else nn.Identity())
            else:
                steps = [_conv_bn_relu(prev[-1], c if k == i - len(prev) else prev[-1], 2)
                         for k in range(i + 1 - len(prev))]
                layers.append(nn.Sequential(*steps))
        return layers

    @staticmethod
    def _init(m: nn.Module) -> None:
        # Convs as timm's HRNet (Kaiming, fan out), linears as ViT/Swin (truncated normal 0.02), norms at 1/0.
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @staticmethod
    def _run_transition(transition: nn.ModuleList, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        # Existing branches go through their own layer; each new branch starts from the lowest-resolution one.
        return [t(xs[i]) if i < len(xs) else t(xs[-1]) for i, t in enumerate(transition)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for s in range(3):
            xs = self._run_transition(getattr(self, f"transition{s + 1}"), xs)
            for module in getattr(self, f"stage{s + 2}"):
                xs = module(xs)
        return xs[-1:] if self.lowest_only else xs


def hrformer(name: str, *, drop_path: float | None = None, highest_only: bool = True) -> HRFormer:
    """Build ``hrformer_s`` or ``hrformer_b`` (KeyError for other names)."""
    return HRFormer(SPECS[name], drop_path=drop_path, highest_only=highest_only)

