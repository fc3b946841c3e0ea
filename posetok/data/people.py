"""People to crop: annotation files (COCO, COCO-WholeBody, MPII) with their images, detection files and the
bundled real sample, one row per person with its image file (what top-down training and evaluation read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PosetokError
from ..skeletons import Skeleton
from .coco import CocoKeypoints, load_coco_keypoints
from .detections import load_detections
from .json_fields import read_json_file
from .mpii import MpiiAnnotations, hrnet_center_scale, load_mpii_json
from .real_sample import real_sample_paths, split_by_time, split_every_nth


@dataclass
class People:
    """People to crop, one row per person, with what evaluation needs.

    Attributes:
        skeleton: joint layout.
        image_paths: the image of each person.
        keypoints: ``(N, K, 3)`` ground truth x, y, v in image pixels (zeros for detected people).
        boxes: ``(N, 4)`` xywh person boxes (annotated or detected) in image pixels.
        box_scores: ``(N,)`` detection scores (1 for annotated boxes).
        image_ids: ``(N,)`` int64 image ids (COCO ids; MPII: the record index).
        coco: the COCO annotations, when the people come from a COCO file (the ground truth of COCO AP).
        mpii: the MPII annotations, when from an MPII file (the ground truth of PCKh).
        source: the annotation file (named in messages).
    """

    skeleton: Skeleton
    image_paths: list[Path]
    keypoints: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    image_ids: np.ndarray
    coco: CocoKeypoints | None = None
    mpii: MpiiAnnotations | None = None
    source: str = ""
    detected: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_paths)


def _image_dir(images: str | Path, ann: str | Path) -> Path:
    d = Path(images)
    if not d.is_dir():
        raise PosetokError(f"{d}: image folder not found (the images of {ann})")
    return d


def coco_people(data: CocoKeypoints, images: str | Path) -> People:
    """The annotated people of a COCO file (ground-truth boxes), each with its image file."""
    root = _image_dir(images, data.path)
    paths = []
    for i, image_id in enumerate(data.image_ids):
        rec = data.images.get(int(image_id))
        if rec is None or "file_name" not in rec:
            raise PosetokError(f"{data.path}: field 'images': no file_name for image_id {int(image_id)} "
                               f"(annotation {int(data.ann_ids[i])})")
        paths.append(root / rec["file_name"])
    return People(data.skeleton, paths, data.keypoints, data.boxes, np.ones(len(data), np.float32),
                  data.image_ids.astype(np.int64), coco=data, source=data.path)


def detected_people(data: CocoKeypoints, images: str | Path, detections: str | Path, score_thr: float) -> People:
    """People of a detection file (``[{image_id, category_id, bbox, score}]``) on the images of ``data``."""
    root = _image_dir(images, data.path)
    dets = load_detections(detections, score_thr=score_thr, image_ids=set(data.images))
    paths = [root / data.images[int(i)]["file_name"] for i in dets.image_ids]
    k = data.skeleton.num_joints
    return People(data.skeleton, paths, np.zeros((len(dets.image_ids), k, 3), np.float32), dets.boxes,
                  dets.scores, dets.image_ids.astype(np.int64), coco=data, source=str(detections), detected=True)


def mpii_people(data: MpiiAnnotations, images: str | Path) -> People:
    """The people of an MPII file; boxes from ``center``/``scale`` as HRNet crops them (centre 15 x scale px
    lower; the crop padding then makes HRNet's 1.25 enlargement)."""
    root = _image_dir(images, data.path)
    centers, scales = hrnet_center_scale(data.centers, data.scales)
    side = scales / 1.25 * 200.0
    boxes = np.concatenate([centers - side[:, None] / 2, np.stack([side, side], 1)], 1).astype(np.float32)
    return People(data.skeleton, [root / n for n in data.image_names], data.keypoints, boxes,
                  np.ones(len(data), np.float32), np.arange(len(data), dtype=np.int64), mpii=data, source=data.path)


def load_people(ann: str | Path, images: str | Path, skeleton: str | None = None, boxes: str | Path | None = None,
                score_thr: float = 0.0) -> People:
    """People of an annotation file with its image folder: COCO / COCO-WholeBody (a JSON object) or MPII in the
    HRNet/MMPose form (a JSON list); ``boxes``: a detection file to crop instead of the annotated boxes (COCO)."""
    doc = read_json_file(ann)
    if isinstance(doc, list):
        if boxes is not None:
            raise PosetokError(f"{boxes}: detection files apply to COCO annotations; {ann} is an MPII file")
        return mpii_people(load_mpii_json(ann), images)
    data = load_coco_keypoints(ann, skeleton=skeleton)
    if boxes is not None:
        return detected_people(data, images, boxes, score_thr)
    return coco_people(data, images)


def real_sample_people(part: str, train_fraction: float = 0.8, split: str = "time") -> People:
    """The bundled real frames, split by time (``split="time"``: ``part`` ``train`` is the first frames, ``val``
    the rest) or with held-out frames spread over the video (``split="spread"``, :func:`split_every_nth`).
    Marked as a subset (``extra["subset"]``): COCO AP scores them against their own people, not the whole file."""
    ann, images = real_sample_paths()
    splitter = split_by_time if split == "time" else split_every_nth
    train, held_out = splitter(load_coco_keypoints(ann, skeleton="coco17"), train_fraction)
    people = coco_people(train if part == "train" else held_out, images)
    people.extra["subset"] = True
    return people
