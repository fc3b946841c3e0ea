"""Scores of a pose sequence tokenizer: reconstruction error, PCK, codebook statistics per quantizer, bit rate.

Conventions
-----------
* Poses are arrays ``(..., T, N, C)``: any leading axes (clips, windows), ``T`` frames, ``N`` joints, ``C``
  coordinates (2 or 3; a confidence channel must be split off by the caller and passed as ``conf``).
* A joint **counts** when its frame is valid (``mask``, ``(..., T)``, default all) and its confidence is above
  ``conf_threshold`` (``conf``, ``(..., T, N)``, default all 1). Every statistic averages over counted joints only.
* Errors are in the units of the inputs (pixels for 2D files, metres for 3D ones, or normalised units).

Metric definitions (:func:`sequence_metrics`):

* ``mse`` / ``mae``: mean squared / absolute difference per coordinate; ``rmse = sqrt(mse)``.
* ``mpjpe``: mean per-joint position error, the mean Euclidean distance between predicted and true joints.
* ``pck``: share of counted joints whose distance is at most ``pck_threshold * reference`` where the reference
  is, per frame of the target, either the person's **box height** (``pck_reference="box_height"``, default: the
  vertical extent ``max(y) - min(y)`` of the counted target joints of that frame, the ``y`` axis being
  coordinate 1) or the **torso size** (``"torso"``: the distance between the shoulder centre and the hip centre
  of the target, needs a skeleton with named shoulders and hips and frames where all four count). Frames without
  a reference (fewer than two counted joints, a degenerate box, or missing torso joints) are left out of PCK.
* ``per_keypoint_error``: the MPJPE of each joint (a list of ``N`` floats; ``None`` for a joint never counted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..skeletons import Skeleton, get_skeleton
from .tokens import codebook_usage, perplexity

__all__ = ["compression_ratio", "quantization_error", "quantizer_stats", "sequence_metrics"]

_FLOAT32_BITS = 32


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _counted(shape: tuple[int, ...], mask: Any, conf: Any, conf_threshold: float) -> np.ndarray:
    """``(..., T, N)`` bool: joints that count."""
    w = np.ones(shape, dtype=bool)
    if mask is not None:
        m = _np(mask).astype(bool)
        if m.shape != shape[:-1]:
            raise ValueError(f"mask must have shape {shape[:-1]}, got {m.shape}")
        w &= m[..., None]
    if conf is not None:
        c = _np(conf).astype(np.float64)
        if c.shape != shape:
            raise ValueError(f"conf must have shape {shape}, got {c.shape}")
        w &= c > conf_threshold
    return w


def _torso_joints(skeleton: Skeleton | str) -> tuple[list[int], list[int]]:
    sk = skeleton if isinstance(skeleton, Skeleton) else get_skeleton(skeleton)
    names = sk.joint_names
    top = [names.index(n) for n in ("left_shoulder", "right_shoulder") if n in names]
    bottom = [names.index(n) for n in ("left_hip", "right_hip") if n in names]
    if len(top) != 2 or len(bottom) != 2:
        raise ValueError(f"skeleton '{sk.name}' has no named shoulders and hips for a torso-size reference")
    return top, bottom


def _mean(values: np.ndarray, weights: np.ndarray) -> float:
    n = weights.sum()
    return float((values * weights).sum() / n) if n else float("nan")


def sequence_metrics(
    pred: Any,
    target: Any,
    mask: Any = None,
    conf: Any = None,
    pck_threshold: float = 0.05,
    conf_threshold: float = 0.0,
    pck_reference: str = "box_height",
    skeleton: Skeleton | str | None = None,
) -> dict[str, Any]:
    """Reconstruction error of pose sequences (definitions in the module docstring).

    Args:
        pred, target: ``(..., T, N, C)`` coordinates.
        mask: ``(..., T)`` bool valid frames (None: all).
        conf: ``(..., T, N)`` target confidences (None: all counted).
        pck_threshold: share of the reference a joint may be off to count as correct.
        conf_threshold: joints with confidence at or below it do not count.
        pck_reference: ``"box_height"`` or ``"torso"`` (then ``skeleton`` is needed).

    Returns:
        ``mse``, ``mae``, ``rmse``, ``mpjpe``, ``pck``, ``pck_threshold``, ``pck_reference``, ``reference_size``
        (mean reference over the frames that have one), ``per_keypoint_error`` (list), ``num_joints_counted``.
    """
    p = _np(pred).astype(np.float64)
    t = _np(target).astype(np.float64)
    if p.shape != t.shape or p.ndim < 3:
        raise ValueError(f"pred {p.shape} and target {t.shape} must both be (..., T, N, C)")
    w = _counted(p.shape[:-1], mask, conf, conf_threshold)
    # Selects, not products: uncounted joints may hold NaN.
    diff = np.where(w[..., None], p - t, 0.0)
    dist = np.sqrt((diff**2).sum(-1))
    wf = w.astype(np.float64)
    n = int(w.sum())
    c = p.shape[-1]
    mse = float((diff**2).sum() / (n * c)) if n else float("nan")
    mae = float(np.abs(diff).sum() / (n * c)) if n else float("nan")

    tt = np.where(w[..., None], t, np.nan)
    if pck_reference == "box_height":
        y = t[..., 1]
        top = np.where(w, y, -np.inf).max(-1)
        low = np.where(w, y, np.inf).min(-1)
        with np.errstate(invalid="ignore"):
            ref = np.where(w.sum(-1) >= 2, top - low, np.nan)
    elif pck_reference == "torso":
        if skeleton is None:
            raise ValueError("pck_reference='torso' needs the skeleton")
        top, bottom = _torso_joints(skeleton)
        ref = np.linalg.norm(tt[..., top, :].mean(-2) - tt[..., bottom, :].mean(-2), axis=-1)
    else:
        raise ValueError(f"unknown pck_reference '{pck_reference}'; choose box_height or torso")
    ref = np.where(np.isfinite(ref) & (ref > 1e-12), ref, np.nan)  # (..., T)
    has_ref = np.isfinite(ref)
    pw = w & has_ref[..., None]
    correct = dist <= pck_threshold * np.where(has_ref, ref, 0.0)[..., None]
    per_joint_n = wf.reshape(-1, w.shape[-1]).sum(0)
    per_joint = dist.reshape(-1, w.shape[-1]).sum(0) / np.maximum(per_joint_n, 1)
    return {
        "mse": mse,
        "mae": mae,
        "rmse": math.sqrt(mse) if n else float("nan"),
        "mpjpe": _mean(dist, wf),
        "pck": _mean(correct.astype(np.float64), pw.astype(np.float64)),
        "pck_threshold": float(pck_threshold),
        "pck_reference": pck_reference,
        "reference_size": float(np.nanmean(ref)) if has_ref.any() else float("nan"),
        "per_keypoint_error": [float(e) if k else None for e, k in zip(per_joint, per_joint_n)],
        "num_joints_counted": n,
    }


def quantizer_stats(tokens: Any, codebook_size: int) -> dict[str, list[float]]:
    """Codebook usage and perplexity of each quantizer.

    Args:
        tokens: ``(..., Q)`` int token ids, the last axis the quantizers; ``-1`` ("no code": masked windows or
            dropped quantizers) is left out.
        codebook_size: ``V``.

    Returns:
        ``codebook_usage`` and ``perplexity``: lists of ``Q`` floats (see :mod:`posetok.metrics.tokens`);
        ``nan`` for a quantizer without a single code.
    """
    tok = _np(tokens)
    if tok.ndim < 1:
        raise ValueError("tokens must have a last axis of quantizers")
    flat = tok.reshape(-1, tok.shape[-1])
    usage, ppl = [], []
    for q in range(flat.shape[1]):
        col = flat[:, q]
        col = col[col >= 0]
        if col.size == 0:
            usage.append(float("nan"))
            ppl.append(float("nan"))
            continue
        usage.append(codebook_usage(col, codebook_size))
        ppl.append(perplexity(col, codebook_size))
    return {"codebook_usage": usage, "perplexity": ppl}


def quantization_error(features: Any, quantized: Any, mask: Any = None) -> float:
    """Mean squared difference per channel between encoder features and their quantized vectors.

    Args:
        features, quantized: ``(..., Dt)`` (e.g. ``(B, T', G, Dt)``).
        mask: bool of the leading shape (e.g. ``(B, T', G)`` or broadcastable ``(B, T', 1)``), True for tokens
            that count (None: all).
    """
    f = _np(features).astype(np.float64)
    q = _np(quantized).astype(np.float64)
    if f.shape != q.shape:
        raise ValueError(f"features {f.shape} and quantized {q.shape} differ")
    sq = ((f - q) ** 2).mean(-1)
    if mask is None:
        return float(sq.mean())
    m = np.broadcast_to(_np(mask).astype(bool), sq.shape)
    return float(sq[m].mean()) if m.any() else float("nan")


def compression_ratio(num_frames: int, num_joints: int, coord_dims: int, grid_shape: Sequence[int],
                      codebook_size: int, side_bits: float = 0.0) -> float:
    """How many times smaller a tokenized clip is than its raw float32 coordinates.

    Raw: ``T * N * coord_dims * 32`` bits (a confidence channel is not counted). Coded: ``prod(grid_shape)``
    ids of ``log2(V)`` bits each, ``grid_shape`` the token grid of the clip (e.g. ``(W, T', G, Q)`` or
    ``(T', G, Q)``), plus ``side_bits`` for what decoding needs beside the tokens (the normalisation's root and
    scale, the frame mask). E.g. 32 frames of COCO-17 in 2D (34 816 bits) as ``(8, 5, 4)`` tokens of 256 codes
    (1 280 bits) is 27.2; with a float32 root per frame and a scale (2 080 more bits) it is 10.4.
    """
    if min(num_frames, num_joints, coord_dims) < 1:
        raise ValueError("num_frames, num_joints and coord_dims must be >= 1")
    if codebook_size < 2:
        raise ValueError("codebook_size must be >= 2 (one code stores zero bits)")
    if side_bits < 0:
        raise ValueError(f"side_bits must be >= 0, got {side_bits}")
    tokens = int(np.prod([int(s) for s in grid_shape]))
    if tokens < 1:
        raise ValueError(f"token grid {tuple(grid_shape)} is empty")
    raw = num_frames * num_joints * coord_dims * _FLOAT32_BITS
    return float(raw) / (tokens * math.log2(codebook_size) + side_bits)
