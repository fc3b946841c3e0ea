"""The decoder of the pose sequence tokenizer: token vectors back to per-joint features, ST-GCN blocks with x2
temporal upsampling where the encoder strided, and a per-joint coordinate head."""

from __future__ import annotations

import torch
from torch import nn

from ..stgcn import STGCNBlock
from .dims import SequenceDims
from .encoder import temporal_strides


class SequenceDecoder(nn.Module):
    """Token vectors ``(B, T', G, token_dim)`` -> coordinates ``(B, T' * temporal_downsample, N, Dc)``."""

    def __init__(self, dims: SequenceDims, A: torch.Tensor, groups: list[list[int]]) -> None:
        super().__init__()
        self.joint_dim = dims.joint_dim
        self.group_sizes = [len(g) for g in groups]
        self.group_proj = nn.ModuleList(nn.Linear(dims.token_dim, len(g) * dims.joint_dim) for g in groups)
        order = [j for g in groups for j in g]
        # The groups' joints come out concatenated in group order; this gather puts them back in joint order.
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        self.register_buffer("joint_order", inverse, persistent=False)
        # Mirror of the encoder: upsample (x2 in time) before the blocks where the encoder strided.
        layers: list[nn.Module] = []
        for i, s in enumerate(temporal_strides(dims.num_layers, dims.num_downsamples)):
            if s == 2:
                layers.append(nn.Sequential(
                    nn.ConvTranspose2d(dims.hidden_dim, dims.hidden_dim, (4, 1), (2, 1), (1, 0)),  # exactly 2 T
                    nn.BatchNorm2d(dims.hidden_dim),
                    nn.ReLU(inplace=True),
                ))
            layers.append(STGCNBlock(dims.joint_dim if i == 0 else dims.hidden_dim, dims.hidden_dim, A,
                                     dims.temporal_kernel, dropout=dims.dropout))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Conv2d(dims.hidden_dim, dims.coord_dim, 1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """``(B, T', G, token_dim)`` -> ``(B, T, N, Dc)``."""
        parts = [proj(codes[:, :, g]).unflatten(-1, (size, self.joint_dim))
                 for g, (proj, size) in enumerate(zip(self.group_proj, self.group_sizes))]
        x = torch.cat(parts, dim=2).index_select(2, self.joint_order)  # (B, T', N, joint_dim)
        x = x.permute(0, 3, 1, 2)  # (B, joint_dim, T', N)
        for layer in self.layers:
            x = layer(x)
        return self.head(x).permute(0, 2, 3, 1)

