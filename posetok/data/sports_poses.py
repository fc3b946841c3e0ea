"""Sports pose families of the synthetic mixture: running (jogging to sprint starts) and athletic drills.

They reach the largest joint angles, which is why :data:`~posetok.data.pose_families.FAMILY_WEIGHTS` weights
them up. Samplers as in :mod:`posetok.data.everyday_poses`.
"""

from __future__ import annotations

import numpy as np

from .pose_primitives import (
    Draw,
    Pose,
    base_pose,
    gait_angles,
    hip_height,
    rear_leg,
    sagittal_arm,
    select_options,
    set_arm,
    set_leg,
)


def run_pose(d: Draw) -> Pose:
    """Running at a random gait phase, leaning forward from jogging to sprint starts."""
    p = base_pose(d)
    # Forward lean grows from jogging to acceleration (sprint starts lean 30-45 deg).
    p["pitch"] = np.where(d.coin(0.15), d.u(20, 45), d.u(0, 18))
    p["spine_flex"] = d.u(-5, 15)
    p["neck_flex"] = -0.5 * p["pitch"] + d.g(0, 8)  # keep the eyes on the track
    gait_angles(d, p, d.u(0, 1), "run")
    return p


def athletic_pose(d: Draw) -> Pose:
    """Sports and training moves: high knees and skips, butt kicks, kicks, jumps, jumping jacks, throws and
    swings, one-leg balances and quad stretches, lunge stretches, carioca (crossover) steps, lateral
    lunges."""
    p = base_pose(d)
    kinds = ("high_knee", "butt_kick", "kick", "tuck_jump", "jumping_jack", "throw", "balance",
             "lunge_stretch", "carioca", "lateral_lunge")  # fmt: skip
    kind = d.pick(dict(zip(kinds, (0.16, 0.08, 0.1, 0.07, 0.17, 0.12, 0.08, 0.08, 0.08, 0.06))))
    k = {name: kind == i for i, name in enumerate(kinds)}
    lead_left = d.coin(0.5)
    p["pitch"] = np.choose(kind, [d.g(0, 6), d.g(5, 5), d.u(-20, 10), d.u(0, 25), d.g(0, 3), d.u(-5, 20),
                                  d.g(0, 5), d.u(-5, 80), d.g(5, 5), d.u(10, 45)])  # fmt: skip
    front_thigh = d.u(50, 100)
    front_knee = front_thigh + d.u(-10, 25)
    rear_thigh, rear_knee = rear_leg(hip_height(front_thigh, front_knee), d.u(0, 0.8), d.u(20, 50))
    for side in ("left", "right"):
        lead = lead_left if side == "left" else ~lead_left
        st_thigh, st_knee = d.g(0, 6), np.abs(d.g(5, 8))  # the standing leg
        jack = d.u(0, 1)
        thigh, knee, abd = select_options(kind, [
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
        set_leg(p, side, thigh, knee, abd=abd, rot=rot)
        toes = np.where(k["lunge_stretch"], knee - thigh - d.u(20, 50), d.u(-40, 10))
        p[f"{side}_ankle_flex"] = np.where(planted, p[f"{side}_ankle_flex"], toes)

        # Arms: opposite arm drives in running drills, windmill for kicks, overhead for jacks and jumps.
        alpha = np.where(lead, d.u(-60, -10), d.u(30, 75))
        drill_el, drill_pl = sagittal_arm(alpha, d.u(0, 20))
        elev, plane, rot, elbow = select_options(kind, [
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
        set_arm(p, side, elev, plane, rot, elbow)
    twist_dir = np.where(lead_left, 1.0, -1.0)
    p["spine_twist"] = np.where(k["throw"], d.u(-45, 45), p["spine_twist"])
    p["spine_twist"] = np.where(k["carioca"], twist_dir * d.u(10, 35), p["spine_twist"])
    p["spine_flex"] = np.where(k["lunge_stretch"] | k["lateral_lunge"], d.u(0, 40), p["spine_flex"])
    return p
