"""The kinematic human of the synthetic data: its points, bone lengths, joint limits and forward kinematics.

A person is a kinematic tree with anthropometric bone lengths (:func:`sample_bone_lengths`) and joint angles
inside anatomical limits (:data:`JOINT_LIMITS`, :func:`clip_to_limits`); :func:`forward_kinematics` turns a
batch of them into the 3D points of :data:`JOINT_NAMES`, of which :func:`layout_indices` picks a keypoint
layout.

Body frame
----------
What :func:`forward_kinematics` returns: metres, ``x`` = the person's left, ``y`` = up, ``z`` = the direction
the person faces, origin at the pelvis (midpoint of the hip keypoints) unless a ``root_position`` is given.
``root_rotation`` maps the body frame of the pelvis into this world frame.

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

import numpy as np

from ..errors import PosetokError
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
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}

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
    return np.array([JOINT_INDEX[_ALIASES.get(j, j)] for j in sk.joint_names], dtype=np.intp)


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


def axis_rotation(axis: int, deg: np.ndarray) -> np.ndarray:
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
    return _mm(axis_rotation(1, yaw), axis_rotation(0, pitch), axis_rotation(2, roll))


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
    out[:, JOINT_INDEX["pelvis"]] = p0

    # Trunk: the bend is shared by a lumbar and a thoracic joint so the back curves instead of hinging.
    half = _mm(
        axis_rotation(0, ang("spine_flex") / 2),
        axis_rotation(2, -ang("spine_lateral") / 2),
        axis_rotation(1, ang("spine_twist") / 2),
    )
    r_lumbar = r0 @ half
    out[:, JOINT_INDEX["spine"]] = p0 + _apply(r_lumbar, vec(0.0, bone("pelvis_spine"), 0.0))
    r_chest = r_lumbar @ half
    thorax = out[:, JOINT_INDEX["spine"]] + _apply(r_chest, vec(0.0, bone("spine_thorax"), 0.0))
    out[:, JOINT_INDEX["thorax"]] = thorax

    # Neck and head. The resting neck leans ~7 deg forward of the trunk axis.
    r_neck = _mm(
        r_chest,
        axis_rotation(0, ang("neck_flex")),
        axis_rotation(2, -ang("neck_lateral")),
        axis_rotation(1, ang("neck_twist")),
    )
    neck_len = bone("neck")
    upper_neck = thorax + _apply(r_neck, vec(0.0, 0.993 * neck_len, 0.12 * neck_len))
    out[:, JOINT_INDEX["upper_neck"]] = upper_neck
    r_head = _mm(
        r_neck,
        axis_rotation(0, ang("head_flex")),
        axis_rotation(2, -ang("head_lateral")),
        axis_rotation(1, ang("head_twist")),
    )
    hs = bone("head_scale")[:, None]
    for name, offset in _HEAD_POINTS.items():
        out[:, JOINT_INDEX[name]] = upper_neck + _apply(r_head, hs * np.asarray(offset))

    for side, sgn in (("left", 1.0), ("right", -1.0)):

        def a(name: str, side: str = side) -> np.ndarray:
            return ang(f"{side}_{name}")

        def b(name: str, side: str = side) -> np.ndarray:
            return bone(f"{side}_{name}")

        # Mirror: rotations about y and z change sign on the right side, rotations about x do not.
        r_clav = axis_rotation(2, sgn * a("clavicle_elevation")) @ axis_rotation(1, -sgn * a("clavicle_protraction"))
        drop = bone("shoulder_drop")
        shoulder = thorax + _apply(r_chest @ r_clav, vec(sgn * b("clavicle"), -drop, -0.45 * drop))
        plane, elev = a("shoulder_plane"), a("shoulder_elevation")
        r_arm = _mm(
            r_chest,
            axis_rotation(1, -sgn * plane),
            axis_rotation(2, sgn * elev),
            axis_rotation(1, sgn * (plane + a("shoulder_rotation"))),
        )
        elbow = shoulder + _apply(r_arm, vec(0.0, -b("upper_arm"), 0.0))
        r_fore = r_arm @ axis_rotation(0, -a("elbow_flex"))
        wrist = elbow + _apply(r_fore, vec(0.0, -b("forearm"), 0.0))
        hand = wrist + _apply(r_fore, vec(0.0, -b("hand"), 0.0))

        hip = p0 + _apply(r0, vec(sgn * b("hip_width"), 0.0, 0.0))
        r_thigh = _mm(
            r0,
            axis_rotation(0, -a("hip_flex")),
            axis_rotation(2, sgn * a("hip_abduction")),
            axis_rotation(1, sgn * a("hip_rotation")),
        )
        knee = hip + _apply(r_thigh, vec(0.0, -b("thigh"), 0.0))
        r_shank = r_thigh @ axis_rotation(0, a("knee_flex"))
        ankle = knee + _apply(r_shank, vec(0.0, -b("shank"), 0.0))
        r_foot = r_shank @ axis_rotation(0, -a("ankle_flex"))
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
            out[:, JOINT_INDEX[f"{side}_{name}"]] = pt
    return out
