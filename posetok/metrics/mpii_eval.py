"""MPII's PCKh report: per joint, the seven left/right joint groups, the mean, and the mean at a second threshold.

The layout follows the MPII evaluation as HRNet (``lib/dataset/mpii.py``, ``MPIIDataset.evaluate``) and MMPose
report it: a joint is correct when its error is ``<= thr x head size``, head size = 0.6 x the head box diagonal
(:func:`~posetok.metrics.pck.mpii_head_size`). "Head" is ``head_top``; each other group averages its left and
right joint; "Mean" pools every labelled joint except pelvis and thorax (HRNet's ``jnt_ratio``-weighted mean
over the joints, which equals that pooled share). "Mean@0.1" is at threshold 0.1 exactly: HRNet's code reads
row 11 of ``np.arange(0, 0.51, 0.01)``, i.e. threshold 0.11, so its "Mean@0.1" runs slightly higher.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..skeletons import MPII16
from .pck import mpii_head_size, pck_per_joint, pckh

__all__ = ["MPII_GROUPS", "pckh_report"]

#: Report groups of MPII16 joints, in the order of the HRNet/MMPose table.
MPII_GROUPS: dict[str, tuple[str, ...]] = {
    "Head": ("head_top",),
    "Shoulder": ("left_shoulder", "right_shoulder"),
    "Elbow": ("left_elbow", "right_elbow"),
    "Wrist": ("left_wrist", "right_wrist"),
    "Hip": ("left_hip", "right_hip"),
    "Knee": ("left_knee", "right_knee"),
    "Ankle": ("left_ankle", "right_ankle"),
}
# Left out of "Mean" by the official evaluation.
_MEAN_EXCLUDED = (MPII16.index("pelvis"), MPII16.index("thorax"))


def pckh_report(pred: np.ndarray, gt: np.ndarray, head: np.ndarray,
                thresholds: Sequence[float] = (0.5, 0.1)) -> dict[str, float]:
    """PCKh of MPII16 poses, in percent (0..100).

    Args:
        pred: ``(N, 16, 2|3)`` predicted x, y in image pixels (a third column is ignored).
        gt: ``(N, 16, 3)`` ground-truth x, y, v; joints with v > 0 are scored.
        head: ``(N, 4)`` MPII head boxes ``x1, y1, x2, y2`` (the 0.6 diagonal factor is applied), or ``(N,)``
            head sizes that already include it.
        thresholds: the first gives the per-joint, group and "Mean" values; each further ``t`` adds
            ``"Mean@{t}"`` (``"Mean@0.1"`` for the default).

    Returns:
        ``{joint_name: ...}`` for the 16 MPII joints, then ``"Head"``, ``"Shoulder"``, ``"Elbow"``, ``"Wrist"``,
        ``"Hip"``, ``"Knee"``, ``"Ankle"``, ``"Mean"`` and ``"Mean@t"``; ``nan`` where no joint was labelled.
    """
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[1:] != (MPII16.num_joints, 3):
        raise ValueError(f"gt must have shape (N, {MPII16.num_joints}, 3) in MPII16 order, got {gt.shape}")
    head = np.asarray(head, dtype=np.float64)
    if head.ndim == 2:
        sizes = mpii_head_size(head)
    elif head.ndim == 1:
        sizes = head
    else:
        raise ValueError(f"head must be (N, 4) head boxes or (N,) head sizes, got shape {head.shape}")
    if not len(thresholds):
        raise ValueError("thresholds must hold at least one threshold")
    thr0, *others = (float(t) for t in thresholds)

    per_joint = 100.0 * pck_per_joint(pred, gt, sizes, thr0)
    out: dict[str, float] = {name: float(v) for name, v in zip(MPII16.joint_names, per_joint)}
    for group, names in MPII_GROUPS.items():
        out[group] = float(np.mean([per_joint[MPII16.index(n)] for n in names]))
    out["Mean"] = 100.0 * pckh(pred, gt, sizes, thr0, exclude=_MEAN_EXCLUDED)
    for t in others:
        out[f"Mean@{t:g}"] = 100.0 * pckh(pred, gt, sizes, t, exclude=_MEAN_EXCLUDED)
    return out
