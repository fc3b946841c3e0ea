"""Writing COCO (and COCO-WholeBody) keypoint annotation documents and result files from canonical arrays.

``wholebody133`` arrays are written in the COCO-WholeBody split form, so files stay readable by the official
COCO-WholeBody evaluation. Files are compact JSON, written atomically.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..io import atomic_path
from ..skeletons import WHOLEBODY133, Skeleton
from .coco_format import BODY_JOINTS, PART_BOXES, WHOLEBODY_PARTS, keypoint_box


def _flat(kp: np.ndarray) -> list:
    """``(K, 3)`` keypoints as the flat COCO list, ``v`` as an integer where it is one."""
    out: list = []
    for x, y, v in kp.tolist():
        out += [x, y, int(v) if float(v).is_integer() else v]
    return out


def _split_wholebody(kp: np.ndarray) -> dict:
    """The WholeBody part fields of one ``(133, 3)`` array (``keypoints`` holds the 17 body joints)."""
    out: dict = {"keypoints": _flat(kp[:BODY_JOINTS])}
    for part, valid_key, start, count in WHOLEBODY_PARTS:
        sub = kp[start:start + count]
        out[part] = _flat(sub)
        out[valid_key] = bool((sub[:, 2] > 0).any())
        if part in PART_BOXES:
            out[PART_BOXES[part]] = keypoint_box(sub).tolist()
    return out


def _check_array(name: str, arr: np.ndarray, shape: tuple) -> None:
    # API misuse, not bad user files: a ValueError, not a PosetokError.
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinity, which COCO JSON cannot hold")


def coco_document(images: list[dict], keypoints: np.ndarray, boxes: np.ndarray, skeleton: Skeleton,
                  image_ids: np.ndarray | None = None, areas: np.ndarray | None = None) -> dict:
    """A complete COCO keypoint annotation document for ``N`` people.

    Args:
        images: image records (``id``, ``file_name``, ``width``, ``height``), written as given.
        keypoints: ``(N, K, 3)`` ``x, y, v`` in image pixels, ``K = skeleton.num_joints``.
        boxes: ``(N, 4)`` ``x, y, w, h`` in image pixels.
        skeleton: the layout; names and 1-based limbs go into the person category. ``wholebody133`` is
            written in the COCO-WholeBody split form (17 body joints in ``keypoints``, the parts in
            ``foot_kpts``/``face_kpts``/``lefthand_kpts``/``righthand_kpts`` with ``*_valid`` flags and
            the face and hand boxes).
        image_ids: ``(N,)`` image id of each person; ``None`` means one person per image, in the order of
            ``images``.
        areas: ``(N,)`` OKS areas; ``None`` uses box ``w * h``.

    Annotation ids run from 1, because pycocotools' matcher uses id 0 to mean "unmatched". Every annotation
    has ``category_id=1`` and ``iscrowd=0``; ``num_keypoints`` counts joints with ``v > 0`` (the body joints
    only for WholeBody, as in the released files).
    """
    keypoints = np.asarray(keypoints)
    boxes = np.asarray(boxes)
    _check_array("keypoints", keypoints, (None, skeleton.num_joints, 3))
    n = len(keypoints)
    _check_array("boxes", boxes, (n, 4))
    if image_ids is None:
        if len(images) != n:
            raise ValueError(f"image_ids=None needs one image per person: {len(images)} images, {n} people")
        image_ids = np.array([img["id"] for img in images], dtype=np.int64)
    image_ids = np.asarray(image_ids)
    _check_array("image_ids", image_ids, (n,))
    areas = boxes[:, 2].astype(np.float64) * boxes[:, 3] if areas is None else np.asarray(areas)
    _check_array("areas", areas, (n,))
    wholebody = skeleton.name == WHOLEBODY133.name

    annotations = []
    for i in range(n):
        kp = keypoints[i].astype(np.float64)
        ann: dict = {"id": i + 1, "image_id": int(image_ids[i]), "category_id": 1, "iscrowd": 0}
        if wholebody:
            ann.update(_split_wholebody(kp))
            ann["num_keypoints"] = int((kp[:BODY_JOINTS, 2] > 0).sum())
        else:
            ann["keypoints"] = _flat(kp)
            ann["num_keypoints"] = int((kp[:, 2] > 0).sum())
        ann["bbox"] = boxes[i].astype(np.float64).tolist()
        ann["area"] = float(areas[i])
        annotations.append(ann)
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(skeleton.joint_names),
        "skeleton": [[a + 1, b + 1] for a, b in skeleton.limbs],
    }
    return {"images": [dict(img) for img in images], "annotations": annotations, "categories": [category]}


def _write_compact_json(path: str | os.PathLike, obj: Any) -> None:
    # Compact and strict: COCO files are large, and NaN would make a file that other tools refuse.
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_coco_annotations(path: str | os.PathLike, doc: dict) -> None:
    """Write an annotation document (see :func:`coco_document`) atomically."""
    _write_compact_json(path, doc)


# ---------------------------------------------------------------------------------------------------------
# Results (predictions)


def write_coco_results(path: str | os.PathLike, image_ids: np.ndarray, keypoints: np.ndarray,
                       scores: np.ndarray | None = None, category_id: int = 1) -> None:
    """Write predictions in the COCO keypoint results format, atomically.

    Args:
        image_ids: ``(N,)`` image id of each prediction.
        keypoints: ``(N, K, 2)`` ``x, y`` or ``(N, K, 3)`` ``x, y, v`` in image pixels. With two channels
            ``v = 1`` is written, as the COCO format recommends (COCO evaluation ignores it). ``K = 133`` is
            written in the COCO-WholeBody split form.
        scores: ``(N,)`` person scores; ``None`` writes 1.0 for all.
        category_id: the category of every prediction.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    image_ids = np.asarray(image_ids)
    if keypoints.ndim != 3 or keypoints.shape[2] not in (2, 3):
        raise ValueError(f"keypoints: expected shape (N, K, 2) or (N, K, 3), got {keypoints.shape}")
    n, k = keypoints.shape[:2]
    _check_array("keypoints", keypoints, (n, k, keypoints.shape[2]))
    _check_array("image_ids", image_ids, (n,))
    scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64)
    _check_array("scores", scores, (n,))
    if keypoints.shape[2] == 2:
        keypoints = np.concatenate([keypoints, np.ones((n, k, 1))], axis=2)
    results = []
    for i in range(n):
        res: dict = {"image_id": int(image_ids[i]), "category_id": int(category_id)}
        if k == WHOLEBODY133.num_joints:
            res.update({key: v for key, v in _split_wholebody(keypoints[i]).items() if key.endswith("kpts")
                        or key == "keypoints"})
        else:
            res["keypoints"] = _flat(keypoints[i])
        res["score"] = float(scores[i])
        results.append(res)
    _write_compact_json(path, results)
