"""Motion generators of the synthetic sequences: one function per kind of :data:`MOTIONS` (and ``idle``),
each returning the angle and root series of one clip, plus the breathing and sway every clip gets.

Generators take a :class:`SeqDraw` (draws held constant over the clip, so the per-person pose samplers of
:mod:`posetok.data.everyday_poses` describe one person over time) and a :class:`ClipContext`; they return
``(T,)`` series per name of :data:`~posetok.data.body.ANGLE_NAMES` and of :data:`SERIES` (root ``pitch``,
``roll``, ``yaw`` in degrees, ground ``speed`` m/s, flight height ``air`` m, ``jaw`` opening degrees, hand
``left_curl``/``right_curl`` in [0, 1]). See :mod:`posetok.data.motion` for what each motion looks like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .everyday_poses import reach_pose, stand_pose
from .pose_primitives import Draw, base_pose, gait_angles, sagittal_arm, set_arm, set_leg
from .timeseries import keyframes, lerp, smoothstep

#: Motion kinds, in the order of the kind indices :func:`~posetok.data.motion.sample_motion` returns.
MOTIONS: tuple[str, ...] = ("walk", "run", "wave", "reach", "jump", "turn", "transition")
GRAVITY = 9.81  # m/s^2, the flight of a jump

_CADENCE = {"walk": (0.8, 1.0), "run": (1.3, 1.6)}  # gait cycles per second
_STRIDE = {"walk": (0.75, 0.9), "run": (1.1, 1.5)}  # metres per cycle, fraction of stature
_TRANSITIONS = (("idle", "walk"), ("walk", "run"), ("run", "walk"), ("walk", "idle"), ("idle", "wave"),
                ("wave", "walk"), ("turn", "walk"), ("walk", "reach"))  # fmt: skip

_Pose = dict[str, np.ndarray]  # series name -> (T,)
SERIES = ("pitch", "roll", "yaw", "speed", "air", "jaw", "left_curl", "right_curl")  # besides ANGLE_NAMES


class SeqDraw(Draw):
    """Draws constant over a sequence: each call draws one value and repeats it for the ``n`` frames, so the
    per-person samplers of the pose families describe one person held over time."""

    def u(self, lo: float, hi: float) -> np.ndarray:
        return np.full(self.n, self.rng.uniform(lo, hi))

    def g(self, mean: float, sd: float) -> np.ndarray:
        return np.full(self.n, self.rng.normal(mean, sd))

    def pick(self, probs: dict[str, float]) -> np.ndarray:
        p = np.array(list(probs.values()), dtype=np.float64)
        return np.full(self.n, self.rng.choice(len(p), p=p / p.sum()))

    def coin(self, p: float) -> np.ndarray:
        return np.full(self.n, self.rng.random() < p)


@dataclass
class ClipContext:
    """The clip a motion generator fills: frame times ``t`` ``(T,)`` seconds, frame rate, the person's
    stature (metres) and initial heading ``yaw0`` (degrees)."""

    t: np.ndarray  # (T,) seconds
    fps: float
    stature: float
    yaw0: float

    @property
    def duration(self) -> float:
        return len(self.t) / self.fps


# ----------------------------------------------------------------------------------------------------------
# Motions: each returns the series of one sequence (ANGLE_NAMES and SERIES, (T,) each)
# ----------------------------------------------------------------------------------------------------------


def _defaults(p: _Pose, d: SeqDraw, ctx: ClipContext, curl: tuple[float, float] = (0.2, 0.5)) -> _Pose:
    """Fill the non-angle series a motion left out: standing still facing ``yaw0``, mouth mostly closed (40 %
    talk), hands relaxed with a slowly varying curl."""
    t, n = ctx.t, len(ctx.t)
    rng = d.rng
    p.setdefault("yaw", np.full(n, ctx.yaw0))
    p.setdefault("speed", np.zeros(n))
    p.setdefault("air", np.zeros(n))
    if "jaw" not in p:
        if rng.random() < 0.4:  # talking: syllables at 3-5 Hz
            f1, f2 = rng.uniform(3, 5), rng.uniform(1.5, 2.5)
            a1, a2 = rng.uniform(0, 2 * np.pi, 2)
            osc = 0.6 * np.sin(2 * np.pi * f1 * t + a1) + 0.4 * np.sin(2 * np.pi * f2 * t + a2)
            p["jaw"] = rng.uniform(6, 14) * np.clip(osc, 0, 1)
        else:
            p["jaw"] = np.full(n, rng.uniform(0, 3))
    for side in ("left", "right"):
        key = f"{side}_curl"
        if key not in p:
            f, ph = rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)
            p[key] = np.clip(rng.uniform(*curl) + 0.12 * np.sin(2 * np.pi * f * t + ph), 0, 1)
    return p


def _idle(d: SeqDraw, ctx: ClipContext, **_: object) -> _Pose:
    return _defaults(stand_pose(d), d, ctx)


def _gait(d: SeqDraw, ctx: ClipContext, gait: str, freq: np.ndarray | None = None,
          phase: np.ndarray | None = None) -> _Pose:
    """Walking or running; ``freq`` (cycles/s per frame) and ``phase`` (cycles) are shared through a blend."""
    p = base_pose(d)
    run = gait == "run"
    if run:
        # Running leans forward, more when pushing hard; the eyes stay on the track.
        p["pitch"] = np.where(d.coin(0.15), d.u(15, 30), d.u(0, 12))
        p["spine_flex"] = d.u(-5, 12)
        p["neck_flex"] = -0.5 * p["pitch"] + d.g(0, 6)
    else:
        p["pitch"] = d.g(4, 3)
    if freq is None:
        freq = d.u(*_CADENCE[gait])
    if phase is None:
        phase = d.rng.uniform(0, 1) + (np.cumsum(freq) - freq[0]) / ctx.fps
    gait_angles(d, p, phase % 1.0, gait)
    stride = ctx.stature * d.rng.uniform(*_STRIDE[gait])
    p["speed"] = freq * stride
    p["yaw"] = ctx.yaw0 + d.rng.normal(0, 5 if run else 8) * ctx.t  # a slow curve
    if run:
        p["jaw"] = np.full(len(ctx.t), d.rng.uniform(4, 14))  # breathing hard
    return _defaults(p, d, ctx, curl=(0.5, 0.8) if run else (0.2, 0.45))


def _walk(d: SeqDraw, ctx: ClipContext, **kw: np.ndarray) -> _Pose:
    return _gait(d, ctx, "walk", **kw)


def _run(d: SeqDraw, ctx: ClipContext, **kw: np.ndarray) -> _Pose:
    return _gait(d, ctx, "run", **kw)


def _episode(rng: np.random.Generator, ctx: ClipContext, ramp: float, dur: tuple[float, float]) -> np.ndarray:
    """(T,) weight 0 -> 1 -> 0 of one episode starting at a random time (possibly before the clip)."""
    on = rng.uniform(-1.0, max(0.2, 0.4 * ctx.duration))
    off = on + ramp + rng.uniform(*dur)
    return smoothstep((ctx.t - on) / ramp) * (1.0 - smoothstep((ctx.t - off) / ramp))


def _wave(d: SeqDraw, ctx: ClipContext, **_: object) -> _Pose:
    p = stand_pose(d)
    rng, t = d.rng, ctx.t
    both, left_leads, overhead = rng.random() < 0.35, rng.random() < 0.5, rng.random() < 0.3
    f, ph = rng.uniform(1.5, 3.0), rng.uniform(0, 2 * np.pi)
    osc = np.sin(2 * np.pi * f * t + ph)
    w = _episode(rng, ctx, 0.6, (1.5, 5.0))
    one = np.ones_like(t)
    if overhead:  # a straight arm swinging side to side above the head
        target = (rng.uniform(140, 160) + 12 * osc, rng.uniform(-10, 20) * one, rng.uniform(-10, 30) * one,
                  rng.uniform(5, 25) * one)
    else:  # hand beside the head, the forearm swinging about the elbow
        target = (rng.uniform(95, 135) * one, rng.uniform(0, 40) * one, rng.uniform(45, 65) + 20 * osc,
                  rng.uniform(55, 90) + 12 * np.cos(2 * np.pi * f * t + ph))
    names = ("shoulder_elevation", "shoulder_plane", "shoulder_rotation", "elbow_flex")
    open_hand = rng.uniform(0.03, 0.15)
    _defaults(p, d, ctx)
    for side in ("left", "right"):
        if both or (side == "left") == left_leads:
            for name, v in zip(names, target):
                p[f"{side}_{name}"] = p[f"{side}_{name}"] + w * (v - p[f"{side}_{name}"])
            p[f"{side}_curl"] = p[f"{side}_curl"] + w * (open_hand - p[f"{side}_curl"])
    p["neck_flex"] = p["neck_flex"] - 8 * w  # looking up a little at whoever is greeted
    return p


def _reach_motion(d: SeqDraw, ctx: ClipContext, **_: object) -> _Pose:
    rest, out = stand_pose(d), reach_pose(d)
    rng = d.rng
    period = rng.uniform(2.8, 4.5)
    go, hold, back = rng.uniform(0.7, 1.2), rng.uniform(0.3, 1.0), rng.uniform(0.7, 1.2)
    tp = (ctx.t + rng.uniform(0, period)) % period
    w = keyframes(tp, [0.0, go, go + hold, go + hold + back],
                   [{"w": np.zeros(1)}, {"w": np.ones(1)}, {"w": np.ones(1)}, {"w": np.zeros(1)}],
                   ["smooth", "smooth", "smooth"])["w"]
    p = lerp({k: rest[k] for k in out}, out, w)
    _defaults(p, d, ctx)
    for side in ("left", "right"):  # the hand opens toward the target
        p[f"{side}_curl"] = p[f"{side}_curl"] * (1.0 - 0.8 * w)
    return p


def _jump(d: SeqDraw, ctx: ClipContext, **_: object) -> _Pose:
    """Crouch, push off, fly, land, recover; repeated with a random phase so any clip length sees part of it."""
    rng = d.rng
    stand = base_pose(d)

    def pose(pitch: float, thigh: float, knee: float, arm: float, elbow: float, ankle: float | None) -> _Pose:
        p = dict(stand)
        p["pitch"] = np.full_like(stand["pitch"], pitch)
        p["spine_flex"] = stand["spine_flex"] + 0.4 * pitch
        p["neck_flex"] = stand["neck_flex"] - 0.6 * pitch  # keep looking ahead
        for side in ("left", "right"):
            th = np.full_like(stand["pitch"], thigh + rng.normal(0, 3))
            kn = np.full_like(th, knee + rng.normal(0, 3))
            set_leg(p, side, th, kn, ankle=None if ankle is None else np.full_like(th, ankle))
            el, pl = sagittal_arm(np.full_like(th, arm + rng.normal(0, 5)), np.full_like(th, rng.uniform(0, 15)))
            set_arm(p, side, el, pl, np.zeros_like(th), np.full_like(th, elbow))
        return p

    thigh = rng.uniform(55, 80)
    crouch = pose(rng.uniform(20, 40), thigh, thigh + rng.uniform(15, 28), -rng.uniform(25, 50),
                  rng.uniform(10, 30), None)
    push = pose(rng.uniform(0, 8), rng.uniform(-5, 5), rng.uniform(0, 8), rng.uniform(90, 140),
                rng.uniform(5, 25), -rng.uniform(25, 40))
    tuck = pose(rng.uniform(0, 10), rng.uniform(20, 50), rng.uniform(40, 80), rng.uniform(100, 160),
                rng.uniform(10, 40), -rng.uniform(0, 20))
    thigh = rng.uniform(35, 60)
    land = pose(rng.uniform(10, 25), thigh, thigh + rng.uniform(10, 25), rng.uniform(20, 60),
                rng.uniform(20, 50), None)
    t_crouch = rng.uniform(0.2, 0.6)
    t_low = t_crouch + rng.uniform(0.4, 0.6)
    t_off = t_low + rng.uniform(0.18, 0.25)
    flight = rng.uniform(0.3, 0.45)
    t_touch = t_off + flight
    t_land = t_touch + rng.uniform(0.12, 0.2)
    t_up = t_land + rng.uniform(0.5, 0.8)
    period = t_up + rng.uniform(0.3, 1.0)
    tp = (ctx.t + rng.uniform(0, period)) % period
    p = keyframes(tp, [t_crouch, t_low, t_off, t_off + flight / 2, t_touch, t_land, t_up],
                   [stand, crouch, push, tuck, push, land, stand],
                   ["smooth", "in", "smooth", "smooth", "out", "smooth"])
    # The arms swing on their own, slower clock: back while crouching, forward and up through the push-off to
    # their highest in mid-flight (a 0.2 s throw would move the hands at 15-20 m/s).
    arm_keys = [k for k in stand if k.split("_", 1)[-1] in ("shoulder_elevation", "shoulder_plane",
                                                              "shoulder_rotation", "elbow_flex")]
    arms = [{k: q[k] for k in arm_keys} for q in (stand, crouch, tuck, land, stand)]
    p.update(keyframes(tp, [t_crouch, t_low - 0.05, t_off + flight / 2, t_land + 0.1, t_up + 0.2], arms,
                        ["smooth"] * 4))
    tau = np.clip((tp - t_off) / flight, 0.0, 1.0)
    height = GRAVITY * flight**2 / 8.0
    p["air"] = 4.0 * height * tau * (1.0 - tau)
    # Some jumps travel forward (broad jump), only while pushing off and airborne.
    p["speed"] = rng.uniform(0, 1.5) * np.sin(np.pi * np.clip((tp - t_low) / (t_land - t_low), 0, 1)) ** 2
    p["jaw"] = np.full(len(tp), rng.uniform(0, 6))
    return _defaults(p, d, ctx, curl=(0.3, 0.6))


def _turn(d: SeqDraw, ctx: ClipContext, **_: object) -> _Pose:
    p = stand_pose(d)
    rng, t = d.rng, ctx.t
    yaw = np.full(len(t), ctx.yaw0)
    start = rng.uniform(-0.8, 0.5)
    while start < ctx.duration:
        dur = rng.uniform(1.0, 2.5)
        turn = rng.choice((-1.0, 1.0)) * min(rng.uniform(60, 200), 120 * dur)  # at most 120 deg/s on average
        yaw = yaw + turn * smoothstep((t - start) / dur)
        start += dur + rng.uniform(0.3, 1.5)
    rate = np.gradient(yaw) * ctx.fps if len(t) > 1 else np.zeros(len(t))  # deg/s
    busy = np.clip(np.abs(rate) / 60.0, 0.0, 1.0)
    f = rng.uniform(1.2, 1.8)
    for side, shift in (("left", 0.0), ("right", 0.5)):
        lift = busy * np.clip(np.sin(2 * np.pi * (f * t + shift)), 0, None) ** 2
        p[f"{side}_hip_flex"] = p[f"{side}_hip_flex"] + 25 * lift
        p[f"{side}_knee_flex"] = p[f"{side}_knee_flex"] + 45 * lift
    # The head and chest lead the turn.
    p["neck_twist"] = p["neck_twist"] + np.clip(0.25 * rate, -35, 35)
    p["spine_twist"] = p["spine_twist"] + np.clip(0.1 * rate, -15, 15)
    p["yaw"] = yaw
    return _defaults(p, d, ctx)


GENERATORS: dict[str, Callable[..., _Pose]] = {
    "walk": _walk, "run": _run, "wave": _wave, "reach": _reach_motion, "jump": _jump, "turn": _turn, "idle": _idle,
}  # fmt: skip


def _transition(d: SeqDraw, ctx: ClipContext, **_: object) -> _Pose:
    rng = d.rng
    a, b = _TRANSITIONS[rng.integers(len(_TRANSITIONS))]
    centre = rng.uniform(0.3, 0.7) * ctx.duration
    w = smoothstep((ctx.t - centre) / rng.uniform(0.6, 1.5) + 0.5)
    kw: dict[str, np.ndarray] = {}
    if a in _CADENCE and b in _CADENCE:
        # One phase through the blend, its rate moving from one cadence to the other: the legs never jump.
        freq = (1 - w) * rng.uniform(*_CADENCE[a]) + w * rng.uniform(*_CADENCE[b])
        kw = {"freq": freq, "phase": rng.uniform(0, 1) + (np.cumsum(freq) - freq[0]) / ctx.fps}
    pa = GENERATORS[a](d, ctx, **kw)
    pb = GENERATORS[b](d, ctx, **kw)
    p = lerp(pa, {k: pb[k] for k in pa}, w)
    # Blend turning rates, not headings, so the second motion carries on from where the first one points.
    rate = (1 - w) * np.gradient(pa["yaw"]) + w * np.gradient(pb["yaw"]) if len(w) > 1 else np.zeros(len(w))
    p["yaw"] = pa["yaw"][0] + np.cumsum(rate) - rate[0]
    return p


GENERATORS["transition"] = _transition


def breathe_and_sway(p: _Pose, rng: np.random.Generator, t: np.ndarray) -> None:
    """Breathing, postural sway and looking around, on top of any motion."""
    def wave(amp: float, lo: float, hi: float) -> np.ndarray:
        return amp * np.sin(2 * np.pi * rng.uniform(lo, hi) * t + rng.uniform(0, 2 * np.pi))

    p["spine_flex"] = p["spine_flex"] + wave(1.5, 0.2, 0.35)
    p["roll"] = p["roll"] + wave(1.0, 0.1, 0.3)
    p["neck_twist"] = p["neck_twist"] + wave(rng.uniform(0, 15), 0.08, 0.25)
    p["neck_flex"] = p["neck_flex"] + wave(rng.uniform(0, 6), 0.08, 0.25)
