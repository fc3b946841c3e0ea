"""Synthetic 3D humans projected into images: keypoints, boxes and COCO documents without any real data.

A person is a kinematic tree with anthropometric bone lengths and joint angles inside anatomical limits, posed
from a mixture of everyday and sports pose families, turned to a random heading and photographed by a random
pinhole camera. Projection gives 2D keypoints with COCO visibility from image truncation and self-occlusion.

Frames and units
----------------
* **Body frame** (what :func:`forward_kinematics` returns): metres, ``x`` = the person's left, ``y`` = up,
  ``z`` = the direction the person faces, origin at the pelvis (midpoint of the hip keypoints) unless a
  ``root_position`` is given. ``root_rotation`` maps the body frame of the pelvis into this world frame.
* **Camera frame** (``SyntheticPoses.joints3d``): metres, ``x`` = image right, ``y`` = image down, ``z`` =
  optical axis, origin at the camera centre.
* **Image**: pixels, origin at the top-left corner of the top-left pixel, ``u = fx * x / z + cx``. The
  intrinsics of each person's camera are in ``SyntheticPoses.intrinsics``.

Joint angles
------------
Angles are in degrees, one ``(N,)`` array per name in :data:`ANGLE_NAMES`; :data:`JOINT_LIMITS` gives each
one's range. Each joint's rotation is built in its parent segment's frame and composed down the tree. Angles
are defined for the left side; the right side uses the mirror image (reflection ``x -> -x``), so equal angles
give mirror-symmetric limbs. With ``Rx, Ry, Rz`` rotations about the parent's axes (right-handed, positive
angle counter-clockwise looking down the axis):

* ``spine_flex/lateral/twist``: trunk forward bend, bend toward the left side, turn toward the left. Split
  evenly between a lumbar joint at the pelvis and a thoracic joint at the spine point, each
  ``Rx(f/2) Rz(-l/2) Ry(t/2)``.
* ``neck_*`` at the thorax and ``head_*`` at the upper neck: the same three meanings (flex = chin down).
* ``{side}_clavicle_elevation/protraction``: shrug and forward roll of the shoulder girdle; they move the
  shoulder point only (the arm keeps the thorax frame as parent).
* ``{side}_shoulder_elevation/plane/rotation``: swing-twist angles of the upper arm (ISB Y-X-Y):
  ``Ry(-plane) Rz(elevation) Ry(plane + rotation)``. Elevation is the angle between the upper arm and the
  trunk's down axis; plane is the direction it is raised in (0 = sideways, 90 = forward, -90 = backward,
  > 90 = across the chest); rotation is humeral external rotation (positive turns a bent forearm outward).
* ``{side}_elbow_flex``: ``Rx(-flex)``, 0 = straight.
* ``{side}_hip_flex/abduction/rotation``: ``Rx(-flex) Rz(abduction) Ry(rotation)`` (flexion brings the
  thigh forward; rotation positive = external).
* ``{side}_knee_flex``: ``Rx(+flex)``, 0 = straight, the shank folds backward; no hyperextension.
* ``{side}_ankle_flex``: dorsiflexion positive (toes up).

Two couplings are enforced on top of the box limits (:func:`clip_to_limits`): the arm cannot rise far
behind the body (elevation at most 60 deg when the plane is below -60 deg) nor swing across the chest while
hanging low (elevation at least 60 deg at plane 150 deg), and the hamstrings stop hip flexion at
``95 + knee_flex`` degrees.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import PosetokError
from ..io import write_json
from ..skeletons import Skeleton, get_skeleton

# ----------------------------------------------------------------------------------------------------------
# Skeleton of the model
# ----------------------------------------------------------------------------------------------------------

#: Points produced by :func:`forward_kinematics`, in this order. ``neck_base`` and ``head`` are the
#: Human3.6M head points (joint 9 lies at the front of the upper neck, joint 10 at the forehead); ``hand``,
#: ``toe`` and ``heel`` are the body's extremities, used for boxes and occlusion only.
JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "spine", "thorax", "upper_neck", "head_center", "head_top", "nose", "left_eye", "right_eye",
    "left_ear", "right_ear", "neck_base", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_toe", "right_toe", "left_heel", "right_heel",
)  # fmt: skip
_J = {name: i for i, name in enumerate(JOINT_NAMES)}

# Layout joint names that differ from the model's point names.
_ALIASES = {"root": "pelvis", "left_foot": "left_ankle", "right_foot": "right_ankle"}
SUPPORTED_SKELETONS: tuple[str, ...] = ("coco17", "mpii16", "h36m17")


def layout_indices(skeleton: str | Skeleton) -> np.ndarray:
    """``(K,)`` indices into :data:`JOINT_NAMES` of the joints of ``skeleton`` in its order.

    Raises:
        PosetokError: the skeleton is not one of :data:`SUPPORTED_SKELETONS`.
    """
    name = skeleton.name if isinstance(skeleton, Skeleton) else str(skeleton)
    if name not in SUPPORTED_SKELETONS:
        raise PosetokError(
            f"synthetic poses do not support skeleton '{name}'; "
            f"choose one of {', '.join(SUPPORTED_SKELETONS)}"
        )
    sk = get_skeleton(name)
    return np.array([_J[_ALIASES.get(j, j)] for j in sk.joint_names], dtype=np.intp)


# Head points in the head frame (origin at the upper neck, axes as the body frame), metres for an adult head
# (head_scale 1): ears 0.93 and eyes 0.94 of stature up, vertex 13 cm above the ears; eyes 5.4 cm apart and
# 6 cm in front of the ears, nose tip 2.5 cm below and 2.4 cm in front of the eyes. Ears and eyes sit closer
# together than the bony landmarks (tragion ~14 cm, pupils ~6.2 cm apart), where pose labels (human or model)
# put them: measured on labelled frontal views, the ears are ~0.3 and the eyes ~0.15 of shoulder width apart.
_HEAD_POINTS = {
    "head_center": (0.0, 0.050, 0.000),
    "head_top": (0.0, 0.175, -0.015),
    "nose": (0.0, 0.040, 0.092),
    "left_eye": (0.027, 0.065, 0.068),
    "right_eye": (-0.027, 0.065, 0.068),
    "left_ear": (0.054, 0.045, 0.008),
    "right_ear": (-0.054, 0.045, 0.008),
    "neck_base": (0.0, 0.000, 0.050),
    "head": (0.0, 0.110, 0.030),
}

# ----------------------------------------------------------------------------------------------------------
# Bone lengths
# ----------------------------------------------------------------------------------------------------------

STATURE_MEAN = 1.70  # metres, adult mixed-sex mean
STATURE_SD = 0.09
STATURE_RANGE = (1.45, 1.98)  # the normal is clipped here (about +-3 sd)

#: Mean length of each segment as a fraction of stature, after anthropometric tables (Drillis & Contini,
#: Winter: ankle at 0.039, hip joint at 0.53 and sternal notch (thorax) at 0.818 of stature; thigh 0.245,
#: shank 0.246, forearm 0.146, foot 0.152), moved toward where pose labels put the keypoints: the hip keypoint
#: 0.015 below the hip joint centre (thigh 0.23), the shoulder keypoint at the joint centre ``shoulder_drop``
#: below the thorax, so the upper arm is shorter than the acromion-elbow length (0.186).
#: ``clavicle`` and ``hip_width`` are half the keypoint separations (shoulders 0.196, hips 0.112 of stature,
#: as measured on labelled people). ``neck`` runs from the thorax to the upper neck (atlas).
BONE_PROPORTIONS: dict[str, float] = {
    "pelvis_spine": 0.145,
    "spine_thorax": 0.158,
    "neck": 0.085,
    "clavicle": 0.098,
    "shoulder_drop": 0.012,
    "upper_arm": 0.165,
    "forearm": 0.150,
    "hand": 0.090,
    "hip_width": 0.056,
    "thigh": 0.230,
    "shank": 0.246,
    "ankle_height": 0.039,
    "foot": 0.110,
    "heel": 0.035,
}
#: Relative standard deviation of each proportion around its mean (clipped at 2.5 sd). Wider than the
#: anthropometric spread (~3%): where labellers put the hip, shoulder and neck points varies between datasets,
#: and a model trained on these poses must cover all conventions. Widths vary most (sex, build).
BONE_PROPORTION_SD: dict[str, float] = {name: 0.04 for name in BONE_PROPORTIONS} | {
    "pelvis_spine": 0.05,
    "spine_thorax": 0.05,
    "neck": 0.08,
    "clavicle": 0.06,
    "hip_width": 0.07,
    "shoulder_drop": 0.3,
    "thigh": 0.05,
}
_PAIRED = ("clavicle", "upper_arm", "forearm", "hand", "hip_width", "thigh", "shank", "ankle_height", "foot",
           "heel")  # fmt: skip
LEFT_RIGHT_SD = 0.005  # relative left/right asymmetry of paired bones (clipped at 3 sd)
HEAD_SCALE_SD = 0.06


def mean_bone_lengths(num: int = 1, stature: float = STATURE_MEAN) -> dict[str, np.ndarray]:
    """Bone lengths of ``num`` identical people of ``stature`` metres with mean proportions (the keys of
    :func:`sample_bone_lengths`, ``head_scale`` 1)."""
    bones = {"stature": np.full(num, float(stature)), "head_scale": np.ones(num)}
    for name, frac in BONE_PROPORTIONS.items():
        for key in (f"left_{name}", f"right_{name}") if name in _PAIRED else (name,):
            bones[key] = np.full(num, frac * stature)
    return bones


def sample_bone_lengths(num: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw bone lengths of ``num`` people.

    Stature ~ N(1.70, 0.09) m clipped to :data:`STATURE_RANGE`; each proportion of :data:`BONE_PROPORTIONS`
    is jittered by its :data:`BONE_PROPORTION_SD` (shared by the left and right bone), then each side by
    :data:`LEFT_RIGHT_SD`. Heads grow less than bodies:
    ``head_scale = (stature / 1.70) ** 0.35 * N(1, HEAD_SCALE_SD)``.

    Returns:
        ``(num,)`` float64 arrays in metres: ``stature``, ``head_scale`` (unitless), the unpaired bones
        (``pelvis_spine``, ``spine_thorax``, ``neck``) and ``left_*`` / ``right_*`` for each paired one.
    """
    stature = np.clip(rng.normal(STATURE_MEAN, STATURE_SD, num), *STATURE_RANGE)
    bones: dict[str, np.ndarray] = {"stature": stature}
    for name, mean in BONE_PROPORTIONS.items():
        rel = 1.0 + BONE_PROPORTION_SD[name] * np.clip(rng.standard_normal(num), -2.5, 2.5)
        length = stature * mean * rel
        if name in _PAIRED:
            for side in ("left", "right"):
                asym = 1.0 + LEFT_RIGHT_SD * np.clip(rng.standard_normal(num), -3.0, 3.0)
                bones[f"{side}_{name}"] = length * asym
        else:
            bones[name] = length
    head = (stature / STATURE_MEAN) ** 0.35 * (
        1.0 + HEAD_SCALE_SD * np.clip(rng.standard_normal(num), -2.5, 2.5)
    )
    bones["head_scale"] = head
    return bones


# ----------------------------------------------------------------------------------------------------------
# Joint angles
# ----------------------------------------------------------------------------------------------------------

_SIDE_LIMITS = {
    "clavicle_elevation": (-10.0, 35.0),
    "clavicle_protraction": (-15.0, 25.0),
    "shoulder_elevation": (0.0, 180.0),
    "shoulder_plane": (-90.0, 150.0),
    "shoulder_rotation": (-90.0, 90.0),
    "elbow_flex": (0.0, 150.0),
    "hip_flex": (-30.0, 125.0),
    "hip_abduction": (-30.0, 50.0),
    "hip_rotation": (-45.0, 45.0),
    "knee_flex": (0.0, 150.0),
    "ankle_flex": (-45.0, 30.0),
}
#: Range in degrees of every joint angle (see the module docstring for the meaning of each).
JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "spine_flex": (-30.0, 90.0),
    "spine_lateral": (-35.0, 35.0),
    "spine_twist": (-45.0, 45.0),
    "neck_flex": (-45.0, 50.0),
    "neck_lateral": (-35.0, 35.0),
    "neck_twist": (-50.0, 50.0),
    "head_flex": (-30.0, 30.0),
    "head_lateral": (-15.0, 15.0),
    "head_twist": (-30.0, 30.0),
} | {f"{side}_{name}": lim for side in ("left", "right") for name, lim in _SIDE_LIMITS.items()}
ANGLE_NAMES: tuple[str, ...] = tuple(JOINT_LIMITS)


def shoulder_elevation_range(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Allowed ``(min, max)`` shoulder elevation in degrees for a plane of elevation ``plane`` (degrees).

    Behind the body (plane < -60) the arm rises at most 60 deg; across the chest (plane > 90) it must be
    lifted clear of the trunk, at least 60 deg at plane 150; it rises at most 150 deg there.
    """
    hi = np.interp(plane, [-90.0, -60.0, -20.0, 110.0, 150.0], [60.0, 60.0, 180.0, 180.0, 150.0])
    lo = np.interp(plane, [90.0, 150.0], [0.0, 60.0])
    return lo, hi


def clip_to_limits(angles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Clip every angle into :data:`JOINT_LIMITS` and enforce the shoulder and hamstring couplings.

    Returns a new dict of float64 arrays; names not in :data:`JOINT_LIMITS` are passed through.
    """
    out = {k: np.asarray(v, dtype=np.float64) for k, v in angles.items()}
    for name, (lo, hi) in JOINT_LIMITS.items():
        if name in out:
            out[name] = np.clip(out[name], lo, hi)
    for side in ("left", "right"):
        plane, elev = f"{side}_shoulder_plane", f"{side}_shoulder_elevation"
        if plane in out and elev in out:
            lo, hi = shoulder_elevation_range(out[plane])
            out[elev] = np.clip(out[elev], lo, hi)
        hip, knee = f"{side}_hip_flex", f"{side}_knee_flex"
        if hip in out and knee in out:
            out[hip] = np.minimum(out[hip], 95.0 + out[knee])
    return out


# ----------------------------------------------------------------------------------------------------------
# Rotations
# ----------------------------------------------------------------------------------------------------------


def _rot(axis: int, deg: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` rotations by ``deg`` degrees about body axis ``axis`` (0 = x, 1 = y, 2 = z)."""
    a = np.radians(np.asarray(deg, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[..., axis, axis] = 1.0
    r[..., i, i] = c
    r[..., j, j] = c
    r[..., i, j] = -s
    r[..., j, i] = s
    return r


def _mm(*mats: np.ndarray) -> np.ndarray:
    out = mats[0]
    for m in mats[1:]:
        out = out @ m
    return out


def _apply(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate ``(N, 3)`` vectors by ``(N, 3, 3)`` matrices."""
    return np.einsum("nij,nj->ni", r, v)


def root_rotation_matrix(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` pelvis orientation ``Ry(yaw) Rx(pitch) Rz(roll)`` from degrees.

    Yaw turns the person about the vertical (0 = facing +z), pitch leans them forward (90 = lying face
    down, -90 = on the back), roll tilts them toward their right (90 = lying on the right side).
    """
    return _mm(_rot(1, yaw), _rot(0, pitch), _rot(2, roll))


# ----------------------------------------------------------------------------------------------------------
# Forward kinematics
# ----------------------------------------------------------------------------------------------------------


def forward_kinematics(
    angles: dict[str, np.ndarray],
    bones: dict[str, np.ndarray],
    root_rotation: np.ndarray | None = None,
    root_position: np.ndarray | None = None,
) -> np.ndarray:
    """3D points of :data:`JOINT_NAMES` for a batch of kinematic states.

    Args:
        angles: ``(N,)`` degrees per name of :data:`ANGLE_NAMES`; missing names are 0 (neutral: standing,
            arms hanging, palms in, looking ahead). Not clipped: call :func:`clip_to_limits` first if needed.
        bones: lengths from :func:`sample_bone_lengths` (``(N,)`` or scalars, metres).
        root_rotation: ``(N, 3, 3)`` pelvis orientation in the world (:func:`root_rotation_matrix`), default
            identity.
        root_position: ``(N, 3)`` pelvis position in the world, metres, default the origin.

    Returns:
        ``(N, J, 3)`` float64 points in the world frame (body frame when both root arguments are omitted):
        metres, ``y`` up.
    """
    n = len(np.atleast_1d(bones["stature"]))
    for v in angles.values():
        n = max(n, len(np.atleast_1d(v)))

    def ang(name: str) -> np.ndarray:
        v = angles.get(name)
        return np.zeros(n) if v is None else np.broadcast_to(np.asarray(v, dtype=np.float64), (n,))

    def bone(name: str) -> np.ndarray:
        return np.broadcast_to(np.asarray(bones[name], dtype=np.float64), (n,))

    def vec(x: np.ndarray | float, y: np.ndarray | float, z: np.ndarray | float) -> np.ndarray:
        return np.stack(
            np.broadcast_arrays(
                np.asarray(x, float), np.asarray(y, float), np.asarray(z, float), np.zeros(n)
            )[:3],
            axis=-1,
        )

    r0 = np.broadcast_to(np.eye(3), (n, 3, 3)) if root_rotation is None else np.asarray(root_rotation, float)
    p0 = (
        np.zeros((n, 3))
        if root_position is None
        else np.broadcast_to(np.asarray(root_position, float), (n, 3))
    )
    out = np.zeros((n, len(JOINT_NAMES), 3))
    out[:, _J["pelvis"]] = p0

    # Trunk: the bend is shared by a lumbar and a thoracic joint so the back curves instead of hinging.
    half = _mm(
        _rot(0, ang("spine_flex") / 2), _rot(2, -ang("spine_lateral") / 2), _rot(1, ang("spine_twist") / 2)
    )
    r_lumbar = r0 @ half
    out[:, _J["spine"]] = p0 + _apply(r_lumbar, vec(0.0, bone("pelvis_spine"), 0.0))
    r_chest = r_lumbar @ half
    thorax = out[:, _J["spine"]] + _apply(r_chest, vec(0.0, bone("spine_thorax"), 0.0))
    out[:, _J["thorax"]] = thorax

    # Neck and head. The resting neck leans ~7 deg forward of the trunk axis.
    r_neck = _mm(
        r_chest, _rot(0, ang("neck_flex")), _rot(2, -ang("neck_lateral")), _rot(1, ang("neck_twist"))
    )
    neck_len = bone("neck")
    upper_neck = thorax + _apply(r_neck, vec(0.0, 0.993 * neck_len, 0.12 * neck_len))
    out[:, _J["upper_neck"]] = upper_neck
    r_head = _mm(r_neck, _rot(0, ang("head_flex")), _rot(2, -ang("head_lateral")), _rot(1, ang("head_twist")))
    hs = bone("head_scale")[:, None]
    for name, offset in _HEAD_POINTS.items():
        out[:, _J[name]] = upper_neck + _apply(r_head, hs * np.asarray(offset))

    for side, sgn in (("left", 1.0), ("right", -1.0)):

        def a(name: str, side: str = side) -> np.ndarray:
            return ang(f"{side}_{name}")

        def b(name: str, side: str = side) -> np.ndarray:
            return bone(f"{side}_{name}")

        # Mirror: rotations about y and z change sign on the right side, rotations about x do not.
        r_clav = _rot(2, sgn * a("clavicle_elevation")) @ _rot(1, -sgn * a("clavicle_protraction"))
        drop = bone("shoulder_drop")
        shoulder = thorax + _apply(r_chest @ r_clav, vec(sgn * b("clavicle"), -drop, -0.45 * drop))
        plane, elev = a("shoulder_plane"), a("shoulder_elevation")
        r_arm = _mm(
            r_chest,
            _rot(1, -sgn * plane),
            _rot(2, sgn * elev),
            _rot(1, sgn * (plane + a("shoulder_rotation"))),
        )
        elbow = shoulder + _apply(r_arm, vec(0.0, -b("upper_arm"), 0.0))
        r_fore = r_arm @ _rot(0, -a("elbow_flex"))
        wrist = elbow + _apply(r_fore, vec(0.0, -b("forearm"), 0.0))
        hand = wrist + _apply(r_fore, vec(0.0, -b("hand"), 0.0))

        hip = p0 + _apply(r0, vec(sgn * b("hip_width"), 0.0, 0.0))
        r_thigh = _mm(
            r0, _rot(0, -a("hip_flex")), _rot(2, sgn * a("hip_abduction")), _rot(1, sgn * a("hip_rotation"))
        )
        knee = hip + _apply(r_thigh, vec(0.0, -b("thigh"), 0.0))
        r_shank = r_thigh @ _rot(0, a("knee_flex"))
        ankle = knee + _apply(r_shank, vec(0.0, -b("shank"), 0.0))
        r_foot = r_shank @ _rot(0, -a("ankle_flex"))
        toe = ankle + _apply(r_foot, vec(0.0, -b("ankle_height"), b("foot")))
        heel = ankle + _apply(r_foot, vec(0.0, -b("ankle_height"), -b("heel")))

        for name, pt in (
            ("shoulder", shoulder),
            ("elbow", elbow),
            ("wrist", wrist),
            ("hand", hand),
            ("hip", hip),
            ("knee", knee),
            ("ankle", ankle),
            ("toe", toe),
            ("heel", heel),
        ):
            out[:, _J[f"{side}_{name}"]] = pt
    return out


# ----------------------------------------------------------------------------------------------------------
# Pose families
# ----------------------------------------------------------------------------------------------------------

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

_Pose = dict[str, np.ndarray]  # angle name (or "pitch", "roll": root, degrees) -> (n,)


class _Draw:
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


def _select(choice: np.ndarray, options: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Per person, the tuple ``options[choice[i]]``; every option holds ``(n,)`` arrays."""
    return tuple(np.choose(choice, [opt[k] for opt in options]) for k in range(len(options[0])))


# Everyday arm postures as (elevation, plane, rotation, elbow) draws; rotation < 0 is internal rotation, which
# swings a bent forearm toward the belly.
_ARM_GESTURES = ("hang", "hip", "front", "crossed", "face", "head", "point", "behind")


def _arm_gesture(d: _Draw, weights: dict[str, float]) -> tuple[np.ndarray, ...]:
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
    return _select(d.pick(weights), [table[k] for k in names])


_EVERYDAY_ARMS = {"hang": 0.55, "hip": 0.1, "front": 0.12, "crossed": 0.05, "face": 0.06, "head": 0.03,
                  "point": 0.06, "behind": 0.03}  # fmt: skip


def _set_arm(
    p: _Pose, side: str, elev: np.ndarray, plane: np.ndarray, rot: np.ndarray, elbow: np.ndarray
) -> None:
    p[f"{side}_shoulder_elevation"] = elev
    p[f"{side}_shoulder_plane"] = plane
    p[f"{side}_shoulder_rotation"] = rot
    p[f"{side}_elbow_flex"] = elbow


def _shoulder_rhythm(p: _Pose) -> None:
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


def _sagittal_arm(alpha: np.ndarray, abduct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(elevation, plane) of an arm swung ``alpha`` deg forward (negative: back), ``abduct`` deg off the
    sagittal plane; the plane flips from forward to backward through the hanging position, which is
    continuous."""
    return np.abs(alpha), np.where(alpha >= 0, 90.0 - abduct, -90.0 + abduct)


def _set_leg(
    p: _Pose,
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


def _base(d: _Draw) -> _Pose:
    """Relaxed upright stance with small noise; every family starts from it."""
    p: _Pose = {
        "pitch": d.g(2, 3), "roll": d.g(0, 3),
        "spine_flex": d.g(3, 5), "spine_lateral": d.g(0, 3), "spine_twist": d.g(0, 5),
        "neck_flex": d.g(5, 10), "neck_lateral": d.g(0, 5), "neck_twist": d.g(0, 18),
        "head_flex": d.g(0, 8), "head_lateral": d.g(0, 4), "head_twist": d.g(0, 12),
    }  # fmt: skip
    for side in ("left", "right"):
        p[f"{side}_clavicle_elevation"] = d.g(0, 3)
        p[f"{side}_clavicle_protraction"] = d.g(0, 4)
        _set_arm(p, side, np.abs(d.g(6, 5)), d.u(-30, 100), d.g(-10, 15), d.u(0, 25))
        _set_leg(p, side, d.g(0, 3), np.abs(d.g(0, 5)), abd=d.u(-2, 8), rot=d.g(6, 7))
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


def _gait_angles(d: _Draw, p: _Pose, phase: np.ndarray, gait: str) -> None:
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
        _set_leg(p, side, thigh, knee, ankle=ankle, abd=d.u(-3, 6), rot=d.g(5, 6))
        # Arms swing against the legs: the left arm is back when the left thigh is forward.
        alpha = -arm_amp * swing_curve + (8.0 if run else 0.0)
        el, pl = _sagittal_arm(alpha, np.where(alpha >= 0, d.u(-15, 20), d.u(0, 25)))
        # The hand swings toward the midline in front and past the hip behind.
        rot = np.where(alpha >= 0, d.g(-10, 12), d.g(5, 10))
        _set_arm(p, side, el, pl, rot, np.clip(elbow + 0.25 * np.abs(alpha) * (alpha > 0), 0, 150))
    # The shoulders counter-rotate against the pelvis.
    p["spine_twist"] = -(10.0 if run else 6.0) * np.cos(2 * np.pi * (phase - _THIGH_PEAK)) + d.g(0, 3)


def _stand(d: _Draw) -> _Pose:
    p = _base(d)
    # Half the people rest their weight on one leg: the other knee unlocks and the pelvis tilts toward it.
    relaxed = d.coin(0.5)
    free_left = d.coin(0.5)
    for side in ("left", "right"):
        free = relaxed & (free_left if side == "left" else ~free_left)
        knee = np.where(free, d.u(5, 25), np.abs(d.g(2, 4)))
        _set_leg(p, side, d.g(0, 4), knee, abd=d.u(-3, 9), rot=d.g(8, 8))
        _set_arm(p, side, *_arm_gesture(d, _EVERYDAY_ARMS))
    p["roll"] = np.where(relaxed, np.where(free_left, -1.0, 1.0) * d.u(1, 5), p["roll"])
    return p


def _walk(d: _Draw) -> _Pose:
    p = _base(d)
    p["pitch"] = d.g(4, 3)
    _gait_angles(d, p, d.u(0, 1), "walk")
    # Some walkers carry or look at something.
    for side in ("left", "right"):
        busy = d.coin(0.12)
        gest = _arm_gesture(d, {"front": 0.5, "face": 0.3, "hang": 0.2})
        for name, v in zip(("shoulder_elevation", "shoulder_plane", "shoulder_rotation", "elbow_flex"), gest):
            p[f"{side}_{name}"] = np.where(busy, v, p[f"{side}_{name}"])
    return p


def _run(d: _Draw) -> _Pose:
    p = _base(d)
    # Forward lean grows from jogging to acceleration (sprint starts lean 30-45 deg).
    p["pitch"] = np.where(d.coin(0.15), d.u(20, 45), d.u(0, 18))
    p["spine_flex"] = d.u(-5, 15)
    p["neck_flex"] = -0.5 * p["pitch"] + d.g(0, 8)  # keep the eyes on the track
    _gait_angles(d, p, d.u(0, 1), "run")
    return p


def _sit(d: _Draw) -> _Pose:
    p = _base(d)
    kind = d.pick({"chair": 0.5, "cross_legged": 0.18, "long": 0.14, "knees_up": 0.18})
    p["pitch"] = np.choose(kind, [d.u(-15, 15), d.u(-5, 20), d.u(-30, 10), d.u(-30, 0)])
    p["spine_flex"] = d.u(-5, 35)
    p["spine_twist"] = d.g(0, 10)
    for side in ("left", "right"):
        thigh, knee, abd, rot = _select(kind, [
            (d.u(70, 100), d.u(60, 120), d.u(-5, 15), d.g(0, 10)),
            (d.u(45, 80), d.u(120, 150), d.u(25, 45), d.u(25, 45)),
            (d.u(75, 95), d.u(0, 30), d.u(0, 15), d.g(5, 10)),
            (d.u(95, 125), d.u(100, 150), d.u(0, 20), d.g(0, 10)),
        ])  # fmt: skip
        # Seated legs are set relative to the pelvis (the seat carries them), not to the vertical.
        p[f"{side}_hip_flex"] = thigh
        p[f"{side}_knee_flex"] = knee
        p[f"{side}_ankle_flex"] = d.g(0, 12)
        p[f"{side}_hip_abduction"] = abd
        p[f"{side}_hip_rotation"] = rot
        _set_arm(
            p,
            side,
            *_arm_gesture(
                d, {"hang": 0.2, "front": 0.4, "face": 0.1, "crossed": 0.1, "point": 0.1, "behind": 0.1}
            ),
        )
    return p


_KNEE_PAD = 0.03  # height of the knee keypoint above the ground when kneeling, fraction of stature


def _hip_height(thigh: np.ndarray, knee: np.ndarray) -> np.ndarray:
    """Hip height above the ground (fraction of stature, mean proportions) over a planted flat foot."""
    b = BONE_PROPORTIONS
    return (b["thigh"] * np.cos(np.radians(thigh)) + b["shank"] * np.cos(np.radians(thigh - knee))
            + b["ankle_height"])  # fmt: skip


def _kneeling_front_knee(thigh: np.ndarray) -> np.ndarray:
    """Knee flexion of the planted front leg of a one-knee kneel with front thigh angle ``thigh``: the shin
    leans forward until the hip is as high as a vertical rear thigh on its knee."""
    b = BONE_PROPORTIONS
    target = b["thigh"] + _KNEE_PAD - b["ankle_height"] - b["thigh"] * np.cos(np.radians(thigh))
    return thigh + np.degrees(np.arccos(np.clip(target / b["shank"], -1.0, 1.0)))


def _rear_leg(
    hip_height: np.ndarray, bend: np.ndarray, heel_raise: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """World thigh angle and knee flexion (degrees) of a rear leg reaching the ground from a hip at
    ``hip_height`` (fraction of stature), from straight (``bend`` 0) to the knee at kneeling height (1).

    The foot stands on its toes with the heel raised ``heel_raise`` degrees off flat.
    """
    b = BONE_PROPORTIONS
    r = np.radians(heel_raise)
    reach = hip_height - (b["ankle_height"] * np.cos(r) + b["foot"] * np.sin(r))  # hip to ankle, vertical
    straight = -np.degrees(np.arccos(np.clip(reach / (b["thigh"] + b["shank"]), 0.0, 1.0)))
    low = -np.degrees(np.arccos(np.clip((hip_height - _KNEE_PAD) / b["thigh"], 0.0, 1.0)))
    thigh = straight + bend * (low - straight)
    shank_cos = (reach - b["thigh"] * np.cos(np.radians(thigh))) / b["shank"]
    return thigh, np.maximum(thigh + np.degrees(np.arccos(np.clip(shank_cos, -1.0, 1.0))), 0.0)


def _crouch(d: _Draw) -> _Pose:
    p = _base(d)
    kind = d.pick({"squat": 0.4, "kneel_one": 0.2, "kneel_both": 0.1, "lunge": 0.3})
    p["pitch"] = np.choose(kind, [d.u(10, 45), d.u(-10, 25), d.u(-10, 20), d.u(-5, 80)])
    p["spine_flex"] = d.u(0, 35)
    left_leads = d.coin(0.5)
    # Both legs of a squat or a two-knee kneel move together; one leads in a lunge or a one-knee kneel.
    sq_thigh, sq_lean = d.u(60, 100), d.u(10, 40)  # shank lean: knees ahead of the toes by this angle
    on_heels = d.coin(0.3)
    kb_thigh = np.where(on_heels, d.u(50, 80), d.u(-10, 20))
    kb_knee = np.where(on_heels, d.u(135, 150), kb_thigh + d.u(80, 100))
    front_thigh = np.where(kind == 1, d.u(80, 105), d.u(40, 95))
    front_knee = np.where(kind == 1, _kneeling_front_knee(front_thigh), front_thigh + d.u(-10, 25))
    heel_raise = d.u(20, 50)
    rear_thigh, rear_knee = _rear_leg(_hip_height(front_thigh, front_knee), d.u(0, 0.85), heel_raise)
    # Kneeling: the rear thigh hangs from the hip to the knee on the ground, the shin rises ~14 deg to the
    # ankle propped on the tucked toes.
    kneel_thigh = -np.degrees(np.arccos(np.clip((_hip_height(front_thigh, front_knee) - _KNEE_PAD)
                                                / BONE_PROPORTIONS["thigh"], 0.0, 1.0)))  # fmt: skip
    rear_thigh = np.where(kind == 1, kneel_thigh, rear_thigh)
    rear_knee = np.where(kind == 1, kneel_thigh + 104.0, rear_knee)
    for side in ("left", "right"):
        lead = left_leads if side == "left" else ~left_leads
        thigh, knee = _select(kind, [
            (sq_thigh + d.g(0, 4), sq_thigh + sq_lean + d.g(0, 4)),
            (np.where(lead, front_thigh, rear_thigh), np.where(lead, front_knee, rear_knee)),
            (kb_thigh + d.g(0, 4), kb_knee + d.g(0, 4)),
            (np.where(lead, front_thigh, rear_thigh), np.where(lead, front_knee, rear_knee)),
        ])  # fmt: skip
        abd = np.where(kind == 0, d.u(5, 25), d.u(-5, 12))
        _set_leg(p, side, thigh, knee, abd=abd, rot=d.g(10, 10))
        # The trailing foot of a lunge rests on the toes (heel raised 20-50 deg off flat), kneeling feet on
        # tucked toes (foot near vertical) or, sitting back on the heels, on the instep.
        planted = (kind == 0) | (((kind == 1) | (kind == 3)) & lead)
        flat = knee - thigh
        rear = np.where(kind == 3, flat - heel_raise, flat - d.u(70, 85))
        rear = np.where((kind == 2) & on_heels, d.u(-45, -30), rear)
        p[f"{side}_ankle_flex"] = np.where(planted, p[f"{side}_ankle_flex"], rear)
        gesture = _arm_gesture(d, {"hang": 0.3, "front": 0.3, "point": 0.2, "hip": 0.1, "face": 0.1})
        _set_arm(p, side, *gesture)
    return p


def _reach(d: _Draw) -> _Pose:
    p = _base(d)
    both = d.coin(0.35)
    plane = d.u(-30, 135)
    elev = d.u(40, 178)
    lead_left = d.coin(0.5)
    for side in ("left", "right"):
        lead = lead_left if side == "left" else ~lead_left
        reach = lead | both
        ev = np.where(reach, elev + np.where(both, d.g(0, 10), 0), np.abs(d.g(15, 15)))
        pl = np.where(reach, plane + np.where(both, d.g(0, 15), 0), d.u(-30, 100))
        _set_arm(p, side, ev, pl, d.g(0, 30), np.where(reach, d.u(0, 35), d.u(0, 60)))
    # The trunk follows the hand: lean toward a sideways reach, bend or lean into a low forward reach.
    toward = np.where(lead_left, 1.0, -1.0) * np.where(both, 0.0, 1.0)
    side_amount = np.cos(np.radians(plane)) * np.sin(np.radians(elev))
    p["spine_lateral"] = toward * side_amount * d.u(0, 30)
    p["spine_twist"] = toward * np.sin(np.radians(plane)) * d.u(-5, 25)
    low = np.clip((120 - elev) / 80, 0, 1) * np.clip(np.sin(np.radians(plane)), 0, 1)
    p["pitch"] = low * d.u(0, 35)
    p["spine_flex"] = low * d.u(0, 40)
    step = d.coin(0.4)
    for side in ("left", "right"):
        lead = lead_left if side == "left" else ~lead_left
        thigh = np.where(step & lead, d.u(10, 45), d.g(0, 4))
        knee = np.where(step & lead, thigh + d.u(0, 25), np.abs(d.g(3, 5)))
        # Reaching high goes up on the toes.
        tiptoe = (elev > 150) & d.coin(0.5)
        _set_leg(p, side, thigh, knee, abd=d.u(-2, 15), rot=d.g(8, 8))
        p[f"{side}_ankle_flex"] = np.where(tiptoe, d.u(-40, -20), p[f"{side}_ankle_flex"])
    return p


def _arms_raised(d: _Draw) -> _Pose:
    p = _base(d)
    kind = d.pick({"overhead": 0.35, "t_pose": 0.15, "v_cheer": 0.15, "behind_head": 0.15, "flex": 0.1,
                   "surrender": 0.1})  # fmt: skip
    shared = d.u(0, 1)
    for side in ("left", "right"):
        # Arms mostly move together: both take the shared draw plus a little independent noise.
        def lerp(lo: float, hi: float) -> np.ndarray:
            return lo + (hi - lo) * np.clip(shared + d.g(0, 0.12), 0, 1)

        elev, plane, rot, elbow = _select(kind, [
            (lerp(125, 180), d.u(-10, 100), d.g(0, 25), d.u(0, 40)),
            (lerp(75, 105), d.u(-15, 25), d.g(0, 25), d.u(0, 25)),
            (lerp(130, 165), d.u(-5, 40), d.g(0, 20), d.u(0, 25)),
            (lerp(100, 140), d.u(-10, 35), d.u(55, 90), d.u(120, 150)),
            (lerp(80, 105), d.u(-15, 25), d.u(60, 90), d.u(85, 135)),
            (lerp(75, 100), d.u(-5, 35), d.u(65, 90), d.u(60, 100)),
        ])  # fmt: skip
        _set_arm(p, side, elev, plane, rot, elbow)
        _set_leg(p, side, d.g(0, 4), np.abs(d.g(2, 5)), abd=d.u(-2, 15), rot=d.g(8, 8))
    p["spine_flex"] = d.g(-3, 5)
    p["neck_flex"] = d.g(-5, 12)
    return p


def _bend(d: _Draw) -> _Pose:
    p = _base(d)
    p["pitch"] = d.u(25, 90)
    p["spine_flex"] = d.u(10, 55)
    trunk = p["pitch"] + p["spine_flex"]  # how far the chest points down
    p["neck_flex"] = d.u(-40, 25)
    p["spine_twist"] = d.g(0, 10)
    hands_on_knees = d.coin(0.3)
    # Feet side by side, staggered (hamstring stretch, picking something up mid-step) or wide apart.
    stance = d.pick({"parallel": 0.5, "staggered": 0.3, "wide": 0.2})
    left_leads = d.coin(0.5)
    front_thigh, front_knee = d.u(15, 45), d.u(0, 25)
    rear_thigh, rear_knee = _rear_leg(_hip_height(front_thigh, front_knee), d.u(0, 0.5), d.u(0, 30))
    for side in ("left", "right"):
        lead = (left_leads if side == "left" else ~left_leads) & (stance == 1)
        rear = (stance == 1) & ~lead
        thigh = np.where(lead, front_thigh, np.where(rear, rear_thigh, d.g(0, 6)))
        knee = np.abs(d.g(8, 12)) + np.where(hands_on_knees, d.u(10, 35), 0)
        knee = np.where(lead, front_knee, np.where(rear, rear_knee, knee))
        abd = np.where(stance == 2, d.u(15, 35), d.u(-2, 12))
        _set_leg(p, side, thigh, knee, abd=abd, rot=d.g(8, 8))
        # A straight front leg rests on its heel, toes up.
        p[f"{side}_ankle_flex"] = np.where(lead & (front_knee < 12), d.u(0, 30), p[f"{side}_ankle_flex"])
        # Arms hang toward the ground (elevation in the trunk frame = trunk angle), or rest on the knees.
        elev = np.where(hands_on_knees, trunk - d.u(25, 45), trunk + d.g(0, 15))
        elev = np.minimum(elev, 170)
        _set_arm(
            p,
            side,
            np.maximum(elev, 0),
            d.u(65, 105),
            d.g(-10, 20),
            np.where(hands_on_knees, d.u(5, 35), d.u(0, 40)),
        )
        gest = _arm_gesture(d, {"point": 0.4, "behind": 0.3, "hip": 0.3})
        other = d.coin(0.2)
        for name, v in zip(("shoulder_elevation", "shoulder_plane", "shoulder_rotation", "elbow_flex"), gest):
            p[f"{side}_{name}"] = np.where(other, v, p[f"{side}_{name}"])
    return p


def _lie(d: _Draw) -> _Pose:
    p = _base(d)
    kind = d.pick({"back": 0.45, "front": 0.25, "side": 0.3})
    p["pitch"] = np.choose(kind, [d.g(-88, 4), d.g(88, 4), d.g(0, 10)])
    p["roll"] = np.choose(kind, [d.g(0, 6), d.g(0, 6), np.where(d.coin(0.5), 85.0, -85.0) + d.g(0, 6)])
    p["spine_flex"] = np.where(kind == 2, d.u(0, 40), d.g(0, 8))
    p["spine_lateral"] = d.g(0, 8)
    p["neck_twist"] = np.where(kind == 1, np.where(d.coin(0.5), 40.0, -40.0) + d.g(0, 8), d.g(0, 20))
    p["neck_flex"] = np.where(kind == 0, d.u(-10, 40), d.g(0, 10))
    for side in ("left", "right"):
        bent = d.coin(0.35)
        curl = (kind == 2) & d.coin(0.6)  # curled up on the side
        hip = np.where(curl, d.u(30, 95), np.where(bent, d.u(20, 70), d.g(0, 6)))
        knee = np.where(curl, d.u(40, 110), np.where(bent, hip + d.u(20, 60), np.abs(d.g(3, 5))))
        p[f"{side}_hip_flex"] = hip
        p[f"{side}_knee_flex"] = knee
        p[f"{side}_hip_abduction"] = d.u(-5, 20)
        p[f"{side}_ankle_flex"] = d.u(-40, 0)
        _set_arm(
            p,
            side,
            *_arm_gesture(d, {"hang": 0.35, "head": 0.2, "front": 0.25, "point": 0.1, "crossed": 0.1}),
        )
        up = d.coin(0.15)  # arms stretched overhead
        p[f"{side}_shoulder_elevation"] = np.where(up, d.u(150, 180), p[f"{side}_shoulder_elevation"])
        p[f"{side}_elbow_flex"] = np.where(up, d.u(0, 30), p[f"{side}_elbow_flex"])
    return p


def _athletic(d: _Draw) -> _Pose:
    """Sports and training moves: high knees and skips, butt kicks, kicks, jumps, jumping jacks, throws and
    swings, one-leg balances and quad stretches, lunge stretches, carioca (crossover) steps, lateral
    lunges."""
    p = _base(d)
    kinds = ("high_knee", "butt_kick", "kick", "tuck_jump", "jumping_jack", "throw", "balance",
             "lunge_stretch", "carioca", "lateral_lunge")  # fmt: skip
    kind = d.pick(dict(zip(kinds, (0.16, 0.08, 0.1, 0.07, 0.17, 0.12, 0.08, 0.08, 0.08, 0.06))))
    k = {name: kind == i for i, name in enumerate(kinds)}
    lead_left = d.coin(0.5)
    p["pitch"] = np.choose(kind, [d.g(0, 6), d.g(5, 5), d.u(-20, 10), d.u(0, 25), d.g(0, 3), d.u(-5, 20),
                                  d.g(0, 5), d.u(-5, 80), d.g(5, 5), d.u(10, 45)])  # fmt: skip
    front_thigh = d.u(50, 100)
    front_knee = front_thigh + d.u(-10, 25)
    rear_thigh, rear_knee = _rear_leg(_hip_height(front_thigh, front_knee), d.u(0, 0.8), d.u(20, 50))
    for side in ("left", "right"):
        lead = lead_left if side == "left" else ~lead_left
        st_thigh, st_knee = d.g(0, 6), np.abs(d.g(5, 8))  # the standing leg
        jack = d.u(0, 1)
        thigh, knee, abd = _select(kind, [
            (np.where(lead, d.u(65, 105), st_thigh), np.where(lead, d.u(70, 130), st_knee), d.u(-5, 10)),
            (np.where(lead, d.u(-15, 25), st_thigh), np.where(lead, d.u(115, 150), st_knee), d.u(-5, 10)),
            (np.where(lead, d.u(40, 100), st_thigh), np.where(lead, d.u(0, 45), d.u(0, 30)), d.u(-5, 20)),
            (d.u(40, 100), d.u(50, 130), d.u(0, 25)),
            (d.g(0, 4), np.abs(d.g(4, 6)), 3 + 30 * jack),
            (np.where(lead, d.u(15, 50), d.u(-35, -5)), d.u(5, 40), d.u(0, 20)),
            (np.where(lead, d.u(-15, 45), st_thigh), np.where(lead, d.u(100, 150), st_knee), d.u(-5, 45)),
            (np.where(lead, front_thigh, rear_thigh), np.where(lead, front_knee, rear_knee), d.u(-5, 15)),
            # Carioca: the leading leg crosses in front of the other (hip adduction).
            (np.where(lead, d.u(15, 50), d.u(-15, 5)), np.where(lead, d.u(20, 60), d.u(10, 30)),
             np.where(lead, d.u(-30, -15), d.u(5, 15))),
            # Lateral lunge: one leg bent under the body, the other straight out to the side.
            (np.where(lead, d.u(50, 90), d.u(0, 20)), np.where(lead, d.u(60, 120), d.u(0, 15)),
             np.where(lead, d.u(5, 25), d.u(30, 50))),
        ])  # fmt: skip
        hops = k["high_knee"] | k["butt_kick"] | k["kick"] | k["balance"] | k["carioca"]  # one foot down
        planted = (
            (hops & ~lead) | k["jumping_jack"] | k["throw"] | k["lateral_lunge"] | (k["lunge_stretch"] & lead)
        )
        rot = np.where(k["carioca"] & lead, d.u(-20, 5), d.g(8, 10))
        _set_leg(p, side, thigh, knee, abd=abd, rot=rot)
        toes = np.where(k["lunge_stretch"], knee - thigh - d.u(20, 50), d.u(-40, 10))
        p[f"{side}_ankle_flex"] = np.where(planted, p[f"{side}_ankle_flex"], toes)

        # Arms: opposite arm drives in running drills, windmill for kicks, overhead for jacks and jumps.
        alpha = np.where(lead, d.u(-60, -10), d.u(30, 75))
        drill_el, drill_pl = _sagittal_arm(alpha, d.u(0, 20))
        elev, plane, rot, elbow = _select(kind, [
            (drill_el, drill_pl, d.g(-10, 10), d.u(60, 100)),
            (drill_el, drill_pl, d.g(-10, 10), d.u(60, 100)),
            (d.u(20, 100), d.u(-20, 60), d.g(0, 20), d.u(0, 60)),
            (d.u(20, 170), d.u(20, 100), d.g(0, 20), d.u(0, 90)),
            (15 + 160 * np.clip(jack + d.g(0, 0.08), 0, 1), d.u(-15, 25), d.g(0, 15), d.u(0, 30)),
            (np.where(lead, d.u(40, 100), d.u(60, 160)), np.where(lead, d.u(60, 140), d.u(-40, 40)),
             d.u(-60, 90), d.u(0, 120)),
            (d.u(10, 100), d.u(-20, 60), d.g(0, 20), d.u(0, 90)),
            (d.u(0, 175), d.u(-10, 110), d.g(0, 20), d.u(0, 60)),
            (d.u(20, 90), d.u(-20, 40), d.g(0, 20), d.u(0, 60)),
            (d.u(10, 90), d.u(40, 100), d.g(0, 20), d.u(0, 90)),
        ])  # fmt: skip
        # A quad stretch holds the bent leg's foot behind the buttock with the same-side hand.
        hold = k["balance"] & lead & (knee > 120) & d.coin(0.6)
        elev = np.where(hold, d.u(20, 45), elev)
        plane = np.where(hold, d.u(-90, -60), plane)
        rot = np.where(hold, d.u(-40, 0), rot)
        elbow = np.where(hold, d.u(40, 90), elbow)
        _set_arm(p, side, elev, plane, rot, elbow)
    twist_dir = np.where(lead_left, 1.0, -1.0)
    p["spine_twist"] = np.where(k["throw"], d.u(-45, 45), p["spine_twist"])
    p["spine_twist"] = np.where(k["carioca"], twist_dir * d.u(10, 35), p["spine_twist"])
    p["spine_flex"] = np.where(k["lunge_stretch"] | k["lateral_lunge"], d.u(0, 40), p["spine_flex"])
    return p


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` distance from points ``p`` to segments ``a-b`` (all ``(N, 3)``)."""
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=-1)


def _collisions(p: _Pose) -> dict[str, np.ndarray]:
    """Per limb (``left_arm``, ``right_arm``, ``legs``), people whose limb passes through the body, checked on
    a body of mean proportions: elbow or wrist inside the trunk, a knee or ankle inside the other leg."""
    n = len(p["pitch"])
    pts = forward_kinematics(clip_to_limits({k: p[k] for k in ANGLE_NAMES}), mean_bone_lengths(n))
    pelvis, thorax = pts[:, _J["pelvis"]], pts[:, _J["thorax"]]
    out = {}
    for side in ("left", "right"):
        hit = np.zeros(n, dtype=bool)
        for joint in ("elbow", "wrist"):
            hit |= _segment_distance(pts[:, _J[f"{side}_{joint}"]], pelvis, thorax) < 0.05 * STATURE_MEAN
        out[f"{side}_arm"] = hit
    legs = np.zeros(n, dtype=bool)
    for side, other in (("left", "right"), ("right", "left")):
        for joint in ("knee", "ankle"):
            q = pts[:, _J[f"{side}_{joint}"]]
            for a, b in (("hip", "knee"), ("knee", "ankle")):
                seg = _segment_distance(q, pts[:, _J[f"{other}_{a}"]], pts[:, _J[f"{other}_{b}"]])
                legs |= seg < 0.04 * STATURE_MEAN
    out["legs"] = legs
    return out


def _random(d: _Draw) -> _Pose:
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


_SAMPLERS: dict[str, Callable[[_Draw], _Pose]] = {
    "stand": _stand, "walk": _walk, "run": _run, "sit": _sit, "crouch": _crouch, "reach": _reach,
    "arms_raised": _arms_raised, "bend": _bend, "lie": _lie, "athletic": _athletic, "random": _random,
}  # fmt: skip

# Independent noise added to every family's angles (degrees): people never hit the prototype exactly.
_ANGLE_NOISE_SD = 4.0


@dataclass
class KinematicState:
    """A batch of people as kinematic parameters, the input of :func:`forward_kinematics`.

    Attributes:
        angles: ``(N,)`` degrees per name of :data:`ANGLE_NAMES`, within :data:`JOINT_LIMITS`.
        bones: lengths from :func:`sample_bone_lengths`.
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
        ``angles`` (``(N,)`` degrees per name of :data:`ANGLE_NAMES`, clipped to the limits and couplings of
        :func:`clip_to_limits`) and ``(N, 2)`` root ``(pitch, roll)`` in degrees (see
        :func:`root_rotation_matrix`).
    """
    families = np.asarray(families, dtype=np.intp)
    n = len(families)
    angles = {name: np.zeros(n) for name in ANGLE_NAMES}
    root = np.zeros((n, 2))
    for f, name in enumerate(FAMILIES):
        idx = np.flatnonzero(families == f)
        if idx.size == 0:
            continue
        d = _Draw(rng, idx.size)
        pose = _SAMPLERS[name](d)
        if name != "random":
            _shoulder_rhythm(pose)
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


# ----------------------------------------------------------------------------------------------------------
# Camera
# ----------------------------------------------------------------------------------------------------------

FOV_RANGE = (25.0, 70.0)  # vertical field of view, degrees, log-uniform: telephoto sports to phone wide
FILL_RANGE = (0.3, 0.95)  # person extent / image extent along the tighter axis
TRUNCATED_SHARE = 0.2  # people pushed partly over an image edge, by 10-50% of their extent
_EDGES = {"bottom": 0.45, "left": 0.2, "right": 0.2, "top": 0.15}
MIN_DISTANCE = 1.5  # metres from the camera to the person's centre


def _look_at(direction: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` world->camera rotations (rows: image right, image down, optical axis) for cameras looking
    along ``direction`` (``(N, 3)``, world y up), rolled by ``roll`` degrees."""
    fwd = direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(fwd, right)
    r = np.stack([right, down, fwd], axis=1)
    return _rot(2, roll) @ r  # about the camera's own optical axis


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` rotations taking unit vectors ``a`` onto unit vectors ``b`` (Rodrigues; never
    antiparallel here: both lie in front of the camera)."""
    v = np.cross(a, b)
    c = np.einsum("ni,ni->n", a, b)
    vx = np.zeros(a.shape[:1] + (3, 3))
    vx[:, 0, 1], vx[:, 0, 2], vx[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    vx[:, 1, 0], vx[:, 2, 0], vx[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    return np.eye(3) + vx + vx @ vx / (1.0 + c)[:, None, None]


def _place_cameras(
    pts: np.ndarray, families: np.ndarray, image_size: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Photograph world points ``(N, J, 3)``; return them in the camera frame and the ``(N,)`` focal length.

    The camera sits at a random elevation (a little above eye level on average; above people lying down)
    looking at the person's centre, backs off until the person fills a random share of the image, then turns
    so the person lands at a random place in the image, part of them over an edge for some.
    """
    n = len(pts)
    w, h = image_size
    fov = np.exp(rng.uniform(*np.log(FOV_RANGE), n))
    focal = (h / 2.0) / np.tan(np.radians(fov) / 2.0)
    lying = families == FAMILIES.index("lie")
    elev = np.where(lying, rng.uniform(15, 65, n), np.clip(rng.normal(8, 12, n), -20, 60))
    roll = rng.normal(0, 3, n)
    fill = rng.uniform(*FILL_RANGE, n)

    centre = (pts.min(axis=1) + pts.max(axis=1)) / 2.0
    e = np.radians(elev)
    to_cam = np.stack([np.zeros(n), np.sin(e), np.cos(e)], axis=-1)  # person yaw already covers the azimuth
    r_wc = _look_at(-to_cam, roll)
    rel = pts - centre[:, None]
    body = np.einsum("nij,nkj->nki", r_wc, rel)  # person in camera axes, centred on the origin

    def project(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cam = body + np.stack([np.zeros(n), np.zeros(n), dist], axis=-1)[:, None]
        return cam, focal[:, None, None] * cam[..., :2] / cam[..., 2:3]

    # Extent scales as 1/distance; one correction from a far first guess lands within a few percent.
    d0 = np.full(n, 8.0)
    _, uv = project(d0)
    extent = np.maximum(np.ptp(uv[..., 0], axis=1) / w, np.ptp(uv[..., 1], axis=1) / h)
    radius = np.linalg.norm(rel, axis=-1).max(axis=1)
    dist = np.maximum(d0 * extent / fill, np.maximum(MIN_DISTANCE, radius + 0.5))
    cam, uv = project(dist)

    lo, hi = uv.min(axis=1), uv.max(axis=1)
    mid, size = (lo + hi) / 2.0, hi - lo
    half_img = np.array([w, h], dtype=np.float64) / 2.0
    # Target centre (relative to the principal point) with the whole person inside where they fit...
    slack = np.maximum(half_img - size / 2.0, 0.0)
    target = rng.uniform(-1.0, 1.0, (n, 2)) * slack
    # ...or pushed over one edge by a share of their extent.
    cut = rng.random(n) < TRUNCATED_SHARE
    edge = rng.choice(4, n, p=np.array(list(_EDGES.values())))
    over = rng.uniform(0.1, 0.5, n)
    axis = np.where(edge < 1, 1, np.where(edge < 3, 0, 1))  # bottom/top move v, left/right move u
    sign = np.where((edge == 0) | (edge == 2), 1.0, -1.0)  # bottom, right: toward +
    rows = np.arange(n)
    edge_pos = sign * (half_img[axis] + size[rows, axis] * (over - 0.5))
    target[rows[cut], axis[cut]] = edge_pos[cut]

    def ray(p: np.ndarray) -> np.ndarray:
        v = np.concatenate([p / focal[:, None], np.ones((n, 1))], axis=-1)
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    turn = _rotation_between(ray(mid), ray(target))
    return np.einsum("nij,nkj->nki", turn, cam), focal


# ----------------------------------------------------------------------------------------------------------
# Visibility
# ----------------------------------------------------------------------------------------------------------

# Body volumes for self-occlusion: capsules between two points (a point is a joint name or a weighted mix of
# two), radius as a fraction of stature ("skull" scales with head_scale instead).
_CAPSULES: tuple[tuple[str, object, object, float], ...] = (
    ("trunk", "pelvis", "thorax", 0.058),
    ("trunk_left", ("pelvis", "left_hip", 0.6), ("thorax", "left_shoulder", 0.55), 0.05),
    ("trunk_right", ("pelvis", "right_hip", 0.6), ("thorax", "right_shoulder", 0.55), 0.05),
    ("neck", "thorax", "upper_neck", 0.03),
    ("skull", "head_center", ("head_center", "head_top", 0.5), 0.095),
) + tuple(
    (f"{side}_{name}", f"{side}_{a}", f"{side}_{b}", r)
    for side in ("left", "right")
    for name, a, b, r in (
        ("upper_arm", "shoulder", "elbow", 0.025), ("forearm", "elbow", "wrist", 0.02),
        ("hand", "wrist", "hand", 0.016), ("thigh", "hip", "knee", 0.04), ("shank", "knee", "ankle", 0.028),
        ("foot", "heel", "toe", 0.02),
    )
)  # fmt: skip
_CAPSULE_NAMES = tuple(c[0] for c in _CAPSULES)
_INTERIOR = ("pelvis", "spine", "thorax", "upper_neck", "neck_base", "head")  # inside the body, not on it
# Head surface points, visible while cos(outward normal, direction to the camera) exceeds the value: the nose
# and ears stick out (seen from a little behind their side), the eyes sit in their sockets.
_FACE = {"nose": -0.1, "left_eye": 0.15, "right_eye": 0.15, "left_ear": -0.25, "right_ear": -0.25,
         "head_top": -0.6}  # fmt: skip


def _exempt_capsules(joint: str) -> set[str]:
    """Capsules that cannot hide ``joint``: those it belongs to."""
    if joint in _INTERIOR:
        return {"trunk", "trunk_left", "trunk_right", "neck", "skull"}
    if joint in _FACE or joint == "head_center":
        return {"skull", "neck"}
    side, _, part = joint.partition("_")
    own = {
        "shoulder": {"trunk_" + side, "upper_arm"}, "elbow": {"upper_arm", "forearm"},
        "wrist": {"forearm", "hand"}, "hand": {"hand"}, "hip": {"trunk", "trunk_" + side, "thigh"},
        "knee": {"thigh", "shank"}, "ankle": {"shank", "foot"}, "toe": {"foot"}, "heel": {"foot"},
    }[part]  # fmt: skip
    return {c if c.startswith("trunk") else f"{side}_{c}" for c in own}


def _point(pts: np.ndarray, spec: object) -> np.ndarray:
    if isinstance(spec, str):
        return pts[:, _J[spec]]
    a, b, t = spec  # type: ignore[misc]
    return (1.0 - t) * pts[:, _J[a]] + t * pts[:, _J[b]]


def self_occlusion(
    cam: np.ndarray, joints: np.ndarray, stature: np.ndarray, head_scale: np.ndarray
) -> np.ndarray:
    """``(N, len(joints))`` bool: the model point is hidden by the body from a camera at the origin.

    A point is hidden when its projection falls inside the projected outline of a body capsule that is not
    its own and it lies behind that capsule's axis; face points (and the head top) are also hidden when their
    surface faces away from the camera.

    Args:
        cam: ``(N, J, 3)`` :data:`JOINT_NAMES` points in the camera frame (z forward, metres).
        joints: indices into :data:`JOINT_NAMES` to test.
        stature, head_scale: ``(N,)`` from the bones, which size the capsules.
    """
    cam = cam.astype(np.float32)
    q = cam[:, joints]  # (N, Q, 3)
    a = np.stack([_point(cam, c[1]) for c in _CAPSULES], axis=1)  # (N, C, 3)
    b = np.stack([_point(cam, c[2]) for c in _CAPSULES], axis=1)
    radius = np.array([c[3] for c in _CAPSULES], dtype=np.float32)[None] * stature[:, None].astype(np.float32)
    radius[:, _CAPSULE_NAMES.index("skull")] = 0.095 * head_scale
    exempt = np.array([[c[0] in _exempt_capsules(JOINT_NAMES[j]) for c in _CAPSULES] for j in joints])

    # Image-plane coordinates at unit focal length, one array per axis: (N, Q, 1) query points against
    # (N, 1, C) capsule ends.
    qz = q[..., 2:3]
    qx, qy = q[..., 0:1] / qz, q[..., 1:2] / qz
    ax, ay, az = (a[:, None, :, k] for k in range(3))
    bx, by, bz = (b[:, None, :, k] for k in range(3))
    ax, ay, bx, by = ax / az, ay / az, bx / bz, by / bz
    dx, dy = bx - ax, by - ay
    px, py = qx - ax, qy - ay  # (N, Q, C)
    t = np.clip((px * dx + py * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    ex, ey = px - t * dx, py - t * dy
    z = az + t * (bz - az)
    r = radius[:, None]
    # Behind the axis by a quarter radius: points on a capsule's flanks stay visible, as they do to labellers.
    hidden = ((ex * ex + ey * ey) * (z * z) < r * r) & (qz > z + 0.25 * r) & ~exempt[None]
    hidden = hidden.any(-1)

    # Face points: outward normal of the head sphere (skull centre ~ 12% of the way from ears to vertex).
    centre = cam[:, _J["head_center"]] + 0.12 * (cam[:, _J["head_top"]] - cam[:, _J["head_center"]])
    for col, j in enumerate(joints):
        thr = _FACE.get(JOINT_NAMES[j])
        if thr is None:
            continue
        normal = q[:, col] - centre
        to_cam = -q[:, col]
        cos = np.sum(normal * to_cam, -1) / (
            np.linalg.norm(normal, axis=-1) * np.linalg.norm(to_cam, axis=-1)
        )
        hidden[:, col] |= cos < thr
    return hidden


# ----------------------------------------------------------------------------------------------------------
# Public sampling API
# ----------------------------------------------------------------------------------------------------------

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


def _check_image_size(image_size: tuple[int, int]) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise PosetokError(f"image_size must be (width, height) integers, got {image_size!r}") from None
    if w < 16 or h < 16:
        raise PosetokError(f"image_size must be at least 16x16 pixels, got {w}x{h}")
    return w, h


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
    w, h = _check_image_size(image_size)
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
        cam, focal = _place_cameras(world, state.families[sl], (w, h), rng)
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
