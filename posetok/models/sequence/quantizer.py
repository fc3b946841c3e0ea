"""The residual vector quantizer of the pose sequence tokenizer and the helpers the model uses around it.

``vector_quantize_pytorch.ResidualVQ`` with EMA codebooks, k-means init, dead-code re-seeding and quantizer
dropout (:func:`build_quantizer`); :func:`fixed_depth` switches that dropout off for one call and
:func:`codes_from_indices` sums the code vectors of a prefix of the quantizers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from vector_quantize_pytorch import ResidualVQ

from .dims import SequenceDims


def build_quantizer(dims: SequenceDims) -> ResidualVQ:
    """The ``Q``-level residual quantizer of ``V`` codes of size ``token_dim`` that ``dims`` describes.

    It quantizes ``(B, M, token_dim)`` vectors to ``(B, M, token_dim)`` with ids ``(B, M, Q)``.
    """
    return ResidualVQ(
        dim=dims.token_dim,
        num_quantizers=dims.num_quantizers,
        codebook_size=dims.codebook_size,
        decay=dims.ema_decay,
        kmeans_init=dims.kmeans_init,
        kmeans_iters=dims.kmeans_iters,
        threshold_ema_dead_code=dims.dead_code_threshold,
        commitment_weight=dims.commitment_weight,
        quantize_dropout=dims.quantize_dropout,
        quantize_dropout_cutoff_index=dims.quantize_dropout_cutoff_index,
    )


@contextmanager
def fixed_depth(quantizer: ResidualVQ, fixed: bool) -> Iterator[None]:
    """Switch the quantizer's random dropout off while a caller asks for an explicit number of quantizers."""
    saved = quantizer.quantize_dropout
    if fixed:
        quantizer.quantize_dropout = False
    try:
        yield
    finally:
        quantizer.quantize_dropout = saved


def codes_from_indices(quantizer: ResidualVQ, tokens: torch.Tensor) -> torch.Tensor:
    """``(B, T', G, q)`` token ids, ``q <= Q``, ``-1`` for none -> summed code vectors ``(B, T', G, token_dim)``."""
    b, tp, g, q = tokens.shape
    flat = F.pad(tokens.reshape(b, tp * g, q), (0, quantizer.num_quantizers - q), value=-1)
    return quantizer.get_output_from_indices(flat).reshape(b, tp, g, -1)
