"""Heads of the top-down estimator: a plain heatmap head and the heatmap + offset + variance fusion head.

Both take the backbone's feature list and read only ``feats[0]``, the highest-resolution map (stride 4 for
HRNet / HRFormer, so the heatmaps are a quarter of the input). Optional SimpleBaseline-style deconvolutions
(``ConvTranspose2d`` stride 2, BN, ReLU) double the resolution each.

Initialisation is MMPose's ``HeatmapHead``: convs and deconvs drawn from N(0, 0.001) with zero bias, BN weight 1
and bias 0. The tiny weights make the first heatmaps nearly flat (about the bias), so the early MSE loss does not
explode; ``final_bias`` sets the heatmap layer's initial bias.

Parameter names follow MMPose 1.x (``deconv_layers.{0,1,3,4,...}``, ``final_layer``) so its checkpoints convert
by name (:mod:`posetok.models.convert`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

_INIT_STD = 0.001


def _deconv_padding(kernel: int) -> tuple[int, int]:
    """``(padding, output_padding)`` that make a stride-2 deconvolution exactly double the size (MMPose's table)."""
    table = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
    if kernel not in table:
        raise ValueError(f"deconv_kernel must be 2, 3 or 4, got {kernel}")
    return table[kernel]


def _deconv_layers(in_channels: int, channels: tuple[int, ...], kernel: int) -> nn.Sequential:
    """``ConvTranspose2d`` (no bias: BN follows), BN, ReLU per entry of ``channels``; empty -> identity."""
    padding, output_padding = _deconv_padding(kernel)
    layers: list[nn.Module] = []
    for c in channels:
        layers += [nn.ConvTranspose2d(in_channels, c, kernel, stride=2, padding=padding,
                                      output_padding=output_padding, bias=False),
                   nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        in_channels = c
    return nn.Sequential(*layers)


def init_mmpose(module: nn.Module) -> None:
    """MMPose's head initialisation: (de)convs N(0, 0.001), zero bias; BN 1 / 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=_INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class HeatmapHead(nn.Module):
    """``feats[0]`` ``(B, C, h, w)`` -> ``(B, K, h * 2^n, w * 2^n)`` heatmaps, ``n = len(deconv_channels)``.

    Args:
        in_channels: channels of ``feats[0]``.
        num_joints: ``K``.
        deconv_channels: output channels of each deconvolution (empty: HRNet's plain 1x1 conv head).
        deconv_kernel: 4, 3 or 2.
        final_kernel: kernel of the last conv (same padding).
        final_bias: initial bias of the last conv.
    """

    def __init__(self, in_channels: int, num_joints: int, deconv_channels: tuple[int, ...] = (),
                 deconv_kernel: int = 4, final_kernel: int = 1, final_bias: float = 0.0) -> None:
        super().__init__()
        deconv_channels = tuple(deconv_channels)
        self.deconv_layers = _deconv_layers(in_channels, deconv_channels, deconv_kernel)
        width = deconv_channels[-1] if deconv_channels else in_channels
        self.final_layer = nn.Conv2d(width, num_joints, final_kernel, padding=(final_kernel - 1) // 2)
        init_mmpose(self)
        nn.init.constant_(self.final_layer.bias, final_bias)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(feats[0]))


class FusionHead(nn.Module):
    """Heatmaps, sub-pixel offsets and spreads from one shared feature map.

    ``feats[0]`` goes through the shared deconvolutions (if any), then three 1x1 conv branches (each optionally
    preceded by a 3x3 conv, BN, ReLU of ``branch_channels``):

    * ``heatmaps`` ``(B, K, h, w)``: as :class:`HeatmapHead`.
    * ``offsets`` ``(B, 2K, h, w)``: channels ``2k, 2k + 1`` are joint ``k``'s (x, y) offset, in heatmap pixels,
      from each location to the joint (the fusion codec's targets define the use); zero at initialisation.
    * ``variances`` ``(B, K, h, w)``: the predicted heatmap spread as a **log-variance** ``log sigma^2`` (sigma
      in heatmap pixels), unconstrained; ``exp`` gives the variance. A log keeps it positive without a clamp,
      gives a loss on it the same pull for too-wide and too-narrow spreads, and is the layout of
      :mod:`posetok.codecs.heatmap_fusion` (channels ``[3K, 4K)``, trained toward ``log sigma^2``). It starts at
      ``log(init_variance)`` everywhere (4 = the codec's sigma 2 squared).

    Args:
        in_channels, num_joints, deconv_channels, deconv_kernel, final_bias: as :class:`HeatmapHead`.
        branch_channels: width of an extra 3x3 conv per branch; 0: none.
        init_variance: the variance (not its log) at initialisation.
    """

    def __init__(self, in_channels: int, num_joints: int, deconv_channels: tuple[int, ...] = (),
                 deconv_kernel: int = 4, final_bias: float = 0.0, branch_channels: int = 0,
                 init_variance: float = 4.0) -> None:
        super().__init__()
        deconv_channels = tuple(deconv_channels)
        self.num_joints = num_joints
        self.deconv_layers = _deconv_layers(in_channels, deconv_channels, deconv_kernel)
        width = deconv_channels[-1] if deconv_channels else in_channels
        self.heatmap_layer = self._branch(width, num_joints, branch_channels)
        self.offset_layer = self._branch(width, 2 * num_joints, branch_channels)
        self.variance_layer = self._branch(width, num_joints, branch_channels)
        init_mmpose(self)
        nn.init.constant_(self.heatmap_layer[-1].bias, final_bias)
        nn.init.constant_(self.variance_layer[-1].bias, math.log(init_variance))

    @staticmethod
    def _branch(cin: int, cout: int, hidden: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Conv2d(cin, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
            cin = hidden
        return nn.Sequential(*layers, nn.Conv2d(cin, cout, 1))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """``(B, 4K, h, w)``: heatmaps ``[0, K)``, offsets ``[K, 3K)``, log-variances ``[3K, 4K)``, the fusion
        codec's layout, so the head's output is one tensor like every head's (decoding, the flip test and
        export treat it alike)."""
        x = self.deconv_layers(feats[0])
        return torch.cat([self.heatmap_layer(x), self.offset_layer(x), self.variance_layer(x)], 1)
