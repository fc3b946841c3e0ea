"""Synthetic 3D humans projected into images: keypoints, boxes and COCO documents without any real data.

A person is a kinematic tree with anthropometric bone lengths and joint angles inside anatomical limits
(:mod:`posetok.data.body`), posed from a mixture of everyday and sports pose families
(:mod:`posetok.data.pose_families`), turned to a random heading and photographed by a random pinhole camera
(:mod:`posetok.data.camera`). Projection gives 2D keypoints with COCO visibility from image truncation and
self-occlusion (:mod:`posetok.data.visibility`). This module samples them (:func:`sample_poses`,
:func:`synthetic_coco`) and re-exports the public names of the model, so ``posetok.data.synthetic`` stays the
one place to import the synthetic human from.

Frames and units
----------------
* **Body frame** (what :func:`forward_kinematics` returns): metres, ``x`` = the person's left, ``y`` = up,
  ``z`` = the direction the person faces, origin at the pelvis (midpoint of the hip keypoints) unless a
  ``root_position`` is given. ``root_rotation`` maps the body frame of the pelvis into this world frame.
* **Camera frame** (``SyntheticPoses.joints3d``): metres, ``x`` = image right, ``y`` = image down, ``z`` =
  optical axis, origin at the camera centre.
* **Image**: pixels, origin at the top-left corner of the top-left pixel, ``u = fx * x / z + cx``. The
  intrinsics of each person's camera are in ``SyntheticPoses.intrinsics``.

Joint angles are described in :mod:`posetok.data.body`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import PosetokError
from ..io import write_json
from ..skeletons import Skeleton, get_skeleton
from .body import (
    ANGLE_NAMES,
    BONE_PROPORTION_SD,
    BONE_PROPORTIONS,
    HEAD_SCALE_SD,
    JOINT_LIMITS,
    JOINT_NAMES,
    LEFT_RIGHT_SD,
    STATURE_MEAN,
    STATURE_RANGE,
    STATURE_SD,
    SUPPORTED_SKELETONS,
    clip_to_limits,
    forward_kinematics,
    layout_indices,
    mean_bone_lengths,
    root_rotation_matrix,
    sample_bone_lengths,
    shoulder_elevation_range,
)
from .camera import FILL_RANGE, FOV_RANGE, MIN_DISTANCE, TRUNCATED_SHARE, check_image_size, place_cameras
from .pose_families import (
    FAMILIES,
    FAMILY_WEIGHTS,
    FRONTAL_SHARE,
    KinematicState,
    sample_angles,
    sample_kinematics,
)
from .visibility import self_occlusion

__all__ = [
    # sampling (this module)
    "AREA_PER_BOX",
    "BOX_MARGIN",
    "SyntheticPoses",
    "sample_poses",
    "synthetic_coco",
    "write_synthetic_coco",
    # the body model (posetok.data.body)
    "ANGLE_NAMES",
    "BONE_PROPORTIONS",
    "BONE_PROPORTION_SD",
    "HEAD_SCALE_SD",
    "JOINT_LIMITS",
    "JOINT_NAMES",
    "LEFT_RIGHT_SD",
    "STATURE_MEAN",
    "STATURE_RANGE",
    "STATURE_SD",
    "SUPPORTED_SKELETONS",
    "clip_to_limits",
    "forward_kinematics",
    "layout_indices",
    "mean_bone_lengths",
    "root_rotation_matrix",
    "sample_bone_lengths",
    "shoulder_elevation_range",
    # pose families (posetok.data.pose_families)
    "FAMILIES",
    "FAMILY_WEIGHTS",
    "FRONTAL_SHARE",
    "KinematicState",
    "sample_angles",
    "sample_kinematics",
    # cameras (posetok.data.camera) and visibility (posetok.data.visibility)
    "FILL_RANGE",
    "FOV_RANGE",
    "MIN_DISTANCE",
    "TRUNCATED_SHARE",
    "self_occlusion",
]


BOX_MARGIN = 0.05  # box padding around the projected skeleton, as a fraction of stature (flesh around bones)
_CHUNK = 16384  # people per chunk in the memory-heavy steps


@dataclass
class SyntheticPoses:
    """Synthetic people photographed in images of one size.

    Attributes:
        keypoints: ``(N, K, 3)`` float32 image pixels ``x, y`` and COCO visibility ``v`` (0 = outside the
            image, with ``x = y = 0``; 1 = inside but hidden by the person's own body; 2 = visible).
        boxes: ``(N, 4)`` float32 ``x, y, w, h`` pixels: the projected body (all model points incl. head top,
            hands and feet, padded by :data:`BOX_MARGIN` of stature), clipped to the image.
        image_size: ``(W, H)`` pixels, the same for every person.
        joints3d: ``(N, K, 3)`` float32 camera frame, metres (x right, y down, z forward), if requested.
        families: ``(N,)`` int index into :data:`FAMILIES`.
        intrinsics: ``(N, 3, 3)`` float32 pinhole camera matrices ``[[f, 0, W/2], [0, f, H/2], [0, 0, 1]]``.
        skeleton: layout name of the joint axis.
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    image_size: tuple[int, int]
    joints3d: np.ndarray | None
    families: np.ndarray
    intrinsics: np.ndarray | None = None
    skeleton: str = "coco17"


def sample_poses(
    num: int,
    skeleton: str = "coco17",
    seed: int | None = 0,
    image_size: tuple[int, int] = (640, 480),
    return_3d: bool = False,
    weights: dict[str, float] | None = None,
) -> SyntheticPoses:
    """Sample ``num`` synthetic people, each alone in a ``image_size = (W, H)`` image.

    Each person is drawn from the mixture :data:`FAMILY_WEIGHTS` (or ``weights``), posed by
    :func:`forward_kinematics`, turned to a random heading (see :func:`sample_kinematics`) and photographed
    by its own pinhole camera: vertical field of view log-uniform in :data:`FOV_RANGE`, elevation about
    8 +- 12 deg above the person (15-65 deg for people lying down), distance such that the person spans
    :data:`FILL_RANGE` of the image, placed at a random position with :data:`TRUNCATED_SHARE` of people
    partly over an edge. Every person shares the one ``image_size``; call once per size to mix sizes.

    Args:
        num: number of people.
        skeleton: ``coco17``, ``mpii16`` or ``h36m17``.
        seed: seed of the generator; the same seed gives the same output. ``None`` draws fresh entropy.
        image_size: ``(W, H)`` pixels.
        return_3d: also return the joints in the camera frame.
        weights: mixture weights per family name, default :data:`FAMILY_WEIGHTS`.

    Raises:
        PosetokError: unsupported skeleton, bad image size or weights.
    """
    idx = layout_indices(skeleton)
    w, h = check_image_size(image_size)
    num = int(num)
    if num < 0:
        raise PosetokError(f"number of synthetic poses must be >= 0, got {num}")
    rng = np.random.default_rng(seed)
    state = sample_kinematics(num, rng, weights)
    keypoints = np.zeros((num, len(idx), 3), dtype=np.float32)
    boxes = np.zeros((num, 4), dtype=np.float32)
    joints3d = np.zeros((num, len(idx), 3), dtype=np.float32) if return_3d else None
    intrinsics = np.zeros((num, 3, 3), dtype=np.float32)
    for s in range(0, num, _CHUNK):
        sl = slice(s, min(s + _CHUNK, num))
        bones = {k: v[sl] for k, v in state.bones.items()}
        world = forward_kinematics(
            {k: v[sl] for k, v in state.angles.items()}, bones, state.root_rotation[sl]
        )
        cam, focal = place_cameras(world, state.families[sl], (w, h), rng)
        u = focal[:, None] * cam[..., 0] / cam[..., 2] + w / 2.0
        v = focal[:, None] * cam[..., 1] / cam[..., 2] + h / 2.0

        # Test the stored float32 values, so a coordinate that rounds onto the far edge counts as outside.
        ku, kv, kz = u[:, idx].astype(np.float32), v[:, idx].astype(np.float32), cam[:, idx, 2]
        inside = (kz > 0.05) & (ku >= 0) & (ku < w) & (kv >= 0) & (kv < h)
        hidden = self_occlusion(cam, idx, bones["stature"], bones["head_scale"])
        vis = np.where(inside, np.where(hidden, 1, 2), 0)
        keypoints[sl] = np.stack([np.where(inside, ku, 0), np.where(inside, kv, 0), vis], axis=-1)

        pad = focal * BOX_MARGIN * bones["stature"] / cam[..., 2].mean(axis=1)
        x0 = np.clip(u.min(axis=1) - pad, 0, w)
        y0 = np.clip(v.min(axis=1) - pad, 0, h)
        x1 = np.clip(u.max(axis=1) + pad, 0, w)
        y1 = np.clip(v.max(axis=1) + pad, 0, h)
        boxes[sl] = np.stack([x0, y0, x1 - x0, y1 - y0], axis=-1)

        intrinsics[sl, 0, 0] = focal
        intrinsics[sl, 1, 1] = focal
        intrinsics[sl, 0, 2] = w / 2.0
        intrinsics[sl, 1, 2] = h / 2.0
        intrinsics[sl, 2, 2] = 1.0
        if joints3d is not None:
            joints3d[sl] = cam[:, idx]
    name = skeleton.name if isinstance(skeleton, Skeleton) else skeleton
    return SyntheticPoses(
        keypoints, boxes, (w, h), joints3d, state.families.astype(np.int64), intrinsics, name
    )


#: Ratio of a person's segmentation area to their box area used for ``area`` in COCO documents: synthetic
#: people have no mask, and COCO person masks cover about half of their boxes. OKS scales by this area.
AREA_PER_BOX = 0.53


def synthetic_coco(
    num: int, skeleton: str = "coco17", seed: int | None = 0, image_size: tuple[int, int] = (640, 480)
) -> dict:
    """A COCO keypoint document of ``num`` synthetic people, one per image (see :func:`sample_poses`).

    Images are ``synth_000000.jpg``... (ids from 1; no pixels exist), annotations carry the flat keypoints,
    ``num_keypoints`` (joints with v > 0), the box and ``area = box area * AREA_PER_BOX``; the single category
    lists the layout's joint names and its 1-based ``skeleton`` from ``Skeleton.limbs``.
    """
    poses = sample_poses(num, skeleton, seed, image_size)
    sk = get_skeleton(poses.skeleton)
    w, h = poses.image_size
    images, annotations = [], []
    for i in range(len(poses.keypoints)):
        kp = poses.keypoints[i]
        flat: list[float | int] = []
        for x, y, v in kp.tolist():
            flat += [round(x, 2), round(y, 2), int(v)]
        box = [round(float(c), 2) for c in poses.boxes[i]]
        images.append({"id": i + 1, "file_name": f"synth_{i:06d}.jpg", "width": w, "height": h})
        annotations.append({
            "id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "keypoints": flat,
            "num_keypoints": int((kp[:, 2] > 0).sum()), "bbox": box,
            "area": round(box[2] * box[3] * AREA_PER_BOX, 2),
        })  # fmt: skip
    category = {
        "id": 1, "name": "person", "supercategory": "person", "keypoints": list(sk.joint_names),
        "skeleton": [[a + 1, b + 1] for a, b in sk.limbs],
    }  # fmt: skip
    return {"images": images, "annotations": annotations, "categories": [category]}


def write_synthetic_coco(
    path: str | os.PathLike,
    num: int,
    skeleton: str = "coco17",
    seed: int | None = 0,
    image_size: tuple[int, int] = (640, 480),
) -> None:
    """Write :func:`synthetic_coco` to ``path`` as JSON, atomically."""
    write_json(path, synthetic_coco(num, skeleton, seed, image_size))
