"""MPII Human Pose annotations in the JSON form of HRNet and MMPose (``annot/train.json``, ``valid.json``).

The file is a JSON list with one record per person::

    {"image": "015601864.jpg", "joints": [[x, y], ... 16], "joints_vis": [0 or 1, ... 16],
     "center": [cx, cy], "scale": s}

Joints follow the MPII order (:data:`posetok.skeletons.MPII16`). The numbers come from MPII's MATLAB release
and are 1-based pixels; ``scale`` is the person height in units of 200 px.

What this reader does, and how it relates to the two reference loaders (HRNet ``lib/dataset/mpii.py`` and
MMPose ``mmpose/datasets/datasets/body/mpii_dataset.py``):

- Joints and centers are converted to 0-based pixels by subtracting 1, as HRNet does for both. (MMPose 1.x
  subtracts 1 from the center only and keeps the joints as written.)
- ``scale`` is kept as in the file. HRNet's loader moves the center down by ``15 * s`` pixels and enlarges
  the scale by 1.25 so limbs are not cut off (MMPose 1.x shifts in its loader and pads by 1.25 in its
  pipeline). Those are cropping heuristics, not annotation, and are not applied here;
  :func:`hrnet_center_scale` applies HRNet's version when wanted.
- Both loaders treat a center with ``x == -1`` as unknown and skip the crop shift for it; this reader has
  no such case and converts every center alike.
- The head boxes for PCKh are in the ``gt_valid.mat`` file, not in this JSON, and are not read here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PosetokError, field_error
from ..skeletons import MPII16, Skeleton
from .json_fields import F32_MAX, finite_number, is_number, number_list, read_json_file, require, type_name

PIXEL_STD = 200.0  # MPII scales are person heights in units of 200 px


@dataclass
class MpiiAnnotations:
    """People of an MPII JSON file, one row per record.

    Attributes:
        path: the file it came from.
        skeleton: :data:`~posetok.skeletons.MPII16`.
        keypoints: ``(N, 16, 3)`` float32 ``x, y, v`` in 0-based image pixels; ``v = 2`` where ``joints_vis``
            is 1, else ``v = 0`` with ``x = y = 0`` (the COCO convention for "not labelled": MPII writes
            ``-1`` or junk there).
        centers: ``(N, 2)`` float32 person centers in 0-based image pixels, as in the file (no crop shift).
        scales: ``(N,)`` float32 person heights in units of 200 px, as in the file.
        boxes: ``(N, 4)`` float32 ``x, y, w, h``: the square of side ``scale * 200`` centred on the center.
        image_names: image file name of each person.
    """

    path: str
    skeleton: Skeleton
    keypoints: np.ndarray
    centers: np.ndarray
    scales: np.ndarray
    boxes: np.ndarray
    image_names: list[str]

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])


def load_mpii_json(path: str | os.PathLike) -> MpiiAnnotations:
    """Read an MPII annotation file in the HRNet/MMPose JSON form (see the module notes for the frames).

    Every record needs ``image``, ``joints`` (16 ``[x, y]`` pairs), ``joints_vis`` (16 values, 0 or 1),
    ``center`` (2 numbers) and ``scale`` (a positive number); this is the form of the annotated splits
    (train, valid).

    Raises:
        PosetokError: one line naming the file and the field (``annotations[2].joints``: the index is the
            record's position in the top-level list), or when the list is empty.
    """
    doc = read_json_file(path)
    if not isinstance(doc, list):
        raise PosetokError(f"{path}: expected a JSON list of person records at the top level, "
                           f"got {type_name(doc)}")
    n_joints = MPII16.num_joints
    kps = np.zeros((len(doc), n_joints, 3), dtype=np.float64)
    centers = np.zeros((len(doc), 2), dtype=np.float64)
    scales = np.zeros(len(doc), dtype=np.float64)
    names: list[str] = []
    for i, rec in enumerate(doc):
        where = f"annotations[{i}]"
        if not isinstance(rec, dict):
            raise field_error(path, where, f"expected an object, got {type_name(rec)}")
        image = require(rec, "image", path, f"{where}.image")
        if not isinstance(image, str) or not image:
            raise field_error(path, f"{where}.image", f"expected an image file name, got {image!r}")
        joints = require(rec, "joints", path, f"{where}.joints")
        if not isinstance(joints, list) or len(joints) != n_joints:
            got = f"{len(joints)} items" if isinstance(joints, list) else type_name(joints)
            raise field_error(path, f"{where}.joints", f"expected {n_joints} [x, y] pairs, got {got}")
        for j, xy in enumerate(joints):
            # The float32 bound also rejects NaN and inf.
            if not (isinstance(xy, list) and len(xy) == 2 and all(is_number(c) and abs(c) <= F32_MAX
                                                                   for c in xy)):
                problem = f"joint {j} ({MPII16.joint_names[j]}) is {xy!r}; expected [x, y], finite float32"
                raise field_error(path, f"{where}.joints", problem)
            kps[i, j, :2] = xy
        vis_field = f"{where}.joints_vis"
        vis = number_list(require(rec, "joints_vis", path, vis_field), path, vis_field, n_joints,
                          "values (0 or 1)")
        bad = (vis != 0) & (vis != 1)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise field_error(path, f"{where}.joints_vis",
                              f"joint {j} ({MPII16.joint_names[j]}) is {vis[j]:g}; expected 0 or 1")
        centers[i] = number_list(require(rec, "center", path, f"{where}.center"), path, f"{where}.center", 2,
                                 "numbers (x, y)")
        scale = finite_number(require(rec, "scale", path, f"{where}.scale"), path, f"{where}.scale")
        if not 0 < scale <= F32_MAX / PIXEL_STD:  # the box side scale * 200 must fit in float32 too
            raise field_error(path, f"{where}.scale", f"expected a positive number, got {scale:g}")
        scales[i] = scale
        labelled = vis == 1
        # MATLAB's 1-based pixels to 0-based ones; unlabelled joints become (0, 0, 0).
        kps[i, labelled, :2] -= 1.0
        kps[i, labelled, 2] = 2.0
        kps[i, ~labelled] = 0.0
        names.append(image)
    if not names:
        raise field_error(path, "annotations", "no annotated person (the list is empty)")
    centers -= 1.0
    side = scales * PIXEL_STD
    boxes = np.stack([centers[:, 0] - side / 2, centers[:, 1] - side / 2, side, side], axis=1)
    return MpiiAnnotations(
        path=str(path),
        skeleton=MPII16,
        keypoints=kps.astype(np.float32),
        centers=centers.astype(np.float32),
        scales=scales.astype(np.float32),
        boxes=boxes.astype(np.float32),
        image_names=names,
    )


def hrnet_center_scale(centers: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HRNet's crop adjustment of MPII boxes: center ``y += 15 * scale`` px, then ``scale *= 1.25``.

    Args:
        centers: ``(N, 2)`` person centers in pixels (either origin: the shift is a translation).
        scales: ``(N,)`` person heights in units of 200 px.

    Returns:
        ``(N, 2)`` shifted centers and ``(N,)`` enlarged scales, float32. MPII centers sit near the chest, so
        HRNet moves them down and pads the box to keep the feet inside the crop.
    """
    centers = np.array(centers, dtype=np.float32, copy=True)
    scales = np.asarray(scales, dtype=np.float32)
    centers[:, 1] += 15.0 * scales
    return centers, scales * np.float32(1.25)


def load_mpii_head_boxes(path: str | os.PathLike, num_people: int) -> np.ndarray:
    """MPII head boxes for PCKh, one per person of the annotation file in its order: ``(N, 4)`` float64
    ``x1, y1, x2, y2`` in pixels (PCKh uses their diagonal only, so either pixel origin works).

    ``path``: the official ``gt_valid.mat`` (``headboxes_src`` of shape ``(2, 2, N)``; reading it needs scipy),
    a ``.npy`` array ``(N, 4)``, or a JSON list of ``[x1, y1, x2, y2]``.
    """
    path = Path(path)
    if not path.is_file():
        raise PosetokError(f"{path}: head box file not found")
    if path.suffix == ".mat":
        try:
            from scipy.io import loadmat
        except ImportError:
            raise PosetokError(f"{path}: reading MPII .mat files needs scipy (pip install scipy); or give the "
                               "head boxes as .npy or JSON") from None
        mat = loadmat(str(path))
        if "headboxes_src" not in mat:
            raise field_error(path, "headboxes_src", "missing")
        hb = np.asarray(mat["headboxes_src"], dtype=np.float64)
        if hb.ndim != 3 or hb.shape[:2] != (2, 2):
            raise field_error(path, "headboxes_src", f"expected shape (2, 2, N), got {hb.shape}")
        boxes = np.concatenate([hb[0].T, hb[1].T], axis=1)
    elif path.suffix == ".npy":
        boxes = np.load(path, allow_pickle=False).astype(np.float64)
    else:
        doc = read_json_file(path)
        boxes = np.array([number_list(b, path, f"[{i}]", 4) for i, b in enumerate(doc)], dtype=np.float64) \
            if isinstance(doc, list) else np.zeros((0,))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise PosetokError(f"{path}: expected head boxes of shape (N, 4) x1, y1, x2, y2, got {boxes.shape}")
    if len(boxes) != num_people:
        raise PosetokError(f"{path}: {len(boxes)} head boxes for {num_people} people in the annotation file")
    return boxes
