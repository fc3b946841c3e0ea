"""The encoder of the pose sequence tokenizer: ST-GCN blocks that stride in time, then one linear map per joint group.

Poses ``(B, T, N, D)`` become continuous token features ``(B, T', G, token_dim)``, ``T' = T / temporal_downsample``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..stgcn import STGCNBlock
from .dims import SequenceDims


def temporal_strides(num_layers: int, num_downsamples: int) -> list[int]:
    """Temporal stride of each block: 2 in ``num_downsamples`` blocks spread evenly over ``1 .. num_layers - 1``.

    The first block never strides (it lifts the ``D`` input channels); the positions are distinct because they
    are at least one block apart before rounding.
    """
    step = (num_layers - 1) / max(num_downsamples, 1)
    pos = {math.floor((j + 1) * step + 0.5) for j in range(num_downsamples)}
    return [2 if i in pos else 1 for i in range(num_layers)]


class SequenceEncoder(nn.Module):
    """Poses ``(B, T, N, D)`` and a frame mask ``(B, T)`` -> continuous token features ``(B, T', G, token_dim)``."""

    def __init__(self, dims: SequenceDims, A: torch.Tensor, groups: list[list[int]]) -> None:
        super().__init__()
        self.temporal_downsample = dims.temporal_downsample
        strides = temporal_strides(dims.num_layers, dims.num_downsamples)
        self.blocks = nn.ModuleList(
            STGCNBlock(dims.keypoint_dim if i == 0 else dims.hidden_dim, dims.hidden_dim, A, dims.temporal_kernel,
                       stride=s, dropout=dims.dropout, residual=i > 0)  # ST-GCN's first block has no residual
            for i, s in enumerate(strides)
        )
        self.joint_proj = nn.Conv2d(dims.hidden_dim, dims.joint_dim, 1)
        self.group_sizes = [len(g) for g in groups]
        for g, idx in enumerate(groups):
            self.register_buffer(f"group_index_{g}", torch.tensor(idx, dtype=torch.long), persistent=False)
        self.group_proj = nn.ModuleList(nn.Linear(len(g) * dims.joint_dim, dims.token_dim) for g in groups)

    def token_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` bool frame mask -> ``(B, T')`` bool: a token is valid if any frame of its window is."""
        # A max-pool over each window: no Python sizes, so the batch and length stay dynamic on export.
        ds = self.temporal_downsample
        return F.max_pool1d(mask.to(torch.float32)[:, None], ds, ds)[:, 0] > 0

    def forward(self, poses: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, N, D)`` poses, ``(B, T)`` bool mask (None: all valid) -> ``(B, T', G, token_dim)``.

        Invalid frames are zeroed first (a select, so NaN padding is fine too) so that padding content never
        reaches the tokens.
        """
        if mask is not None:
            poses = torch.where(mask[:, :, None, None], poses, torch.zeros_like(poses))
        x = poses.permute(0, 3, 1, 2)  # (B, D, T, N)
        for block in self.blocks:
            x = block(x)
        h = self.joint_proj(x).permute(0, 2, 3, 1)  # (B, T', N, joint_dim)
        tokens = [proj(h.index_select(2, getattr(self, f"group_index_{g}")).flatten(2))
                  for g, proj in enumerate(self.group_proj)]
        return torch.stack(tokens, dim=2)

