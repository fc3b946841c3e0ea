"""Frozen, export-friendly inference modules of the pose sequence tokenizer.

:class:`SequenceTokenEncoder` maps poses to token ids with a fixed residual search over the codebooks;
:class:`SequenceTokenDecoder` maps token ids back to coordinates with one gather from a flat code table. Both are
built by :meth:`~posetok.models.sequence.SequenceTokenizerModel.inference_encoder` and
:meth:`~posetok.models.sequence.SequenceTokenizerModel.inference_decoder`, and trace (TorchScript, ONNX) with a
dynamic batch and number of frames.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from .model import SequenceTokenizerModel


class SequenceTokenEncoder(nn.Module):
    """Poses to tokens, for inference and export: the tokens of the model's eval-mode forward.

    Built from a trained :class:`SequenceTokenizerModel`; later changes to that model do not reach it. The
    residual search is a fixed loop over the ``Q`` codebooks with the distance computed as
    ``vector_quantize_pytorch`` computes it (``sqrt(|x|^2 + |c|^2 - 2 x.c)``, first index on ties), so the ids
    match the library's exactly. No data-dependent control flow: it traces with a dynamic batch and a dynamic
    number of frames (a multiple of ``temporal_downsample``).
    """

    def __init__(self, model: SequenceTokenizerModel) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(model.encoder)
        self.num_groups = model.num_groups
        with torch.no_grad():
            codebooks = model.codebooks.detach().float().clone()  # (Q, V, Dt)
            self.register_buffer("codebooks", codebooks)
            self.register_buffer("code_sq", (codebooks**2).sum(-1))  # (Q, V)
        self.eval().requires_grad_(False)

    def forward(self, poses: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, N, D)`` poses, ``(B, T)`` bool frame mask (None: all valid) -> ``(B, T', G, Q)`` int64."""
        feats = self.encoder(poses, mask)  # (B, T', G, Dt)
        # Reshape back with reshape_as, never with Python sizes: the ONNX exporter would bake those in.
        grid = feats[..., 0]  # (B, T', G)
        residual = feats.float().reshape(1, -1, feats.shape[-1])  # (1, M, Dt): one row per token, as the library
        ids = []
        for q in range(self.codebooks.shape[0]):
            code = self.codebooks[q]
            xy = torch.einsum("bid,bjd->bij", residual, code[None]) * -2
            dist = ((residual**2).sum(-1)[:, :, None] + self.code_sq[q][None, None, :] + xy).clamp(min=1e-8).sqrt()
            idx = (-dist).argmax(-1)  # (1, M)
            ids.append(idx.reshape_as(grid))
            residual = residual - F.embedding(idx, code)
        tokens = torch.stack(ids, dim=-1)
        if mask is not None:
            # Arithmetic rather than where(valid, tokens, full_like(tokens, -1)): the ONNX exporter folds that
            # full_like into a constant of the traced shape, which breaks dynamic batch and length.
            valid = self.encoder.token_mask(mask)[:, :, None, None].long()
            tokens = tokens * valid + (valid - 1)
        return tokens


class SequenceTokenDecoder(nn.Module):
    """Tokens to poses, for inference and export.

    Input ``(B, T', G, Q)`` int64 with ``-1`` for "no code" (zero vector). The ``Q`` codebooks are one flat
    table, so the lookup is a single gather whatever ``Q``; ``num_quantizers = q`` bakes a prefix in (the later
    columns are ignored). Traces with a dynamic batch and number of token frames.
    """

    def __init__(self, model: SequenceTokenizerModel, num_quantizers: int | None = None) -> None:
        super().__init__()
        self.decoder = copy.deepcopy(model.decoder)
        q_all, v = model.num_quantizers, model.codebook_size
        q = model._check_num_quantizers(num_quantizers) or q_all
        with torch.no_grad():
            self.register_buffer("code_table", model.codebooks.detach().float().reshape(q_all * v, -1).clone())
            self.register_buffer("offsets", torch.arange(q_all, dtype=torch.long) * v)  # (Q,)
            self.register_buffer("keep", (torch.arange(q_all) < q).float())  # (Q,): 1 for the used prefix
        self.eval().requires_grad_(False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T', G, Q)`` int64 tokens -> ``(B, T, N, Dc)`` coordinates."""
        valid = (tokens >= 0).float() * self.keep  # (B, T', G, Q)
        codes = F.embedding(tokens.clamp(min=0) + self.offsets, self.code_table)  # (B, T', G, Q, Dt)
        return self.decoder((codes * valid[..., None]).sum(-2))
