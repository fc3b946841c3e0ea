"""Everyday pose families of the synthetic mixture: standing, walking, sitting, crouching and kneeling,
reaching, arms raised, bending and lying.

Each sampler draws one pose per person of a :class:`~posetok.data.pose_primitives.Draw` (``(n,)`` degrees per
angle name plus the root ``pitch`` and ``roll``); :mod:`posetok.data.pose_families` mixes them.
"""

from __future__ import annotations

import numpy as np

from .body import BONE_PROPORTIONS
from .pose_primitives import (
    KNEE_PAD,
    Draw,
    Pose,
    arm_gesture,
    base_pose,
    gait_angles,
    hip_height,
    kneeling_front_knee,
    rear_leg,
    select_options,
    set_arm,
    set_leg,
)

_EVERYDAY_ARMS = {"hang": 0.55, "hip": 0.1, "front": 0.12, "crossed": 0.05, "face": 0.06, "head": 0.03,
                  "point": 0.06, "behind": 0.03}  # fmt: skip


def stand_pose(d: Draw) -> Pose:
    """Standing, half of the people resting their weight on one leg, arms in everyday gestures."""
    p = base_pose(d)
    # Half the people rest their weight on one leg: the other knee unlocks and the pelvis tilts toward it.
    relaxed = d.coin(0.5)
    free_left = d.coin(0.5)
    for side in ("left", "right"):
        free = relaxed & (free_left if side == "left" else ~free_left)
        knee = np.where(free, d.u(5, 25), np.abs(d.g(2, 4)))
        set_leg(p, side, d.g(0, 4), knee, abd=d.u(-3, 9), rot=d.g(8, 8))
        set_arm(p, side, *arm_gesture(d, _EVERYDAY_ARMS))
    p["roll"] = np.where(relaxed, np.where(free_left, -1.0, 1.0) * d.u(1, 5), p["roll"])
    return p


def walk_pose(d: Draw) -> Pose:
    """Walking at a random gait phase; some walkers carry or look at something."""
    p = base_pose(d)
    p["pitch"] = d.g(4, 3)
    gait_angles(d, p, d.u(0, 1), "walk")
    # Some walkers carry or look at something.
    for side in ("left", "right"):
        busy = d.coin(0.12)
        gest = arm_gesture(d, {"front": 0.5, "face": 0.3, "hang": 0.2})
        for name, v in zip(("shoulder_elevation", "shoulder_plane", "shoulder_rotation", "elbow_flex"), gest):
            p[f"{side}_{name}"] = np.where(busy, v, p[f"{side}_{name}"])
    return p


def sit_pose(d: Draw) -> Pose:
    """Sitting on a chair, cross-legged, legs long or knees up."""
    p = base_pose(d)
    kind = d.pick({"chair": 0.5, "cross_legged": 0.18, "long": 0.14, "knees_up": 0.18})
    p["pitch"] = np.choose(kind, [d.u(-15, 15), d.u(-5, 20), d.u(-30, 10), d.u(-30, 0)])
    p["spine_flex"] = d.u(-5, 35)
    p["spine_twist"] = d.g(0, 10)
    for side in ("left", "right"):
        thigh, knee, abd, rot = select_options(kind, [
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
        set_arm(
            p,
            side,
            *arm_gesture(
                d, {"hang": 0.2, "front": 0.4, "face": 0.1, "crossed": 0.1, "point": 0.1, "behind": 0.1}
            ),
        )
    return p


def crouch_pose(d: Draw) -> Pose:
    """Squatting, kneeling on one or both knees, or lunging."""
    p = base_pose(d)
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
    front_knee = np.where(kind == 1, kneeling_front_knee(front_thigh), front_thigh + d.u(-10, 25))
    heel_raise = d.u(20, 50)
    rear_thigh, rear_knee = rear_leg(hip_height(front_thigh, front_knee), d.u(0, 0.85), heel_raise)
    # Kneeling: the rear thigh hangs from the hip to the knee on the ground, the shin rises ~14 deg to the
    # ankle propped on the tucked toes.
    kneel_thigh = -np.degrees(np.arccos(np.clip((hip_height(front_thigh, front_knee) - KNEE_PAD)
                                                / BONE_PROPORTIONS["thigh"], 0.0, 1.0)))  # fmt: skip
    rear_thigh = np.where(kind == 1, kneel_thigh, rear_thigh)
    rear_knee = np.where(kind == 1, kneel_thigh + 104.0, rear_knee)
    for side in ("left", "right"):
        lead = left_leads if side == "left" else ~left_leads
        thigh, knee = select_options(kind, [
            (sq_thigh + d.g(0, 4), sq_thigh + sq_lean + d.g(0, 4)),
            (np.where(lead, front_thigh, rear_thigh), np.where(lead, front_knee, rear_knee)),
            (kb_thigh + d.g(0, 4), kb_knee + d.g(0, 4)),
            (np.where(lead, front_thigh, rear_thigh), np.where(lead, front_knee, rear_knee)),
        ])  # fmt: skip
        abd = np.where(kind == 0, d.u(5, 25), d.u(-5, 12))
        set_leg(p, side, thigh, knee, abd=abd, rot=d.g(10, 10))
        # The trailing foot of a lunge rests on the toes (heel raised 20-50 deg off flat), kneeling feet on
        # tucked toes (foot near vertical) or, sitting back on the heels, on the instep.
        planted = (kind == 0) | (((kind == 1) | (kind == 3)) & lead)
        flat = knee - thigh
        rear = np.where(kind == 3, flat - heel_raise, flat - d.u(70, 85))
        rear = np.where((kind == 2) & on_heels, d.u(-45, -30), rear)
        p[f"{side}_ankle_flex"] = np.where(planted, p[f"{side}_ankle_flex"], rear)
        gesture = arm_gesture(d, {"hang": 0.3, "front": 0.3, "point": 0.2, "hip": 0.1, "face": 0.1})
        set_arm(p, side, *gesture)
    return p


def reach_pose(d: Draw) -> Pose:
    """Reaching out with one or both arms, the trunk and legs following the hand."""
    p = base_pose(d)
    both = d.coin(0.35)
    plane = d.u(-30, 135)
    elev = d.u(40, 178)
    lead_left = d.coin(0.5)
    for side in ("left", "right"):
        lead = lead_left if side == "left" else ~lead_left
        reach = lead | both
        ev = np.where(reach, elev + np.where(both, d.g(0, 10), 0), np.abs(d.g(15, 15)))
        pl = np.where(reach, plane + np.where(both, d.g(0, 15), 0), d.u(-30, 100))
        set_arm(p, side, ev, pl, d.g(0, 30), np.where(reach, d.u(0, 35), d.u(0, 60)))
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
        set_leg(p, side, thigh, knee, abd=d.u(-2, 15), rot=d.g(8, 8))
        p[f"{side}_ankle_flex"] = np.where(tiptoe, d.u(-40, -20), p[f"{side}_ankle_flex"])
    return p


def arms_raised_pose(d: Draw) -> Pose:
    """Both arms up: overhead, T-pose, V cheer, hands behind the head, flexing or surrender."""
    p = base_pose(d)
    kind = d.pick({"overhead": 0.35, "t_pose": 0.15, "v_cheer": 0.15, "behind_head": 0.15, "flex": 0.1,
                   "surrender": 0.1})  # fmt: skip
    shared = d.u(0, 1)
    for side in ("left", "right"):
        # Arms mostly move together: both take the shared draw plus a little independent noise.
        def lerp(lo: float, hi: float) -> np.ndarray:
            return lo + (hi - lo) * np.clip(shared + d.g(0, 0.12), 0, 1)

        elev, plane, rot, elbow = select_options(kind, [
            (lerp(125, 180), d.u(-10, 100), d.g(0, 25), d.u(0, 40)),
            (lerp(75, 105), d.u(-15, 25), d.g(0, 25), d.u(0, 25)),
            (lerp(130, 165), d.u(-5, 40), d.g(0, 20), d.u(0, 25)),
            (lerp(100, 140), d.u(-10, 35), d.u(55, 90), d.u(120, 150)),
            (lerp(80, 105), d.u(-15, 25), d.u(60, 90), d.u(85, 135)),
            (lerp(75, 100), d.u(-5, 35), d.u(65, 90), d.u(60, 100)),
        ])  # fmt: skip
        set_arm(p, side, elev, plane, rot, elbow)
        set_leg(p, side, d.g(0, 4), np.abs(d.g(2, 5)), abd=d.u(-2, 15), rot=d.g(8, 8))
    p["spine_flex"] = d.g(-3, 5)
    p["neck_flex"] = d.g(-5, 12)
    return p


def bend_pose(d: Draw) -> Pose:
    """Bending forward from the hips, feet parallel, staggered or wide, hands hanging or on the knees."""
    p = base_pose(d)
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
    rear_thigh, rear_knee = rear_leg(hip_height(front_thigh, front_knee), d.u(0, 0.5), d.u(0, 30))
    for side in ("left", "right"):
        lead = (left_leads if side == "left" else ~left_leads) & (stance == 1)
        rear = (stance == 1) & ~lead
        thigh = np.where(lead, front_thigh, np.where(rear, rear_thigh, d.g(0, 6)))
        knee = np.abs(d.g(8, 12)) + np.where(hands_on_knees, d.u(10, 35), 0)
        knee = np.where(lead, front_knee, np.where(rear, rear_knee, knee))
        abd = np.where(stance == 2, d.u(15, 35), d.u(-2, 12))
        set_leg(p, side, thigh, knee, abd=abd, rot=d.g(8, 8))
        # A straight front leg rests on its heel, toes up.
        p[f"{side}_ankle_flex"] = np.where(lead & (front_knee < 12), d.u(0, 30), p[f"{side}_ankle_flex"])
        # Arms hang toward the ground (elevation in the trunk frame = trunk angle), or rest on the knees.
        elev = np.where(hands_on_knees, trunk - d.u(25, 45), trunk + d.g(0, 15))
        elev = np.minimum(elev, 170)
        set_arm(
            p,
            side,
            np.maximum(elev, 0),
            d.u(65, 105),
            d.g(-10, 20),
            np.where(hands_on_knees, d.u(5, 35), d.u(0, 40)),
        )
        gest = arm_gesture(d, {"point": 0.4, "behind": 0.3, "hip": 0.3})
        other = d.coin(0.2)
        for name, v in zip(("shoulder_elevation", "shoulder_plane", "shoulder_rotation", "elbow_flex"), gest):
            p[f"{side}_{name}"] = np.where(other, v, p[f"{side}_{name}"])
    return p


def lie_pose(d: Draw) -> Pose:
    """Lying on the back, the front or the side (root pitch or roll near 90 deg)."""
    p = base_pose(d)
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
        set_arm(
            p,
            side,
            *arm_gesture(d, {"hang": 0.35, "head": 0.2, "front": 0.25, "point": 0.1, "crossed": 0.1}),
        )
        up = d.coin(0.15)  # arms stretched overhead
        p[f"{side}_shoulder_elevation"] = np.where(up, d.u(150, 180), p[f"{side}_shoulder_elevation"])
        p[f"{side}_elbow_flex"] = np.where(up, d.u(0, 30), p[f"{side}_elbow_flex"])
    return p
