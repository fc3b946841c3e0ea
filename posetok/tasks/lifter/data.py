"""The lifter's training data: clips of 2D (pixels) and root-relative 3D (metres) from synthetic pairs, Human3.6M
files or 2D-only sources, cut into windows of ``model.frames`` frames and encoded both ways (image and box rule of
:mod:`posetok.codecs.lifting`), so the training step can pick either per window."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ...codecs.lifting import normalize_2d
from ...data.h36m import H36MClips, load_mmpose_cameras, load_mmpose_h36m, load_videopose3d
from ...data.lifting_pairs import synthetic_pairs
from ...errors import PosetokError
from ...skeletons import get_skeleton
from .inputs import check_actions, read_sequence, read_tracks

REAL_TRACK = Path(__file__).resolve().parents[2] / "assets" / "real_sample" / "sequence_sports2d.npz"
#: Seeds of the synthetic validation and test sets, away from the training seed (unseen people and cameras).
VAL_SEED, TEST_SEED = 1_000_003, 2_000_003


@dataclass
class Clip:
    """One clip (or, ``independent``, a set of separate people).

    Attributes:
        poses_2d: ``(L, K_in, 3)`` pixels ``x, y, conf`` (None for 3D-only data).
        poses_3d: ``(L, K_out, 3)`` root-relative camera-frame metres (None for 2D-only data).
        image_size: ``(w, h)``, or None (box rule only).
    """

    poses_2d: np.ndarray | None
    poses_3d: np.ndarray | None
    image_size: tuple[float, float] | None
    independent: bool = False
    action: str = ""
    subject: str = ""
    name: str = ""

    def __len__(self) -> int:
        return len(self.poses_2d if self.poses_2d is not None else self.poses_3d)


# ----------------------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------------------


def synthetic_clips(m: Any, d: Any, num: int, seed: int, people: int = 0, noise_px: float | None = None,
                    drop_prob: float | None = None, length: int | None = None) -> list[Clip]:
    """``num`` synthetic motion clips of ``data.synthetic_length`` frames (and ``people`` single people as one
    independent clip) in the config's skeletons, with its detector noise unless ``noise_px``/``drop_prob`` say."""
    size = (int(d.image_size[0]), int(d.image_size[1]))
    noise = d.noise_px if noise_px is None else noise_px
    drop = d.drop_prob if drop_prob is None else drop_prob
    clips = []
    if num:
        p = synthetic_pairs(num, m.skeleton_in, m.skeleton_out, seed=seed, frames=length or d.synthetic_length,
                            noise_px=noise, drop_prob=drop, image_size=size)
        clips = [Clip(p["poses_2d"][i], p["poses_3d"][i], size, name=f"synthetic:{seed}:{i}") for i in range(num)]
    if people:
        p = synthetic_pairs(people, m.skeleton_in, m.skeleton_out, seed=seed + 7, frames=1, noise_px=noise,
                            drop_prob=drop, image_size=size)
        clips.append(Clip(p["poses_2d"][:, 0], p["poses_3d"][:, 0], size, independent=True,
                          name=f"synthetic_people:{seed}"))
    return clips


def _h36m(d: Any, split: str) -> H36MClips:
    subjects = list(d.train_subjects if split == "train" else d.test_subjects)
    if d.h36m_3d:
        cams = load_mmpose_cameras(d.cameras)
        try:
            clips = load_videopose3d(d.h36m_3d, d.h36m_2d, subjects=subjects, stride=d.stride, cameras=cams)
        except PosetokError as e:
            if str(e).startswith("cameras:"):  # the camera file lacks a subject of the 3D file: name the file
                raise PosetokError(f"{d.cameras}: {str(e)[len('cameras: '):]}; needed by {d.h36m_3d}") from None
            raise
    else:
        path = d.h36m_train if split == "train" else d.h36m_test
        if not path:
            raise PosetokError(f"config: field 'data.h36m_{split}': required with the MMPose form")
        clips = load_mmpose_h36m(path, d.cameras)
        if d.stride > 1:
            clips = replace(clips, clips=[replace(c, frames=c.frames[::d.stride], poses_2d=c.poses_2d[::d.stride],
                                                  poses_3d=c.poses_3d[::d.stride], root_3d=c.root_3d[::d.stride],
                                                  world_3d=None) for c in clips])
    return clips.filter(subjects=subjects, actions=check_actions(d.actions, "data.actions"))


def h36m_clips(m: Any, d: Any, split: str) -> list[Clip]:
    """The ``split`` (``train``: ``data.train_subjects``, ``test``: ``data.test_subjects``) of the configured
    Human3.6M files, filtered by ``data.actions``."""
    clips = _h36m(d, split)
    source = d.h36m_2d or d.h36m_3d or d.h36m_train
    if clips.skeleton_2d != m.skeleton_in:
        fld = "metadata.keypoints_symmetry" if d.h36m_3d else "part"
        raise PosetokError(f"{source}: field '{fld}': the 2D is in {clips.skeleton_2d} order, model.skeleton_in is "
                           f"{m.skeleton_in}")
    if m.skeleton_out != "h36m17":
        raise PosetokError(f"config: field 'model.skeleton_out': Human3.6M 3D is h36m17, got {m.skeleton_out}")
    if not len(clips):
        subjects = list(d.train_subjects if split == "train" else d.test_subjects)
        raise PosetokError(f"{source}: no clip of subjects {subjects} and actions {d.actions or 'all'}")
    return [Clip(c.poses_2d, c.poses_3d, c.image_size, action=c.action_name, subject=c.subject,
                 name=f"{c.subject} {c.action} {c.camera_id}") for c in clips]


def two_d_clips(sources: list[str], skeleton: str) -> list[Clip]:
    """2D-only sources: COCO keypoint files, sequence ``.npz`` files or folders of them, VideoPose3D 2D files."""
    sk = get_skeleton(skeleton)
    clips: list[Clip] = []
    for src in sources:
        p = Path(src)
        tracks = ([read_sequence(f, sk) for f in sorted(p.rglob("*.npz"))] if p.is_dir() else read_tracks(p, sk))
        if p.is_dir() and not tracks:
            raise PosetokError(f"{src}: field 'data.pretrain_2d': no .npz sequence in this folder")
        for t in tracks:
            poses = t.poses.copy()
            poses[~t.mask] = 0.0
            if t.image_sizes is not None:  # COCO people: one clip per image size (and one without)
                sizes = np.nan_to_num(t.image_sizes, nan=-1.0)
                for key in np.unique(sizes, axis=0):
                    sel = (sizes == key).all(1)
                    size = None if key[0] < 0 else (float(key[0]), float(key[1]))
                    clips.append(Clip(poses[sel], None, size, independent=True, name=t.name))
            else:
                clips.append(Clip(poses, None, t.image_size, independent=t.independent, name=t.name))
    return clips


def real_track_clips(skeleton: str, repeat: int) -> list[Clip]:
    """The bundled real track (COCO-17, no image size: the box rule), ``repeat`` times."""
    if skeleton != "coco17":
        raise PosetokError(f"{REAL_TRACK}: field 'skeleton': the bundled real track is coco17; model.skeleton_in is "
                           f"{skeleton} (set data.real_sample=false)")
    t = read_sequence(REAL_TRACK, get_skeleton("coco17"))
    poses = t.poses.copy()
    poses[~t.mask] = 0.0
    return [Clip(poses, None, None, name="real_track")] * max(1, int(repeat))


def _fraction(clips: list[Clip], fraction: float) -> list[Clip]:
    """The first ``fraction`` of the clips (of the people of an independent clip)."""
    if fraction >= 1.0:
        return clips
    seq = [c for c in clips if not c.independent]
    out = seq[: max(1, math.ceil(fraction * len(seq)))]
    for c in clips:
        if c.independent:
            n = max(1, math.ceil(fraction * len(c)))
            out.append(replace(c, poses_2d=None if c.poses_2d is None else c.poses_2d[:n],
                               poses_3d=None if c.poses_3d is None else c.poses_3d[:n]))
    return out


def build_clips(cfg: Any) -> tuple[list[Clip], list[Clip]]:
    """Training and validation clips of a resolved lifter config (see :mod:`posetok.config.lifter`)."""
    m, d = cfg.model, cfg.data
    h36m = bool(d.h36m_3d or d.h36m_train)
    if m.mapping == "2d_2d" and d.pretrain_2d:
        train = two_d_clips(list(d.pretrain_2d), m.skeleton_in)
    elif h36m:
        train = h36m_clips(m, d, "train")
    else:
        people = d.synthetic_people if m.frames == 1 else 0
        train = synthetic_clips(m, d, d.synthetic_train, d.seed, people)
    if m.mapping == "2d_3d":
        train = _fraction(train, d.train_fraction)
    if d.real_sample and m.mapping == "2d_2d":
        train = train + real_track_clips(m.skeleton_in, d.real_sample_repeat)
    val = h36m_clips(m, d, "test") if h36m else synthetic_clips(m, d, d.synthetic_val, d.seed + VAL_SEED)
    if m.frames > 1:
        single = [c.name for c in train if c.independent]
        if single:
            raise PosetokError(f"{single[0]}: field 'data.pretrain_2d': separate people (a COCO file) cannot train "
                               f"a lifter of model.frames={m.frames}; give sequences, or model.frames=1")
    return train, val


# ----------------------------------------------------------------------------------------------------------
# Windows
# ----------------------------------------------------------------------------------------------------------


class WindowSet(Dataset):
    """Windows of ``frames`` frames over clips (independent people: one window each), held in memory.

    Items: ``image`` and ``box`` ``(T, K_in, 3)`` float32 (the two encodings; ``image`` is the box encoding for
    clips without an image size; for ``3d_3d`` both are the 3D), ``target`` ``(T, K_out, 3)`` root-relative metres
    (zeros without 3D), ``has_image`` bool.

    Args:
        stride: frames between window starts within a clip (a clip shorter than a window gives one window, its
            last frame repeated).
        max_windows: keep at most this many windows, evenly spread (validation).
    """

    def __init__(self, clips: list[Clip], frames: int, stride: int, mapping: str,
                 max_windows: int | None = None) -> None:
        image, box, target, starts, ends, has_image = [], [], [], [], [], []
        offset = 0
        for c in clips:
            n = len(c)
            if mapping == "3d_3d":
                if c.poses_3d is None:
                    raise PosetokError(f"{c.name}: field 'poses_3d': a 3d_3d run needs 3D poses")
                enc_b = enc_i = c.poses_3d.astype(np.float32)
            else:
                enc_b = normalize_2d(c.poses_2d, "box", per_frame=c.independent)[0]
                enc_i = normalize_2d(c.poses_2d, "image", c.image_size)[0] if c.image_size else enc_b
            image.append(enc_i)
            box.append(enc_b)
            if mapping == "2d_3d":
                if c.poses_3d is None:
                    raise PosetokError(f"{c.name}: field 'poses_3d': a 2d_3d run needs 3D poses")
                target.append(c.poses_3d.astype(np.float32))
            if c.independent:
                s = np.arange(n)
                e = s
            else:
                s = np.arange(0, max(n - frames, 0) + 1, max(1, stride))
                e = np.full(len(s), n - 1)
            starts.append(s + offset)
            ends.append(e + offset)
            has_image.append(np.full(len(s), c.image_size is not None))
            offset += n
        self.frames = frames
        self.image = torch.from_numpy(np.concatenate(image)) if image else torch.zeros(0)
        self.box = torch.from_numpy(np.concatenate(box)) if box else torch.zeros(0)
        self.target = torch.from_numpy(np.concatenate(target)) if target else None
        st, en, hi = (np.concatenate(a) if a else np.zeros(0, np.int64) for a in (starts, ends, has_image))
        if max_windows is not None and len(st) > max_windows:
            keep = np.round(np.linspace(0, len(st) - 1, max_windows)).astype(np.int64)
            st, en, hi = st[keep], en[keep], hi[keep]
        self.starts, self.ends = torch.from_numpy(st.astype(np.int64)), torch.from_numpy(en.astype(np.int64))
        self.has_image = torch.from_numpy(hi.astype(bool))
        self._steps = torch.arange(frames)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        idx = torch.minimum(self.starts[i] + self._steps, self.ends[i])
        item = {"image": self.image[idx], "box": self.box[idx], "has_image": self.has_image[i]}
        item["target"] = self.target[idx] if self.target is not None else torch.zeros(self.frames, 1, 3)
        return item
