"""Scoring a COCO keypoint results file the way MMPose's ``CocoMetric`` does: rescoring, OKS-NMS, COCOeval.

A top-down estimator's results (one pose per detected box) pass three steps before COCO's keypoint AP:

1. :func:`rescore`: each person's score from its box score and its joints' scores (``score_mode``; MMPose 1.x
   ``mmpose/evaluation/metrics/coco_metric.py``, ``CocoMetric.compute_metrics``).
2. :func:`group_nms`: OKS-NMS or soft OKS-NMS within each image (:mod:`posetok.metrics.keypoint_nms`), on the
   new scores. A pose's area for the NMS is its keypoint box (:func:`~posetok.metrics.keypoint_nms.keypoint_areas`),
   as ``CocoMetric`` computes it when the predictions carry no areas.
3. :func:`~posetok.metrics.coco.coco_keypoint_eval` (pycocotools) on the kept people with their new scores.

As in ``CocoMetric``, soft OKS-NMS only selects which people are kept: their scores for COCOeval are the
rescored ones of step 1, not the Gaussian-decayed ones.

Reading the file. This package sits beside :mod:`posetok.data` in the layers (neither may import the other), so
:func:`score_results` reads a results file with its own small reader (:func:`read_results`) whose errors follow
the data readers' style: one :class:`~posetok.errors.PosetokError` line naming the file and the field, e.g.
``preds.json: field '[3].keypoints': missing``. It reads the flat COCO layout only (``keypoints`` holding
``3 K`` numbers); for COCO-WholeBody part fields read the file with ``posetok.data.load_coco_results`` in a
higher layer and pass the arrays to :func:`score_predictions`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PosetokError, field_error
from ..skeletons import skeleton_for_joints
from .coco import coco_keypoint_eval
from .keypoint_nms import keypoint_areas, oks_nms, soft_oks_nms

__all__ = [
    "NMS_MODES",
    "SCORE_MODES",
    "Results",
    "group_nms",
    "postprocess",
    "read_results",
    "rescore",
    "score_predictions",
    "score_results",
]

SCORE_MODES = ("bbox", "keypoint", "bbox_keypoint")
NMS_MODES = ("oks", "soft-oks", "none")


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise PosetokError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------- rescore


def rescore(box_scores: np.ndarray, keypoint_scores: np.ndarray, mode: str = "bbox_keypoint",
            thr: float = 0.2) -> np.ndarray:
    """Each person's score for NMS and COCOeval.

    * ``"bbox"``: the box score.
    * ``"keypoint"``: the mean of the joint scores ``> thr``, 0 if none is (posetok's mode: the second factor of
      ``"bbox_keypoint"``; MMPose has no box-free mode).
    * ``"bbox_keypoint"``: box score x that mean, 0 if no joint scores ``> thr`` (MMPose ``CocoMetric``
      ``score_mode='bbox_keypoint'``, ``keypoint_score_thr=0.2``).

    Args:
        box_scores: ``(N,)`` detection box scores.
        keypoint_scores: ``(N, K)`` joint scores (the third value of each keypoint triple).
        mode: one of :data:`SCORE_MODES`.
        thr: joint-score threshold (strict ``>``).

    Returns:
        ``(N,)`` float64 scores.
    """
    _choice(mode, SCORE_MODES, "score_mode")
    box = np.asarray(box_scores, dtype=np.float64)
    ks = np.asarray(keypoint_scores, dtype=np.float64)
    if box.ndim != 1 or ks.ndim != 2 or ks.shape[0] != box.shape[0]:
        raise ValueError(f"box_scores must be (N,) and keypoint_scores (N, K); got {box.shape}, {ks.shape}")
    if mode == "bbox":
        return box.copy()
    above = ks > thr
    count = above.sum(axis=1)
    mean = np.where(count > 0, np.where(above, ks, 0.0).sum(axis=1) / np.maximum(count, 1), 0.0)
    return mean if mode == "keypoint" else box * mean


# --------------------------------------------------------------------------------------------- group_nms


def group_nms(image_ids: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray | None,
              sigmas: np.ndarray, nms: str = "oks", thr: float = 0.9, *, max_dets: int = 20,
              vis_thr: float | None = None) -> np.ndarray:
    """Apply :func:`~posetok.metrics.keypoint_nms.oks_nms` or ``soft_oks_nms`` within each image.

    Args:
        image_ids: ``(N,)`` image of each pose.
        keypoints: ``(N, K, 3)`` x, y, score in pixels.
        scores: ``(N,)`` pose scores (e.g. from :func:`rescore`).
        areas: ``(N,)`` pose areas; ``None`` means :func:`~posetok.metrics.keypoint_nms.keypoint_areas`.
        sigmas: ``(K,)`` OKS sigmas.
        nms: one of :data:`NMS_MODES`; ``"none"`` keeps everyone.
        thr: OKS threshold of ``"oks"``, the Gaussian's ``thr`` of ``"soft-oks"``.
        max_dets: most poses per image kept by ``"soft-oks"``.
        vis_thr: joints used in the OKS (see :func:`~posetok.metrics.keypoint_nms.pairwise_oks`).

    Returns:
        ``(M,)`` int64 indices into the inputs of the kept poses, ascending.
    """
    _choice(nms, NMS_MODES, "nms")
    ids = np.asarray(image_ids)
    kp = np.asarray(keypoints, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    if ids.ndim != 1 or kp.ndim != 3 or len(kp) != len(ids) or sc.shape != ids.shape:
        raise ValueError(f"image_ids (N,), keypoints (N, K, 3) and scores (N,) must agree; got {ids.shape}, "
                         f"{kp.shape}, {sc.shape}")
    if nms == "none" or len(ids) == 0:
        return np.arange(len(ids), dtype=np.int64)
    ar = keypoint_areas(kp) if areas is None else np.asarray(areas, dtype=np.float64)
    keep: list[np.ndarray] = []
    _, inverse = np.unique(ids, return_inverse=True)
    for g in range(inverse.max() + 1):
        members = np.flatnonzero(inverse == g)
        if nms == "oks":
            local = oks_nms(kp[members], sc[members], ar[members], sigmas, thr=thr, vis_thr=vis_thr)
        else:
            local = soft_oks_nms(kp[members], sc[members], ar[members], sigmas, thr=thr, max_dets=max_dets,
                                 vis_thr=vis_thr)
        keep.append(members[local])
    return np.sort(np.concatenate(keep)).astype(np.int64)


# ------------------------------------------------------------------------------------------ read_results


@dataclass(frozen=True)
class Results:
    """A COCO keypoint results list as arrays: ``image_ids`` ``(N,)`` int64, ``keypoints`` ``(N, K, 3)``
    float64 (x, y, joint score), ``scores`` ``(N,)`` float64 (the file's ``score``, read as the box score) and
    ``category_ids`` ``(N,)`` int64 (1 where absent)."""

    image_ids: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _type_name(x: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(x), "a number")


def _integer(value: Any, name: object, where: str) -> int:
    if not _is_number(value) or not math.isfinite(value) or value != int(value):
        raise field_error(name, where, f"expected an integer, got {value!r}")
    return int(value)


def read_results(results: str | os.PathLike | list, num_joints: int | None = None) -> Results:
    """Read a COCO keypoint results file, or check an already-loaded list, into :class:`Results`.

    Each entry is ``{"image_id": int, "category_id": int (optional, default 1), "keypoints": [x, y, s] * K,
    "score": float}``. ``K`` is ``num_joints`` or that of the first entry, and must be the same for all.

    Raises:
        PosetokError: one line naming the file (``"results"`` for a list) and the field, e.g.
            ``"preds.json: field '[0].image_id': missing"``.
    """
    if isinstance(results, list):
        name: object = "results"
        doc: Any = results
    else:
        name = os.fspath(results)
        try:
            with open(name, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            raise PosetokError(f"{name}: file not found") from None
        except OSError as e:
            raise PosetokError(f"{name}: cannot read: {e.strerror or e}") from None
        except json.JSONDecodeError as e:
            raise PosetokError(f"{name}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
        except (UnicodeDecodeError, RecursionError):
            raise PosetokError(f"{name}: not valid JSON") from None
        if not isinstance(doc, list):
            raise PosetokError(f"{name}: expected a JSON list of predictions at the top level, got "
                               f"{_type_name(doc)}")
    k = num_joints
    ids, cats, kps, scores = [], [], [], []
    for i, res in enumerate(doc):
        where = f"[{i}]"
        if not isinstance(res, dict):
            raise field_error(name, where, f"expected an object, got {_type_name(res)}")
        for key in ("image_id", "keypoints", "score"):
            if key not in res:
                raise field_error(name, f"{where}.{key}", "missing")
        ids.append(_integer(res["image_id"], name, f"{where}.image_id"))
        cats.append(_integer(res.get("category_id", 1), name, f"{where}.category_id"))
        value = res["keypoints"]
        if not isinstance(value, list) or not all(_is_number(x) for x in value):
            raise field_error(name, f"{where}.keypoints", "expected a list of numbers")
        if k is None:
            if len(value) == 0 or len(value) % 3:
                raise field_error(name, f"{where}.keypoints",
                                  f"expected 3 numbers (x, y, score) per joint, got {len(value)} numbers")
            k = len(value) // 3
        if len(value) != 3 * k:
            raise field_error(name, f"{where}.keypoints", f"expected {3 * k} numbers (3 x {k} joints), got "
                                                          f"{len(value)}")
        kp = np.asarray(value, dtype=np.float64).reshape(k, 3)
        if not np.isfinite(kp).all():
            j, c = (int(t[0]) for t in np.nonzero(~np.isfinite(kp)))
            raise field_error(name, f"{where}.keypoints", f"joint {j}: {'xys'[c]} is {kp[j, c]}; expected a "
                                                          "finite number")
        kps.append(kp)
        s = res["score"]
        if not _is_number(s) or not math.isfinite(s):
            raise field_error(name, f"{where}.score", f"expected a finite number, got {s!r}")
        scores.append(float(s))
    kp_arr = np.stack(kps) if kps else np.zeros((0, k or 0, 3), dtype=np.float64)
    return Results(np.asarray(ids, dtype=np.int64), kp_arr, np.asarray(scores, dtype=np.float64),
                   np.asarray(cats, dtype=np.int64))


# ------------------------------------------------------------------------------------------------ scoring


def _default_sigmas(k: int, sigmas: np.ndarray | None) -> np.ndarray:
    if sigmas is not None:
        return np.asarray(sigmas, dtype=np.float64)
    skel = skeleton_for_joints(k)
    if skel.sigmas is None:
        raise PosetokError(f"the {skel.name} layout ({k} joints) defines no OKS sigmas; pass sigmas")
    return np.asarray(skel.sigmas, dtype=np.float64)


def postprocess(image_ids: np.ndarray, keypoints: np.ndarray, box_scores: np.ndarray, *,
                sigmas: np.ndarray | None = None, nms: str = "oks", score_mode: str = "bbox_keypoint",
                nms_thr: float = 0.9, keypoint_thr: float = 0.2, max_dets: int = 20,
                areas: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1 and 2 of the module docstring: :func:`rescore`, then :func:`group_nms` on the new scores.

    Args:
        image_ids, keypoints, box_scores: ``(N,)``, ``(N, K, 3)`` (x, y, joint score), ``(N,)``.
        sigmas: ``(K,)`` OKS sigmas; ``None`` takes those of the registered layout with ``K`` joints
            (COCO-17, COCO-WholeBody-133).
        areas: ``(N,)`` pose areas for the NMS; ``None`` means the keypoint boxes.
        Other arguments: see :func:`score_results`.

    Returns:
        ``(keep, scores)``: ascending int64 indices of the kept people and the ``(N,)`` rescored scores of all.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must have shape (N, K, 3), got {kp.shape}")
    new_scores = rescore(box_scores, kp[..., 2], score_mode, keypoint_thr)
    if nms == "none":  # no sigmas needed: keeps layouts without sigmas usable with nms="none"
        return np.arange(len(kp), dtype=np.int64), new_scores
    keep = group_nms(image_ids, kp, new_scores, areas, _default_sigmas(kp.shape[1], sigmas), nms, nms_thr,
                     max_dets=max_dets)
    return keep, new_scores


def score_predictions(image_ids: np.ndarray, keypoints: np.ndarray, box_scores: np.ndarray,
                      gt: str | os.PathLike | dict, *, category_ids: np.ndarray | None = None,
                      sigmas: np.ndarray | None = None, nms: str = "oks", score_mode: str = "bbox_keypoint",
                      nms_thr: float = 0.9, keypoint_thr: float = 0.2, max_dets: int = 20,
                      ) -> dict[str, float | int]:
    """:func:`score_results` on arrays (e.g. from ``posetok.data.load_coco_results``) instead of a file."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must have shape (N, K, 3), got {kp.shape}")
    keep, new_scores = postprocess(image_ids, kp, box_scores, sigmas=sigmas, nms=nms, score_mode=score_mode,
                                   nms_thr=nms_thr, keypoint_thr=keypoint_thr, max_dets=max_dets)
    ids = np.asarray(image_ids)
    cats = np.ones(len(kp), dtype=np.int64) if category_ids is None else np.asarray(category_ids)
    results = [{"image_id": int(ids[i]), "category_id": int(cats[i]), "keypoints": kp[i].ravel().tolist(),
                "score": float(new_scores[i])} for i in keep]
    metrics: dict[str, float | int] = dict(
        coco_keypoint_eval(gt, results, sigmas=_default_sigmas(kp.shape[1], sigmas)))
    metrics["num_predictions"] = int(len(kp))
    metrics["num_after_nms"] = int(len(keep))
    return metrics


def score_results(pred: str | os.PathLike | list, gt: str | os.PathLike | dict, nms: str = "oks",
                  score_mode: str = "bbox_keypoint", nms_thr: float = 0.9, keypoint_thr: float = 0.2, *,
                  sigmas: np.ndarray | None = None, max_dets: int = 20) -> dict[str, float | int]:
    """COCO keypoint AP/AR of a results file after MMPose-style rescoring and OKS-NMS.

    Args:
        pred: a COCO keypoint results file (see :func:`read_results`; ``score`` is taken as the **box** score
            and the third value of each keypoint triple as the joint score) or the loaded list. With
            ``score_mode="bbox"`` the file's scores are used as they are (right for files already rescored).
        gt: the COCO keypoint annotation file or its loaded dict (see
            :func:`~posetok.metrics.coco.coco_keypoint_eval`).
        nms: ``"oks"`` (greedy OKS-NMS, MMPose's default ``oks_nms``), ``"soft-oks"`` (Gaussian soft OKS-NMS,
            keeping at most ``max_dets`` per image) or ``"none"``.
        score_mode: ``"bbox"``, ``"keypoint"`` or ``"bbox_keypoint"`` (see :func:`rescore`).
        nms_thr: OKS threshold for ``"oks"`` and the Gaussian's ``thr`` for ``"soft-oks"`` (MMPose passes its
            one ``nms_thr``, 0.9, to both).
        keypoint_thr: joint-score threshold of the ``"keypoint"`` and ``"bbox_keypoint"`` modes.
        sigmas: ``(K,)`` OKS sigmas for NMS and evaluation; ``None``: the registered layout's with ``K`` joints.
        max_dets: per-image cap of ``"soft-oks"``.

    Returns:
        :func:`~posetok.metrics.coco.coco_keypoint_eval`'s metrics in percent (``oks_ap``, ``ap50``, ``ap75``,
        ``ap_m``, ``ap_l``, ``ar``, ``ar50``, ``ar75``, ``ar_m``, ``ar_l``) plus ``num_predictions`` (people in
        the file) and ``num_after_nms`` (people evaluated).

    Raises:
        PosetokError: a bad results or annotation file (one line naming the file and the field), an unknown
            ``nms`` or ``score_mode``.
    """
    _choice(nms, NMS_MODES, "nms")
    _choice(score_mode, SCORE_MODES, "score_mode")
    k = None if sigmas is None else len(np.asarray(sigmas))
    res = read_results(pred, num_joints=k)
    if res.keypoints.shape[1] == 0:  # empty list and no sigmas: nothing to post-process
        metrics: dict[str, float | int] = dict(coco_keypoint_eval(gt, [], sigmas=sigmas))
        metrics.update(num_predictions=0, num_after_nms=0)
        return metrics
    return score_predictions(res.image_ids, res.keypoints, res.scores, gt, category_ids=res.category_ids,
                             sigmas=sigmas, nms=nms, score_mode=score_mode, nms_thr=nms_thr,
                             keypoint_thr=keypoint_thr, max_dets=max_dets)
