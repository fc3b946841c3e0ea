"""Self-occlusion of the synthetic human: which points the body hides from the camera.

The body is a set of capsules around the bones; a point behind a capsule that is not its
own, inside that capsule's projected outline, is hidden, and face points also hide when the head surface under
them faces away from the camera. Truncation (points outside the image) is tested where the points are projected.
"""

from __future__ import annotations

import numpy as np

from .body import JOINT_INDEX, JOINT_NAMES

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
        return pts[:, JOINT_INDEX[spec]]
    a, b, t = spec  # type: ignore[misc]
    return (1.0 - t) * pts[:, JOINT_INDEX[a]] + t * pts[:, JOINT_INDEX[b]]


def self_occlusion(
    cam: np.ndarray, joints: np.ndarray, stature: np.ndarray, head_scale: np.ndarray
) -> np.ndarray:
    """``(N, len(joints))`` bool: the model point is hidden by the body from a camera at the origin.

    A point is hidden when its projection falls inside the projected outline of a body capsule that is not
    its own and it lies behind that capsule's axis; face points (and the head top) are also hidden when their
    surface faces away from the camera.

    Args:
        cam: ``(N, J, 3)`` :data:`~posetok.data.body.JOINT_NAMES` points in the camera frame (z forward, metres).
        joints: indices into :data:`~posetok.data.body.JOINT_NAMES` to test.
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
    head_center, head_top = cam[:, JOINT_INDEX["head_center"]], cam[:, JOINT_INDEX["head_top"]]
    centre = head_center + 0.12 * (head_top - head_center)
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
