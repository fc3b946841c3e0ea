"""MLP-Mixer blocks over a set of joints (or tokens), as used by the PCT tokenizer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLPBlock(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout over the last axis."""

    def __init__(self, dim: int, inter_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, inter_dim)
        self.fc2 = nn.Linear(inter_dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(x)))))


class MixerLayer(nn.Module):
    """One Mixer block on ``(B, L, D)``: a token-mixing MLP across the ``L`` items, then a channel MLP.

    Follows the PCT formulation: ``y = TokenMLP(LN1(x))``, ``z = ChannelMLP(LN2(x + y))``, ``out = x + y + z``.
    """

    def __init__(self, hidden_dim: int, hidden_inter_dim: int, num_items: int, token_inter_dim: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.token_mlp = MLPBlock(num_items, token_inter_dim, dropout)
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.channel_mlp = MLPBlock(hidden_dim, hidden_inter_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        z = self.channel_mlp(self.norm2(x + y))
        return x + y + z

    def forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Same result as :meth:`forward` in eval mode, without the two transposed copies.

        The token MLP is applied as a left matrix product ``W @ x`` broadcast over the batch, which keeps the
        joint axis where it is and lets BLAS read the activations in place.
        """
        t = self.token_mlp
        y = self.norm1(x)
        y = torch.matmul(t.fc1.weight, y).add_(t.fc1.bias[:, None])
        y = torch.matmul(t.fc2.weight, F.gelu(y)).add_(t.fc2.bias[:, None])
        x = x + y
        c = self.channel_mlp
        z = F.linear(F.gelu(F.linear(self.norm2(x), c.fc1.weight, c.fc1.bias)), c.fc2.weight, c.fc2.bias)
        return x.add_(z)
