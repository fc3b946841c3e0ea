"""Whole-body extras on the synthetic human: feet, face and hands (COCO-WholeBody joints 17-132) and their
self-occlusion.

Feet (big toe, small toe, heel) come from the model's toe and heel, 68 face landmarks from a fixed template on
the head (rotated with it, the jaw opening by the ``jaw`` series) and 21 points per hand from a finger-chain
template attached to the wrist in the forearm's orientation, the fingers curling by the ``*_curl`` series.
"""

from __future__ import annotations

import numpy as np

from ..skeletons import WB_FACE, WB_FOOT, WB_LEFT_HAND
from .body import JOINT_INDEX

# 68 iBUG face landmarks in the head frame of posetok.data.body (metres for head_scale 1, origin at the upper neck,
# x = the person's left, y = up, z = forward), placed around the model's eyes (y 0.065, z 0.068) and nose tip
# (y 0.04, z 0.092). Landmarks 0-8 and the right (-x) halves are listed; the rest are mirror images.
_JAW_HALF = [(-0.068, 0.060, 0.015), (-0.068, 0.045, 0.018), (-0.066, 0.030, 0.022), (-0.063, 0.014, 0.027),
             (-0.058, -0.001, 0.034), (-0.050, -0.016, 0.045), (-0.039, -0.028, 0.059), (-0.022, -0.038, 0.073),
             (0.0, -0.042, 0.080)]  # fmt: skip
_RIGHT_BROW = [(-0.055, 0.080, 0.055), (-0.046, 0.086, 0.067), (-0.035, 0.088, 0.073), (-0.024, 0.087, 0.077),
               (-0.013, 0.084, 0.079)]  # fmt: skip
_NOSE_BRIDGE = [(0.0, 0.068, 0.078), (0.0, 0.060, 0.083), (0.0, 0.051, 0.089), (0.0, 0.043, 0.095)]
_LOWER_NOSE = [(-0.017, 0.032, 0.078), (-0.009, 0.030, 0.083), (0.0, 0.029, 0.086)]
_RIGHT_EYE = [(-0.044, 0.065, 0.058), (-0.035, 0.070, 0.065), (-0.025, 0.070, 0.068), (-0.016, 0.065, 0.068),
              (-0.025, 0.061, 0.068), (-0.035, 0.061, 0.065)]  # fmt: skip
_OUTER_LIP = [(-0.025, 0.008, 0.076), (-0.016, 0.014, 0.084), (-0.006, 0.017, 0.089), (0.0, 0.015, 0.090)]
_OUTER_LIP_LOW = [(-0.016, 0.001, 0.084), (-0.007, -0.003, 0.088), (0.0, -0.004, 0.089)]
_INNER_LIP = [(-0.020, 0.008, 0.080), (-0.008, 0.010, 0.086), (0.0, 0.010, 0.087)]
_INNER_LIP_LOW = [(0.0, 0.006, 0.087), (-0.008, 0.006, 0.086)]


def _mirror(pts: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    return [(-x, y, z) for x, y, z in pts]


def _face_template() -> tuple[np.ndarray, np.ndarray]:
    """``(68, 3)`` landmarks and ``(68,)`` weights of the jaw's rotation (1 = moves with the chin)."""
    pts = (
        _JAW_HALF + _mirror(_JAW_HALF[:8])[::-1]  # 0-16, subject's right to left
        + _RIGHT_BROW + _mirror(_RIGHT_BROW)[::-1]  # 17-26
        + _NOSE_BRIDGE  # 27-30
        + _LOWER_NOSE + _mirror(_LOWER_NOSE[:2])[::-1]  # 31-35
        + _RIGHT_EYE  # 36-41: outer corner, upper lid, inner corner, lower lid
        + [_mirror(_RIGHT_EYE)[i] for i in (3, 2, 1, 0, 5, 4)]  # 42-47: inner corner first
        + _OUTER_LIP + _mirror(_OUTER_LIP[:3])[::-1]  # 48-54: right corner over the top to the left corner
        + _mirror(_OUTER_LIP_LOW)[:2] + _OUTER_LIP_LOW[2:] + _OUTER_LIP_LOW[1::-1]  # 55-59: bottom, left to right
        + _INNER_LIP + _mirror(_INNER_LIP[:2])[::-1]  # 60-64
        + _mirror(_INNER_LIP_LOW[1:]) + _INNER_LIP_LOW  # 65-67: bottom, left to right
    )
    pts_arr = np.array(pts, dtype=np.float64)
    jaw = np.zeros(68)
    jaw[:17] = np.interp(np.abs(np.arange(17) - 8), [0, 4, 6, 8], [1.0, 0.9, 0.3, 0.0])
    jaw[[48, 54, 60, 64]] = 0.5
    jaw[55:60] = 1.0
    jaw[65:68] = 1.0
    return pts_arr, jaw


#: ``(68, 3)`` face landmark template in the head frame (metres for ``head_scale`` 1); each person's face is a
#: jittered copy of it (see :func:`~posetok.data.motion.simulate_motion`).
FACE_POINTS, _JAW_WEIGHT = _face_template()
_JAW_PIVOT = np.array([0.0, 0.045, 0.0])  # temporomandibular joints, head frame

# Hand template in units of the model's hand bone (wrist to hand point), in the hand's axes: ``a`` along the
# forearm, ``t`` toward the thumb, ``n`` out of the palm (the side the fingers curl toward). Per finger: knuckle
# (MCP; the thumb's CMC) position (a, t, n), spread angle (deg, toward t) and the three segment lengths.
_FINGERS = (
    ((0.12, 0.12, 0.05), 40.0, (0.30, 0.22, 0.18)),  # thumb
    ((0.62, 0.13, 0.0), 8.0, (0.27, 0.16, 0.13)),
    ((0.64, 0.04, 0.0), 0.0, (0.30, 0.19, 0.14)),
    ((0.60, -0.05, 0.0), -6.0, (0.28, 0.18, 0.13)),
    ((0.54, -0.13, 0.0), -14.0, (0.22, 0.14, 0.12)),
)
_FINGER_CURL = (75.0, 100.0, 65.0)  # MCP, PIP, DIP flexion of a full fist, degrees
_THUMB_CURL = (20.0, 35.0, 40.0)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _hand_points(wrist: np.ndarray, a: np.ndarray, t: np.ndarray, n: np.ndarray, size: np.ndarray,
                 curl: np.ndarray) -> np.ndarray:
    """``(F, 21, 3)`` hand keypoints (root, then 4 per finger from the palm) for frames ``F``: the axes ``a, t, n``
    ``(F, 3)``, ``size`` ``(F,)`` metres per template unit, ``curl`` ``(F,)`` in [0, 1]."""
    out = [wrist]
    c = curl[:, None]
    for f, (base, spread, lengths) in enumerate(_FINGERS):
        s = np.radians(spread * (1.0 - 0.5 * curl))[:, None]  # fingers close up as they curl
        knuckle = wrist + size[:, None] * (base[0] * a + base[1] * t + base[2] * n)
        direction = np.cos(s) * a + np.sin(s) * t
        if f == 0:
            direction = _unit(direction + 0.35 * n)
            bend = _unit(n - 0.5 * t)  # the thumb folds across the palm
            angles = _THUMB_CURL
        else:
            bend = n
            angles = _FINGER_CURL
        bend = _unit(bend - np.sum(bend * direction, -1, keepdims=True) * direction)
        out.append(knuckle)
        theta = np.zeros_like(c)
        p = knuckle
        for length, ang in zip(lengths, angles):
            theta = theta + np.radians(ang) * c
            p = p + size[:, None] * length * (np.cos(theta) * direction + np.sin(theta) * bend)
            out.append(p)
    return np.stack(out, axis=1)


def wholebody_extras(
    world: np.ndarray, wrist_flexed: np.ndarray, series: dict[str, np.ndarray], bones: dict[str, np.ndarray],
    face: np.ndarray,
) -> np.ndarray:
    """``(F, 116, 3)`` feet, face and hands (COCO-WholeBody indices 17-132) in the world frame.

    Args:
        world: ``(F, J, 3)`` model points.
        wrist_flexed: ``(F, 2, 3)`` left/right wrists with the elbow bent 10 deg more, to find the elbow axis.
        series: per frame ``jaw`` (deg), ``left_curl``, ``right_curl``.
        bones: per frame lengths (``stature``, ``head_scale``, ``left_hand``, ``right_hand``).
        face: ``(F, 68, 3)`` the person's face template (head frame).
    """
    def pt(name: str) -> np.ndarray:
        return world[:, JOINT_INDEX[name]]

    stature = bones["stature"][:, None]
    feet = []
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        toe, heel, ankle = pt(f"{side}_toe"), pt(f"{side}_heel"), pt(f"{side}_ankle")
        fwd = _unit(toe - heel)
        up = ankle - 0.5 * (toe + heel)
        up = _unit(up - np.sum(up * fwd, -1, keepdims=True) * fwd)
        medial = -sgn * np.cross(up, fwd)  # cross(up, fwd) points to the person's left
        feet.append([toe + stature * (0.012 * medial + 0.005 * fwd),  # big toe
                     toe - stature * (0.025 * medial + 0.018 * fwd),  # small toe
                     heel])
    feet_arr = np.stack([feet[0][0], feet[0][1], feet[0][2], feet[1][0], feet[1][1], feet[1][2]], axis=1)

    # Head axes, exact from the model's head points (eyes differ along x, head centre sits above the upper neck).
    hx = _unit(pt("left_eye") - pt("right_eye"))
    hy = _unit(pt("head_center") - pt("upper_neck"))
    hz = np.cross(hx, hy)
    jaw = np.radians(series["jaw"])[:, None] * _JAW_WEIGHT[None]  # (F, 68)
    rel = face - _JAW_PIVOT
    c, s = np.cos(jaw), np.sin(jaw)
    # Rotation about the head's x axis through the jaw joints: positive opens the mouth (chin down and back).
    y = c * rel[..., 1] - s * rel[..., 2]
    z = s * rel[..., 1] + c * rel[..., 2]
    local = np.stack([rel[..., 0], y, z], -1) + _JAW_PIVOT
    hs = bones["head_scale"][:, None, None]
    face_w = pt("upper_neck")[:, None] + hs * (
        local[..., :1] * hx[:, None] + local[..., 1:2] * hy[:, None] + local[..., 2:] * hz[:, None]
    )

    hands = []
    for k, (side, sgn) in enumerate((("left", 1.0), ("right", -1.0))):
        elbow, wrist = pt(f"{side}_elbow"), pt(f"{side}_wrist")
        a = _unit(wrist - elbow)
        # Elbow flexion turns the forearm about the forearm frame's +x axis by a negative angle.
        xf = -_unit(np.cross(wrist - elbow, wrist_flexed[:, k] - elbow))
        t = np.cross(xf, -a)  # forearm frame z: forward when the arm hangs, where the thumb points
        n = -sgn * xf  # palms face the body in the neutral pose
        hands.append(_hand_points(wrist, a, t, n, bones[f"{side}_hand"], series[f"{side}_curl"]))
    return np.concatenate([feet_arr, face_w, hands[0], hands[1]], axis=1)


def wholebody_hidden(cam: np.ndarray, extra_cam: np.ndarray, hidden_model: np.ndarray) -> np.ndarray:
    """``(F, 116)`` self-occlusion of the whole-body extras: feet and hands follow the model's toe, heel and hand
    points; face landmarks are hidden when the head surface under them faces away from the camera, or when the
    body hides the nose while it faces the camera."""
    def hid(name: str) -> np.ndarray:
        return hidden_model[:, JOINT_INDEX[name]]

    feet = np.stack([hid("left_toe"), hid("left_toe"), hid("left_heel"),
                     hid("right_toe"), hid("right_toe"), hid("right_heel")], axis=1)  # fmt: skip
    head_center, head_top = cam[:, JOINT_INDEX["head_center"]], cam[:, JOINT_INDEX["head_top"]]
    centre = head_center + 0.12 * (head_top - head_center)

    def facing(q: np.ndarray) -> np.ndarray:
        normal, to_cam = q - centre[:, None], -q
        return np.sum(normal * to_cam, -1) / np.maximum(
            np.linalg.norm(normal, axis=-1) * np.linalg.norm(to_cam, axis=-1), 1e-12
        )

    face = extra_cam[:, WB_FACE - WB_FOOT:WB_LEFT_HAND - WB_FOOT]
    thr = np.where(np.arange(68) < 17, -0.15, 0.05)  # the jaw line stays visible a little past the profile
    nose_faces = facing(cam[:, JOINT_INDEX["nose"]][:, None])[:, 0] > -0.1
    face_hidden = (facing(face) < thr) | (hid("nose") & nose_faces)[:, None]
    hands = np.repeat(np.stack([hid("left_hand"), hid("right_hand")], axis=1), 21, axis=1)
    return np.concatenate([feet, face_hidden, hands], axis=1)
