"""Human3.6M as users have it: VideoPose3D ``.npz`` files and MMPose's ``annotation_body3d`` files, read into clips
of matching 2D and camera-frame 3D for 2D-to-3D lifting.

Both readers return :class:`H36MClips`: one :class:`H36MClip` per (subject, action, camera), frames in order, with

* ``poses_3d`` ``(T, 17, 3)``: camera frame, **root-relative** (joint 0, the hip centre, is zero), metres;
* ``root_3d`` ``(T, 3)``: the root in the camera frame, metres (the trajectory), so ``poses_3d + root_3d[:, None]``
  is the absolute camera-frame pose;
* ``poses_2d`` ``(T, 17, 3)``: pixels ``x, y`` and a confidence (1 for ground truth);
* ``world_3d`` ``(T, 17, 3)``: world metres (``z`` up) where the extrinsics or the file give it.

Joints are :data:`~posetok.skeletons.H36M17` (the 17 of the 32 mocap joints in :data:`H36M_32_TO_17`); a
VideoPose3D 2D file in COCO order (its Detectron files) gives ``skeleton_2d = "coco17"``. Frames and the
distortion model are those of :mod:`posetok.data.h36m_cameras` (re-exported here: :class:`Camera`,
:func:`normalize_screen`, :func:`load_mmpose_cameras`, ...).

Sources (see ``lifting.md``):

* :func:`load_videopose3d`: ``data_3d_h36m.npz`` (``positions_3d``: subject -> action -> ``(T, 32, 3)`` world
  metres) and optionally a 2D file (``positions_2d``: subject -> action -> 4 arrays ``(T, 17, 2)`` pixels, and
  ``metadata``). The world -> camera transform needs each subject's extrinsics: pass ``cameras=`` (e.g.
  :func:`load_mmpose_cameras`, or cameras built with :meth:`Camera.from_videopose3d` from VideoPose3D's tables).
* :func:`load_mmpose_h36m`: ``h36m_{train,test}.npz`` (``imgname``, ``part``, ``S`` in camera metres), with
  ``cameras.pkl`` optionally for the cameras and the world 3D.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import PosetokError, field_error
from ..skeletons import COCO17, H36M17
from .archives import read_npz_field
from .h36m_cameras import (
    ALL_SUBJECTS,
    CAMERA_IDS,
    H36M_INTRINSICS,
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    Camera,
    denormalize_screen,
    intrinsics_camera,
    load_mmpose_cameras,
    matrix_to_quaternion,
    normalize_screen,
    quaternion_to_matrix,
)

__all__ = [
    "ACTIONS", "ALL_SUBJECTS", "CAMERA_IDS", "FPS", "H36M_32_TO_17", "H36M_INTRINSICS", "TEST_SUBJECTS",
    "TRAIN_SUBJECTS", "Camera", "H36MClip", "H36MClips", "action_name", "denormalize_screen", "intrinsics_camera",
    "load_mmpose_cameras", "load_mmpose_h36m", "load_videopose3d", "matrix_to_quaternion", "normalize_screen",
    "parse_imgname", "quaternion_to_matrix",
]  # fmt: skip

FPS = 50.0  # Human3.6M mocap and video frame rate
#: The 17 joints kept from the 32 of the mocap, in :data:`~posetok.skeletons.H36M17` order.
H36M_32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
#: The 15 actions of the protocol (sub-actions merged), VideoPose3D's spellings.
ACTIONS: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases", "Sitting",
    "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)  # fmt: skip
_SPELLINGS = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}
# keypoints_symmetry of VideoPose3D metadata -> layout: left joints, right joints.
_SYMMETRY = {
    "h36m17": ([4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]),
    "coco17": ([1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]),
}
assert {tuple(sorted(p)) for p in zip(*_SYMMETRY["h36m17"])} == set(H36M17.flip_pairs)
assert {tuple(sorted(p)) for p in zip(*_SYMMETRY["coco17"])} == set(COCO17.flip_pairs)


def action_name(key: str) -> str:
    """The protocol action of a file's action key: sub-actions merged (``"Directions 1"`` -> ``"Directions"``,
    ``"Directions_1"`` too) and the original spellings mapped to VideoPose3D's (``"TakingPhoto"`` -> ``"Photo"``,
    ``"WalkingDog 1"`` -> ``"WalkDog"``).

    Raises:
        PosetokError: not one of the 15 :data:`ACTIONS`.
    """
    base = re.split(r"[ _]", str(key).strip(), maxsplit=1)[0]
    base = _SPELLINGS.get(base, base)
    if base not in ACTIONS:
        raise PosetokError(f"unknown Human3.6M action '{key}'; the actions are {', '.join(ACTIONS)}")
    return base


def _subject_order(s: str) -> int:
    return int(s[1:])


def _check_subject(subject: object, where: str) -> str:
    if subject not in ALL_SUBJECTS:
        raise PosetokError(f"{where}: unknown subject {subject!r}; Human3.6M subjects are S1-S11 (e.g. 'S1')")
    return str(subject)


# ----------------------------------------------------------------------------------------------------------
# Clips
# ----------------------------------------------------------------------------------------------------------


@dataclass
class H36MClip:
    """One (subject, action, camera) sequence; see the module docstring for the arrays' frames and units.

    Attributes:
        subject: ``"S1"``...; action: the file's key (``"Directions 1"``); camera_index: 0-3, or ``None`` for a
            world-only clip (no 2D and no cameras); camera_id: ``"54138969"``... or ``None``.
        camera: the calibrated camera (intrinsics and this subject's extrinsics), ``None`` when unknown.
        image_size: ``(w, h)`` pixels of the camera's images.
        frames: ``(T,)`` int64 frame numbers in the 50 fps video, from 0.
        poses_2d, poses_3d, root_3d, world_3d: float32 arrays, or ``None`` where the sources do not give them.
    """

    subject: str
    action: str
    camera_index: int | None
    camera_id: str | None
    camera: Camera | None
    image_size: tuple[int, int] | None
    frames: np.ndarray
    poses_2d: np.ndarray | None = None
    poses_3d: np.ndarray | None = None
    root_3d: np.ndarray | None = None
    world_3d: np.ndarray | None = None

    @property
    def action_name(self) -> str:
        """The merged protocol action (:func:`action_name`)."""
        return action_name(self.action)

    @property
    def num_frames(self) -> int:
        return int(len(self.frames))

    def poses_2d_normalized(self) -> np.ndarray:
        """``(T, 17, 3)`` float32 2D in normalised screen coordinates (:func:`normalize_screen`), confidence kept."""
        if self.poses_2d is None or self.image_size is None:
            raise PosetokError(f"clip {self.subject} '{self.action}': no 2D keypoints to normalise")
        return normalize_screen(self.poses_2d, *self.image_size).astype(np.float32)

    def reprojection_error(self) -> float:
        """Mean pixel distance between the 2D and the projection of the 3D through :attr:`camera` (a check of the
        cameras and the tangential order: below a pixel for ground-truth 2D)."""
        if self.camera is None or self.poses_2d is None or self.poses_3d is None:
            raise PosetokError(f"clip {self.subject} '{self.action}': needs a camera, 2D and camera-frame 3D")
        proj = self.camera.project(self.poses_3d + self.root_3d[:, None])
        return float(np.linalg.norm(proj - self.poses_2d[..., :2], axis=-1).mean())


@dataclass
class H36MClips:
    """Clips read from one source. Iterable and indexable; :meth:`split`, :meth:`filter`, :meth:`concat`.

    Attributes:
        clips: the clips, by subject number, action key and camera.
        source: ``"videopose3d"`` or ``"mmpose"``.
        skeleton_2d: layout of ``poses_2d`` (``"h36m17"``, or ``"coco17"`` for a COCO-order 2D file).
        fps: frame rate after the stride / sampling (50 / step).
        paths: the files read.
    """

    clips: list[H36MClip]
    source: str
    skeleton_2d: str = "h36m17"
    fps: float = FPS
    paths: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self) -> Iterator[H36MClip]:
        return iter(self.clips)

    def __getitem__(self, i: int) -> H36MClip:
        return self.clips[i]

    @property
    def subjects(self) -> list[str]:
        return sorted({c.subject for c in self.clips}, key=_subject_order)

    @property
    def num_frames(self) -> int:
        return sum(c.num_frames for c in self.clips)

    def filter(self, subjects: Sequence[str] | None = None, actions: Sequence[str] | None = None,
               cameras: Sequence[int] | None = None) -> H36MClips:
        """The clips of these subjects, merged actions (:data:`ACTIONS`) and camera indices."""
        if actions is not None:
            for a in actions:
                action_name(a)
        keep = [
            c for c in self.clips
            if (subjects is None or c.subject in subjects)
            and (actions is None or c.action_name in {action_name(a) for a in actions})
            and (cameras is None or c.camera_index in cameras)
        ]  # fmt: skip
        return replace(self, clips=keep)

    def split(self, name: str) -> H36MClips:
        """``"train"`` (S1, S5, S6, S7, S8) or ``"test"`` (S9, S11)."""
        if name not in ("train", "test"):
            raise PosetokError(f"unknown Human3.6M split '{name}'; choose train or test")
        return self.filter(subjects=TRAIN_SUBJECTS if name == "train" else TEST_SUBJECTS)

    def concat(self) -> dict[str, np.ndarray]:
        """All frames of all clips stacked (for single-frame lifters and per-action scoring).

        Returns:
            ``poses_2d`` ``(N, 17, 3)`` pixels + conf, ``poses_2d_norm`` (normalised screen + conf), ``poses_3d``
            ``(N, 17, 3)`` camera root-relative metres, ``root_3d`` ``(N, 3)``, ``clip`` ``(N,)`` clip index,
            ``frame`` ``(N,)``, ``action`` ``(N,)`` merged action names, ``subject`` ``(N,)``.

        Raises:
            PosetokError: a clip lacks 2D or camera-frame 3D (VideoPose3D files read without ``cameras``).
        """
        for c in self.clips:
            if c.poses_2d is None or c.poses_3d is None:
                raise PosetokError(f"clip {c.subject} '{c.action}' camera {c.camera_id}: no "
                                   f"{'2D' if c.poses_2d is None else 'camera-frame 3D'}; camera-frame 3D needs "
                                   "the extrinsics: pass cameras= (e.g. load_mmpose_cameras('cameras.pkl'))")
        empty3 = np.zeros((0, 17, 3), np.float32)
        return {
            "poses_2d": np.concatenate([c.poses_2d for c in self.clips]) if self.clips else empty3,
            "poses_2d_norm": np.concatenate([c.poses_2d_normalized() for c in self.clips]) if self.clips else empty3,
            "poses_3d": np.concatenate([c.poses_3d for c in self.clips]) if self.clips else empty3,
            "root_3d": np.concatenate([c.root_3d for c in self.clips]) if self.clips else np.zeros((0, 3), np.float32),
            "clip": np.repeat(np.arange(len(self.clips)), [c.num_frames for c in self.clips]),
            "frame": np.concatenate([c.frames for c in self.clips]) if self.clips else np.zeros(0, np.int64),
            "action": np.array([c.action_name for c in self.clips for _ in range(c.num_frames)], dtype=str),
            "subject": np.array([c.subject for c in self.clips for _ in range(c.num_frames)], dtype=str),
        }


def _camera_frame(clip: H36MClip, cam_world: np.ndarray) -> None:
    """Fill ``poses_3d`` and ``root_3d`` from camera-frame points ``(T, 17, 3)``."""
    clip.root_3d = cam_world[:, 0].astype(np.float32)
    clip.poses_3d = (cam_world - cam_world[:, :1]).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# VideoPose3D files
# ----------------------------------------------------------------------------------------------------------


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + (",)" if a.ndim == 1 else ")")


def _pose_array(value: object, path: object, name: str, dims: tuple[int, ...], joints: tuple[int, ...]) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
        raise field_error(path, name, f"expected a numeric array, got {type(value).__name__}"
                                      + (f" of dtype {value.dtype}" if isinstance(value, np.ndarray) else ""))
    if value.ndim != 3 or value.shape[1] not in joints or value.shape[2] not in dims:
        want = " or ".join(f"(T, {j}, {'/'.join(map(str, dims))})" for j in joints)
        raise field_error(path, name, f"expected shape {want}, got {_shape(value)}")
    if not np.isfinite(value).all():
        raise field_error(path, name, "NaN or infinite values")
    return value


def _check_dict(value: object, path: object, name: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise field_error(path, name, f"expected a pickled dict of {what}, got {type(value).__name__}")
    return value


def _layout_from_metadata(path: object, layout_2d: str | None) -> str:
    if layout_2d is not None:
        if layout_2d not in _SYMMETRY:
            raise PosetokError(f"unknown 2D layout '{layout_2d}'; choose one of {', '.join(_SYMMETRY)}")
        return layout_2d
    try:
        meta = read_npz_field(path, "metadata", pickled=True)
    except PosetokError as e:
        raise PosetokError(f"{e}; pass layout_2d='h36m17' or 'coco17' to say the joint order") from None
    meta = _check_dict(meta, path, "metadata", "'num_joints' and 'keypoints_symmetry'")
    if meta.get("num_joints") != 17:
        raise field_error(path, "metadata.num_joints", f"expected 17, got {meta.get('num_joints')!r}")
    try:
        sym = tuple([int(i) for i in side] for side in meta["keypoints_symmetry"])
    except (KeyError, TypeError, ValueError):
        raise field_error(path, "metadata.keypoints_symmetry", "missing or not two lists of joint indices") from None
    for name, pattern in _SYMMETRY.items():
        if sym == pattern:
            return name
    raise field_error(path, "metadata.keypoints_symmetry", f"{[list(s) for s in sym]} matches neither the H36M-17 "
                                                           f"{list(_SYMMETRY['h36m17'])} nor the COCO-17 order")


def load_videopose3d(
    path_3d: str | os.PathLike,
    path_2d: str | os.PathLike | None = None,
    subjects: Sequence[str] | None = None,
    stride: int = 1,
    cameras: dict[tuple[str, str], Camera] | None = None,
    layout_2d: str | None = None,
) -> H36MClips:
    """Read VideoPose3D's Human3.6M files.

    Args:
        path_3d: ``data_3d_h36m.npz`` (``positions_3d``: subject -> action -> ``(T, 32, 3)`` world metres; 17-joint
            arrays are taken as already selected).
        path_2d: optionally ``data_2d_h36m_gt.npz``, ``data_2d_h36m_cpn_ft_h36m_dbb.npz``...: ``positions_2d``
            (subject -> action -> 4 arrays ``(T, 17, 2)`` pixels, or ``(T, 17, 3)`` with a score) and ``metadata``.
            2D sequences longer than the mocap are trimmed to it; subjects without 3D (S2-S4) are skipped.
        subjects: subjects to read (default: all of the 3D file).
        stride: keep every ``stride``-th frame.
        cameras: ``{(subject, camera_id): Camera}`` with the extrinsics (e.g. :func:`load_mmpose_cameras`); gives
            ``poses_3d``/``root_3d``, and the 2D by projection when ``path_2d`` is not given.
        layout_2d: the 2D joint order when the file has no ``metadata`` (``"h36m17"`` or ``"coco17"``).

    Returns:
        One clip per (subject, action, camera) when 2D or cameras are given, else one world-only clip per
        (subject, action); ``world_3d`` always.

    Raises:
        PosetokError: one line naming the file and the field: missing files or fields, fields that are not
            pickled dicts, wrong shapes, unknown subjects or actions, a 2D sequence shorter than the mocap, a
            camera missing from ``cameras``.
    """
    stride = int(stride)
    if stride < 1:
        raise PosetokError(f"stride must be >= 1, got {stride}")
    pos3d = _check_dict(read_npz_field(path_3d, "positions_3d", pickled=True), path_3d, "positions_3d",
                        "subject -> action -> (T, 32, 3) arrays")
    for s in pos3d:
        _check_subject(s, f"{path_3d}: field 'positions_3d'")
    chosen = sorted(pos3d, key=_subject_order) if subjects is None else list(subjects)
    for s in chosen:
        _check_subject(s, "subjects")
        if s not in pos3d:
            raise field_error(path_3d, "positions_3d", f"has no subject '{s}'; it has {', '.join(sorted(pos3d))}")

    pos2d, layout = None, "h36m17"
    if path_2d is not None:
        pos2d = _check_dict(read_npz_field(path_2d, "positions_2d", pickled=True), path_2d, "positions_2d",
                            "subject -> action -> lists of 4 (T, 17, 2) arrays")
        layout = _layout_from_metadata(path_2d, layout_2d)
    with_cameras = pos2d is not None or cameras is not None

    clips: list[H36MClip] = []
    for s in chosen:
        acts = _check_dict(pos3d[s], path_3d, f"positions_3d[{s}]", "action -> (T, 32, 3) arrays")
        for a in sorted(acts):
            name3 = f"positions_3d[{s}][{a}]"
            try:
                action_name(a)
            except PosetokError as e:
                raise field_error(path_3d, name3, str(e)) from None
            arr = _pose_array(acts[a], path_3d, name3, (3,), (32, 17)).astype(np.float64)
            world = arr[:, list(H36M_32_TO_17)] if arr.shape[1] == 32 else arr
            n = len(world)
            frames = np.arange(0, n, stride, dtype=np.int64)
            world = world[frames]
            if not with_cameras:
                clips.append(H36MClip(s, a, None, None, None, None, frames, world_3d=world.astype(np.float32)))
                continue
            views = None
            if pos2d is not None:
                name2 = f"positions_2d[{s}][{a}]"
                if s not in pos2d:
                    raise field_error(path_2d, f"positions_2d[{s}]", "missing: the 3D file has this subject")
                acts2 = _check_dict(pos2d[s], path_2d, f"positions_2d[{s}]", "action -> lists of 4 arrays")
                if a not in acts2:
                    raise field_error(path_2d, name2, "missing: the 3D file has this action")
                views = acts2[a]
                listy = isinstance(views, (list, tuple, np.ndarray))
                if not listy or len(views) != len(CAMERA_IDS):
                    got = f"{len(views)} items" if listy else type(views).__name__
                    raise field_error(path_2d, name2, f"expected a list of {len(CAMERA_IDS)} camera arrays, got {got}")
            for ci, cid in enumerate(CAMERA_IDS):
                cam = None
                if cameras is not None:
                    if (s, cid) not in cameras:
                        raise PosetokError(f"cameras: no camera for ({s!r}, {cid!r}); it has {len(cameras)} cameras, "
                                           f"e.g. {sorted(cameras)[:2]}")
                    cam = cameras[(s, cid)]
                entry = H36M_INTRINSICS[ci]
                size = (cam.w, cam.h) if cam is not None else (entry["res_w"], entry["res_h"])
                clip = H36MClip(s, a, ci, cid, cam, size, frames, world_3d=world.astype(np.float32))
                if cam is not None:
                    _camera_frame(clip, cam.world_to_camera(world))
                if views is not None:
                    name = f"positions_2d[{s}][{a}][{ci}]"
                    kp = _pose_array(views[ci], path_2d, name, (2, 3), (17,))
                    if len(kp) < n:
                        raise field_error(path_2d, name, f"has {len(kp)} frames, fewer than the {n} of the mocap "
                                                         f"({path_3d})")
                    kp = kp[:n][frames].astype(np.float32)
                    conf = kp[..., 2:3] if kp.shape[2] == 3 else np.ones(kp.shape[:2] + (1,), np.float32)
                    clip.poses_2d = np.concatenate([kp[..., :2], conf], axis=-1)
                elif cam is not None:
                    xy = cam.project(clip.poses_3d.astype(np.float64) + clip.root_3d[:, None])
                    clip.poses_2d = np.concatenate([xy, np.ones(xy.shape[:2] + (1,))], axis=-1).astype(np.float32)
                clips.append(clip)
    paths = (str(path_3d),) + (() if path_2d is None else (str(path_2d),))
    return H36MClips(clips, "videopose3d", layout, FPS / stride, paths)


# ----------------------------------------------------------------------------------------------------------
# MMPose files
# ----------------------------------------------------------------------------------------------------------

_IMGNAME = re.compile(r"^(S\d+)_(.+)\.(\d+)_(\d+)\.(?:jpg|jpeg|png)$", re.IGNORECASE)


def parse_imgname(name: str) -> tuple[str, str, str, int]:
    """``(subject, action key, camera id, frame from 0)`` of an MMPose image name, e.g.
    ``"S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg"`` -> ``("S1", "Directions 1",
    "54138969", 0)`` (the file numbers frames from 1; underscores in the action become spaces).

    Raises:
        ValueError: the name does not have this form.
    """
    m = _IMGNAME.match(Path(str(name).replace("\\", "/")).name)
    if m is None:
        raise ValueError(f"expected 'S<n>_<Action>[_<sub>].<camera id>_<frame>.jpg', got {name!r}")
    subject, action, cam, frame = m.groups()
    return subject, action.replace("_", " "), cam, int(frame) - 1


def load_mmpose_h36m(npz_path: str | os.PathLike, cameras_pkl: str | os.PathLike | None = None) -> H36MClips:
    """Read MMPose's ``annotation_body3d/fps*/h36m_{train,test}.npz``, grouped into (subject, action, camera)
    clips in frame order.

    Fields used: ``imgname`` ``(N,)``, ``part`` ``(N, 17, 3)`` pixels + visibility (the third channel becomes
    the confidence), ``S`` ``(N, 17, 4)`` (or 3) camera-frame metres + visibility. ``center``/``scale`` (image
    crops) are not needed for lifting. With ``cameras_pkl`` (``cameras.pkl``) each clip gets its camera and
    ``world_3d``; without it ``camera`` is ``None`` and ``world_3d`` too (the file has no extrinsics).

    Raises:
        PosetokError: one line naming the file and the field (missing fields, wrong shapes, bad image names,
            unknown subjects/cameras/actions, duplicate frames, a camera missing from ``cameras.pkl``).
    """
    imgname = read_npz_field(npz_path, "imgname", pickled=False)
    part = read_npz_field(npz_path, "part", pickled=False)
    s3d = read_npz_field(npz_path, "S", pickled=False)
    if imgname.ndim != 1 or imgname.dtype.kind not in "US":
        raise field_error(npz_path, "imgname", f"expected (N,) strings, got dtype {imgname.dtype} shape "
                                               f"{_shape(imgname)}")
    n = len(imgname)
    part = _pose_array(part, npz_path, "part", (3, 2), (17,))
    s3d = _pose_array(s3d, npz_path, "S", (4, 3), (17,))
    for name, arr in (("part", part), ("S", s3d)):
        if len(arr) != n:
            raise field_error(npz_path, name, f"has {len(arr)} rows, 'imgname' has {n}")
    cams = load_mmpose_cameras(cameras_pkl) if cameras_pkl is not None else None

    groups: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for i, raw in enumerate(imgname):
        raw = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            subject, action, cam_id, frame = parse_imgname(raw)
            _check_subject(subject, "imgname")
            action_name(action)
        except (ValueError, PosetokError) as e:
            raise field_error(npz_path, f"imgname[{i}]", str(e)) from None
        if cam_id not in CAMERA_IDS:
            raise field_error(npz_path, f"imgname[{i}]", f"unknown camera id '{cam_id}' in {raw!r}; Human3.6M has "
                                                         f"{', '.join(CAMERA_IDS)}")
        groups.setdefault((subject, action, cam_id), []).append((frame, i))

    clips, steps = [], []
    for subject, action, cam_id in sorted(groups, key=lambda k: (_subject_order(k[0]), k[1], k[2])):
        rows = sorted(groups[(subject, action, cam_id)])
        frames = np.array([f for f, _ in rows], dtype=np.int64)
        idx = np.array([i for _, i in rows])
        dup = np.flatnonzero(np.diff(frames) == 0)
        if dup.size:
            raise field_error(npz_path, f"imgname[{int(idx[dup[0] + 1])}]", f"frame {int(frames[dup[0]]) + 1} of "
                                                                           f"{subject} '{action}' camera {cam_id} "
                                                                           f"appears twice")
        steps.extend(np.diff(frames).tolist())
        cam = None
        if cams is not None:
            if (subject, cam_id) not in cams:
                raise PosetokError(f"{cameras_pkl}: no camera ({subject!r}, {cam_id!r}), needed by {npz_path}")
            cam = cams[(subject, cam_id)]
        ci = CAMERA_IDS.index(cam_id)
        entry = H36M_INTRINSICS[ci]
        size = (cam.w, cam.h) if cam is not None else (entry["res_w"], entry["res_h"])
        kp = part[idx].astype(np.float32)
        conf = kp[..., 2:3] if kp.shape[2] == 3 else np.ones(kp.shape[:2] + (1,), np.float32)
        clip = H36MClip(subject, action, ci, cam_id, cam, size, frames,
                        poses_2d=np.concatenate([kp[..., :2], conf], axis=-1))
        xyz = s3d[idx, :, :3].astype(np.float64)
        _camera_frame(clip, xyz)
        if cam is not None:
            clip.world_3d = cam.camera_to_world(xyz).astype(np.float32)
        clips.append(clip)
    step = float(np.median(steps)) if steps else 1.0
    paths = (str(npz_path),) + (() if cameras_pkl is None else (str(cameras_pkl),))
    return H36MClips(clips, "mmpose", "h36m17", FPS / max(step, 1.0), paths)
