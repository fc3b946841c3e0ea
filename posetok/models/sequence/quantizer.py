"""The residual quantizer of the pose sequence tokenizer and the helpers the model uses around it.

Three kinds, all from vector-quantize-pytorch (``dims.quantizer``, :func:`build_quantizer`):

- ``rvq``: ``ResidualVQ`` with EMA codebooks, k-means init and dead-code re-seeding;
- ``rfsq``: ``ResidualFSQ``, finite scalar quantization of the residual at each level (``V = prod(levels)``
  implicit codes, the level ``q`` grid scaled by ``levels^-q``), no codebook to learn;
- ``rlfq``: ``ResidualLFQ``, lookup-free (sign) quantization at each level (``V = codebook_size = 2^bits``, the
  level ``q`` codes scaled by ``2^-q``), with an entropy loss.

All three train with quantizer dropout; :func:`fixed_depth` switches it off for one call, :func:`run_quantizer`
runs any of them with a token mask and :func:`codes_from_indices` sums the code vectors of a prefix of the
quantizers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import ResidualFSQ, ResidualLFQ, ResidualVQ

from .dims import SequenceDims


def build_quantizer(dims: SequenceDims) -> nn.Module:
    """The ``Q``-level residual quantizer of ``V`` codes that ``dims`` describes (``dims.quantizer``).

    It quantizes ``(B, M, token_dim)`` vectors to ``(B, M, token_dim)`` with ids ``(B, M, Q)``.
    """
    common = {"num_quantizers": dims.num_quantizers, "quantize_dropout": dims.quantize_dropout,
              "quantize_dropout_cutoff_index": dims.quantize_dropout_cutoff_index}
    if dims.quantizer == "rfsq":
        return ResidualFSQ(dim=dims.token_dim, levels=[int(v) for v in dims.levels or ()], **common)
    if dims.quantizer == "rlfq":
        return ResidualLFQ(dim=dims.token_dim, codebook_size=dims.codebook_size,
                           entropy_loss_weight=dims.entropy_loss_weight, diversity_gamma=dims.diversity_gamma,
                           commitment_loss_weight=dims.commitment_weight, **common)
    return ResidualVQ(
        dim=dims.token_dim,
        codebook_size=dims.codebook_size,
        decay=dims.ema_decay,
        kmeans_init=dims.kmeans_init,
        kmeans_iters=dims.kmeans_iters,
        threshold_ema_dead_code=dims.dead_code_threshold,
        commitment_weight=dims.commitment_weight,
        **common,
    )


def quantizer_kind(quantizer: nn.Module) -> str:
    """``rvq``, ``rfsq`` or ``rlfq`` of a module :func:`build_quantizer` made."""
    return "rfsq" if isinstance(quantizer, ResidualFSQ) else "rlfq" if isinstance(quantizer, ResidualLFQ) else "rvq"


def run_quantizer(quantizer: nn.Module, x: torch.Tensor, mask: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run any kind of residual quantizer on ``(B, M, Dt)`` vectors with a ``(B, M)`` bool token mask.

    Returns the quantized vectors ``(B, M, Dt)`` (zero where masked), int64 ids ``(B, M, Q)`` (``-1`` where
    masked and for quantizers dropped in training) and the per-quantizer losses ``(Q,)`` (zeros for rfsq).
    ResidualVQ takes the mask itself; ResidualFSQ has no mask argument and ResidualLFQ returns the masked
    positions' codes, so both are masked here as ResidualVQ masks.
    """
    kind = quantizer_kind(quantizer)
    if kind == "rvq":
        return quantizer(x, mask=mask)
    if kind == "rfsq":
        quantized, ids = quantizer(x)
        losses = x.new_zeros(quantizer.num_quantizers)
    else:
        quantized, ids, losses = quantizer(x, mask=mask)
        losses = losses.reshape(-1)
    quantized = torch.where(mask[..., None], quantized, torch.zeros_like(quantized))
    ids = torch.where(mask[..., None], ids.long(), torch.full_like(ids.long(), -1))
    return quantized, ids, losses


def code_tables(quantizer: nn.Module) -> torch.Tensor:
    """``(Q, V, d)`` code vectors of every quantizer: for rvq in token space (``d = token_dim``); for rfsq and
    rlfq in the quantizer's inner space (``d = len(levels)`` or ``log2 V``), already scaled as level ``q``
    scales them, to be summed and then mapped by ``quantizer.project_out``."""
    books = quantizer.codebooks
    if quantizer_kind(quantizer) == "rfsq":
        books = books * quantizer.scales[:, None, :]
    return books


@contextmanager
def fixed_depth(quantizer: nn.Module, fixed: bool) -> Iterator[None]:
    """Switch the quantizer's random dropout off while a caller asks for an explicit number of quantizers."""
    saved = quantizer.quantize_dropout
    if fixed:
        quantizer.quantize_dropout = False
    try:
        yield
    finally:
        quantizer.quantize_dropout = saved


def codes_from_indices(quantizer: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``(B, T', G, q)`` token ids, ``q <= Q``, ``-1`` for none -> summed code vectors ``(B, T', G, token_dim)``.

    A position without any code (a masked window) gets the zero vector for every kind, as the training forward
    gives it (rfsq and rlfq would otherwise decode it to their output projection's bias).
    """
    b, tp, g, q = tokens.shape
    flat = F.pad(tokens.reshape(b, tp * g, q), (0, quantizer.num_quantizers - q), value=-1)
    out = quantizer.get_output_from_indices(flat)
    if quantizer_kind(quantizer) != "rvq":
        out = out * (flat >= 0).any(-1, keepdim=True).to(out.dtype)
    return out.reshape(b, tp, g, -1)
