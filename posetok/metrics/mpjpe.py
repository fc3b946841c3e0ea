"""Mean per-joint position error and its aligned variants (Human3.6M protocols).

Inputs are ``(..., K, D)`` joint positions with ``D = 3`` (or 2) in any length unit, normally millimetres;
outputs are in the same unit. Leading axes (samples, frames) are flattened into one sample axis.

* :func:`mpjpe` - protocol #1: mean Euclidean distance, no alignment (inputs are usually root-relative).
* :func:`p_mpjpe` - protocol #2 (PA-MPJPE): each prediction is first aligned to its ground truth by the
  similarity transform (scale, rotation, translation) minimising the squared error (orthogonal Procrustes).
* :func:`pa_mpjpe` - the same as :func:`p_mpjpe` under the name the papers use.
* :func:`n_mpjpe` - protocol #3 (N-MPJPE): each prediction is first scaled by the least-squares factor only.
* :func:`mpjve` - mean per-joint velocity error: MPJPE of the first differences in time.
* :func:`per_joint_mpjpe` - MPJPE of each joint; :func:`frame_errors` - one error per pose (any protocol);
  :func:`per_action` - the Human3.6M table: frames weighted within an action, actions weighted equally.

All computations are float64. The Procrustes alignment is VideoPose3D's protocol #2 (``common/loss.py``
``p_mpjpe``): centre both poses, normalise each by its Frobenius norm, ``U, s, Vt = svd(gt0^T pred0)``,
``R = V U^T``; when ``det(R) < 0`` the last column of ``V`` and the sign of the last singular value flip (so the
alignment is always a proper rotation: a mirrored prediction is *not* aligned exactly); scale
``a = sum(s) |gt0| / |pred0|``; :func:`procrustes_align` computes exactly this (it uses the transposed cross-
covariance, whose SVD swaps ``U`` and ``V``), and also copes with degenerate poses.
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


def _scaled(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    pp = (p * p).sum(axis=(1, 2))
    scale = np.where(pp > 0, (p * g).sum(axis=(1, 2)) / np.where(pp > 0, pp, 1.0), 0.0)
    return scale[:, None, None] * p


def n_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Scale-normalised MPJPE (protocol #3): each prediction is scaled by ``<p, g> / <p, p>`` (least squares) first.

    As in VideoPose3D, no centring is done: pass root-relative poses.
    """
    p, g = _flatten(pred, gt)
    return mpjpe(_scaled(p, g), g)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """PA-MPJPE (protocol #2): :func:`p_mpjpe` (see the module docstring for the alignment), in the input unit."""
    return p_mpjpe(pred, gt)


def frame_errors(pred: np.ndarray, gt: np.ndarray, protocol: str = "mpjpe") -> np.ndarray:
    """One error per pose: the mean joint distance of each ``(K, D)`` pose, after the protocol's alignment.

    Args:
        pred, gt: ``(..., K, D)``.
        protocol: ``"mpjpe"`` (none), ``"pa"`` (Procrustes, :func:`procrustes_align`) or ``"n"`` (scale only).

    Returns:
        ``(...)`` float64 errors, the leading axes of the inputs.
    """
    if protocol not in ("mpjpe", "pa", "n"):
        raise ValueError(f"protocol must be 'mpjpe', 'pa' or 'n', got {protocol!r}")
    lead = np.shape(gt)[:-2]
    p, g = _flatten(pred, gt)
    if protocol == "pa":
        p = procrustes_align(p, g)
    elif protocol == "n":
        p = _scaled(p, g)
    return np.linalg.norm(p - g, axis=-1).mean(axis=-1).reshape(lead)


def per_joint_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(K,)`` mean distance of each joint over all leading axes (no alignment), float64."""
    p, g = _flatten(pred, gt)
    return np.linalg.norm(p - g, axis=-1).mean(axis=0)


def mpjve(pred: np.ndarray, gt: np.ndarray, axis: int = -3) -> float:
    """Mean per-joint velocity error: MPJPE of the first differences along the time ``axis`` (default: the axis
    before the joints, so ``(T, K, D)`` and ``(N, T, K, D)`` both work), in input units per frame.

    As in VideoPose3D's ``mean_velocity_error``; ``nan`` with fewer than two frames.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim < 3:
        raise ValueError(f"pred and gt must have the same shape (..., T, K, D); got {pred.shape} and {gt.shape}")
    ax = axis % pred.ndim
    if ax >= pred.ndim - 2:
        raise ValueError(f"the time axis must come before the joint and coordinate axes, got axis={axis}")
    if pred.shape[ax] < 2:
        return float("nan")
    return mpjpe(np.diff(pred, axis=ax), np.diff(gt, axis=ax))


def per_action(errors_per_frame: np.ndarray, action_names: np.ndarray | list[str],
               merge_subactions: bool = True) -> dict[str, float]:
    """The Human3.6M per-action table.

    Args:
        errors_per_frame: ``(N,)`` one error per frame (e.g. :func:`frame_errors`).
        action_names: ``(N,)`` the action of each frame.
        merge_subactions: merge ``"Directions 1"`` into ``"Directions"`` (the part before the first space, as
            VideoPose3D does); other spellings (``TakingPhoto``/``Photo``) must be merged by the caller
            (``posetok.data.h36m.action_name``).

    Returns:
        ``{action: mean error}`` (frames weighted equally within an action), actions sorted by name, and last
        ``"average"``: the unweighted mean of the action means (the figure papers report). Input units.
    """
    err = np.asarray(errors_per_frame, dtype=np.float64).reshape(-1)
    names = np.asarray(action_names).reshape(-1)
    if err.shape != names.shape:
        raise ValueError(f"errors_per_frame and action_names must have the same length; got {err.shape} and "
                         f"{names.shape}")
    if merge_subactions:
        names = np.array([str(n).split(" ")[0] for n in names.tolist()], dtype=str)
    out: dict[str, float] = {}
    for name in sorted(set(names.tolist())):
        out[str(name)] = float(err[names == name].mean())
    out["average"] = float(np.mean(list(out.values()))) if out else float("nan")
    return out
