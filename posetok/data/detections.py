"""Person detections for top-down evaluation: the ``bbox_file`` of HRNet and MMPose.

The file is a JSON list of COCO detection results::

    [{"image_id": 397133, "category_id": 1, "bbox": [x, y, w, h], "score": 0.98}, ...]

Only people (``category_id`` 1) are kept; an entry without ``category_id`` counts as a person and one
without ``score`` scores 1 (ground-truth boxes written as detections). Every error raises
:class:`~posetok.errors.PosetokError` with one line naming the file and the field (``[12].bbox``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import PosetokError, field_error
from .json_fields import finite_number, integer, number_list, read_json_file, type_name

PERSON_CATEGORY = 1


@dataclass
class Detections:
    """Person boxes, one row per kept detection, in file order.

    Attributes:
        path: the file they came from.
        image_ids: ``(N,)`` int64.
        boxes: ``(N, 4)`` float32 ``x, y, w, h`` in image pixels, ``w, h > 0``.
        scores: ``(N,)`` float32 detector confidence.
    """

    path: str
    image_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.image_ids.shape[0])

    def subset(self, index: np.ndarray | slice | list[int]) -> Detections:
        """The detections selected by ``index`` (int array, slice or boolean mask)."""
        return Detections(self.path, self.image_ids[index], self.boxes[index], self.scores[index])


def load_detections(path: str | os.PathLike, score_thr: float = 0.0,
                    image_ids: set[int] | None = None) -> Detections:
    """Read a person detection file (HRNet/MMPose ``bbox_file``).

    Args:
        path: JSON list of ``{image_id, category_id, bbox, score}``.
        score_thr: detections scoring below it are dropped (HRNet's ``image_thre`` is 0.0).
        image_ids: the images of the annotation file; when given, a person detection on any other image is an
            error naming the first such id (a detection file for another split).

    Raises:
        PosetokError: one line naming the file and the field: not a list, an entry that is not an object, a
            missing or non-integer ``image_id``, a missing ``bbox`` or one that is not 4 finite numbers, a box
            with zero or negative width or height, a score that is not a finite number, an unknown image id.
    """
    doc = read_json_file(path)
    if not isinstance(doc, list):
        raise PosetokError(f"{path}: expected a JSON list of detections "
                           f"({{image_id, category_id, bbox, score}}) at the top level, got {type_name(doc)}")
    ids, boxes, scores = [], [], []
    for i, det in enumerate(doc):
        where = f"[{i}]"
        if not isinstance(det, dict):
            raise field_error(path, where, f"expected an object, got {type_name(det)}")
        if "category_id" in det and integer(det["category_id"], path, f"{where}.category_id") != PERSON_CATEGORY:
            continue
        if "image_id" not in det:
            raise field_error(path, f"{where}.image_id", "missing")
        image_id = integer(det["image_id"], path, f"{where}.image_id")
        if "bbox" not in det:
            raise field_error(path, f"{where}.bbox", "missing")
        box = number_list(det["bbox"], path, f"{where}.bbox", length=4, what="numbers (x, y, w, h)")
        if box[2] <= 0 or box[3] <= 0:
            raise field_error(path, f"{where}.bbox",
                              f"width and height must be > 0, got w={det['bbox'][2]}, h={det['bbox'][3]}")
        score = finite_number(det["score"], path, f"{where}.score") if "score" in det else 1.0
        if image_ids is not None and image_id not in image_ids:
            raise field_error(path, f"{where}.image_id",
                              f"image {image_id} is not in the annotation file (a detection file for another "
                              "split or dataset?)")
        if score < score_thr:
            continue
        ids.append(image_id)
        boxes.append(box)
        scores.append(score)
    return Detections(
        path=str(path),
        image_ids=np.asarray(ids, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        scores=np.asarray(scores, dtype=np.float32),
    )
