"""The mixture of synthetic pose families: family names and weights, the random family, and drawing a batch
of people (family, bone lengths, joint angles, root orientation) as a :class:`KinematicState`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import PosetokError
from .body import (
    ANGLE_NAMES,
    JOINT_INDEX,
    JOINT_LIMITS,
    STATURE_MEAN,
    clip_to_limits,
    forward_kinematics,
    mean_bone_lengths,
    root_rotation_matrix,
    sample_bone_lengths,
    shoulder_elevation_range,
)
from .everyday_poses import (
    arms_raised_pose,
    bend_pose,
    crouch_pose,
    lie_pose,
    reach_pose,
    sit_pose,
    stand_pose,
    walk_pose,
)
from .pose_primitives import Draw, Pose, shoulder_rhythm
from .sports_poses import athletic_pose, run_pose

#: Pose families, in the order of ``SyntheticPoses.families`` indices.
FAMILIES: tuple[str, ...] = (
    "stand", "walk", "run", "sit", "crouch", "reach", "arms_raised", "bend", "lie", "athletic", "random",
)  # fmt: skip
#: Mixture weights of :data:`FAMILIES` (sum 1). Running and athletic poses are weighted up: sports footage
#: is where pose models and tokenizers meet the largest joint angles.
FAMILY_WEIGHTS: dict[str, float] = {
    "stand": 0.12, "walk": 0.12, "run": 0.15, "sit": 0.09, "crouch": 0.09, "reach": 0.07, "arms_raised": 0.07,
    "bend": 0.06, "lie": 0.05, "athletic": 0.10, "random": 0.08,
}  # fmt: skip


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` distance from points ``p`` to segments ``a-b`` (all ``(N, 3)``)."""
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=-1)


def _collisions(p: Pose) -> dict[str, np.ndarray]:
    """Per limb (``left_arm``, ``right_arm``, ``legs``), people whose limb passes through the body, checked on
    a body of mean proportions: elbow or wrist inside the trunk, a knee or ankle inside the other leg."""
    n = len(p["pitch"])
    pts = forward_kinematics(clip_to_limits({k: p[k] for k in ANGLE_NAMES}), mean_bone_lengths(n))
    pelvis, thorax = pts[:, JOINT_INDEX["pelvis"]], pts[:, JOINT_INDEX["thorax"]]
    out = {}
    for side in ("left", "right"):
        hit = np.zeros(n, dtype=bool)
        for joint in ("elbow", "wrist"):
            hit |= _segment_distance(pts[:, JOINT_INDEX[f"{side}_{joint}"]], pelvis, thorax) < 0.05 * STATURE_MEAN
        out[f"{side}_arm"] = hit
    legs = np.zeros(n, dtype=bool)
    for side, other in (("left", "right"), ("right", "left")):
        for joint in ("knee", "ankle"):
            q = pts[:, JOINT_INDEX[f"{side}_{joint}"]]
            for a, b in (("hip", "knee"), ("knee", "ankle")):
                seg = _segment_distance(q, pts[:, JOINT_INDEX[f"{other}_{a}"]], pts[:, JOINT_INDEX[f"{other}_{b}"]])
                legs |= seg < 0.04 * STATURE_MEAN
    out["legs"] = legs
    return out


def random_pose(d: Draw) -> Pose:
    """Every angle uniform within its limits (trunk and neck within the inner half, where people spend
    their time), a moderately tilted root; limbs through the body are drawn again (a few rounds)."""
    p = {name: d.u(lo, hi) for name, (lo, hi) in JOINT_LIMITS.items()}
    for name in ("spine_flex", "spine_lateral", "spine_twist", "neck_flex", "neck_lateral", "head_lateral"):
        lo, hi = JOINT_LIMITS[name]
        mid, half = (lo + hi) / 2, (hi - lo) / 4
        p[name] = d.u(mid - half, mid + half)
    p["pitch"] = d.g(0, 20)
    p["roll"] = d.g(0, 10)
    for side in ("left", "right"):
        lo, hi = shoulder_elevation_range(p[f"{side}_shoulder_plane"])
        p[f"{side}_shoulder_elevation"] = lo + (hi - lo) * d.u(0, 1)
    arm = ("shoulder_elevation", "shoulder_plane", "shoulder_rotation", "elbow_flex")
    leg = ("hip_flex", "hip_abduction", "hip_rotation", "knee_flex")
    limb_angles = {f"{side}_arm": [f"{side}_{k}" for k in arm] for side in ("left", "right")}
    limb_angles["legs"] = [f"{side}_{k}" for side in ("left", "right") for k in leg]
    for _ in range(4):
        hits = _collisions(p)
        for limb, names in limb_angles.items():
            for name in names:
                p[name] = np.where(hits[limb], d.u(*JOINT_LIMITS[name]), p[name])
            if limb.endswith("arm"):
                plane, elev = names[1], names[0]
                lo, hi = shoulder_elevation_range(p[plane])
                p[elev] = np.where(hits[limb], lo + (hi - lo) * d.u(0, 1), p[elev])
    return p


_SAMPLERS: dict[str, Callable[[Draw], Pose]] = {
    "stand": stand_pose, "walk": walk_pose, "run": run_pose, "sit": sit_pose, "crouch": crouch_pose,
    "reach": reach_pose, "arms_raised": arms_raised_pose, "bend": bend_pose, "lie": lie_pose,
    "athletic": athletic_pose, "random": random_pose,
}  # fmt: skip

# Independent noise added to every family's angles (degrees): people never hit the prototype exactly.
_ANGLE_NOISE_SD = 4.0


@dataclass
class KinematicState:
    """A batch of people as kinematic parameters, the input of :func:`~posetok.data.body.forward_kinematics`.

    Attributes:
        angles: ``(N,)`` degrees per name of :data:`~posetok.data.body.ANGLE_NAMES`, within
            :data:`~posetok.data.body.JOINT_LIMITS`.
        bones: lengths from :func:`~posetok.data.body.sample_bone_lengths`.
        root_rotation: ``(N, 3, 3)`` pelvis orientation in the world (y up).
        families: ``(N,)`` index into :data:`FAMILIES`.
    """

    angles: dict[str, np.ndarray]
    bones: dict[str, np.ndarray]
    root_rotation: np.ndarray
    families: np.ndarray


def sample_angles(families: np.ndarray, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Joint angles for people of the given families.

    Args:
        families: ``(N,)`` indices into :data:`FAMILIES`.

    Returns:
        ``angles`` (``(N,)`` degrees per name of :data:`~posetok.data.body.ANGLE_NAMES`, clipped to the limits
        and couplings of :func:`~posetok.data.body.clip_to_limits`) and ``(N, 2)`` root ``(pitch, roll)`` in
        degrees (see :func:`~posetok.data.body.root_rotation_matrix`).
    """
    families = np.asarray(families, dtype=np.intp)
    n = len(families)
    angles = {name: np.zeros(n) for name in ANGLE_NAMES}
    root = np.zeros((n, 2))
    for f, name in enumerate(FAMILIES):
        idx = np.flatnonzero(families == f)
        if idx.size == 0:
            continue
        d = Draw(rng, idx.size)
        pose = _SAMPLERS[name](d)
        if name != "random":
            shoulder_rhythm(pose)
            for k in ANGLE_NAMES:
                pose[k] = pose[k] + d.g(0, _ANGLE_NOISE_SD)
        for k in ANGLE_NAMES:
            angles[k][idx] = pose[k]
        root[idx, 0] = pose["pitch"]
        root[idx, 1] = pose["roll"]
    return clip_to_limits(angles), root


FRONTAL_SHARE = 0.4


def sample_kinematics(
    num: int, rng: np.random.Generator, weights: dict[str, float] | None = None
) -> KinematicState:
    """Draw ``num`` people: family, bone lengths, joint angles and a root orientation.

    The heading (yaw) is uniform for most people, facing the camera (+z) for :data:`FRONTAL_SHARE` of them.

    Args:
        weights: mixture weights per family name (missing names get 0), default :data:`FAMILY_WEIGHTS`.
    """
    weights = FAMILY_WEIGHTS if weights is None else weights
    unknown = sorted(set(weights) - set(FAMILIES))
    if unknown:
        raise PosetokError(f"unknown pose families {unknown}; choose from {', '.join(FAMILIES)}")
    p = np.array([max(float(weights.get(f, 0.0)), 0.0) for f in FAMILIES])
    if p.sum() <= 0:
        raise PosetokError("pose family weights must have a positive sum")
    families = rng.choice(len(FAMILIES), num, p=p / p.sum())
    bones = sample_bone_lengths(num, rng)
    angles, root = sample_angles(families, rng)
    # Photographed people face the camera more often than not: 40% within about +-40 deg of it, the rest
    # at any heading.
    yaw = np.where(
        rng.random(num) < FRONTAL_SHARE, rng.normal(0.0, 40.0, num), rng.uniform(-180.0, 180.0, num)
    )
    return KinematicState(angles, bones, root_rotation_matrix(yaw, root[:, 0], root[:, 1]), families)
