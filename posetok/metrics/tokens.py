"""Tokenizer statistics: how a pose tokenizer uses its codebook, and what a pose costs in bits.

Token arrays hold integer code indices in ``[0, V)`` where ``V`` is the codebook size. The usual layout is
``(N, M)``: ``N`` poses, ``M`` tokens per pose; the whole-array statistics (histogram, usage, perplexity)
accept any shape and pool every position.

``V`` is the *effective* codebook size, the number of distinct ids a token can take, whatever the quantizer:
the learned codes of vector quantization, ``prod(levels)`` implicit codes of finite scalar quantization (FSQ),
``2^bits`` of lookup-free quantization (LFQ). A token then costs ``log2(V)`` bits, usage is the share of those
``V`` ids seen, and perplexity the effective number of ids in use, for every kind alike.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "bits_per_frame",
    "bits_per_pose",
    "code_histogram",
    "codebook_usage",
    "compression_ratio",
    "per_position_usage",
    "perplexity",
]

# Bits of one float32 coordinate, the uncompressed baseline for compression_ratio.
_FLOAT32_BITS = 32


def _check_codebook_size(codebook_size: int) -> int:
    if isinstance(codebook_size, bool) or not isinstance(codebook_size, (int, np.integer)):
        raise ValueError(f"codebook_size must be an int, got {type(codebook_size).__name__}")
    if codebook_size < 1:
        raise ValueError(f"codebook_size must be >= 1, got {codebook_size}")
    return int(codebook_size)


def _check_tokens(tokens: np.ndarray, codebook_size: int, ndim: int | None = None) -> np.ndarray:
    """Return ``tokens`` as an int64 array after checking dtype, shape and range ``[0, codebook_size)``."""
    arr = np.asarray(tokens)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"tokens must have {ndim} dimensions (N, M), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"tokens is empty (shape {arr.shape}); statistics need at least one token")
    if arr.dtype.kind not in "iu":
        # Float arrays of whole numbers (e.g. tokens saved through a float tensor) are accepted; anything
        # else is a caller bug that would otherwise be silently truncated.
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"tokens must hold integer code indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= codebook_size:
        raise ValueError(f"token values must lie in [0, {codebook_size}), got min {lo}, max {hi}")
    return arr


def code_histogram(tokens: np.ndarray, codebook_size: int) -> np.ndarray:
    """Count how often each code occurs.

    Args:
        tokens: integer code indices of any shape, typically ``(N, M)``; every position is pooled.
        codebook_size: ``V``, the number of codes.

    Returns:
        ``(V,)`` int64 counts; they sum to ``tokens.size``.
    """
    v = _check_codebook_size(codebook_size)
    arr = _check_tokens(tokens, v)
    return np.bincount(arr.ravel(), minlength=v).astype(np.int64)


def codebook_usage(tokens: np.ndarray, codebook_size: int) -> float:
    """Share of the ``V`` codes used at least once in ``tokens`` (any shape), in ``[1/V, 1]``."""
    counts = code_histogram(tokens, codebook_size)
    return float(np.count_nonzero(counts)) / float(counts.size)


def perplexity(tokens: np.ndarray, codebook_size: int) -> float:
    """``exp`` of the entropy (natural log) of the pooled code distribution of ``tokens`` (any shape).

    It is the effective number of codes in use: 1 when a single code is used, ``V`` when all ``V`` codes are
    equally frequent.
    """
    counts = code_histogram(tokens, codebook_size)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log(p)).sum())
    return math.exp(entropy)


def bits_per_pose(num_tokens: int, codebook_size: int) -> float:
    """Bits to store one pose as ``M = num_tokens`` indices into a ``V``-code codebook: ``M * log2(V)``."""
    v = _check_codebook_size(codebook_size)
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
    return float(num_tokens) * math.log2(v)


def bits_per_frame(num_positions: int, num_frames: int, num_quantizers: int, codebook_size: int) -> float:
    """Token bits per frame of a sequence tokenizer: ``num_positions`` token positions (windows x token frames x
    groups) of ``num_quantizers`` ids each, ``log2(V)`` bits an id, spread over ``num_frames`` frames."""
    v = _check_codebook_size(codebook_size)
    if num_frames < 1 or num_positions < 0 or num_quantizers < 1:
        raise ValueError("num_frames and num_quantizers must be >= 1, num_positions >= 0")
    return float(num_positions) * num_quantizers * math.log2(v) / num_frames


def compression_ratio(num_joints: int, num_tokens: int, codebook_size: int, coord_dims: int = 2) -> float:
    """How many times smaller a tokenized pose is than its raw float32 coordinates.

    The raw pose is ``K * coord_dims`` float32 values (visibility not counted), i.e. ``K * coord_dims * 32``
    bits; the tokenized pose is :func:`bits_per_pose`. E.g. COCO-17 in 2-D (1088 bits) as 34 tokens of a
    1024-code codebook (340 bits) gives 3.2.
    """
    if num_joints < 1:
        raise ValueError(f"num_joints must be >= 1, got {num_joints}")
    if coord_dims < 1:
        raise ValueError(f"coord_dims must be >= 1, got {coord_dims}")
    bits = bits_per_pose(num_tokens, codebook_size)
    if bits == 0.0:
        raise ValueError("codebook_size 1 stores zero bits per pose; the compression ratio is undefined")
    return float(num_joints * coord_dims * _FLOAT32_BITS) / bits


def per_position_usage(tokens: np.ndarray, codebook_size: int) -> np.ndarray:
    """Share of the ``V`` codes used at each token position.

    Args:
        tokens: ``(N, M)`` integer code indices, ``N`` poses of ``M`` tokens.
        codebook_size: ``V``.

    Returns:
        ``(M,)`` float64 in ``[1/V, 1]``: entry ``m`` is the number of distinct codes seen at position ``m``
        divided by ``V``. A tokenizer whose positions each use few codes wastes most of ``log2(V)`` bits.
    """
    v = _check_codebook_size(codebook_size)
    arr = _check_tokens(tokens, v, ndim=2)
    used = np.zeros((arr.shape[1], v), dtype=bool)
    # Scatter (position, code) pairs; cheaper than M separate np.unique calls for large N.
    used[np.broadcast_to(np.arange(arr.shape[1]), arr.shape), arr] = True
    return used.sum(axis=1) / float(v)
