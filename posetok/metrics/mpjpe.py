"""Mean per-joint position error and its aligned variants (Human3.6M protocols).

Inputs are ``(..., K, D)`` joint positions with ``D = 3`` (or 2) in any length unit, normally millimetres;
outputs are in the same unit. Leading axes (samples, frames) are flattened into one sample axis.

* :func:`mpjpe` - protocol #1: mean Euclidean distance, no alignment (inputs are usually root-relative).
* :func:`p_mpjpe` - protocol #2 (PA-MPJPE): each prediction is first aligned to its ground truth by the
  similarity transform (scale, rotation, translation) minimising the squared error (orthogonal Procrustes).
* :func:`n_mpjpe` - each prediction is first scaled by the least-squares factor only.
"""

from __future__ import annotations

import numpy as np


def _flatten(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim < 2:
        raise ValueError(f"pred and gt must have the same shape (..., K, D); got {pred.shape} and {gt.shape}")
    k, d = gt.shape[-2:]
    return pred.reshape(-1, k, d), gt.reshape(-1, k, d)


def mpjpe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean per-joint position error.

    Args:
        pred: ``(..., K, D)`` predicted positions (mm).
        gt: ``(..., K, D)`` ground-truth positions (mm).
        mask: optional boolean ``(..., K)``; only joints where it is true count.

    Returns:
        Mean Euclidean distance over the counted joints (mm); ``nan`` if none counts.
    """
    pred, gt = _flatten(pred, gt)
    err = np.linalg.norm(pred - gt, axis=-1)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool).reshape(err.shape)
        err = err[mask]
    return float(err.mean()) if err.size else float("nan")


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Align each prediction to its ground truth with the best similarity transform.

    Solves ``min_{s, R, t} sum_k |s R p_k + t - g_k|^2`` per sample with ``R`` a proper rotation
    (det +1). When the unconstrained optimum is a reflection, the singular vector of the smallest singular
    value is flipped and that value counted negative in the scale, which gives the best proper rotation (as in
    Umeyama's method and the VideoPose3D evaluation).

    Args:
        pred: ``(..., K, D)`` predictions.
        gt: ``(..., K, D)`` ground truth.

    Returns:
        ``pred`` aligned to ``gt``, shape ``(..., K, D)``, float64.
    """
    shape = np.shape(pred)
    p, g = _flatten(pred, gt)
    mu_p, mu_g = p.mean(axis=1, keepdims=True), g.mean(axis=1, keepdims=True)
    p0, g0 = p - mu_p, g - mu_g
    norm_p = np.linalg.norm(p0, axis=(1, 2))
    # A prediction collapsed to one point has no orientation or scale; it aligns to the ground-truth centroid.
    safe = np.where(norm_p > 0, norm_p, 1.0)
    p0n = p0 / safe[:, None, None]

    # Cross-covariance of (normalised) prediction and ground truth: p0n^T g0 = U S V^T gives R = U V^T
    # applied on the right (rows are points).
    u, s, vt = np.linalg.svd(np.swapaxes(p0n, 1, 2) @ g0)
    sign = np.sign(np.linalg.det(u @ vt))
    sign = np.where(sign == 0, 1.0, sign)
    u[:, :, -1] *= sign[:, None]
    s[:, -1] *= sign
    rot = u @ vt
    scale = s.sum(axis=1) / safe
    scale = np.where(norm_p > 0, scale, 0.0)
    aligned = scale[:, None, None] * (p0 @ rot) + mu_g
    return aligned.reshape(shape)


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Procrustes-aligned MPJPE (PA-MPJPE, Human3.6M protocol #2), in the input unit.

    See :func:`procrustes_align`; a prediction that is a rotated, scaled and shifted copy of its ground truth
    scores 0.
    """
    return mpjpe(procrustes_align(pred, gt), gt)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Scale-normalised MPJPE: each prediction is scaled by ``<p, g> / <p, p>`` (least squares) first.

    As in VideoPose3D, no centring is done: pass root-relative poses.
    """
    p, g = _flatten(pred, gt)
    pp = (p * p).sum(axis=(1, 2))
    scale = np.where(pp > 0, (p * g).sum(axis=(1, 2)) / np.where(pp > 0, pp, 1.0), 0.0)
    return mpjpe(scale[:, None, None] * p, g)
