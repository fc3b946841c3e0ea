"""Official COCO keypoint evaluation (OKS-based AP/AR) through pycocotools.

Results follow the COCO results format: one dict per detected person,
``{"image_id": int, "category_id": int, "keypoints": [x1, y1, v1, ..., xK, yK, vK], "score": float}`` with
coordinates in image pixels (the third value of each triple is not used by the metric).

pycocotools' keypoint evaluation is generic in the number of joints ``K``: ``COCOeval.computeOks`` reads the
keypoints with stride 3 and uses ``len(params.kpt_oks_sigmas)`` joints, so COCO-WholeBody-133 or any other
layout is evaluated correctly once its sigmas are set.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..errors import PosetokError
from ..skeletons import COCO17_SIGMAS

#: Keys of :func:`coco_keypoint_eval`'s result, in the order of ``COCOeval.stats`` for keypoints.
STAT_NAMES = ("oks_ap", "ap50", "ap75", "ap_m", "ap_l", "ar", "ar50", "ar75", "ar_m", "ar_l")


def oks(pred: np.ndarray, gt: np.ndarray, areas: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Object keypoint similarity of each prediction with its ground truth, as ``COCOeval.computeOks``.

    ``OKS = mean over labelled joints of exp(-d^2 / (2 * area * (2 * sigma)^2))`` where ``d`` is the
    Euclidean distance in pixels and the mean runs over joints with ground-truth v > 0. pycocotools falls back
    to a distance-to-box rule when the ground truth has no labelled joint, but COCOeval ignores such ground
    truths (``num_keypoints == 0``) anyway; here they give ``nan``.

    Args:
        pred: ``(N, K, 2)`` or ``(N, K, 3)`` predicted keypoints in image pixels (a third column is ignored).
        gt: ``(N, K, 3)`` ground-truth x, y, v in image pixels.
        areas: ``(N,)`` ground-truth object areas in square pixels (the COCO ``area`` field, segment area).
        sigmas: ``(K,)`` per-joint OKS sigmas, e.g. :data:`posetok.skeletons.COCO17_SIGMAS`.

    Returns:
        ``(N,)`` float64 OKS in 0..1, ``nan`` where the ground truth has no labelled joint.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[-1] != 3 or pred.shape[:2] != gt.shape[:2] or pred.shape[-1] not in (2, 3):
        raise ValueError(f"pred must be (N, K, 2|3) and gt (N, K, 3) with equal N, K; got {pred.shape}, "
                         f"{gt.shape}")
    if sigmas.shape != (gt.shape[1],) or areas.shape != (gt.shape[0],):
        raise ValueError(f"sigmas must be ({gt.shape[1]},) and areas ({gt.shape[0]},); got {sigmas.shape}, "
                         f"{areas.shape}")
    d2 = ((pred[..., :2] - gt[..., :2]) ** 2).sum(axis=-1)
    # Same operation order and epsilon as computeOks so results agree to the last bits.
    e = d2 / ((sigmas * 2) ** 2) / (areas[:, None] + np.spacing(1)) / 2
    labelled = gt[..., 2] > 0
    count = labelled.sum(axis=1)
    total = np.where(labelled, np.exp(-e), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _load_gt(gt: str | os.PathLike | dict) -> dict:
    """A private copy of the ground truth with the per-annotation fields COCOeval needs checked or filled."""
    if isinstance(gt, dict):
        name = "ground truth"
        dataset = copy.deepcopy(gt)
    else:
        name = os.fspath(gt)
        try:
            with open(name) as f:
                dataset = json.load(f)
        except (OSError, ValueError) as err:
            raise PosetokError(f"{name}: cannot load COCO annotations: {err}") from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("annotations"), list) \
            or not isinstance(dataset.get("images"), list):
        raise PosetokError(f"{name}: field 'annotations': a COCO file needs 'images' and 'annotations' lists")
    next_id = 1 + max((a["id"] for a in dataset["annotations"] if "id" in a), default=0)
    for i, ann in enumerate(dataset["annotations"]):
        if "id" not in ann:
            ann["id"], next_id = next_id, next_id + 1
        for key in ("image_id", "keypoints", "area"):
            if key not in ann:
                raise PosetokError(f"{name}: field 'annotations[{i}].{key}': missing")
        # Optional in hand-made files, required by COCOeval; these are the COCO defaults.
        ann.setdefault("iscrowd", 0)
        ann.setdefault("num_keypoints", int(np.count_nonzero(np.asarray(ann["keypoints"])[2::3] > 0)))
        ann.setdefault("category_id", 1)
        if "bbox" not in ann:
            # computeOks reads the box only for people without labelled joints, whom COCOeval ignores.
            kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
            xy = kp[kp[:, 2] > 0, :2]
            lo, hi = (xy.min(0), xy.max(0)) if len(xy) else (np.zeros(2), np.zeros(2))
            ann["bbox"] = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
    if not dataset.get("categories"):
        # COCOeval evaluates only the listed categories; without any it would silently score nothing.
        ids = sorted({ann["category_id"] for ann in dataset["annotations"]})
        dataset["categories"] = [{"id": c, "name": "person"} for c in ids]
    return dataset


def _num_joints(dataset: dict) -> int:
    for ann in dataset.get("annotations", []):
        if "keypoints" in ann:
            return len(ann["keypoints"]) // 3
    for cat in dataset.get("categories", []):
        if "keypoints" in cat:
            return len(cat["keypoints"])
    raise PosetokError("ground truth: field 'annotations': no annotation has 'keypoints'")


def coco_keypoint_eval(
    gt: str | os.PathLike | dict,
    results: list[dict],
    sigmas: np.ndarray | None = None,
    verbose: bool = False,
) -> dict[str, float]:
    """COCO keypoint AP/AR of ``results`` against ``gt`` with ``COCOeval(iouType='keypoints')``.

    Args:
        gt: path of a COCO-format keypoint annotation JSON, or the loaded dict (not modified; it is copied
            because COCOeval writes ``ignore`` flags into the annotations). Each annotation needs
            ``image_id``, ``keypoints`` and ``area``; missing ``iscrowd``, ``num_keypoints``, ``category_id``,
            ``bbox`` and ``id`` default to 0, the number of labelled joints, 1, the labelled joints' extent
            and fresh ids.
        results: COCO-format results (see the module docstring; ``category_id`` defaults to 1); not
            modified.
        sigmas: ``(K,)`` OKS sigmas; ``None`` means the COCO-17 sigmas and requires ``K == 17``.
        verbose: let pycocotools print its progress and summary table to stdout.

    Returns:
        ``{"oks_ap", "ap50", "ap75", "ap_m", "ap_l", "ar", "ar50", "ar75", "ar_m", "ar_l"}`` in percent
        (0..100), ``ap`` over OKS thresholds 0.50:0.05:0.95 with up to 20 detections per image, ``_m``/``_l``
        for medium (32^2..96^2 px^2) and large objects. Where pycocotools reports -1 (no ground truth in that
        area range) the value is ``nan``. Empty ``results`` give all zeros.
    """
    out = io.StringIO()
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(out)
    with quiet:
        coco_gt = COCO()
        coco_gt.dataset = _load_gt(gt)
        coco_gt.createIndex()

        k = _num_joints(coco_gt.dataset)
        if sigmas is None:
            if k != 17:
                raise PosetokError(f"ground truth has {k} keypoints per person; pass that skeleton's OKS "
                                   "sigmas (only COCO-17's are the default)")
            sigmas = COCO17_SIGMAS
        sigmas = np.asarray(sigmas, dtype=np.float64)
        if sigmas.shape != (k,):
            raise PosetokError(f"sigmas have shape {sigmas.shape} but the ground truth has {k} keypoints")

        known = set(coco_gt.getImgIds())
        for i, res in enumerate(results):
            if len(res.get("keypoints", ())) != 3 * k:
                raise PosetokError(f"results[{i}]: field 'keypoints': expected {3 * k} numbers, got "
                                   f"{len(res.get('keypoints', ()))}")
            if res.get("image_id") not in known:
                raise PosetokError(f"results[{i}]: field 'image_id': {res.get('image_id')!r} is not in the "
                                   "ground truth")
            if "score" not in res:
                raise PosetokError(f"results[{i}]: field 'score': missing")
        if not results:
            # loadRes cannot take an empty list; nothing detected means zero precision and recall.
            return dict.fromkeys(STAT_NAMES, 0.0)

        # loadRes writes area/bbox/id into the result dicts, so give it copies.
        dts = copy.deepcopy(results)
        for res in dts:
            res.setdefault("category_id", 1)
        coco_dt = coco_gt.loadRes(dts)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = sigmas
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()

    stats: list[Any] = list(evaluator.stats)
    return {name: (float("nan") if s < 0 else float(s) * 100.0) for name, s in zip(STAT_NAMES, stats)}


def keypoint_gt(keypoints: np.ndarray, boxes: np.ndarray, areas: np.ndarray, image_ids: np.ndarray) -> dict:
    """A ground-truth document for :func:`coco_keypoint_eval` from canonical arrays, any ``K``.

    Keypoints stay flat (``3 K`` numbers per person), unlike the COCO-WholeBody file layout, because
    COCOeval scores one flat list per person with ``K`` sigmas.
    """
    annotations = [
        {"id": j + 1, "image_id": int(image_ids[j]), "category_id": 1, "iscrowd": 0,
         "keypoints": keypoints[j].astype(np.float64).ravel().tolist(),
         "num_keypoints": int((keypoints[j, :, 2] > 0).sum()),
         "bbox": boxes[j].astype(np.float64).tolist(), "area": float(areas[j])}
        for j in range(len(keypoints))
    ]
    images = [{"id": int(i)} for i in np.unique(image_ids)]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
