"""Evaluating an estimator on annotated images: every person cropped (annotated or detected boxes), predicted
with the flip test, rescored, NMS'd per image and scored with pycocotools (COCO keypoint AP) as HRNet and MMPose
do."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ...data.occlusion import occlude_crops
from ...data.people import People
from ...data.topdown import TopdownDataset
from ...errors import PosetokError
from ...metrics.coco import coco_keypoint_eval, keypoint_gt
from ...metrics.coco_results import group_nms, rescore, score_results
from ...metrics.mpii_eval import pckh_report
from .predictor import TopdownEstimator, to_image
from .samples import crop_frames


def _collate(samples: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {k: np.stack([s[k] for s in samples]) for k in ("image", "center", "size")}


def predict_people(est: TopdownEstimator, people: People, num_workers: int = 0, progress: bool = False,
                   occlusion: tuple[float, float] | None = None, seed: int = 0) -> np.ndarray:
    """``(N, K, 3)`` x, y, score in image pixels for every person of ``people`` (images read and cropped in
    ``num_workers`` DataLoader workers). ``occlusion``: a grey block covering that range of shares of each crop's
    area (:func:`~posetok.data.occlusion.occlude_crops`, generator seeded with ``seed``), the flip test seeing the
    same occluded crop mirrored."""
    rng = np.random.default_rng(seed)
    centers, sizes = crop_frames(people, est.input_size, est.padding)
    crops = TopdownDataset(people.image_paths, people.keypoints, centers, sizes, input_size=est.input_size,
                           udp=est.codec.udp, flip_index=people.skeleton.flip_index, augment=None)
    loader = DataLoader(crops, batch_size=est.batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=_collate)
    out = []
    done, t0 = 0, time.monotonic()
    for batch in loader:
        images = batch["image"] if occlusion is None else occlude_crops(batch["image"], rng, occlusion)[0]
        kp, scores = est.predict_crops(images)
        out.append(to_image(kp, scores, est.matrices(batch["center"], batch["size"])))
        done += len(kp)
        if progress:
            print(f"\r{done}/{len(people)} people, {done / (time.monotonic() - t0):.1f}/s", end="",
                  file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    k = people.skeleton.num_joints
    return np.concatenate(out) if out else np.zeros((0, k, 3), np.float32)


def coco_results(people: People, preds: np.ndarray, areas: np.ndarray, nms: str = "oks", nms_thr: float = 0.9,
                 score_mode: str = "bbox_keypoint", keypoint_thr: float = 0.2) -> list[dict[str, Any]]:
    """COCO keypoint results of predictions ``(N, K, 3)``: rescored (``score_mode``) and NMS'd per image with
    the people's ``areas`` ``(N,)`` as OKS scales."""
    if not len(preds):
        return []
    scores = rescore(people.box_scores, preds[..., 2], score_mode, keypoint_thr)
    sigmas = people.skeleton.sigmas
    if sigmas is None:
        nms = "none"
    keep = group_nms(people.image_ids, preds, scores, areas, sigmas, nms, nms_thr)
    return [{"image_id": int(people.image_ids[i]), "category_id": 1,
             "keypoints": preds[i].astype(np.float64).ravel().round(3).tolist(), "score": float(scores[i])}
            for i in keep]


def gt_document(people: People) -> Any:
    """The ground truth COCO AP scores against: the annotation file itself, or (for a subset in memory, such
    as the held-out frames of the bundled sample, and for COCO-WholeBody's 133 joints) a document of its
    people."""
    data = people.coco
    assert data is not None
    # COCO-WholeBody files keep the face, hands and feet outside ``keypoints``: COCOeval scores one flat list
    # of 133 joints per person, so the document is rebuilt from the parsed arrays (without crowd regions).
    if people.extra.get("subset") or data.skeleton.num_joints != 17:
        return keypoint_gt(data.keypoints, data.boxes, data.areas, data.image_ids)
    return data.path


def evaluate(est: TopdownEstimator, people: People, nms: str = "oks", nms_thr: float = 0.9,
             score_mode: str = "bbox_keypoint", keypoint_thr: float = 0.2, num_workers: int = 0,
             progress: bool = False, occlusion: tuple[float, float] | None = None
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Predict every person of ``people`` and score the predictions (with ``occlusion``: on crops with a synthetic
    occluder, :func:`predict_people`).

    COCO files: keypoint AP/AR with pycocotools (``oks_ap`` ... ``ar_l`` in percent) and the mean error in
    pixels against the annotated joints (annotated boxes only). Returns the metrics and the arrays behind them
    (``preds``, ``results``).
    """
    t0 = time.perf_counter()
    preds = predict_people(est, people, num_workers, progress, occlusion)
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {"num_people": len(people), "box_source": "detections" if people.detected else
                               "annotations", "flip_test": est.flip_test}
    if occlusion is not None:
        metrics["occlusion"] = {"area": [float(occlusion[0]), float(occlusion[1])], "fill": 128, "seed": 0}
    results: list[dict[str, Any]] = []
    if people.coco is not None:
        sizes = crop_frames(people, est.input_size, est.padding)[1]
        # the padded crop's area is the OKS scale of NMS, as in the HRNet reference code
        results = coco_results(people, preds, sizes[:, 0] * sizes[:, 1], nms, nms_thr, score_mode, keypoint_thr)
        metrics.update(coco_keypoint_eval(gt_document(people), results, people.skeleton.sigmas))
        metrics["num_results"] = len(results)
    if people.mpii is not None:
        head = people.extra.get("head_boxes")
        if head is None:
            raise PosetokError(f"{people.source}: MPII PCKh needs the head boxes: --head-boxes gt_valid.mat (or a "
                               ".npy / JSON of x1, y1, x2, y2 per person)")
        metrics["pckh"] = pckh_report(preds[..., :2], people.keypoints, head)
        metrics["PCKh@0.5"] = metrics["pckh"]["Mean"]
        metrics["PCKh@0.1"] = metrics["pckh"]["Mean@0.1"]
    if not people.detected:
        labelled = people.keypoints[..., 2] > 0
        err = np.linalg.norm(preds[..., :2] - people.keypoints[..., :2], axis=-1)
        metrics["mean_error_px"] = float(err[labelled].mean()) if labelled.any() else float("nan")
    metrics["people_per_s"] = len(people) / max(seconds, 1e-9)
    return metrics, {"preds": preds, "results": results}


class HeldOut:
    """Held-out AP during training: called with the network being trained, returns the COCO metrics."""

    def __init__(self, people: People, make_estimator: Any, eval_cfg: Any, num_workers: int = 0) -> None:
        self.people = people
        self.make_estimator = make_estimator
        self.eval_cfg = eval_cfg
        self.num_workers = num_workers

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        e = self.eval_cfg
        est = self.make_estimator(model)
        metrics, _ = evaluate(est, self.people, e.nms, e.nms_thr, e.score_mode, e.keypoint_score_thr,
                              self.num_workers)
        names = {"oks_ap": "AP", "ap50": "AP50", "ap75": "AP75", "PCKh@0.5": "PCKh", "PCKh@0.1": "PCKh@0.1",
                 "mean_error_px": "error_px"}
        return {new: metrics[old] for old, new in names.items() if old in metrics}


def save_visuals(out: str | Path, est: TopdownEstimator, people: People, preds: np.ndarray) -> list[Path]:
    """``--visualize``: overlays of the best and worst people (by OKS) and the per-joint error chart."""
    from ...data.images import read_image
    from ...metrics.coco import oks
    from ...viz import save_error_per_joint
    from ...viz.overlay import save_best_worst

    out = Path(out)
    written = []
    if not people.detected and people.skeleton.sigmas is not None and people.coco is not None:
        areas = people.coco.areas
        scores = np.array([oks(preds[i:i + 1, :, :2], people.keypoints[i:i + 1], areas[i:i + 1],
                               people.skeleton.sigmas).ravel()[0] for i in range(len(people))])
        order = np.argsort(scores)
        pick = np.unique(np.concatenate([order[:8], order[-8:]]))
        crops, p, g = [], [], []
        for i in pick:
            image = read_image(people.image_paths[i])
            c, s = crop_frames(people, est.input_size, est.padding)
            m = est.matrices(c[i:i + 1], s[i:i + 1])
            crops.append(est.crops(image, m)[0])
            p.append(_to_crop(preds[i], m[0]))
            g.append(_to_crop(people.keypoints[i], m[0]))
        written.append(save_best_worst(out / "best_worst.png", crops, np.stack(p), np.stack(g), scores[pick],
                                       people.skeleton))
        err = np.where(people.keypoints[..., 2] > 0,
                       np.linalg.norm(preds[..., :2] - people.keypoints[..., :2], axis=-1), np.nan)
        written.append(save_error_per_joint(out / "error_per_joint.png", err, people.skeleton))
    return written


def _to_crop(kp: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    from ...data.topdown import transform_keypoints

    return transform_keypoints(kp.astype(np.float32), matrix)


def score_file(predictions: str | Path, data: str | Path, nms: str = "oks", score_mode: str = "bbox_keypoint",
               nms_thr: float | None = None, keypoint_thr: float = 0.2) -> dict[str, Any]:
    """``posetok score``: COCO keypoint AP/AR of any results file against ``data``, rescored and NMS'd as
    :func:`evaluate` does (same metric names), so other tools' predictions compare on the same footing."""
    return {"predictions": str(predictions), "data": str(data), "nms": nms, "score_mode": score_mode,
            **score_results(predictions, data, nms=nms, score_mode=score_mode,
                            nms_thr=0.9 if nms_thr is None else nms_thr, keypoint_thr=keypoint_thr)}
