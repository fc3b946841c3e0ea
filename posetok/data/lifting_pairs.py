"""Synthetic 2D -> 3D lifting pairs without Human3.6M: the synthetic human filmed by random static cameras, its 2D
made noisy and incomplete the way a keypoint detector's is.

Bodies
------
* ``frames == 1``: people drawn as :func:`~posetok.data.synthetic.sample_poses` draws them (the same pose-family
  mixture, bone lengths and headings: :func:`~posetok.data.pose_families.sample_kinematics` and
  :func:`~posetok.data.body.forward_kinematics`), in the body's world frame (metres, ``y`` up), lowered so the
  lowest point touches the ground ``y = 0``. ``sample_poses`` itself returns each person in the frame of its own
  photographer's camera (``joints3d``: camera metres, ``y`` down) and one layout only, so the bodies are drawn here
  once and each layout is picked from the same points with :func:`~posetok.data.body.layout_indices`.
* ``frames > 1``: clips of :func:`~posetok.data.motion.simulate_motion` (walk, run, wave, reach, jump, turn,
  transitions) at ``fps``; its ``world`` (metres, ``y`` up, feet on the ground ``y = 0``) is used, not its moving
  camera. One call per layout with the same seed gives the same bodies (the layout only picks points).

Cameras (one static camera per sample, :class:`~posetok.data.h36m_cameras.Camera`, no lens distortion): the
camera stands :data:`DISTANCE_RANGE` metres (horizontally) from the centre of the person's path plus the path's
radius, at any azimuth, :data:`HEIGHT_RANGE` metres above the ground, aimed at the pelvis height with a small
offset (so the person is not always centred) and rolled by a degree or two; focal length :data:`FOCAL_RANGE`
times the image width (Human3.6M: about 1145 px for 1000 px images), principal point within 1 % of the image
width of the centre.

Detector model: each 2D joint gets Gaussian noise of standard deviation
``sigma = noise_px * JOINT_NOISE[joint] * exp(N(0, 0.35)) * exp(N(0, 0.25))`` (per joint and sample, then per
frame), so wrists and ankles are noisier than shoulders and hips, and some people are harder than others. The
confidence falls with the noise, ``conf = 1 / (1 + (sigma / (2 noise_px))^2)`` (1 when ``noise_px == 0``). A joint
is dropped (``x = y = conf = 0``) with probability ``drop_prob`` and whenever its true projection falls outside
the image.
"""

from __future__ import annotations

import numpy as np

from ..errors import PosetokError
from ..skeletons import Skeleton, get_skeleton
from .body import SUPPORTED_SKELETONS, forward_kinematics, layout_indices
from .camera import check_image_size, look_at
from .h36m_cameras import Camera, normalize_screen
from .motion import simulate_motion
from .pose_families import sample_kinematics

__all__ = ["DISTANCE_RANGE", "FOCAL_RANGE", "HEIGHT_RANGE", "JOINT_NOISE", "synthetic_pairs"]

DISTANCE_RANGE = (3.0, 7.0)  # metres, horizontal, camera to the centre of the person's path (+ the path's radius)
HEIGHT_RANGE = (0.6, 2.4)  # metres above the ground (Human3.6M's cameras: about 1.5-1.6)
FOCAL_RANGE = (1.0, 1.2)  # focal length / image width
#: Relative 2D noise of a joint by name (1 where not listed): extremities are the hardest for detectors.
JOINT_NOISE: dict[str, float] = {
    "left_wrist": 1.6, "right_wrist": 1.6, "left_elbow": 1.3, "right_elbow": 1.3,
    "left_ankle": 1.4, "right_ankle": 1.4, "left_foot": 1.4, "right_foot": 1.4,
    "left_knee": 1.2, "right_knee": 1.2, "left_hip": 1.2, "right_hip": 1.2, "root": 1.2, "pelvis": 1.2,
    "nose": 0.8, "left_eye": 0.8, "right_eye": 0.8, "left_ear": 0.9, "right_ear": 0.9, "head": 1.1,
    "head_top": 1.2, "spine": 1.3, "thorax": 1.1,
}  # fmt: skip


def _root_points(points: np.ndarray, sk: Skeleton) -> np.ndarray:
    """``(..., 3)`` root of each pose: the ``root``/``pelvis`` joint, else the hips' midpoint (the same point of
    the model: its pelvis is the midpoint of the hips)."""
    names = sk.joint_names
    for name in ("root", "pelvis"):
        if name in names:
            return points[..., names.index(name), :]
    return (points[..., names.index("left_hip"), :] + points[..., names.index("right_hip"), :]) / 2.0


def _bodies(num: int, frames: int, layouts: list[str], seed_seq: np.random.SeedSequence,
            fps: float) -> dict[str, np.ndarray]:
    """``{layout: (N, T, K, 3)}`` world points (metres, y up, ground y = 0) of the same bodies."""
    if frames == 1:
        rng = np.random.default_rng(seed_seq)
        state = sample_kinematics(num, rng)
        world = forward_kinematics(state.angles, state.bones, state.root_rotation)
        if num:
            world[..., 1] -= world[..., 1].min(axis=1, keepdims=True)
        return {name: world[:, None, layout_indices(name)] for name in layouts}
    motion_seed = int(seed_seq.generate_state(1)[0])
    return {name: simulate_motion(num, frames, name, fps=fps, seed=motion_seed).world.astype(np.float64)
            for name in layouts}


def synthetic_pairs(
    num: int,
    skeleton_2d: str = "h36m17",
    skeleton_3d: str = "h36m17",
    seed: int | None = 0,
    frames: int = 1,
    noise_px: float = 2.0,
    drop_prob: float = 0.02,
    image_size: tuple[int, int] = (1000, 1000),
    fps: float = 50.0,
) -> dict:
    """``num`` synthetic 2D -> 3D training pairs (single poses or clips of ``frames`` frames); see the module
    docstring for the bodies, cameras and detector model.

    Args:
        num: samples (people or clips).
        skeleton_2d: layout of the 2D input (``h36m17``, ``coco17``, ``mpii16``): the same body's points.
        skeleton_3d: layout of the 3D target (default ``h36m17``).
        seed: the same seed gives the same output; ``None`` draws fresh entropy.
        frames: ``T``; ``1`` for single poses, more for motion clips at ``fps``.
        noise_px: typical 2D noise standard deviation, pixels (0 for exact projections).
        drop_prob: probability that a joint is missed (besides joints outside the image).
        image_size: ``(W, H)`` pixels.

    Returns:
        A dict with ``poses_2d`` ``(N, T, K2, 3)`` float32 pixels ``x, y, conf``; ``poses_2d_norm`` the same in
        normalised screen coordinates (:func:`~posetok.data.h36m_cameras.normalize_screen`, dropped joints 0);
        ``poses_2d_clean`` ``(N, T, K2, 2)`` the exact projections; ``noise_sigma`` ``(N, T, K2)`` the noise s.d.
        (pixels); ``dropped`` ``(N, T, K2)`` bool; ``poses_3d`` ``(N, T, K3, 3)`` camera frame, root-relative,
        metres (root: joint 0 of ``h36m17``, the pelvis); ``root_3d`` ``(N, T, 3)`` the root in the camera frame
        (``poses_3d + root_3d[..., None, :]`` projects to ``poses_2d_clean`` when the layouts match);
        ``world_3d`` ``(N, T, K3, 3)`` (metres, y up); ``cameras`` a list of ``N`` :class:`Camera`;
        ``image_size``, ``skeleton_2d``, ``skeleton_3d``, ``fps``.

    Raises:
        PosetokError: unsupported layouts, negative counts, ``frames < 1``, negative noise, ``drop_prob`` outside
            ``[0, 1)``, a bad image size.
    """
    for name in (skeleton_2d, skeleton_3d):
        if name not in SUPPORTED_SKELETONS:
            raise PosetokError(f"synthetic lifting pairs do not support skeleton '{name}'; "
                               f"choose one of {', '.join(SUPPORTED_SKELETONS)}")
    num, frames = int(num), int(frames)
    if num < 0:
        raise PosetokError(f"number of synthetic pairs must be >= 0, got {num}")
    if frames < 1:
        raise PosetokError(f"frames must be >= 1, got {frames}")
    if not float(noise_px) >= 0:
        raise PosetokError(f"noise_px must be >= 0, got {noise_px}")
    if not 0.0 <= float(drop_prob) < 1.0:
        raise PosetokError(f"drop_prob must be in [0, 1), got {drop_prob}")
    if not float(fps) > 0:
        raise PosetokError(f"fps must be > 0, got {fps}")
    w, h = check_image_size(image_size)
    noise_px, drop_prob = float(noise_px), float(drop_prob)
    body_seq, cam_seq = np.random.SeedSequence(seed).spawn(2)
    sk2, sk3 = get_skeleton(skeleton_2d), get_skeleton(skeleton_3d)
    world = _bodies(num, frames, sorted({skeleton_2d, skeleton_3d}), body_seq, float(fps))
    w3, w2 = world[skeleton_3d], world[skeleton_2d]
    rng = np.random.default_rng(cam_seq)

    # Cameras: static, around the centre of the person's path.
    pelvis = _root_points(w3, sk3)  # (N, T, 3)
    centre = pelvis.mean(axis=1)
    radius = np.linalg.norm((pelvis - centre[:, None])[..., [0, 2]], axis=-1).max(axis=1) if num else np.zeros(0)
    dist = rng.uniform(*DISTANCE_RANGE, num) + radius
    az = rng.uniform(-np.pi, np.pi, num)
    eye = np.stack([centre[:, 0] + dist * np.sin(az), rng.uniform(*HEIGHT_RANGE, num),
                    centre[:, 2] + dist * np.cos(az)], axis=-1)  # fmt: skip
    aim = centre + np.stack([rng.normal(0, 0.25, num), rng.normal(0, 0.15, num), rng.normal(0, 0.25, num)], -1)
    rot = look_at(aim - eye, rng.normal(0, 2.0, num)) if num else np.zeros((0, 3, 3))
    focal = rng.uniform(*FOCAL_RANGE, num) * w
    pp = np.array([w / 2.0, h / 2.0]) + rng.normal(0, 0.01 * w, (num, 2))
    cameras = [Camera(R=rot[i], t=eye[i], f=(focal[i], focal[i]), c=pp[i], w=w, h=h, name=f"synthetic{i}")
               for i in range(num)]

    def to_camera(points: np.ndarray) -> np.ndarray:
        return np.einsum("nij,ntkj->ntki", rot, points - eye[:, None, None])

    cam3, cam2 = to_camera(w3), to_camera(w2)
    root = _root_points(cam3, sk3)
    clean = focal[:, None, None, None] * cam2[..., :2] / cam2[..., 2:3] + pp[:, None, None]

    # Detector noise and misses.
    factor = np.array([JOINT_NOISE.get(n, 1.0) for n in sk2.joint_names])
    k2 = sk2.num_joints
    sigma = (noise_px * factor * np.exp(rng.normal(0, 0.35, (num, 1, k2)))
             * np.exp(rng.normal(0, 0.25, (num, frames, k2))))  # fmt: skip
    noisy = clean + sigma[..., None] * rng.standard_normal(clean.shape)
    conf = 1.0 / (1.0 + (sigma / (2.0 * noise_px)) ** 2) if noise_px > 0 else np.ones_like(sigma)
    inside = (clean[..., 0] >= 0) & (clean[..., 0] < w) & (clean[..., 1] >= 0) & (clean[..., 1] < h)
    dropped = (rng.random(sigma.shape) < drop_prob) | ~inside
    poses_2d = np.concatenate([noisy, conf[..., None]], axis=-1)
    poses_2d[dropped] = 0.0
    norm = normalize_screen(poses_2d, w, h)
    norm[dropped] = 0.0

    return {
        "poses_2d": poses_2d.astype(np.float32),
        "poses_2d_norm": norm.astype(np.float32),
        "poses_2d_clean": clean.astype(np.float32),
        "noise_sigma": sigma.astype(np.float32),
        "dropped": dropped,
        "poses_3d": (cam3 - root[..., None, :]).astype(np.float32),
        "root_3d": root.astype(np.float32),
        "world_3d": w3.astype(np.float32),
        "cameras": cameras,
        "image_size": (w, h),
        "skeleton_2d": skeleton_2d,
        "skeleton_3d": skeleton_3d,
        "fps": float(fps),
    }
