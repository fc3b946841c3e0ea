"""COCO keypoint annotation and result files.

Canonical arrays (image pixels, origin at the top-left image corner, 0-based as in COCO):

- keypoints ``(N, K, 3)`` float32: ``x, y, v`` with COCO visibility ``v``: 0 not labelled, 1 labelled but
  occluded, 2 labelled and visible. The joint axis follows a :class:`~posetok.skeletons.Skeleton`.
- boxes ``(N, 4)`` float32: ``x, y, w, h``.

COCO-WholeBody files keep the 17 body joints in ``keypoints`` and the other parts in ``foot_kpts`` (6),
``face_kpts`` (68), ``lefthand_kpts`` (21) and ``righthand_kpts`` (21), each with a ``*_valid`` flag; the
reader assembles them into the 133-joint ``wholebody133`` order and the writers split them back, so files
stay readable by the official COCO-WholeBody evaluation.

Every error in a file raises :class:`~posetok.errors.PosetokError` with one line naming the file and the
field, e.g. ``data/x.json: field 'annotations[3].keypoints': expected 51 numbers (3 x 17 joints), got 50``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PosetokError, field_error
from ..io import atomic_path
from ..skeletons import (
    SKELETONS,
    WB_FACE,
    WB_FOOT,
    WB_LEFT_HAND,
    WB_RIGHT_HAND,
    WHOLEBODY133,
    Skeleton,
    get_skeleton,
    skeleton_for_joints,
)

# COCO-WholeBody part fields in the order of the 133-joint layout after the 17 body joints:
# (annotation field, validity flag, first joint index, joint count).
WHOLEBODY_PARTS = (
    ("foot_kpts", "foot_valid", WB_FOOT, 6),
    ("face_kpts", "face_valid", WB_FACE, 68),
    ("lefthand_kpts", "lefthand_valid", WB_LEFT_HAND, 21),
    ("righthand_kpts", "righthand_valid", WB_RIGHT_HAND, 21),
)
# Part boxes written beside the part keypoints, as in the released COCO-WholeBody files.
_PART_BOXES = {"face_kpts": "face_box", "lefthand_kpts": "lefthand_box", "righthand_kpts": "righthand_box"}
_BODY = 17
# Arrays are float32: a finite float64 beyond this would silently become inf.
_F32_MAX = float(np.finfo(np.float32).max)
_I64_MIN, _I64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


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


# ---------------------------------------------------------------------------------------------------------
# Validation helpers shared with posetok.data.mpii


def read_json_file(path: str | os.PathLike) -> Any:
    """Parse a JSON file, turning every failure into a one-line :class:`PosetokError` naming the file.

    ``NaN`` and ``Infinity`` literals parse (Python's json accepts them); the field checks reject them later,
    where the message can name the field.
    """
    p = Path(path)
    if not p.exists():
        raise PosetokError(f"{path}: file not found")
    if not p.is_file():
        raise PosetokError(f"{path}: not a file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise PosetokError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise PosetokError(f"{path}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except UnicodeDecodeError:
        raise PosetokError(f"{path}: not valid JSON: the file is not UTF-8 text") from None
    except RecursionError:
        raise PosetokError(f"{path}: not valid JSON: nested too deeply") from None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), "a number")


def is_number(value: Any) -> bool:
    """True for a JSON number (``bool`` is an ``int`` in Python but ``true`` is not a number in JSON)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require(obj: dict, key: str, path: object, field_name: str) -> Any:
    if key not in obj:
        raise field_error(path, field_name, "missing")
    return obj[key]


def number_list(value: Any, path: object, field_name: str, length: int | None = None,
                what: str = "numbers") -> np.ndarray:
    """A list of finite JSON numbers as float64; ``length`` checks its size, ``what`` words that message."""
    if not isinstance(value, list):
        raise field_error(path, field_name, f"expected a list of {what}, got {_type_name(value)}")
    if length is not None and len(value) != length:
        raise field_error(path, field_name, f"expected {length} {what}, got {len(value)}")
    for i, x in enumerate(value):
        if not is_number(x):
            raise field_error(path, field_name, f"item {i} is {_type_name(x)}, not a number")
    arr = np.asarray(value, dtype=np.float64)
    bad = ~(np.abs(arr) <= _F32_MAX)  # also catches NaN
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise field_error(path, field_name, f"item {i} is {value[i]}; expected a finite float32 number")
    return arr


def integer(value: Any, path: object, field_name: str) -> int:
    # Integral floats (3.0) are accepted because some writers emit every number as a float; ids are int64.
    if not is_number(value) or not math.isfinite(value) or value != int(value):
        raise field_error(path, field_name, f"expected an integer, got {value!r}")
    if not _I64_MIN <= int(value) <= _I64_MAX:
        raise field_error(path, field_name, f"{value} does not fit in a 64-bit integer")
    return int(value)


def finite_number(value: Any, path: object, field_name: str) -> float:
    if not is_number(value) or not abs(value) <= _F32_MAX:
        raise field_error(path, field_name, f"expected a finite float32 number, got {value!r}")
    return float(value)


def _joint_label(names: Sequence[str] | None, j: int) -> str:
    if names is not None and j < len(names):
        return f"joint {j} ({names[j]})"
    return f"joint {j}"


def _triplets(value: Any, path: object, field_name: str, num_joints: int | None, names: Sequence[str] | None,
              expect_note: str = "", check_visibility: bool = True) -> np.ndarray:
    """A flat ``[x, y, v] * K`` list as ``(K, 3)`` float64 with finite numbers.

    ``check_visibility`` also requires ``v`` in {0, 1, 2}; ``names`` label joints in messages.
    """
    if not isinstance(value, list):
        raise field_error(path, field_name, f"expected a list of numbers, got {_type_name(value)}")
    if num_joints is None:
        if len(value) == 0 or len(value) % 3:
            raise field_error(path, field_name,
                              f"expected 3 numbers (x, y, v) per joint, got {len(value)} numbers")
    elif len(value) != 3 * num_joints:
        raise field_error(path, field_name,
                          f"expected {3 * num_joints} numbers (3 x {num_joints} joints{expect_note}), "
                          f"got {len(value)}")
    for i, x in enumerate(value):
        if not is_number(x):
            label = _joint_label(names, i // 3)
            raise field_error(path, field_name, f"{label}: {'xyv'[i % 3]} is {_type_name(x)}, not a number")
    kp = np.asarray(value, dtype=np.float64).reshape(-1, 3)
    bad = ~(np.abs(kp) <= _F32_MAX)  # NaN, inf, and finite numbers too large for float32
    if bad.any():
        j, c = (int(t[0]) for t in np.nonzero(bad))
        raise field_error(path, field_name, f"{_joint_label(names, j)}: {'xyv'[c]} is {kp[j, c]}; "
                                            "expected a finite float32 number")
    if check_visibility:
        bad_v = (kp[:, 2] != 0) & (kp[:, 2] != 1) & (kp[:, 2] != 2)
        if bad_v.any():
            j = int(np.flatnonzero(bad_v)[0])
            problem = f"{_joint_label(names, j)}: visibility is {value[3 * j + 2]}; expected 0, 1 or 2"
            raise field_error(path, field_name, problem)
    return kp


def _resolve_skeleton(skeleton: Skeleton | str | None) -> Skeleton | None:
    if skeleton is None or isinstance(skeleton, Skeleton):
        return skeleton
    return get_skeleton(skeleton)


def _has_parts(ann: Any) -> bool:
    return isinstance(ann, dict) and any(part in ann for part, *_ in WHOLEBODY_PARTS)


def _wholebody_keypoints(ann: dict, path: object, where: str, check_visibility: bool = True) -> np.ndarray:
    """Assemble the ``(133, 3)`` array of one WholeBody annotation or result from its part fields."""
    kp = np.zeros((WHOLEBODY133.num_joints, 3), dtype=np.float64)
    body = require(ann, "keypoints", path, f"{where}.keypoints")
    names = WHOLEBODY133.joint_names
    kp[:_BODY] = _triplets(body, path, f"{where}.keypoints", _BODY, names, " of the WholeBody body",
                           check_visibility)
    for part, valid_key, start, count in WHOLEBODY_PARTS:
        values = _triplets(require(ann, part, path, f"{where}.{part}"), path, f"{where}.{part}", count,
                           names[start:start + count], "", check_visibility)
        valid = ann.get(valid_key, True)
        if not isinstance(valid, bool):
            raise field_error(path, f"{where}.{valid_key}", f"expected true or false, got {valid!r}")
        # An invalid part is 'not labelled' in COCO-WholeBody (its arrays are all zeros by convention);
        # zeroing also drops any stray numbers so they can never count as labelled joints.
        if valid:
            kp[start:start + count] = values
    return kp


def _infer_skeleton(anns: list, categories: Any, path: object) -> tuple[Skeleton | None, str]:
    """The layout of a file given none, and a note saying where it came from for messages.

    WholeBody part fields mean ``wholebody133``; otherwise the keypoint count of the first person picks it.
    Where the category lists joint names equal to a registered layout of that size, that layout wins, so a
    file written for ``h36m17`` reads back as ``h36m17`` and not as ``coco17``. ``None`` when the first
    person is malformed: the per-annotation checks then report it.
    """
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or ann.get("iscrowd", 0) == 1:
            continue
        if _has_parts(ann):
            return WHOLEBODY133, f" of wholebody133, as annotations[{i}] has WholeBody parts"
        value = ann.get("keypoints")
        if not isinstance(value, list) or len(value) == 0 or len(value) % 3:
            return None, ""
        k = len(value) // 3
        names = _category_joint_names(categories)
        for s in SKELETONS.values():
            if s.num_joints == k and names == s.joint_names:
                return s, f", as in annotations[{i}]"
        try:
            return skeleton_for_joints(k), f", as in annotations[{i}]"
        except PosetokError as e:
            raise field_error(path, f"annotations[{i}].keypoints", str(e)) from None
    return None, ""


def _category_joint_names(categories: Any) -> tuple[str, ...] | None:
    if not isinstance(categories, list):
        return None
    for cat in categories:
        if isinstance(cat, dict) and isinstance(cat.get("keypoints"), list):
            return tuple(str(n) for n in cat["keypoints"])
    return None


def _read_images(doc: dict, path: object) -> dict[int, dict]:
    if "images" not in doc:
        return {}
    images = doc["images"]
    if not isinstance(images, list):
        raise field_error(path, "images", f"expected a list of image records, got {_type_name(images)}")
    out: dict[int, dict] = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            raise field_error(path, f"images[{i}]", f"expected an object, got {_type_name(img)}")
        image_id = integer(require(img, "id", path, f"images[{i}].id"), path, f"images[{i}].id")
        if image_id in out:
            raise field_error(path, f"images[{i}].id", f"image id {image_id} appears twice")
        out[image_id] = img
    return out


def _keypoint_box(kp: np.ndarray) -> np.ndarray:
    """Tight ``x, y, w, h`` box of the labelled joints of ``(K, 3)`` keypoints; zeros if none is labelled."""
    labelled = kp[kp[:, 2] > 0, :2]
    if len(labelled) == 0:
        return np.zeros(4)
    lo, hi = labelled.min(axis=0), labelled.max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


# ---------------------------------------------------------------------------------------------------------
# Annotations


def load_coco_keypoints(path: str | os.PathLike, skeleton: str | Skeleton | None = None,
                        min_keypoints: int = 1) -> CocoKeypoints:
    """Read a COCO (or COCO-WholeBody) keypoint annotation file.

    Args:
        path: the JSON file.
        skeleton: registry name of the layout; ``None`` infers it: ``wholebody133`` where annotations carry
            WholeBody part fields, else the layout whose joint names the category lists, else the registered
            layout with the keypoint count of the first person (17 -> ``coco17``).
        min_keypoints: annotations with fewer labelled joints (``v > 0``, counted over all ``K`` joints) are
            skipped; ``iscrowd=1`` annotations are always skipped.

    Field rules: ``annotations`` is required. ``images`` is optional: the reader needs nothing from it (the
    image of each person is the annotation's ``image_id``), so a file without it loads with ``images={}``;
    when present, every kept annotation's ``image_id`` must be listed there, since evaluation and image
    loading would fail on it later. ``id`` (annotation id) is required, as COCO evaluation matches on it.
    A missing ``bbox`` is the tight box of the labelled joints; a missing ``area`` is the box ``w * h``.

    Returns:
        :class:`CocoKeypoints` with float32 ``(N, K, 3)`` keypoints and ``(N, 4)`` xywh boxes.

    Raises:
        PosetokError: one line naming the file and the field, for any malformed input or when no person is
            left after filtering.
    """
    doc = read_json_file(path)
    if not isinstance(doc, dict):
        raise PosetokError(f"{path}: expected a JSON object with an 'annotations' list at the top level, "
                           f"got {_type_name(doc)}")
    anns = require(doc, "annotations", path, "annotations")
    if not isinstance(anns, list):
        raise field_error(path, "annotations", f"expected a list, got {_type_name(anns)}")
    images = _read_images(doc, path)
    has_images = "images" in doc

    skel = _resolve_skeleton(skeleton)
    k_note = "" if skel is None else f" of {skel.name}"
    if skel is None:
        skel, k_note = _infer_skeleton(anns, doc.get("categories"), path)
    wholebody = skel is not None and skel.name == WHOLEBODY133.name

    kps, boxes, areas, image_ids, ann_ids = [], [], [], [], []
    crowd = sparse = 0
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise field_error(path, where, f"expected an object, got {_type_name(ann)}")
        iscrowd = ann.get("iscrowd", 0)
        if not isinstance(iscrowd, (int, float)) or iscrowd not in (0, 1):
            raise field_error(path, f"{where}.iscrowd", f"expected 0 or 1, got {iscrowd!r}")
        # Crowd regions carry no usable pose (COCO gives them all-zero keypoints), so they are skipped
        # before their keypoints are checked.
        if iscrowd == 1:
            crowd += 1
            continue
        if wholebody and _has_parts(ann):
            kp = _wholebody_keypoints(ann, path, where)
        else:
            value = require(ann, "keypoints", path, f"{where}.keypoints")
            kp = _triplets(value, path, f"{where}.keypoints", None if skel is None else skel.num_joints,
                           None if skel is None else skel.joint_names, k_note)
        ann_id = integer(require(ann, "id", path, f"{where}.id"), path, f"{where}.id")
        image_id = integer(require(ann, "image_id", path, f"{where}.image_id"), path, f"{where}.image_id")
        if "bbox" in ann:
            box = number_list(ann["bbox"], path, f"{where}.bbox", 4, "numbers (x, y, w, h)")
            if box[2] < 0 or box[3] < 0:
                raise field_error(path, f"{where}.bbox", f"negative size (w={box[2]:g}, h={box[3]:g})")
        else:
            box = _keypoint_box(kp)
        if "area" in ann:
            area = finite_number(ann["area"], path, f"{where}.area")
            if area < 0:
                raise field_error(path, f"{where}.area", f"negative area {area:g}")
        else:
            area = float(box[2] * box[3])
        if int((kp[:, 2] > 0).sum()) < min_keypoints:
            sparse += 1
            continue
        if has_images and image_id not in images:
            raise field_error(path, f"{where}.image_id", f"image {image_id} is not in 'images'")
        kps.append(kp)
        boxes.append(box)
        areas.append(area)
        image_ids.append(image_id)
        ann_ids.append(ann_id)

    if not kps:
        raise field_error(path, "annotations",
                          f"no annotated person ({len(anns)} annotations: {crowd} crowd, {sparse} with fewer "
                          f"than {min_keypoints} labelled joints)")
    return CocoKeypoints(
        path=str(path),
        skeleton=skel,
        keypoints=np.stack(kps).astype(np.float32),
        boxes=np.stack(boxes).astype(np.float32),
        areas=np.asarray(areas, dtype=np.float32),
        image_ids=np.asarray(image_ids, dtype=np.int64),
        ann_ids=np.asarray(ann_ids, dtype=np.int64),
        images=images,
    )


def _flat(kp: np.ndarray) -> list:
    """``(K, 3)`` keypoints as the flat COCO list, ``v`` as an integer where it is one."""
    out: list = []
    for x, y, v in kp.tolist():
        out += [x, y, int(v) if float(v).is_integer() else v]
    return out


def _split_wholebody(kp: np.ndarray) -> dict:
    """The WholeBody part fields of one ``(133, 3)`` array (``keypoints`` holds the 17 body joints)."""
    out: dict = {"keypoints": _flat(kp[:_BODY])}
    for part, valid_key, start, count in WHOLEBODY_PARTS:
        sub = kp[start:start + count]
        out[part] = _flat(sub)
        out[valid_key] = bool((sub[:, 2] > 0).any())
        if part in _PART_BOXES:
            out[_PART_BOXES[part]] = _keypoint_box(sub).tolist()
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
            ann["num_keypoints"] = int((kp[:_BODY, 2] > 0).sum())
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


def load_coco_results(path: str | os.PathLike, skeleton: Skeleton | str | None = None,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a COCO keypoint results file (a JSON list of predictions).

    Args:
        skeleton: layout (or registry name) of the predictions; ``None`` infers it from the first
            prediction (WholeBody part fields, else its keypoint count).

    Returns:
        ``image_ids`` ``(N,)`` int64, ``keypoints`` ``(N, K, 3)`` float32 in image pixels and ``scores``
        ``(N,)`` float32. The third keypoint channel is kept as written: COCO evaluation ignores it and many
        tools store a per-joint confidence there, so it must only be finite, not in {0, 1, 2}. An empty list
        gives empty arrays when ``skeleton`` is given.

    Raises:
        PosetokError: one line naming the file and the field.
    """
    doc = read_json_file(path)
    if not isinstance(doc, list):
        raise PosetokError(f"{path}: expected a JSON list of predictions at the top level, "
                           f"got {_type_name(doc)}")
    skel = _resolve_skeleton(skeleton)
    note = "" if skel is None else f" of {skel.name}"
    if skel is None:
        if not doc:
            raise PosetokError(f"{path}: the results list is empty; pass the skeleton to read an empty file")
        first = doc[0]
        if isinstance(first, dict) and _has_parts(first):
            skel = WHOLEBODY133
        elif isinstance(first, dict) and isinstance(first.get("keypoints"), list) and first["keypoints"] \
                and len(first["keypoints"]) % 3 == 0:
            try:
                skel = skeleton_for_joints(len(first["keypoints"]) // 3)
            except PosetokError as e:
                raise field_error(path, "[0].keypoints", str(e)) from None
            note = ", as in [0]"
    k = None if skel is None else skel.num_joints
    image_ids, kps, scores = [], [], []
    for i, res in enumerate(doc):
        where = f"[{i}]"
        if not isinstance(res, dict):
            raise field_error(path, where, f"expected an object, got {_type_name(res)}")
        if skel is not None and skel.name == WHOLEBODY133.name and _has_parts(res):
            kp = _wholebody_keypoints(res, path, where, check_visibility=False)
        else:
            kp = _triplets(require(res, "keypoints", path, f"{where}.keypoints"), path, f"{where}.keypoints",
                           k, None if skel is None else skel.joint_names, note, check_visibility=False)
        k = kp.shape[0]
        image_id = require(res, "image_id", path, f"{where}.image_id")
        image_ids.append(integer(image_id, path, f"{where}.image_id"))
        scores.append(finite_number(require(res, "score", path, f"{where}.score"), path, f"{where}.score"))
        kps.append(kp)
    kp_arr = np.stack(kps).astype(np.float32) if kps else np.zeros((0, k or 0, 3), dtype=np.float32)
    return np.asarray(image_ids, dtype=np.int64), kp_arr, np.asarray(scores, dtype=np.float32)
