"""Building blocks of the synthetic pose families: vectorised draws, limb setters, the relaxed base stance,
the gait model and the leg geometry of kneeling and lunging.

Poses are dicts of ``(n,)`` arrays in degrees, one per angle name of :data:`~posetok.data.body.ANGLE_NAMES`
plus the root ``pitch`` and ``roll`` (see :func:`~posetok.data.body.root_rotation_matrix`); the samplers of
:mod:`posetok.data.everyday_poses`, :mod:`posetok.data.sports_poses` and :mod:`posetok.data.motion_kinds`
compose them from these pieces.
"""

from __future__ import annotations

import numpy as np

from .body import BONE_PROPORTIONS

Pose = dict[str, np.ndarray]  # angle name (or "pitch", "roll": root, degrees) -> (n,)


class Draw:
    """Vectorised draws of ``n`` values (one per person)."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng, self.n = rng, n

    def u(self, lo: float, hi: float) -> np.ndarray:
        return self.rng.uniform(lo, hi, self.n)

    def g(self, mean: float, sd: float) -> np.ndarray:
        return self.rng.normal(mean, sd, self.n)

    def pick(self, probs: dict[str, float]) -> np.ndarray:
        """Indices into ``probs`` (in key order) drawn with the given weights."""
        p = np.array(list(probs.values()), dtype=np.float64)
        return self.rng.choice(len(p), self.n, p=p / p.sum())

    def coin(self, p: float) -> np.ndarray:
        return self.rng.random(self.n) < p


def select_options(choice: np.ndarray, options: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Per person, the tuple ``options[choice[i]]``; every option holds ``(n,)`` arrays."""
    return tuple(np.choose(choice, [opt[k] for opt in options]) for k in range(len(options[0])))


# Everyday arm postures as (elevation, plane, rotation, elbow) draws; rotation < 0 is internal rotation, which
# swings a bent forearm toward the belly.
_ARM_GESTURES = ("hang", "hip", "front", "crossed", "face", "head", "point", "behind")


def arm_gesture(d: Draw, weights: dict[str, float]) -> tuple[np.ndarray, ...]:
    """Per person, a gesture drawn from ``weights`` (names of :data:`_ARM_GESTURES`) as ``(n,)`` shoulder
    elevation, plane, rotation and elbow flexion in degrees (the arguments of :func:`set_arm`)."""
    table = {
        "hang": (np.abs(d.g(6, 6)), d.u(-40, 100), d.g(-10, 20), d.u(0, 35)),
        "hip": (d.u(30, 50), d.u(-45, -15), d.u(-50, -20), d.u(90, 120)),
        "front": (d.u(15, 50), d.u(60, 110), d.u(-45, 5), d.u(50, 110)),
        "crossed": (d.u(30, 50), d.u(65, 95), d.u(-90, -70), d.u(100, 125)),
        "face": (d.u(20, 60), d.u(40, 110), d.u(-30, 10), d.u(125, 150)),
        "head": (d.u(100, 145), d.u(-5, 40), d.u(50, 90), d.u(115, 150)),
        "point": (d.u(45, 120), d.u(-20, 120), d.g(0, 25), d.u(0, 40)),
        "behind": (d.u(30, 60), d.u(-80, -45), d.u(-90, -60), d.u(50, 100)),
    }
    names = list(weights)
    return select_options(d.pick(weights), [table[k] for k in names])


def set_arm(
    p: Pose, side: str, elev: np.ndarray, plane: np.ndarray, rot: np.ndarray, elbow: np.ndarray
) -> None:
    """Set the shoulder elevation, plane, rotation and elbow flexion (degrees) of the ``side`` arm."""
    p[f"{side}_shoulder_elevation"] = elev
    p[f"{side}_shoulder_plane"] = plane
    p[f"{side}_shoulder_rotation"] = rot
    p[f"{side}_elbow_flex"] = elbow


def shoulder_rhythm(p: Pose) -> None:
    """The shoulder girdle shrugs as the arm rises past 60 deg and rolls forward as it crosses the chest
    (scapulohumeral rhythm); added on top of the clavicles' own noise."""
    for side in ("left", "right"):
        elev, plane = p[f"{side}_shoulder_elevation"], p[f"{side}_shoulder_plane"]
        p[f"{side}_clavicle_elevation"] = p[f"{side}_clavicle_elevation"] + 0.2 * np.clip(
            elev - 60.0, 0.0, None
        )
        p[f"{side}_clavicle_protraction"] = p[f"{side}_clavicle_protraction"] + 0.15 * np.clip(
            plane - 60.0, 0.0, None
        ) * np.sin(np.radians(elev))


def sagittal_arm(alpha: np.ndarray, abduct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(elevation, plane) of an arm swung ``alpha`` deg forward (negative: back), ``abduct`` deg off the
    sagittal plane; the plane flips from forward to backward through the hanging position, which is
    continuous."""
    return np.abs(alpha), np.where(alpha >= 0, 90.0 - abduct, -90.0 + abduct)


def set_leg(
    p: Pose,
    side: str,
    thigh: np.ndarray,
    knee: np.ndarray,
    ankle: np.ndarray | None = None,
    abd: np.ndarray | float | None = None,
    rot: np.ndarray | float | None = None,
) -> None:
    """Leg from its world-frame thigh angle (deg forward of the vertical for an upright pelvis), given the
    root pitch already in ``p``. ``ankle=None`` keeps the foot flat (planted)."""
    p[f"{side}_hip_flex"] = thigh + p["pitch"]
    p[f"{side}_knee_flex"] = knee
    p[f"{side}_ankle_flex"] = knee - thigh if ankle is None else ankle
    if abd is not None:
        p[f"{side}_hip_abduction"] = np.broadcast_to(abd, knee.shape)
    if rot is not None:
        p[f"{side}_hip_rotation"] = np.broadcast_to(rot, knee.shape)


def base_pose(d: Draw) -> Pose:
    """Relaxed upright stance with small noise; every family starts from it."""
    p: Pose = {
        "pitch": d.g(2, 3), "roll": d.g(0, 3),
        "spine_flex": d.g(3, 5), "spine_lateral": d.g(0, 3), "spine_twist": d.g(0, 5),
        "neck_flex": d.g(5, 10), "neck_lateral": d.g(0, 5), "neck_twist": d.g(0, 18),
        "head_flex": d.g(0, 8), "head_lateral": d.g(0, 4), "head_twist": d.g(0, 12),
    }  # fmt: skip
    for side in ("left", "right"):
        p[f"{side}_clavicle_elevation"] = d.g(0, 3)
        p[f"{side}_clavicle_protraction"] = d.g(0, 4)
        set_arm(p, side, np.abs(d.g(6, 5)), d.u(-30, 100), d.g(-10, 15), d.u(0, 25))
        set_leg(p, side, d.g(0, 3), np.abs(d.g(0, 5)), abd=d.u(-2, 8), rot=d.g(6, 7))
    return p


# Sagittal gait curves over one cycle (phase 0 = foot strike), after gait-lab kinematics: knee flexion as a
# stance part (loading bump, scaled per person) plus a swing part (scaled by the peak swing flexion, up to
# heel-to-buttock in sprinting). Running keeps the knee well bent while the thigh drives forward.
_GAIT = {
    "walk": {
        "stance_end": 0.6,
        "phase": [0.0, 0.12, 0.3, 0.45, 0.6, 0.73, 0.85, 0.95, 1.0],
        "stance": [0.2, 1.0, 0.4, 0.3, 0.8, 0.0, 0.0, 0.0, 0.2],
        "swing": [0.0, 0.0, 0.0, 0.05, 0.55, 1.0, 0.6, 0.1, 0.0],
    },
    "run": {
        "stance_end": 0.35,
        "phase": [0.0, 0.1, 0.2, 0.35, 0.5, 0.62, 0.75, 0.88, 0.96, 1.0],
        "stance": [0.5, 1.0, 0.85, 0.5, 0.3, 0.0, 0.0, 0.0, 0.3, 0.5],
        "swing": [0.0, 0.0, 0.0, 0.05, 0.55, 1.0, 0.85, 0.6, 0.2, 0.0],
    },
}
_THIGH_PEAK = 0.88  # phase of maximal hip flexion (late swing) in both gaits


def gait_angles(d: Draw, p: Pose, phase: np.ndarray, gait: str) -> None:
    """Walking or running legs, arms and trunk twist at cycle ``phase`` in [0, 1) of the left leg."""
    run = gait == "run"
    g = _GAIT[gait]
    amp = d.u(30, 55) if run else d.u(13, 25)  # thigh swing half-range
    mid = d.u(12, 30) if run else d.u(3, 10)
    knee_swing = d.u(70, 130) if run else d.u(50, 65)
    knee_stance = d.u(15, 40) if run else d.u(8, 20)
    arm_amp = d.u(25, 65) if run else d.u(5, 30)
    elbow = d.u(60, 100) if run else d.u(5, 35)
    for side, shift in (("left", 0.0), ("right", 0.5)):
        ph = (phase + shift) % 1.0
        swing_curve = np.cos(2 * np.pi * (ph - _THIGH_PEAK))
        thigh = mid + amp * swing_curve
        knee = 5.0 + knee_stance * np.interp(ph, g["phase"], g["stance"])
        knee = knee + knee_swing * np.interp(ph, g["phase"], g["swing"])
        stance = ph / g["stance_end"]
        # Stance: foot on the ground, flat then rolling onto the toes; swing: toes pulled up or pointed.
        ankle = np.where(stance < 1.0, np.clip(knee - thigh, -30, 25) - 25 * np.minimum(stance, 1.0) ** 4,
                         d.g(0, 10))  # fmt: skip
        set_leg(p, side, thigh, knee, ankle=ankle, abd=d.u(-3, 6), rot=d.g(5, 6))
        # Arms swing against the legs: the left arm is back when the left thigh is forward.
        alpha = -arm_amp * swing_curve + (8.0 if run else 0.0)
        el, pl = sagittal_arm(alpha, np.where(alpha >= 0, d.u(-15, 20), d.u(0, 25)))
        # The hand swings toward the midline in front and past the hip behind.
        rot = np.where(alpha >= 0, d.g(-10, 12), d.g(5, 10))
        set_arm(p, side, el, pl, rot, np.clip(elbow + 0.25 * np.abs(alpha) * (alpha > 0), 0, 150))
    # The shoulders counter-rotate against the pelvis.
    p["spine_twist"] = -(10.0 if run else 6.0) * np.cos(2 * np.pi * (phase - _THIGH_PEAK)) + d.g(0, 3)


KNEE_PAD = 0.03  # height of the knee keypoint above the ground when kneeling, fraction of stature


def hip_height(thigh: np.ndarray, knee: np.ndarray) -> np.ndarray:
    """Hip height above the ground (fraction of stature, mean proportions) over a planted flat foot."""
    b = BONE_PROPORTIONS
    return (b["thigh"] * np.cos(np.radians(thigh)) + b["shank"] * np.cos(np.radians(thigh - knee))
            + b["ankle_height"])  # fmt: skip


def kneeling_front_knee(thigh: np.ndarray) -> np.ndarray:
    """Knee flexion of the planted front leg of a one-knee kneel with front thigh angle ``thigh``: the shin
    leans forward until the hip is as high as a vertical rear thigh on its knee."""
    b = BONE_PROPORTIONS
    target = b["thigh"] + KNEE_PAD - b["ankle_height"] - b["thigh"] * np.cos(np.radians(thigh))
    return thigh + np.degrees(np.arccos(np.clip(target / b["shank"], -1.0, 1.0)))


def rear_leg(
    height: np.ndarray, bend: np.ndarray, heel_raise: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """World thigh angle and knee flexion (degrees) of a rear leg reaching the ground from a hip at
    ``height`` (fraction of stature), from straight (``bend`` 0) to the knee at kneeling height (1).

    The foot stands on its toes with the heel raised ``heel_raise`` degrees off flat.
    """
    b = BONE_PROPORTIONS
    r = np.radians(heel_raise)
    reach = height - (b["ankle_height"] * np.cos(r) + b["foot"] * np.sin(r))  # hip to ankle, vertical
    straight = -np.degrees(np.arccos(np.clip(reach / (b["thigh"] + b["shank"]), 0.0, 1.0)))
    low = -np.degrees(np.arccos(np.clip((height - KNEE_PAD) / b["thigh"], 0.0, 1.0)))
    thigh = straight + bend * (low - straight)
    shank_cos = (reach - b["thigh"] * np.cos(np.radians(thigh))) / b["shank"]
    return thigh, np.maximum(thigh + np.degrees(np.arccos(np.clip(shank_cos, -1.0, 1.0))), 0.0)
