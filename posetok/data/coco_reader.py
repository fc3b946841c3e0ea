"""Reading COCO (and COCO-WholeBody) keypoint annotation and result files into canonical arrays.

See :mod:`posetok.data.coco` for the arrays and the error style: every error in a file raises
:class:`~posetok.errors.PosetokError` with one line naming the file and the field.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..errors import PosetokError, field_error
from ..skeletons import SKELETONS, WHOLEBODY133, Skeleton, get_skeleton, skeleton_for_joints
from .coco_format import BODY_JOINTS, WHOLEBODY_PARTS, CocoKeypoints, keypoint_box
from .json_fields import (
    F32_MAX,
    finite_number,
    integer,
    is_number,
    number_list,
    read_json_file,
    require,
    type_name,
)


def _joint_label(names: Sequence[str] | None, j: int) -> str:
    if names is not None and j < len(names):
        return f"joint {j} ({names[j]})"
    return f"joint {j}"


# How the third value of a keypoint triplet is checked (it is always finite):
# "coco": COCO visibility 0, 1 or 2 (the body ``keypoints`` of annotations);
# "score": any number >= 0, > 0 meaning labelled (COCO-WholeBody part fields: their annotation tool stored its
#          scores there, e.g. 0.087, and the official evaluator counts every value > 0 as labelled);
# "any": anything finite (results, where it is a confidence that COCO evaluation ignores).
Visibility = Literal["coco", "score", "any"]


def _triplets(value: Any, path: object, field_name: str, num_joints: int | None, names: Sequence[str] | None,
              expect_note: str = "", visibility: Visibility = "coco") -> np.ndarray:
    """A flat ``[x, y, v] * K`` list as ``(K, 3)`` float64 with finite numbers.

    ``visibility`` says which ``v`` are allowed (see :data:`Visibility`); ``names`` label joints in messages.
    """
    if not isinstance(value, list):
        raise field_error(path, field_name, f"expected a list of numbers, got {type_name(value)}")
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
            raise field_error(path, field_name, f"{label}: {'xyv'[i % 3]} is {type_name(x)}, not a number")
    kp = np.asarray(value, dtype=np.float64).reshape(-1, 3)
    bad = ~(np.abs(kp) <= F32_MAX)  # NaN, inf, and finite numbers too large for float32
    if bad.any():
        j, c = (int(t[0]) for t in np.nonzero(bad))
        raise field_error(path, field_name, f"{_joint_label(names, j)}: {'xyv'[c]} is {kp[j, c]}; "
                                            "expected a finite float32 number")
    if visibility == "coco":
        bad_v = (kp[:, 2] != 0) & (kp[:, 2] != 1) & (kp[:, 2] != 2)
        if bad_v.any():
            j = int(np.flatnonzero(bad_v)[0])
            problem = f"{_joint_label(names, j)}: visibility is {value[3 * j + 2]}; expected 0, 1 or 2"
            raise field_error(path, field_name, problem)
    elif visibility == "score":
        bad_v = kp[:, 2] < 0
        if bad_v.any():
            j = int(np.flatnonzero(bad_v)[0])
            problem = (f"{_joint_label(names, j)}: visibility is {value[3 * j + 2]}; expected a number >= 0 "
                       "(0 = not labelled)")
            raise field_error(path, field_name, problem)
    return kp


def _resolve_skeleton(skeleton: Skeleton | str | None) -> Skeleton | None:
    if skeleton is None or isinstance(skeleton, Skeleton):
        return skeleton
    return get_skeleton(skeleton)


def _has_parts(ann: Any) -> bool:
    return isinstance(ann, dict) and any(part in ann for part, *_ in WHOLEBODY_PARTS)


def _wholebody_keypoints(ann: dict, path: object, where: str, check_visibility: bool = True) -> np.ndarray:
    """Assemble the ``(133, 3)`` array of one WholeBody annotation or result from its part fields.

    With ``check_visibility`` (annotations) the body ``keypoints`` must hold COCO visibilities 0, 1 or 2 and the
    part fields numbers >= 0, kept as they are (real COCO-WholeBody files carry fractional scores there);
    without it (results) any finite third value is kept.
    """
    kp = np.zeros((WHOLEBODY133.num_joints, 3), dtype=np.float64)
    body = require(ann, "keypoints", path, f"{where}.keypoints")
    names = WHOLEBODY133.joint_names
    kp[:BODY_JOINTS] = _triplets(body, path, f"{where}.keypoints", BODY_JOINTS, names, " of the WholeBody body",
                                 "coco" if check_visibility else "any")
    for part, valid_key, start, count in WHOLEBODY_PARTS:
        values = _triplets(require(ann, part, path, f"{where}.{part}"), path, f"{where}.{part}", count,
                           names[start:start + count], "", "score" if check_visibility else "any")
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
        raise field_error(path, "images", f"expected a list of image records, got {type_name(images)}")
    out: dict[int, dict] = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            raise field_error(path, f"images[{i}]", f"expected an object, got {type_name(img)}")
        image_id = integer(require(img, "id", path, f"images[{i}].id"), path, f"images[{i}].id")
        if image_id in out:
            raise field_error(path, f"images[{i}].id", f"image id {image_id} appears twice")
        out[image_id] = img
    return out


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
    Visibility ``v`` is 0, 1 or 2, except in the COCO-WholeBody part fields (``foot_kpts``, ``face_kpts``,
    ``lefthand_kpts``, ``righthand_kpts``): there any number >= 0 is kept as it is, since the released files
    carry the annotation tool's scores (e.g. 0.087) next to 0/1/2, and ``v > 0`` means labelled, as in the
    official COCO-WholeBody evaluation.

    Returns:
        :class:`CocoKeypoints` with float32 ``(N, K, 3)`` keypoints and ``(N, 4)`` xywh boxes.

    Raises:
        PosetokError: one line naming the file and the field, for any malformed input or when no person is
            left after filtering.
    """
    doc = read_json_file(path)
    if not isinstance(doc, dict):
        raise PosetokError(f"{path}: expected a JSON object with an 'annotations' list at the top level, "
                           f"got {type_name(doc)}")
    anns = require(doc, "annotations", path, "annotations")
    if not isinstance(anns, list):
        raise field_error(path, "annotations", f"expected a list, got {type_name(anns)}")
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
            raise field_error(path, where, f"expected an object, got {type_name(ann)}")
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
            box = keypoint_box(kp)
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


# ---------------------------------------------------------------------------------------------------------
# Results (predictions)


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
                           f"got {type_name(doc)}")
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
            raise field_error(path, where, f"expected an object, got {type_name(res)}")
        if skel is not None and skel.name == WHOLEBODY133.name and _has_parts(res):
            kp = _wholebody_keypoints(res, path, where, check_visibility=False)
        else:
            kp = _triplets(require(res, "keypoints", path, f"{where}.keypoints"), path, f"{where}.keypoints",
                           k, None if skel is None else skel.joint_names, note, visibility="any")
        k = kp.shape[0]
        image_id = require(res, "image_id", path, f"{where}.image_id")
        image_ids.append(integer(image_id, path, f"{where}.image_id"))
        scores.append(finite_number(require(res, "score", path, f"{where}.score"), path, f"{where}.score"))
        kps.append(kp)
    kp_arr = np.stack(kps).astype(np.float32) if kps else np.zeros((0, k or 0, 3), dtype=np.float32)
    return np.asarray(image_ids, dtype=np.int64), kp_arr, np.asarray(scores, dtype=np.float32)
