"""Synthetic pose sequences: the kinematic human of :mod:`posetok.data.body` in motion, filmed by a moving camera.

Each sequence is one person (bone lengths from :func:`~posetok.data.body.sample_bone_lengths`, fixed for the
sequence) doing one motion of :data:`MOTIONS`:

* ``walk``, ``run``: gait cycles of :func:`~posetok.data.pose_primitives.gait_angles` (its per-person amplitudes
  held for the whole sequence), cadence 0.8-1.0 (walk) or 1.3-1.6 (run) cycles/s, forward travel at cadence x stride
  length along the heading, which drifts slowly (gentle curves).
* ``wave``: one or both arms raised and waving (forearm swinging at 1.5-3 Hz, or a straight overhead arm), raised
  from and lowered back to a standing pose.
* ``reach``: reaching out (a pose of the ``reach`` family) and back, every 2.8-4.5 s, the hand opening.
* ``jump``: stand, crouch with the arms swung back, push off with the arms thrown up, ballistic flight (0.3-0.45 s,
  so 11-25 cm high), landing crouch and recovery, every 2.6-3.8 s, a little forward travel while airborne.
* ``turn``: turning on the spot by 60-200 deg at a time with small stepping, the head leading.
* ``transition``: one motion blending into another over 0.6-1.5 s (stand -> walk, walk -> run, run -> walk,
  walk -> stand, stand -> wave, wave -> walk, turn -> walk, walk -> reach); gait cycles share one phase through a
  walk/run blend.

Every sequence also breathes and sways a little and looks around slowly. All angle series are smoothed with a
Gaussian of :data:`SMOOTH_S` seconds and clipped by :func:`~posetok.data.body.clip_to_limits`, so every angle
stays inside :data:`~posetok.data.body.JOINT_LIMITS` (and its couplings). Feet stay on the ground: each frame the
body is lifted so that its lowest toe, heel or ankle touches ``y = 0`` (plus the flight height of a jump).

Frames and units
----------------
* **World** (:attr:`MotionClips.world`): metres, ``y`` up, ground at ``y = 0``; the person starts at the origin
  (``x, z``). Headings (yaw) as in :func:`~posetok.data.body.root_rotation_matrix`.
* **Camera** (``coords="3d"``): metres, ``x`` = image right, ``y`` = image down, ``z`` = optical axis, origin at the
  camera centre of *that frame*: the camera moves, so this frame moves too (as in videos).
* **Image** (``coords="2d"``, ``"2d+conf"``): pixels of an ``image_size = (W, H)`` image, origin at the top-left
  corner, ``u = f x / z + W / 2``. Points outside the image keep their projected coordinates (confidence 0).

The camera (vertical field of view 35-65 deg) looks at the smoothed pelvis position with a slow wandering aim (pan),
from a distance at which the person fills 30-60 % of the image height, which drifts +-6 %/s (dolly), at an azimuth
that drifts up to 12 deg/s (orbit) and an elevation of about 8 +- 8 deg; 40 % of sequences start roughly facing the
camera. A travelling person is followed by the camera's position as far as needed to keep the distance within 25 %.

Confidence (``"2d+conf"``): 1 for visible joints, :data:`OCCLUDED_CONF` for joints hidden by the person's own body
(:func:`~posetok.data.visibility.self_occlusion`), 0 outside the image. :data:`GAP_SHARE` of sequences have a tracking
gap of 2-10 frames: mask False there, poses zero.

Layouts: ``coco17``, ``mpii16``, ``h36m17`` from the model's points, and ``wholebody133``: the COCO body, feet (big toe,
small toe, heel) from the model's toe and heel, 68 face landmarks from a fixed template on the head (rotated with it,
per-person proportions, the jaw opening while talking or breathing hard) and 21 points per hand from a finger-chain
template attached to the wrist in the forearm's orientation, the fingers curling and opening over time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PosetokError
from ..skeletons import get_skeleton
from .body import (
    ANGLE_NAMES,
    JOINT_INDEX,
    JOINT_NAMES,
    clip_to_limits,
    forward_kinematics,
    layout_indices,
    root_rotation_matrix,
    sample_bone_lengths,
)
from .camera import check_image_size, draw_video_camera, video_camera_path
from .motion_kinds import GENERATORS, GRAVITY, MOTIONS, SERIES, ClipContext, SeqDraw, breathe_and_sway
from .pose_primitives import shoulder_rhythm
from .sequences import coords_dims, save_sequence
from .timeseries import gaussian_smooth
from .visibility import self_occlusion
from .wholebody_model import FACE_POINTS, wholebody_extras, wholebody_hidden

__all__ = [
    "GAP_SHARE",
    "GRAVITY",
    "MOTIONS",
    "OCCLUDED_CONF",
    "SMOOTH_S",
    "SUPPORTED_SKELETONS",
    "MotionClips",
    "sample_motion",
    "simulate_motion",
    "write_motion_dataset",
]

SUPPORTED_SKELETONS: tuple[str, ...] = ("coco17", "mpii16", "h36m17", "wholebody133")
OCCLUDED_CONF = 0.3  # confidence of a joint hidden by the person's own body
GAP_SHARE = 0.1  # share of sequences with a tracking gap (mask False)
SMOOTH_S = 0.04  # Gaussian smoothing of every angle series, seconds (removes the gait model's ankle switch)
_CHUNK_FRAMES = 8192  # frames per chunk of the vectorised steps (bounds memory)


@dataclass
class MotionClips:
    """Synthetic sequences with everything that made them.

    Attributes:
        kinds: ``(S,)`` int64 index into :data:`MOTIONS`.
        mask: ``(S, T)`` bool, False in tracking gaps.
        angles: ``(S, T)`` degrees per name of :data:`~posetok.data.body.ANGLE_NAMES`, within the limits.
        root: ``(S, T, 3)`` root yaw, pitch, roll (degrees, :func:`~posetok.data.body.root_rotation_matrix`).
        bones: ``(S,)`` per key of :func:`~posetok.data.body.sample_bone_lengths`.
        world: ``(S, T, K, 3)`` float32 layout joints in the world frame (metres, y up).
        camera: ``(S, T, K, 3)`` float32 layout joints in each frame's camera frame (metres).
        pixels: ``(S, T, K, 2)`` float32 projections (pixels).
        conf: ``(S, T, K)`` float32: 1 visible, :data:`OCCLUDED_CONF` self-occluded, 0 outside the image.
        focal: ``(S,)`` focal length in pixels (principal point at the image centre).
        image_size, fps, skeleton: as requested.
    """

    kinds: np.ndarray
    mask: np.ndarray
    angles: dict[str, np.ndarray]
    root: np.ndarray
    bones: dict[str, np.ndarray]
    world: np.ndarray
    camera: np.ndarray
    pixels: np.ndarray
    conf: np.ndarray
    focal: np.ndarray
    image_size: tuple[int, int]
    fps: float
    skeleton: str

    def poses(self, coords: str) -> np.ndarray:
        """``(S, T, K, D)`` float32 in the file format of :mod:`posetok.data.sequences`, zero in masked frames."""
        coords_dims(coords)
        if coords == "3d":
            out = self.camera.copy()
        elif coords == "2d":
            out = self.pixels.copy()
        else:
            out = np.concatenate([self.pixels, self.conf[..., None]], axis=-1)
        out[~self.mask] = 0.0
        return out.astype(np.float32, copy=False)


def _check_args(num_sequences: int, length: int, skeleton: str, fps: float) -> tuple[int, int, float]:
    if skeleton not in SUPPORTED_SKELETONS:
        raise PosetokError(f"synthetic motion does not support skeleton '{skeleton}'; "
                           f"choose one of {', '.join(SUPPORTED_SKELETONS)}")
    if int(num_sequences) < 0:
        raise PosetokError(f"number of synthetic sequences must be >= 0, got {num_sequences}")
    if int(length) < 1:
        raise PosetokError(f"synthetic sequence length must be >= 1 frame, got {length}")
    if not float(fps) > 0:
        raise PosetokError(f"fps must be > 0, got {fps}")
    return int(num_sequences), int(length), float(fps)


def simulate_motion(
    num_sequences: int,
    length: int,
    skeleton: str = "coco17",
    fps: float = 30.0,
    seed: int | None = 0,
    image_size: tuple[int, int] = (1280, 720),
) -> MotionClips:
    """Draw ``num_sequences`` synthetic clips of ``length`` frames (see the module docstring).

    Kinds are balanced: every motion of :data:`MOTIONS` appears once in every ``len(MOTIONS)`` sequences (in
    random order). The same seed gives the same clips.

    Raises:
        PosetokError: unsupported skeleton, bad counts, fps or image size.
    """
    s_num, t_num, fps = _check_args(num_sequences, length, skeleton, fps)
    w, h = check_image_size(image_size)
    rng = np.random.default_rng(seed)
    wholebody = skeleton == "wholebody133"
    idx = layout_indices("coco17" if wholebody else skeleton)
    k_num = get_skeleton(skeleton).num_joints
    kinds = rng.permutation(np.arange(s_num) % len(MOTIONS)).astype(np.int64)
    t = np.arange(t_num) / fps

    mask = np.ones((s_num, t_num), dtype=bool)
    angles = {name: np.zeros((s_num, t_num)) for name in ANGLE_NAMES}
    root = np.zeros((s_num, t_num, 3))
    bones_all: dict[str, np.ndarray] = {}
    world_out = np.zeros((s_num, t_num, k_num, 3), dtype=np.float32)
    cam_out = np.zeros_like(world_out)
    pix_out = np.zeros((s_num, t_num, k_num, 2), dtype=np.float32)
    conf_out = np.zeros((s_num, t_num, k_num), dtype=np.float32)
    focal = np.zeros(s_num)

    chunk = max(1, _CHUNK_FRAMES // t_num)
    for c0 in range(0, s_num, chunk):
        seqs = range(c0, min(c0 + chunk, s_num))
        series, cams, faces, people = [], [], [], []
        for s in seqs:
            people.append(sample_bone_lengths(1, rng))
            stature = float(people[-1]["stature"][0])
            ctx = ClipContext(t=t, fps=fps, stature=stature, yaw0=float(rng.uniform(-180, 180)))
            d = SeqDraw(rng, t_num)
            p = GENERATORS[MOTIONS[kinds[s]]](d, ctx)
            breathe_and_sway(p, rng, t)
            for name in ANGLE_NAMES:  # every person holds themselves a little differently
                p[name] = p[name] + rng.normal(0, 2.5)
            shoulder_rhythm(p)
            sm = {k: gaussian_smooth(np.asarray(p[k], dtype=np.float64), SMOOTH_S * fps) for k in ANGLE_NAMES + SERIES}
            sm.update(clip_to_limits({k: sm[k] for k in ANGLE_NAMES}))
            sm["left_curl"], sm["right_curl"] = np.clip(sm["left_curl"], 0, 1), np.clip(sm["right_curl"], 0, 1)
            sm["jaw"] = np.clip(sm["jaw"], 0, 20)
            series.append(sm)
            cams.append(draw_video_camera(rng, stature, ctx.yaw0, h))
            # The person's face: proportions +-5 %, each landmark a millimetre or two off the template.
            face = FACE_POINTS * rng.normal(1.0, 0.05, 3).clip(0.88, 1.12) + rng.normal(0, 0.0015, (68, 3))
            faces.append(face)
            if t_num >= 8 and rng.random() < GAP_SHARE:
                gap = int(rng.integers(2, min(10, t_num // 4) + 1))
                start = int(rng.integers(0, t_num - gap + 1))
                mask[s, start:start + gap] = False

        n_seq = len(seqs)
        bones = {k: np.concatenate([b[k] for b in people]) for k in people[0]}
        flat = {k: np.concatenate([sm[k] for sm in series]) for k in ANGLE_NAMES + SERIES}
        bones_flat = {k: np.repeat(v, t_num) for k, v in bones.items()}
        rot0 = root_rotation_matrix(flat["yaw"], flat["pitch"], flat["roll"])
        body = forward_kinematics({k: flat[k] for k in ANGLE_NAMES}, bones_flat, rot0)  # pelvis at the origin
        # Feet on the ground: lift each frame so the lowest foot point touches y = 0, plus any flight height.
        feet = [JOINT_INDEX[f"{s}_{p}"] for s in ("left", "right") for p in ("toe", "heel", "ankle")]
        lift = -body[:, feet, 1].min(axis=1) + flat["air"]
        yaw = np.radians(flat["yaw"]).reshape(n_seq, t_num)
        step = flat["speed"].reshape(n_seq, t_num)[..., None] * np.stack([np.sin(yaw), np.cos(yaw)], -1) / fps
        ground = np.cumsum(step, axis=1) - step[:, :1]
        offset = np.stack([ground[..., 0].ravel(), lift, ground[..., 1].ravel()], -1)
        world = body + offset[:, None]

        rots, centres = [], []
        for j, cp in enumerate(cams):
            pelvis = world[j * t_num:(j + 1) * t_num, JOINT_INDEX["pelvis"]]
            r, c = video_camera_path(cp, pelvis, float(bones["stature"][j]), fps)
            rots.append(r)
            centres.append(c)
        rot = np.concatenate(rots)
        centre = np.concatenate(centres)
        cam = np.einsum("nij,nkj->nki", rot, world - centre[:, None])
        hidden = self_occlusion(cam, np.arange(len(JOINT_NAMES)), bones_flat["stature"], bones_flat["head_scale"])

        lay_world, lay_cam, lay_hidden = world[:, idx], cam[:, idx], hidden[:, idx]
        if wholebody:
            flexed = {k: flat[k] for k in ANGLE_NAMES}
            flexed["left_elbow_flex"] = flexed["left_elbow_flex"] + 10.0
            flexed["right_elbow_flex"] = flexed["right_elbow_flex"] + 10.0
            wrists = [JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]]
            bent = forward_kinematics(flexed, bones_flat, rot0)[:, wrists] + offset[:, None]
            face_flat = np.repeat(np.stack(faces), t_num, axis=0)
            extra = wholebody_extras(world, bent, flat, bones_flat, face_flat)
            extra_cam = np.einsum("nij,nkj->nki", rot, extra - centre[:, None])
            lay_world = np.concatenate([lay_world, extra], axis=1)
            lay_cam = np.concatenate([lay_cam, extra_cam], axis=1)
            lay_hidden = np.concatenate([lay_hidden, wholebody_hidden(cam, extra_cam, hidden)], axis=1)

        f_seq = np.array([cp.focal for cp in cams])
        f_flat = np.repeat(f_seq, t_num)[:, None]
        z = np.maximum(lay_cam[..., 2], 0.05)  # never divide by ~0; such points count as outside below
        u = (f_flat * lay_cam[..., 0] / z + w / 2.0).astype(np.float32)
        v = (f_flat * lay_cam[..., 1] / z + h / 2.0).astype(np.float32)
        inside = (lay_cam[..., 2] > 0.05) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        conf = np.where(inside, np.where(lay_hidden, OCCLUDED_CONF, 1.0), 0.0)

        sl = slice(c0, c0 + n_seq)
        shape = (n_seq, t_num, k_num)
        world_out[sl] = lay_world.reshape(shape + (3,))
        cam_out[sl] = lay_cam.reshape(shape + (3,))
        pix_out[sl] = np.stack([u, v], -1).reshape(shape + (2,))
        conf_out[sl] = conf.reshape(shape)
        focal[sl] = f_seq
        for k in ANGLE_NAMES:
            angles[k][sl] = flat[k].reshape(n_seq, t_num)
        root[sl] = np.stack([flat["yaw"], flat["pitch"], flat["roll"]], -1).reshape(n_seq, t_num, 3)
        for k, v_ in bones.items():
            bones_all.setdefault(k, np.zeros(s_num))[sl] = v_

    if not bones_all:
        bones_all = {k: np.zeros(0) for k in sample_bone_lengths(0, rng)}
    return MotionClips(kinds, mask, angles, root, bones_all, world_out, cam_out, pix_out, conf_out, focal, (w, h),
                       fps, skeleton)


def sample_motion(
    num_sequences: int,
    length: int,
    skeleton: str = "coco17",
    coords: str = "2d+conf",
    fps: float = 30.0,
    seed: int | None = 0,
    image_size: tuple[int, int] = (1280, 720),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic pose sequences in the file format of :mod:`posetok.data.sequences`.

    Args:
        num_sequences: ``S``.
        length: ``T`` frames per sequence.
        skeleton: ``coco17``, ``mpii16``, ``h36m17`` or ``wholebody133``.
        coords: ``"2d"`` (pixels), ``"2d+conf"`` (pixels and confidence) or ``"3d"`` (camera frame, metres).
        fps: frames per second.
        seed: the same seed gives the same output; None draws fresh entropy.
        image_size: ``(W, H)`` pixels.

    Returns:
        ``poses`` ``(S, T, N, D)`` float32 (zero in masked frames), ``mask`` ``(S, T)`` bool and ``kinds``
        ``(S,)`` int64 indices into :data:`MOTIONS`.
    """
    coords_dims(coords)
    clips = simulate_motion(num_sequences, length, skeleton, fps, seed, image_size)
    return clips.poses(coords), clips.mask, clips.kinds


def write_motion_dataset(
    root: str | os.PathLike,
    num_train: int,
    num_val: int,
    num_test: int,
    length: int,
    skeleton: str = "coco17",
    coords: str = "2d+conf",
    seed: int | None = 0,
    fps: float = 30.0,
    image_size: tuple[int, int] = (1280, 720),
) -> None:
    """Write ``root/{train,val,test}/seq_00000.npz ...`` for :func:`~posetok.data.sequences.list_sequences`.

    Each file holds ``poses`` ``(T, N, D)`` float32 and ``mask`` ``(T,)`` bool, plus ``motion`` (the kind's name),
    ``skeleton``, ``coords``, ``fps`` and ``image_size`` for reference. Every split comes from its own random stream
    derived from ``seed``, so splits never share a sequence. Files are written atomically.
    """
    coords_dims(coords)
    streams = np.random.SeedSequence(seed).generate_state(3) if seed is not None else [None] * 3
    for split, num, stream in zip(("train", "val", "test"), (num_train, num_val, num_test), streams):
        split_seed = None if stream is None else int(stream)
        clips = simulate_motion(num, length, skeleton, fps, split_seed, image_size)
        poses = clips.poses(coords)
        folder = Path(root) / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(len(poses)):
            save_sequence(folder / f"seq_{i:05d}.npz", poses[i], clips.mask[i],
                          motion=np.str_(MOTIONS[clips.kinds[i]]), skeleton=np.str_(skeleton),
                          coords=np.str_(coords), fps=np.float64(fps),
                          image_size=np.array(clips.image_size, dtype=np.int64))
