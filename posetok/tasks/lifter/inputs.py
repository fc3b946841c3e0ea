"""2D inputs of a lifter, as users have them: COCO keypoint files (annotations or results), sequence ``.npz`` tracks
(as ``posetok infer`` writes for a video), and Human3.6M 2D files (VideoPose3D ``positions_2d``, MMPose
``h36m_*.npz``). Each becomes :class:`Track` objects in pixels, checked against the lifter's input skeleton.

Every error is one line naming the file and the field: another skeleton or joint count than the checkpoint's input
skeleton, a NaN coordinate of a joint whose confidence says it was detected (NaN is allowed where the confidence
is 0 or the frame's ``mask`` is False), a 3D-only file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...data.archives import npz_fields, read_npz, read_npz_field
from ...data.coco import load_coco_keypoints, load_coco_results
from ...data.h36m import CAMERA_IDS, H36M_INTRINSICS, action_name, load_mmpose_h36m
from ...data.json_fields import read_json_file
from ...errors import PosetokError, field_error
from ...skeletons import SKELETONS, Skeleton, get_skeleton


@dataclass
class Track:
    """2D keypoints to lift: one clip (``independent=False``) or ``T`` separate people (``independent=True``).

    Attributes:
        poses: ``(T, K, 3)`` float64 pixels ``x, y, conf`` (NaN allowed where ``conf`` is 0).
        mask: ``(T,)`` bool, False where a frame holds no pose.
        image_size: ``(w, h)`` of the images (one per track), or None.
        image_sizes: ``(T, 2)`` per person when they differ (COCO files), else None.
        meta: per-frame arrays to carry into the output (``image_id``, ``subject``, ...) and scalars (``fps``).
    """

    source: str
    poses: np.ndarray
    mask: np.ndarray
    image_size: tuple[float, float] | None = None
    image_sizes: np.ndarray | None = None
    independent: bool = False
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + (",)" if a.ndim == 1 else ")")


def _check_skeleton(path: object, fld: str, found: Skeleton, want: Skeleton) -> None:
    if found.name != want.name:
        raise field_error(path, fld, f"keypoints of skeleton '{found.name}' ({found.num_joints} joints); the "
                                     f"checkpoint lifts '{want.name}' ({want.num_joints} joints)")


def _check_nan(path: object, poses: np.ndarray, mask: np.ndarray, skeleton: Skeleton) -> None:
    """NaN or infinite values are allowed only where the joint is not detected (confidence 0) or the frame is
    masked out."""
    xy_bad = ~np.isfinite(poses[..., :2]).all(-1)
    if poses.shape[-1] == 3:
        conf = poses[..., 2]
        bad_conf = ~np.isfinite(conf) & mask[:, None]
        if bad_conf.any():
            t, j = (int(v[0]) for v in np.nonzero(bad_conf))
            raise field_error(path, "poses", f"NaN or infinite confidence at frame {t}, joint {j} "
                                             f"('{skeleton.joint_names[j]}'); use 0 for a joint not detected")
        with np.errstate(invalid="ignore"):
            bad = xy_bad & (conf > 0) & mask[:, None]
    else:
        bad = np.zeros_like(xy_bad)  # no confidence: a NaN joint is a missing joint
    if bad.any():
        t, j = (int(v[0]) for v in np.nonzero(bad))
        raise field_error(path, "poses", f"NaN or infinite x, y at frame {t}, joint {j} ('{skeleton.joint_names[j]}') "
                                         f"whose confidence is {poses[t, j, 2]:g} > 0 ({int(bad.sum())} such joints); "
                                         "set the confidence of a joint not detected to 0, or 'mask' False for the "
                                         "frame")


def _with_conf(poses: np.ndarray) -> np.ndarray:
    if poses.shape[-1] == 3:
        return poses
    conf = np.isfinite(poses).all(-1, keepdims=True).astype(np.float64)
    return np.concatenate([poses, conf], axis=-1)


def _image_size(path: object, value: np.ndarray) -> tuple[float, float]:
    v = np.asarray(value, dtype=np.float64).ravel()
    if v.size != 2 or not np.isfinite(v).all() or (v <= 0).any():
        raise field_error(path, "image_size", f"expected (w, h) > 0, got {v.tolist()}")
    return float(v[0]), float(v[1])


def read_sequence(path: str | Path, skeleton: Skeleton) -> Track:
    """A sequence ``.npz``: ``poses`` ``(T, K, 2 or 3)`` pixels (x, y[, conf]); optional ``mask`` ``(T,)``,
    ``image_size`` ``(w, h)``, ``fps``, ``skeleton`` (a layout name, checked against ``skeleton``)."""
    raw = read_npz(path, ("poses", "mask", "image_size", "fps", "skeleton"), required=("poses",))
    poses = raw.pop("poses")
    if "skeleton" in raw:
        name = str(raw["skeleton"])
        if name not in SKELETONS:
            raise field_error(path, "skeleton", f"unknown skeleton '{name}' (known: {', '.join(sorted(SKELETONS))})")
        _check_skeleton(path, "skeleton", get_skeleton(name), skeleton)
    if poses.dtype.kind not in "iuf" or poses.ndim != 3 or poses.shape[-1] not in (2, 3) or len(poses) == 0:
        raise field_error(path, "poses", f"expected a numeric (T, K, 2 or 3) array with T >= 1, got dtype "
                                         f"{poses.dtype} shape {_shape(poses)}")
    if poses.shape[1] != skeleton.num_joints:
        raise field_error(path, "poses", f"expected {skeleton.num_joints} keypoints of skeleton '{skeleton.name}' "
                                         f"(the checkpoint's input), got shape {_shape(poses)}")
    t = len(poses)
    mask = np.ones(t, bool)
    if "mask" in raw:
        m = raw["mask"]
        if m.shape != (t,) or (m.dtype != bool and not np.isin(m, (0, 1)).all()):
            raise field_error(path, "mask", f"expected ({t},) bool values to match 'poses', got dtype {m.dtype} "
                                            f"shape {_shape(m)}")
        mask = m.astype(bool)
    poses = poses.astype(np.float64)
    _check_nan(path, poses, mask, skeleton)
    poses = _with_conf(poses)
    size = _image_size(path, raw["image_size"]) if "image_size" in raw else None
    meta: dict[str, Any] = {}
    if "fps" in raw:
        fps = float(np.asarray(raw["fps"]).ravel()[0]) if np.asarray(raw["fps"]).size else 0.0
        meta["fps"] = fps if np.isfinite(fps) and fps > 0 else None
    return Track(str(path), poses, mask, size, name=Path(path).stem, meta=meta)


def read_coco(path: str | Path, skeleton: Skeleton) -> Track:
    """A COCO keypoint file: annotations (people with the image sizes of ``images``) or results (a list)."""
    doc = read_json_file(path)
    if isinstance(doc, list):
        image_ids, kps, scores = load_coco_results(path)
        if kps.shape[1] != skeleton.num_joints:
            raise field_error(path, "[0].keypoints", f"{kps.shape[1]} keypoints; the checkpoint lifts "
                                                     f"'{skeleton.name}' ({skeleton.num_joints} joints)")
        poses = kps.astype(np.float64)
        return Track(str(path), poses, np.ones(len(poses), bool), independent=True, name=Path(path).stem,
                     meta={"image_id": image_ids, "score": scores})
    data = load_coco_keypoints(path)
    _check_skeleton(path, "categories", data.skeleton, skeleton)
    sizes = np.full((len(data), 2), np.nan)
    for i, image_id in enumerate(data.image_ids):
        rec = data.images.get(int(image_id), {})
        if isinstance(rec.get("width"), (int, float)) and isinstance(rec.get("height"), (int, float)):
            sizes[i] = (rec["width"], rec["height"])
    poses = data.keypoints.astype(np.float64)
    # v = 0: not labelled; v = 1, 2: labelled (the lifter reads any positive third value as a confidence of 1)
    poses[..., 2] = (poses[..., 2] > 0).astype(np.float64)
    return Track(str(path), poses, np.ones(len(poses), bool), image_sizes=sizes, independent=True,
                 name=Path(path).stem, meta={"image_id": data.image_ids, "ann_id": data.ann_ids})


def _layout(path: object, meta: Any) -> str:
    """The joint order of a VideoPose3D 2D file from its ``metadata`` (``keypoints_symmetry``)."""
    if not isinstance(meta, dict):
        raise field_error(path, "metadata", "expected a pickled dict with 'keypoints_symmetry'")
    try:
        sym = [sorted(int(i) for i in side) for side in meta["keypoints_symmetry"]]
    except (KeyError, TypeError, ValueError):
        raise field_error(path, "metadata.keypoints_symmetry", "missing or not two lists of joint indices") from None
    for name, sk in SKELETONS.items():
        left = [i for i, n in enumerate(sk.joint_names) if n.startswith("left_")]
        right = [i for i, n in enumerate(sk.joint_names) if n.startswith("right_")]
        if sym == [left, right] and sk.num_joints == meta.get("num_joints", sk.num_joints):
            return name
    raise field_error(path, "metadata.keypoints_symmetry", f"{sym} matches no known layout")


def read_videopose3d_2d(path: str | Path, skeleton: Skeleton) -> list[Track]:
    """A VideoPose3D 2D file (``positions_2d``: subject -> action -> 4 camera arrays ``(T, 17, 2 or 3)`` pixels):
    one track per (subject, action, camera), with the camera's image size."""
    pos = read_npz_field(path, "positions_2d", pickled=True)
    if not isinstance(pos, dict):
        raise field_error(path, "positions_2d", f"expected a pickled dict, got {type(pos).__name__}")
    _check_skeleton(path, "metadata.keypoints_symmetry",
                    get_skeleton(_layout(path, read_npz_field(path, "metadata", pickled=True))), skeleton)
    tracks = []
    for subject in sorted(pos, key=lambda s: int(str(s)[1:]) if str(s)[1:].isdigit() else 0):
        for action in sorted(pos[subject]):
            views = pos[subject][action]
            for ci, arr in enumerate(views):
                name = f"positions_2d[{subject}][{action}][{ci}]"
                a = np.asarray(arr)
                if a.ndim != 3 or a.shape[1] != skeleton.num_joints or a.shape[2] not in (2, 3):
                    raise field_error(path, name, f"expected (T, {skeleton.num_joints}, 2 or 3), got {_shape(a)}")
                poses = a.astype(np.float64)
                mask = np.ones(len(a), bool)
                _check_nan(f"{path}: {name}", poses, mask, skeleton)
                entry = H36M_INTRINSICS[ci] if ci < len(H36M_INTRINSICS) else H36M_INTRINSICS[0]
                tracks.append(Track(str(path), _with_conf(poses), mask, (entry["res_w"], entry["res_h"]),
                                    name=f"{subject} {action} {CAMERA_IDS[ci % 4]}",
                                    meta={"subject": subject, "action": str(action), "camera": CAMERA_IDS[ci % 4]}))
    return tracks


def read_mmpose_2d(path: str | Path, skeleton: Skeleton) -> list[Track]:
    """MMPose's ``h36m_*.npz``: one track per (subject, action, camera) of its ``part`` 2D."""
    _check_skeleton(path, "part", get_skeleton("h36m17"), skeleton)
    clips = load_mmpose_h36m(path)
    return [Track(str(path), c.poses_2d.astype(np.float64), np.ones(c.num_frames, bool), c.image_size,
                  name=f"{c.subject} {c.action} {c.camera_id}",
                  meta={"subject": c.subject, "action": c.action, "camera": c.camera_id}) for c in clips]


def read_tracks(path: str | Path, skeleton: Skeleton) -> list[Track]:
    """Any 2D input of ``posetok lift`` (module docstring), as tracks in ``skeleton``'s joint order."""
    p = Path(path)
    if not p.is_file():
        raise PosetokError(f"{path}: input not found")
    if p.suffix.lower() == ".json":
        return [read_coco(p, skeleton)]
    if p.suffix.lower() != ".npz":
        raise PosetokError(f"{path}: expected a COCO keypoint .json or a .npz (a sequence or a Human3.6M file)")
    fields = set(npz_fields(p))
    if "positions_2d" in fields:
        return read_videopose3d_2d(p, skeleton)
    if "imgname" in fields and "part" in fields:
        return read_mmpose_2d(p, skeleton)
    if "positions_3d" in fields:
        raise field_error(p, "positions_2d", "missing: this Human3.6M file holds 3D only (positions_3d); lifting "
                                             "needs the 2D file (data_2d_h36m_*.npz)")
    return [read_sequence(p, skeleton)]


def check_actions(actions: list[str] | None, where: str = "--actions") -> list[str] | None:
    """Human3.6M action names of a filter, merged (``"Directions 1"`` -> ``"Directions"``); unknown: an error."""
    if actions is None:
        return None
    out = []
    for a in actions:
        try:
            out.append(action_name(a))
        except PosetokError as e:
            raise PosetokError(f"{where}: {e}") from None
    return out
