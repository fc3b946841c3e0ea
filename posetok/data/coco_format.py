"""The in-memory form of COCO keypoint files (:class:`CocoKeypoints`) and the COCO-WholeBody part layout
shared by the reader (:mod:`posetok.data.coco_reader`) and the writers (:mod:`posetok.data.coco_writer`).

See :mod:`posetok.data.coco` for the canonical arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..skeletons import WB_FACE, WB_FOOT, WB_LEFT_HAND, WB_RIGHT_HAND, Skeleton

# COCO-WholeBody part fields in the order of the 133-joint layout after the 17 body joints:
# (annotation field, validity flag, first joint index, joint count).
WHOLEBODY_PARTS = (
    ("foot_kpts", "foot_valid", WB_FOOT, 6),
    ("face_kpts", "face_valid", WB_FACE, 68),
    ("lefthand_kpts", "lefthand_valid", WB_LEFT_HAND, 21),
    ("righthand_kpts", "righthand_valid", WB_RIGHT_HAND, 21),
)
# Part boxes written beside the part keypoints, as in the released COCO-WholeBody files.
PART_BOXES = {"face_kpts": "face_box", "lefthand_kpts": "lefthand_box", "righthand_kpts": "righthand_box"}
BODY_JOINTS = 17


@dataclass
class CocoKeypoints:
    """People of a COCO keypoint file, one row per kept annotation.

    Attributes:
        path: the file it came from (``"<memory>"`` when built in memory).
        skeleton: layout of the joint axis.
        keypoints: ``(N, K, 3)`` float32 ``x, y, v`` in image pixels.
        boxes: ``(N, 4)`` float32 ``x, y, w, h`` in image pixels.
        areas: ``(N,)`` float32 COCO ``area`` (the OKS scale); box ``w * h`` where the file has none.
        image_ids: ``(N,)`` int64 image id of each person.
        ann_ids: ``(N,)`` int64 annotation id of each person.
        images: image id -> image record (``file_name``, ``width``, ``height``); empty when the file has no
            ``images`` list.
    """

    path: str
    skeleton: Skeleton
    keypoints: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    image_ids: np.ndarray
    ann_ids: np.ndarray
    images: dict[int, dict] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def subset(self, index: Any) -> CocoKeypoints:
        """The people selected by ``index`` (int, slice, int array or boolean mask), in that order.

        ``images`` keeps only the images of the selected people, so a subset evaluates as a dataset of
        its own.
        """
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        image_ids = self.image_ids[index]
        kept = set(image_ids.tolist())
        return CocoKeypoints(
            path=self.path,
            skeleton=self.skeleton,
            keypoints=self.keypoints[index],
            boxes=self.boxes[index],
            areas=self.areas[index],
            image_ids=image_ids,
            ann_ids=self.ann_ids[index],
            images={k: v for k, v in self.images.items() if k in kept},
        )


def keypoint_box(kp: np.ndarray) -> np.ndarray:
    """Tight ``x, y, w, h`` box of the labelled joints of ``(K, 3)`` keypoints; zeros if none is labelled."""
    labelled = kp[kp[:, 2] > 0, :2]
    if len(labelled) == 0:
        return np.zeros(4)
    lo, hi = labelled.min(axis=0), labelled.max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
