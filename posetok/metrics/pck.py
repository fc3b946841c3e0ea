"""2-D keypoint distance metrics: per-joint errors, mean pixel error, PCK and MPII's PCKh.

Predictions and ground truth are in the same frame, normally image pixels. Only labelled ground-truth joints
(v > 0: visible or occluded) count; a joint with v = 0 has no position to compare against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: MPII's head-size factor: the official evaluation normalises by 0.6 times the head-box diagonal.
MPII_HEAD_FACTOR = 0.6


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[-1] != 3:
        raise ValueError(f"gt must have shape (N, K, 3), got {gt.shape}")
    if pred.shape[:2] != gt.shape[:2] or pred.shape[-1] not in (2, 3):
        raise ValueError(f"pred must have shape ({gt.shape[0]}, {gt.shape[1]}, 2 or 3), got {pred.shape}")
    return pred, gt


def keypoint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance of each predicted joint to its ground truth.

    Args:
        pred: ``(N, K, 2)`` predicted x, y (a third column, e.g. a score, is ignored).
        gt: ``(N, K, 3)`` ground-truth x, y, v in the same frame.

    Returns:
        ``(N, K)`` float64 distances, ``nan`` where the ground truth has v == 0.
    """
    pred, gt = _check(pred, gt)
    err = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1)
    return np.where(gt[..., 2] > 0, err, np.nan)


def mean_error_px(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean Euclidean error over all labelled joints (``nan`` if none is labelled)."""
    err = keypoint_errors(pred, gt)
    return float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")


def _hits(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray]:
    """``(correct, labelled)`` boolean ``(N, K)`` arrays for PCK."""
    err = keypoint_errors(pred, gt)
    norm = np.asarray(norm, dtype=np.float64)
    if norm.shape != (err.shape[0],):
        raise ValueError(f"norm must have shape ({err.shape[0]},), got {norm.shape}")
    labelled = np.isfinite(err)
    correct = labelled & (np.nan_to_num(err, nan=np.inf) <= thr * norm[:, None])
    return correct, labelled


def pck(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray, thr: float) -> float:
    """Percentage of correct keypoints, as a fraction.

    A labelled joint is correct when its error is at most ``thr * norm`` of its sample (``<=`` as in the MPII
    and MMPose evaluations).

    Args:
        pred: ``(N, K, 2)`` predicted x, y.
        gt: ``(N, K, 3)`` ground-truth x, y, v.
        norm: ``(N,)`` normalising lengths in the same units, e.g. :func:`bbox_size` or a head size.
        thr: threshold as a fraction of ``norm``.

    Returns:
        Share of labelled joints that are correct, in 0..1 (``nan`` if no joint is labelled).
    """
    correct, labelled = _hits(pred, gt, norm, thr)
    n = labelled.sum()
    return float(correct.sum() / n) if n else float("nan")


def pck_per_joint(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray, thr: float) -> np.ndarray:
    """:func:`pck` for each joint separately: ``(K,)`` fractions, ``nan`` for joints never labelled."""
    correct, labelled = _hits(pred, gt, norm, thr)
    n = labelled.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, correct.sum(axis=0) / n, np.nan)


def bbox_size(boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` ``max(w, h)`` of ``(N, 4)`` xywh boxes: the usual PCK@bbox normaliser."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
    return boxes[:, 2:].max(axis=1)


def mpii_head_size(head_boxes: np.ndarray) -> np.ndarray:
    """MPII head size: 0.6 times the diagonal of each head box.

    The official MPII evaluation (``SC_BIAS = 0.6`` in its code; MMPose and HRNet use the same factor) scales
    the head rectangle's diagonal by 0.6.

    Args:
        head_boxes: ``(N, 4)`` head rectangles as MPII stores them, ``x1, y1, x2, y2`` in image pixels.

    Returns:
        ``(N,)`` head sizes in pixels.
    """
    head_boxes = np.asarray(head_boxes, dtype=np.float64)
    if head_boxes.ndim != 2 or head_boxes.shape[1] != 4:
        raise ValueError(f"head_boxes must have shape (N, 4), got {head_boxes.shape}")
    return MPII_HEAD_FACTOR * np.linalg.norm(head_boxes[:, 2:] - head_boxes[:, :2], axis=1)


def pckh(
    pred: np.ndarray,
    gt: np.ndarray,
    head_sizes: np.ndarray,
    thr: float = 0.5,
    exclude: Sequence[int] = (),
) -> float:
    """MPII PCKh@``thr``: PCK normalised by the head size (see :func:`mpii_head_size`).

    Args:
        pred: ``(N, K, 2)`` predicted x, y in image pixels.
        gt: ``(N, K, 3)`` ground-truth x, y, v in image pixels.
        head_sizes: ``(N,)`` head sizes in pixels, already including the 0.6 factor.
        thr: threshold as a fraction of the head size (0.5 for the headline PCKh@0.5).
        exclude: joints left out. MPII's headline "Mean" leaves out pelvis and thorax (``(6, 7)`` in
            ``MPII16``); the default keeps every joint.

    Returns:
        Share of labelled, non-excluded joints within ``thr * head_size``, in 0..1.
    """
    gt = np.array(gt, dtype=np.float64, copy=True)
    if len(exclude):
        gt[:, list(exclude), 2] = 0
    return pck(pred, gt, head_sizes, thr)
