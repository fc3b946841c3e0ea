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

    Built from a trained :class:`SequenceTokenizerModel`; later changes to that model do not reach it. For rvq the
    residual search is a fixed loop over the ``Q`` codebooks with the distance computed as
    ``vector_quantize_pytorch`` computes it (``sqrt(|x|^2 + |c|^2 - 2 x.c)``, first index on ties), so the ids
    match the library's exactly. For rfsq and rlfq the loop runs the library's own arithmetic (input projection,
    rfsq's soft clamp, per level: scale, bound, round, subtract), op for op, so again the ids are the library's.
    No data-dependent control flow: it traces with a dynamic batch and a dynamic number of frames (a multiple of
    ``temporal_downsample``).
    """

    def __init__(self, model: SequenceTokenizerModel) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(model.encoder)
        self.num_groups = model.num_groups
        self.kind = model.quantizer_kind
        q_all = model.num_quantizers
        quantizer = model.quantizer
        with torch.no_grad():
            codebooks = model.codebooks.detach().float().clone()  # (Q, V, d)
            self.register_buffer("codebooks", codebooks)
            self.register_buffer("code_sq", (codebooks**2).sum(-1))  # (Q, V)
        if self.kind != "rvq":
            # Written out rather than calling the library's ResidualFSQ / ResidualLFQ: their traced copies failed
            # the TorchScript trace check (rfsq) or gave other ids at another number of tokens (rlfq).
            self.project_in = copy.deepcopy(quantizer.project_in)
            if self.kind == "rfsq":
                layer = quantizer.layers[0]
                self.register_buffer("levels", layer._levels.clone())  # int32 (d,)
                self.register_buffer("basis", layer._basis.long().clone())  # (d,)
                self.register_buffer("scales", quantizer.scales.clone())  # (Q, d): levels^-q
                self.register_buffer("soft_clamp", quantizer.soft_clamp_input_value.clone())  # (d,)
            else:
                d = quantizer.layers[0].codebook_dim
                self.register_buffer("bit_values", 2 ** torch.arange(d - 1, -1, -1))  # (d,) int64
                self.register_buffer("scales", torch.tensor([2.0 ** -q for q in range(q_all)]))  # (Q,)
        self.eval().requires_grad_(False)

    def _rfsq_level(self, residual: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One ResidualFSQ level (FSQ with ``preserve_symmetry`` and ``bound_hard_clamp``) on ``(1, M, d)``:
        ids ``(1, M)``, the quantized vector and the level bracket before the floor (for :meth:`margins`)."""
        levels_minus_1 = self.levels - 1
        bracket = (levels_minus_1 * (torch.clamp(residual / self.scales[q], -1.0, 1.0) + 1) / 2.0) + 0.5
        floored = bracket.floor()
        quantized = (2.0 / levels_minus_1 * floored - 1.0) * self.scales[q]
        return (floored.long() * self.basis).sum(-1), quantized, bracket

    def _rlfq_level(self, residual: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One ResidualLFQ level (signs scaled by ``2^-q``) on ``(1, M, d)``: ids, the quantized vector, the
        residual itself (its sign is the decision)."""
        positive = residual > 0
        scale = self.scales[q]
        quantized = torch.where(positive, scale, -scale)
        return (positive.long() * self.bit_values).sum(-1), quantized, residual

    def _residual_ids(self, feats: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``(B, T', G, Dt)`` features -> per quantizer ids ``(1, M)`` and decision margins ``(1, M)`` (distance
        of the nearest value to a rounding boundary, in that level's units)."""
        residual = feats.float().reshape(1, -1, feats.shape[-1])  # (1, M, Dt): one row per token, as the library
        ids, margins = [], []
        if self.kind == "rvq":
            for q in range(self.codebooks.shape[0]):
                code = self.codebooks[q]
                xy = torch.einsum("bid,bjd->bij", residual, code[None]) * -2
                dist = ((residual**2).sum(-1)[:, :, None] + self.code_sq[q][None, None, :] + xy).clamp(min=1e-8)
                idx = (-dist.sqrt()).argmax(-1)  # (1, M)
                ids.append(idx)
                residual = residual - F.embedding(idx, code)
            return ids, margins
        residual = self.project_in(residual)
        if self.kind == "rfsq":
            residual = (residual / self.soft_clamp).tanh() * self.soft_clamp
        level = self._rfsq_level if self.kind == "rfsq" else self._rlfq_level
        for q in range(self.scales.shape[0]):
            idx, quantized, decided = level(residual, q)
            ids.append(idx)
            # rfsq floors the bracket (boundaries at integers), rlfq takes the sign (boundary at 0).
            margins.append(((decided - decided.round()).abs() if self.kind == "rfsq" else decided.abs()).amin(-1))
            residual = residual - quantized
        return ids, margins

    @torch.no_grad()
    def margins(self, poses: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """rfsq and rlfq: ``(B, T', G, Q)`` distance of each token's nearest quantized value to its decision
        boundary, in level units; where it is within float rounding, another runtime may pick the other side
        (:func:`posetok.export.rounding_ties`)."""
        feats = self.encoder(poses, mask)
        grid = feats[..., 0]
        return torch.stack([m.reshape_as(grid) for m in self._residual_ids(feats)[1]], dim=-1)

    def forward(self, poses: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, N, D)`` poses, ``(B, T)`` bool frame mask (None: all valid) -> ``(B, T', G, Q)`` int64."""
        feats = self.encoder(poses, mask)  # (B, T', G, Dt)
        # Reshape back with reshape_as, never with Python sizes: the ONNX exporter would bake those in.
        grid = feats[..., 0]  # (B, T', G)
        tokens = torch.stack([idx.reshape_as(grid) for idx in self._residual_ids(feats)[0]], dim=-1)
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
        # rfsq / rlfq: the table holds the scaled inner codes; their sum goes through the output projection, and a
        # window without codes (masked) stays the zero vector, as in the training forward.
        self.projected = model.quantizer_kind != "rvq"
        self.project_out = copy.deepcopy(model.quantizer.project_out) if self.projected else nn.Identity()
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
        codes = F.embedding(tokens.clamp(min=0) + self.offsets, self.code_table)  # (B, T', G, Q, d)
        summed = (codes * valid[..., None]).sum(-2)
        if self.projected:
            summed = self.project_out(summed) * valid.amax(-1, keepdim=True)
        return self.decoder(summed)
