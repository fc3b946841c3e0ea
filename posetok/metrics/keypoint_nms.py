"""Non-maximum suppression of whole poses by object keypoint similarity (OKS-NMS and soft OKS-NMS).

Top-down estimators run once per detected box, so two boxes on one person give two near-identical poses; COCO
evaluation counts the second as a false positive. OKS-NMS removes it. Both functions here follow the HRNet
reference (``leoxiaobin/deep-high-resolution-net.pytorch``, ``lib/nms/nms.py``: ``oks_iou``, ``oks_nms``,
``soft_oks_nms``) as MMPose 1.x carries it on (``mmpose/evaluation/functional/nms.py``: ``oks_iou``,
``oks_nms``, ``_rescore``, ``soft_oks_nms``); the code is written afresh and vectorised with numpy.

The similarity of two predicted poses ``i`` and ``j`` (:func:`pairwise_oks`, the sources' ``oks_iou``) is

    ``OKS_ij = mean over used joints k of exp(-e_k)``,
    ``e_k = d_k^2 / (2 sigma_k)^2 / ((a_i + a_j) / 2 + eps) / 2``

with ``d_k`` the pixel distance between the two joints, ``a`` the two poses' areas (their **mean**, as both
sources do, not the area of one of them), ``eps = np.spacing(1)`` and every joint used, or with ``vis_thr`` only
the joints whose score exceeds ``vis_thr`` in both poses (MMPose's rule; HRNet's ``list(a) and list(b)``
effectively tests only the second pose). No joint used gives 0. The matrix is symmetric.

Differences from the sources, none of which changes a result except in exact score ties: candidates are ordered
by a *stable* descending sort (ties broken by the lower input index), where the sources use the unstable
``argsort()[::-1]``; and similarities are computed in float64 (MMPose stores them in float32).
"""

from __future__ import annotations

import numpy as np

__all__ = ["keypoint_areas", "oks_nms", "pairwise_oks", "soft_oks_nms"]

# Rows of the (N, N, K) difference tensor computed at once in pairwise_oks: bounds memory for many people or joints.
_CHUNK_ELEMENTS = 4_000_000


def _check(keypoints: np.ndarray, scores: np.ndarray | None, areas: np.ndarray, sigmas: np.ndarray,
           ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
        raise ValueError(f"keypoints must have shape (N, K, 3) (x, y, score) or (N, K, 2), got {kp.shape}")
    n, k = kp.shape[:2]
    if not np.isfinite(kp[..., :2]).all():
        raise ValueError("keypoints must have finite x, y")
    ar = np.asarray(areas, dtype=np.float64)
    sg = np.asarray(sigmas, dtype=np.float64)
    if ar.shape != (n,) or not np.isfinite(ar).all() or (ar < 0).any():
        raise ValueError(f"areas must be ({n},) finite and >= 0, got shape {ar.shape}")
    if sg.shape != (k,) or not (sg > 0).all():
        raise ValueError(f"sigmas must be ({k},) positive numbers, got shape {sg.shape}")
    sc = None
    if scores is not None:
        sc = np.asarray(scores, dtype=np.float64)
        if sc.shape != (n,) or not np.isfinite(sc).all():
            raise ValueError(f"scores must be ({n},) finite numbers, got shape {sc.shape}")
    return kp, sc, ar, sg


def keypoint_areas(keypoints: np.ndarray) -> np.ndarray:
    """Area of each pose's keypoint box, ``(max x - min x) * (max y - min y)`` over all its ``K`` joints.

    This is the area MMPose 1.x ``CocoMetric`` gives a prediction for OKS-NMS when none is supplied ("use keypoint
    to calculate bbox and get area"); HRNet used its detection box's padded area instead. Every joint counts,
    whatever its score, as in MMPose.

    Args:
        keypoints: ``(N, K, 2|3)`` x, y (, score) in pixels.

    Returns:
        ``(N,)`` float64 areas in square pixels.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3) or kp.shape[1] == 0:
        raise ValueError(f"keypoints must have shape (N, K, 2|3) with K > 0, got {kp.shape}")
    extent = kp[..., :2].max(axis=1) - kp[..., :2].min(axis=1)
    return extent[:, 0] * extent[:, 1]


def pairwise_oks(keypoints: np.ndarray, areas: np.ndarray, sigmas: np.ndarray, vis_thr: float | None = None,
                 ) -> np.ndarray:
    """``(N, N)`` OKS between every two predicted poses, the ``oks_iou`` of the sources (module docstring).

    Args:
        keypoints: ``(N, K, 3)`` x, y, score in pixels (``(N, K, 2)`` only without ``vis_thr``).
        areas: ``(N,)`` pose areas in square pixels, e.g. :func:`keypoint_areas`.
        sigmas: ``(K,)`` OKS sigmas of the layout.
        vis_thr: use only joints scored above this in both poses; ``None`` uses every joint.
    """
    kp, _, ar, sg = _check(keypoints, None, areas, sigmas)
    n, k = kp.shape[:2]
    if vis_thr is not None and kp.shape[-1] != 3:
        raise ValueError("vis_thr needs keypoint scores: keypoints must be (N, K, 3)")
    var = (sg * 2) ** 2
    out = np.empty((n, n), dtype=np.float64)
    rows = max(1, _CHUNK_ELEMENTS // max(1, n * k))
    for start in range(0, n, rows):
        sl = slice(start, min(n, start + rows))
        d2 = ((kp[sl, None, :, :2] - kp[None, :, :, :2]) ** 2).sum(axis=-1)  # (r, N, K)
        mean_area = (ar[sl, None] + ar[None, :]) / 2
        # The sources' operation order: / vars / (area + eps) / 2.
        e = d2 / var / (mean_area[..., None] + np.spacing(1)) / 2
        sim = np.exp(-e)
        if vis_thr is None:
            out[sl] = sim.mean(axis=-1)
        else:
            used = (kp[sl, None, :, 2] > vis_thr) & (kp[None, :, :, 2] > vis_thr)
            count = used.sum(axis=-1)
            total = np.where(used, sim, 0.0).sum(axis=-1)
            out[sl] = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return out


def _descending(scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Positions that sort ``scores`` high to low, ties by the lower original index ``idx``."""
    return np.lexsort((idx, -scores))


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
            thr: float = 0.9, vis_thr: float | None = None) -> np.ndarray:
    """Greedy OKS-NMS (HRNet ``nms/nms.py`` ``oks_nms``; MMPose ``oks_nms``).

    Repeatedly keep the highest-scoring remaining pose and drop every remaining pose whose OKS with it
    (:func:`pairwise_oks`) is ``> thr``; poses with OKS ``<= thr`` survive to the next round.

    Args:
        keypoints: ``(N, K, 3)`` x, y, score (or ``(N, K, 2)``) of the poses of **one image**.
        scores: ``(N,)`` pose scores.
        areas: ``(N,)`` pose areas, e.g. :func:`keypoint_areas`.
        sigmas: ``(K,)`` OKS sigmas.
        thr: OKS above which a lower-scored pose is a duplicate (0.9 in MMPose's ``CocoMetric``).
        vis_thr: see :func:`pairwise_oks`.

    Returns:
        ``(M,)`` int64 indices of the kept poses, highest score first.
    """
    kp, sc, ar, sg = _check(keypoints, scores, areas, sigmas)
    n = len(kp)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    sim = pairwise_oks(kp, ar, sg, vis_thr)
    order = _descending(sc, np.arange(n))
    alive = np.ones(n, dtype=bool)
    keep = []
    for i in order:
        if not alive[i]:
            continue
        keep.append(i)
        alive &= ~(sim[i] > thr)
    return np.asarray(keep, dtype=np.int64)


def soft_oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
                 thr: float = 0.3, max_dets: int = 20, vis_thr: float | None = None,
                 return_scores: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Soft OKS-NMS with Gaussian rescoring (MMPose ``soft_oks_nms`` with ``_rescore(type='gaussian')``).

    Repeatedly keep the highest-scoring remaining pose ``i``, then lower the score of every remaining pose ``j``
    to ``s_j * exp(-OKS_ij^2 / thr)`` and re-sort, until ``max_dets`` poses are kept or none remains. No pose is
    dropped for a low score: the rescoring only decides the order, hence which ``max_dets`` poses are kept.
    (MMPose's ``CocoMetric`` passes its one ``nms_thr``, 0.9 by default, to this function too; 0.3 here is only
    this function's default.)

    Args:
        keypoints, scores, areas, sigmas, vis_thr: as for :func:`oks_nms`.
        thr: the Gaussian's ``thr`` in ``exp(-oks^2 / thr)``, > 0.
        max_dets: most poses kept, >= 1 (20 in MMPose, COCO's ``maxDets`` for keypoints).
        return_scores: also return the rescored score of each kept pose at the time it was kept.

    Returns:
        ``(M,)`` int64 kept indices in the order they were kept; with ``return_scores``, ``(keep, new_scores)``.
    """
    kp, sc, ar, sg = _check(keypoints, scores, areas, sigmas)
    if not thr > 0:
        raise ValueError(f"thr must be > 0 for the Gaussian rescoring, got {thr}")
    if max_dets < 1:
        raise ValueError(f"max_dets must be >= 1, got {max_dets}")
    n = len(kp)
    sim = pairwise_oks(kp, ar, sg, vis_thr) if n else np.zeros((0, 0))
    idx = np.arange(n)
    cur = sc.copy()
    keep: list[int] = []
    kept_scores: list[float] = []
    while len(idx) and len(keep) < max_dets:
        pos = _descending(cur, idx)
        idx, cur = idx[pos], cur[pos]
        i = int(idx[0])
        keep.append(i)
        kept_scores.append(float(cur[0]))
        idx, cur = idx[1:], cur[1:] * np.exp(-sim[i, idx[1:]] ** 2 / thr)
    out = np.asarray(keep, dtype=np.int64)
    if return_scores:
        return out, np.asarray(kept_scores, dtype=np.float64)
    return out
