"""Synthetic pose sequences: the kinematic human of :mod:`posetok.data.synthetic` in motion, filmed by a moving camera.

Each sequence is one person (bone lengths from :func:`~posetok.data.synthetic.sample_bone_lengths`, fixed for the
sequence) doing one motion of :data:`MOTIONS`:

* ``walk``, ``run``: gait cycles of the synthetic module's gait model (its per-person amplitudes held for the whole
  sequence), cadence 0.8-1.0 (walk) or 1.3-1.6 (run) cycles/s, forward travel at cadence x stride length along the
  heading, which drifts slowly (gentle curves).
* ``wave``: one or both arms raised and waving (forearm swinging at 1.5-3 Hz, or a straight overhead arm), raised
  from and lowered back to a standing pose.
* ``reach``: reaching out (a pose of the synthetic ``reach`` family) and back, every 2.8-4.5 s, the hand opening.
* ``jump``: stand, crouch with the arms swung back, push off with the arms thrown up, ballistic flight (0.3-0.45 s,
  so 11-25 cm high), landing crouch and recovery, every 2.6-3.8 s, a little forward travel while airborne.
* ``turn``: turning on the spot by 60-200 deg at a time with small stepping, the head leading.
* ``transition``: one motion blending into another over 0.6-1.5 s (stand -> walk, walk -> run, run -> walk,
  walk -> stand, stand -> wave, wave -> walk, turn -> walk, walk -> reach); gait cycles share one phase through a
  walk/run blend.

Every sequence also breathes and sways a little and looks around slowly. All angle series are smoothed with a
Gaussian of :data:`SMOOTH_S` seconds and clipped by :func:`~posetok.data.synthetic.clip_to_limits`, so every angle
stays inside :data:`~posetok.data.synthetic.JOINT_LIMITS` (and its couplings). Feet stay on the ground: each frame the
body is lifted so that its lowest toe, heel or ankle touches ``y = 0`` (plus the flight height of a jump).

Frames and units
----------------
* **World** (:attr:`MotionClips.world`): metres, ``y`` up, ground at ``y = 0``; the person starts at the origin
  (``x, z``). Headings (yaw) as in :func:`~posetok.data.synthetic.root_rotation_matrix`.
* **Camera** (``coords="3d"``): metres, ``x`` = image right, ``y`` = image down, ``z`` = optical axis, origin at the
  camera centre of *that frame*: the camera moves, so this frame moves too (as in videos).
* **Image** (``coords="2d"``, ``"2d+conf"``): pixels of an ``image_size = (W, H)`` image, origin at the top-left
  corner, ``u = f x / z + W / 2``. Points outside the image keep their projected coordinates (confidence 0).

The camera (vertical field of view 35-65 deg) looks at the smoothed pelvis position with a slow wandering aim (pan),
from a distance at which the person fills 30-60 % of the image height, which drifts +-6 %/s (dolly), at an azimuth
that drifts up to 12 deg/s (orbit) and an elevation of about 8 +- 8 deg; 40 % of sequences start roughly facing the
camera. A travelling person is followed by the camera's position as far as needed to keep the distance within 25 %.

Confidence (``"2d+conf"``): 1 for visible joints, :data:`OCCLUDED_CONF` for joints hidden by the person's own body
(:func:`~posetok.data.synthetic.self_occlusion`), 0 outside the image. :data:`GAP_SHARE` of sequences have a tracking
gap of 2-10 frames: mask False there, poses zero.

Layouts: ``coco17``, ``mpii16``, ``h36m17`` from the model's points, and ``wholebody133``: the COCO body, feet (big toe,
small toe, heel) from the model's toe and heel, 68 face landmarks from a fixed template on the head (rotated with it,
per-person proportions, the jaw opening while talking or breathing hard) and 21 points per hand from a finger-chain
template attached to the wrist in the forearm's orientation, the fingers curling and opening over time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PosetokError
from ..skeletons import WB_FACE, WB_FOOT, WB_LEFT_HAND, get_skeleton
from .sequences import coords_dims, save_sequence
from .synthetic import (
    _J,
    ANGLE_NAMES,
    JOINT_NAMES,
    _base,
    _check_image_size,
    _Draw,
    _gait_angles,
    _look_at,
    _reach,
    _sagittal_arm,
    _set_arm,
    _set_leg,
    _shoulder_rhythm,
    _stand,
    clip_to_limits,
    forward_kinematics,
    layout_indices,
    root_rotation_matrix,
    sample_bone_lengths,
    self_occlusion,
)

#: Motion kinds, in the order of the kind indices :func:`sample_motion` returns.
MOTIONS: tuple[str, ...] = ("walk", "run", "wave", "reach", "jump", "turn", "transition")
SUPPORTED_SKELETONS: tuple[str, ...] = ("coco17", "mpii16", "h36m17", "wholebody133")
OCCLUDED_CONF = 0.3  # confidence of a joint hidden by the person's own body
GAP_SHARE = 0.1  # share of sequences with a tracking gap (mask False)
SMOOTH_S = 0.04  # Gaussian smoothing of every angle series, seconds (removes the gait model's ankle switch)
GRAVITY = 9.81
_CHUNK_FRAMES = 8192  # frames per chunk of the vectorised steps (bounds memory)

_CADENCE = {"walk": (0.8, 1.0), "run": (1.3, 1.6)}  # gait cycles per second
_STRIDE = {"walk": (0.75, 0.9), "run": (1.1, 1.5)}  # metres per cycle, fraction of stature
_TRANSITIONS = (("idle", "walk"), ("walk", "run"), ("run", "walk"), ("walk", "idle"), ("idle", "wave"),
                ("wave", "walk"), ("turn", "walk"), ("walk", "reach"))  # fmt: skip

_Pose = dict[str, np.ndarray]  # series name -> (T,)
_SERIES = ("pitch", "roll", "yaw", "speed", "air", "jaw", "left_curl", "right_curl")  # besides ANGLE_NAMES


class _SeqDraw(_Draw):
    """Draws constant over a sequence: each call draws one value and repeats it for the ``n`` frames, so the
    synthetic module's per-person samplers describe one person held over time."""

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
class _Ctx:
    t: np.ndarray  # (T,) seconds
    fps: float
    stature: float
    yaw0: float

    @property
    def duration(self) -> float:
        return len(self.t) / self.fps


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


_EASE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "smooth": _smoothstep,
    "in": lambda s: np.clip(s, 0, 1) ** 2,  # starts at rest, ends at full speed (push-off)
    "out": lambda s: 1.0 - (1.0 - np.clip(s, 0, 1)) ** 2,  # starts at full speed (landing)
}


def _lerp(a: _Pose, b: _Pose, w: np.ndarray) -> _Pose:
    return {k: a[k] + w * (b[k] - a[k]) for k in a}


def _keyframes(tp: np.ndarray, times: list[float], poses: list[_Pose], eases: list[str]) -> _Pose:
    """Series through ``poses`` at ``times`` (seconds), eased per segment; held before the first and after the last."""
    out = {k: np.array(poses[0][k], dtype=np.float64) for k in poses[0]}
    for i, ease in enumerate(eases):
        s = _EASE[ease]((tp - times[i]) / max(times[i + 1] - times[i], 1e-6))
        seg = _lerp(poses[i], poses[i + 1], s)
        for k in out:
            out[k] = np.where(tp >= times[i], seg[k], out[k])
    return out


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 of ``(T, ...)``, ``sigma`` in frames. Ends are padded by odd reflection,
    which keeps straight lines (constant velocity) straight."""
    if sigma <= 0.05 or len(x) < 2:
        return x
    half = int(np.ceil(3.0 * sigma))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= k.sum()
    pad = [(half, half)] + [(0, 0)] * (x.ndim - 1)
    xp = np.pad(x, pad, mode="reflect", reflect_type="odd") if len(x) > half else np.pad(x, pad, mode="edge")
    out = np.zeros_like(x, dtype=np.float64)
    for j, w in enumerate(k):
        out += w * xp[j:j + len(x)]
    return out


# ----------------------------------------------------------------------------------------------------------
# Motions: each returns the series of one sequence (ANGLE_NAMES and _SERIES, (T,) each)
# ----------------------------------------------------------------------------------------------------------


def _defaults(p: _Pose, d: _SeqDraw, ctx: _Ctx, curl: tuple[float, float] = (0.2, 0.5)) -> _Pose:
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


def _idle(d: _SeqDraw, ctx: _Ctx, **_: object) -> _Pose:
    return _defaults(_stand(d), d, ctx)


def _gait(d: _SeqDraw, ctx: _Ctx, gait: str, freq: np.ndarray | None = None,
          phase: np.ndarray | None = None) -> _Pose:
    """Walking or running; ``freq`` (cycles/s per frame) and ``phase`` (cycles) are shared through a blend."""
    p = _base(d)
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
    _gait_angles(d, p, phase % 1.0, gait)
    stride = ctx.stature * d.rng.uniform(*_STRIDE[gait])
    p["speed"] = freq * stride
    p["yaw"] = ctx.yaw0 + d.rng.normal(0, 5 if run else 8) * ctx.t  # a slow curve
    if run:
        p["jaw"] = np.full(len(ctx.t), d.rng.uniform(4, 14))  # breathing hard
    return _defaults(p, d, ctx, curl=(0.5, 0.8) if run else (0.2, 0.45))


def _walk(d: _SeqDraw, ctx: _Ctx, **kw: np.ndarray) -> _Pose:
    return _gait(d, ctx, "walk", **kw)


def _run(d: _SeqDraw, ctx: _Ctx, **kw: np.ndarray) -> _Pose:
    return _gait(d, ctx, "run", **kw)


def _episode(rng: np.random.Generator, ctx: _Ctx, ramp: float, dur: tuple[float, float]) -> np.ndarray:
    """(T,) weight 0 -> 1 -> 0 of one episode starting at a random time (possibly before the clip)."""
    on = rng.uniform(-1.0, max(0.2, 0.4 * ctx.duration))
    off = on + ramp + rng.uniform(*dur)
    return _smoothstep((ctx.t - on) / ramp) * (1.0 - _smoothstep((ctx.t - off) / ramp))


def _wave(d: _SeqDraw, ctx: _Ctx, **_: object) -> _Pose:
    p = _stand(d)
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


def _reach_motion(d: _SeqDraw, ctx: _Ctx, **_: object) -> _Pose:
    rest, out = _stand(d), _reach(d)
    rng = d.rng
    period = rng.uniform(2.8, 4.5)
    go, hold, back = rng.uniform(0.7, 1.2), rng.uniform(0.3, 1.0), rng.uniform(0.7, 1.2)
    tp = (ctx.t + rng.uniform(0, period)) % period
    w = _keyframes(tp, [0.0, go, go + hold, go + hold + back],
                   [{"w": np.zeros(1)}, {"w": np.ones(1)}, {"w": np.ones(1)}, {"w": np.zeros(1)}],
                   ["smooth", "smooth", "smooth"])["w"]
    p = _lerp({k: rest[k] for k in out}, out, w)
    _defaults(p, d, ctx)
    for side in ("left", "right"):  # the hand opens toward the target
        p[f"{side}_curl"] = p[f"{side}_curl"] * (1.0 - 0.8 * w)
    return p


def _jump(d: _SeqDraw, ctx: _Ctx, **_: object) -> _Pose:
    """Crouch, push off, fly, land, recover; repeated with a random phase so any clip length sees part of it."""
    rng = d.rng
    stand = _base(d)

    def pose(pitch: float, thigh: float, knee: float, arm: float, elbow: float, ankle: float | None) -> _Pose:
        p = dict(stand)
        p["pitch"] = np.full_like(stand["pitch"], pitch)
        p["spine_flex"] = stand["spine_flex"] + 0.4 * pitch
        p["neck_flex"] = stand["neck_flex"] - 0.6 * pitch  # keep looking ahead
        for side in ("left", "right"):
            th = np.full_like(stand["pitch"], thigh + rng.normal(0, 3))
            kn = np.full_like(th, knee + rng.normal(0, 3))
            _set_leg(p, side, th, kn, ankle=None if ankle is None else np.full_like(th, ankle))
            el, pl = _sagittal_arm(np.full_like(th, arm + rng.normal(0, 5)), np.full_like(th, rng.uniform(0, 15)))
            _set_arm(p, side, el, pl, np.zeros_like(th), np.full_like(th, elbow))
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
    p = _keyframes(tp, [t_crouch, t_low, t_off, t_off + flight / 2, t_touch, t_land, t_up],
                   [stand, crouch, push, tuck, push, land, stand],
                   ["smooth", "in", "smooth", "smooth", "out", "smooth"])
    # The arms swing on their own, slower clock: back while crouching, forward and up through the push-off to
    # their highest in mid-flight (a 0.2 s throw would move the hands at 15-20 m/s).
    arm_keys = [k for k in stand if k.split("_", 1)[-1] in ("shoulder_elevation", "shoulder_plane",
                                                              "shoulder_rotation", "elbow_flex")]
    arms = [{k: q[k] for k in arm_keys} for q in (stand, crouch, tuck, land, stand)]
    p.update(_keyframes(tp, [t_crouch, t_low - 0.05, t_off + flight / 2, t_land + 0.1, t_up + 0.2], arms,
                        ["smooth"] * 4))
    tau = np.clip((tp - t_off) / flight, 0.0, 1.0)
    height = GRAVITY * flight**2 / 8.0
    p["air"] = 4.0 * height * tau * (1.0 - tau)
    # Some jumps travel forward (broad jump), only while pushing off and airborne.
    p["speed"] = rng.uniform(0, 1.5) * np.sin(np.pi * np.clip((tp - t_low) / (t_land - t_low), 0, 1)) ** 2
    p["jaw"] = np.full(len(tp), rng.uniform(0, 6))
    return _defaults(p, d, ctx, curl=(0.3, 0.6))


def _turn(d: _SeqDraw, ctx: _Ctx, **_: object) -> _Pose:
    p = _stand(d)
    rng, t = d.rng, ctx.t
    yaw = np.full(len(t), ctx.yaw0)
    start = rng.uniform(-0.8, 0.5)
    while start < ctx.duration:
        dur = rng.uniform(1.0, 2.5)
        turn = rng.choice((-1.0, 1.0)) * min(rng.uniform(60, 200), 120 * dur)  # at most 120 deg/s on average
        yaw = yaw + turn * _smoothstep((t - start) / dur)
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


_GENERATORS: dict[str, Callable[..., _Pose]] = {
    "walk": _walk, "run": _run, "wave": _wave, "reach": _reach_motion, "jump": _jump, "turn": _turn, "idle": _idle,
}  # fmt: skip


def _transition(d: _SeqDraw, ctx: _Ctx, **_: object) -> _Pose:
    rng = d.rng
    a, b = _TRANSITIONS[rng.integers(len(_TRANSITIONS))]
    centre = rng.uniform(0.3, 0.7) * ctx.duration
    w = _smoothstep((ctx.t - centre) / rng.uniform(0.6, 1.5) + 0.5)
    kw: dict[str, np.ndarray] = {}
    if a in _CADENCE and b in _CADENCE:
        # One phase through the blend, its rate moving from one cadence to the other: the legs never jump.
        freq = (1 - w) * rng.uniform(*_CADENCE[a]) + w * rng.uniform(*_CADENCE[b])
        kw = {"freq": freq, "phase": rng.uniform(0, 1) + (np.cumsum(freq) - freq[0]) / ctx.fps}
    pa = _GENERATORS[a](d, ctx, **kw)
    pb = _GENERATORS[b](d, ctx, **kw)
    p = _lerp(pa, {k: pb[k] for k in pa}, w)
    # Blend turning rates, not headings, so the second motion carries on from where the first one points.
    rate = (1 - w) * np.gradient(pa["yaw"]) + w * np.gradient(pb["yaw"]) if len(w) > 1 else np.zeros(len(w))
    p["yaw"] = pa["yaw"][0] + np.cumsum(rate) - rate[0]
    return p


_GENERATORS["transition"] = _transition


def _alive(p: _Pose, rng: np.random.Generator, t: np.ndarray) -> None:
    """Breathing, postural sway and looking around, on top of any motion."""
    def wave(amp: float, lo: float, hi: float) -> np.ndarray:
        return amp * np.sin(2 * np.pi * rng.uniform(lo, hi) * t + rng.uniform(0, 2 * np.pi))

    p["spine_flex"] = p["spine_flex"] + wave(1.5, 0.2, 0.35)
    p["roll"] = p["roll"] + wave(1.0, 0.1, 0.3)
    p["neck_twist"] = p["neck_twist"] + wave(rng.uniform(0, 15), 0.08, 0.25)
    p["neck_flex"] = p["neck_flex"] + wave(rng.uniform(0, 6), 0.08, 0.25)


# ----------------------------------------------------------------------------------------------------------
# Whole-body extras: feet, face and hands on the model
# ----------------------------------------------------------------------------------------------------------

# 68 iBUG face landmarks in the head frame of synthetic.py (metres for head_scale 1, origin at the upper neck,
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


_FACE_POINTS, _JAW_WEIGHT = _face_template()
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


def _wholebody_extras(
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
        return world[:, _J[name]]

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


def _wholebody_hidden(cam: np.ndarray, extra_cam: np.ndarray, hidden_model: np.ndarray) -> np.ndarray:
    """``(F, 116)`` self-occlusion of the whole-body extras: feet and hands follow the model's toe, heel and hand
    points; face landmarks are hidden when the head surface under them faces away from the camera, or when the
    body hides the nose while it faces the camera."""
    def hid(name: str) -> np.ndarray:
        return hidden_model[:, _J[name]]

    feet = np.stack([hid("left_toe"), hid("left_toe"), hid("left_heel"),
                     hid("right_toe"), hid("right_toe"), hid("right_heel")], axis=1)  # fmt: skip
    centre = cam[:, _J["head_center"]] + 0.12 * (cam[:, _J["head_top"]] - cam[:, _J["head_center"]])

    def facing(q: np.ndarray) -> np.ndarray:
        normal, to_cam = q - centre[:, None], -q
        return np.sum(normal * to_cam, -1) / np.maximum(
            np.linalg.norm(normal, axis=-1) * np.linalg.norm(to_cam, axis=-1), 1e-12
        )

    face = extra_cam[:, WB_FACE - WB_FOOT:WB_LEFT_HAND - WB_FOOT]
    thr = np.where(np.arange(68) < 17, -0.15, 0.05)  # the jaw line stays visible a little past the profile
    nose_faces = facing(cam[:, _J["nose"]][:, None])[:, 0] > -0.1
    face_hidden = (facing(face) < thr) | (hid("nose") & nose_faces)[:, None]
    hands = np.repeat(np.stack([hid("left_hand"), hid("right_hand")], axis=1), 21, axis=1)
    return np.concatenate([feet, face_hidden, hands], axis=1)


# ----------------------------------------------------------------------------------------------------------
# Camera
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _CameraParams:
    focal: float
    dist: float
    az0: float
    az_rate: float
    az_wobble: tuple[float, float, float]
    el0: float
    el_rate: float
    dolly: float
    roll: float
    aim: np.ndarray  # (3, 3) amplitude (m), frequency (Hz), phase of the aim's wander per axis
    aim_height: float  # fraction of stature above the pelvis


def _draw_camera(rng: np.random.Generator, stature: float, yaw0: float, image_h: int) -> _CameraParams:
    fov = np.exp(rng.uniform(np.log(35.0), np.log(65.0)))
    focal = (image_h / 2.0) / np.tan(np.radians(fov) / 2.0)
    fill = rng.uniform(0.3, 0.6)
    frontal = rng.random() < 0.4
    az0 = yaw0 + (rng.normal(0, 35) if frontal else rng.uniform(-180, 180))
    aim = np.stack([rng.uniform(0, 0.06, 3) * stature, rng.uniform(0.05, 0.2, 3), rng.uniform(0, 2 * np.pi, 3)])
    return _CameraParams(
        focal=float(focal), dist=float(max(focal * stature / (fill * image_h), 2.5)), az0=float(az0),
        az_rate=float(rng.uniform(-12, 12)),
        az_wobble=(float(rng.uniform(0, 5)), float(rng.uniform(0.05, 0.2)), float(rng.uniform(0, 2 * np.pi))),
        el0=float(np.clip(rng.normal(8, 8), -5, 30)), el_rate=float(rng.uniform(-2, 2)),
        dolly=float(rng.uniform(-0.06, 0.06)), roll=float(rng.normal(0, 2)), aim=aim,
        aim_height=float(rng.uniform(-0.05, 0.12)),
    )  # fmt: skip


def _camera_path(cp: _CameraParams, pelvis: np.ndarray, stature: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 3, 3)`` world->camera rotations and ``(T, 3)`` camera centres following a pelvis path ``(T, 3)``."""
    n = len(pelvis)
    t = np.arange(n) / fps
    look = _gaussian(pelvis, 0.3 * fps)
    look = look + np.array([0.0, cp.aim_height * stature, 0.0])
    amp, freq, phase = cp.aim
    look = look + amp * np.sin(2 * np.pi * freq * t[:, None] + phase)  # the operator's aim wanders slowly
    anchor = _gaussian(pelvis, 1.0 * fps) * np.array([1.0, 0.0, 1.0])
    travel = np.linalg.norm(anchor - anchor[0], axis=-1).max()
    # Stand still and pan while the person stays near; follow a travelling person as far as needed.
    follow = float(np.clip(1.0 - 0.25 * cp.dist / max(travel, 1e-6), 0.0, 1.0))
    anchor = anchor[0] + follow * (anchor - anchor[0])
    a, f, ph = cp.az_wobble
    az = np.radians(cp.az0 + cp.az_rate * t + a * np.sin(2 * np.pi * f * t + ph))
    el = np.radians(np.clip(cp.el0 + cp.el_rate * t, -10, 40))
    dist = cp.dist * np.clip(1.0 + cp.dolly * t, 0.8, 1.3)
    offset = np.stack([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], -1) * dist[:, None]
    centre = anchor + np.array([0.0, 1.0, 0.0]) * look[:, 1:2] + offset
    rot = _look_at(look - centre, np.full(n, cp.roll))
    return rot, centre


# ----------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------


@dataclass
class MotionClips:
    """Synthetic sequences with everything that made them.

    Attributes:
        kinds: ``(S,)`` int64 index into :data:`MOTIONS`.
        mask: ``(S, T)`` bool, False in tracking gaps.
        angles: ``(S, T)`` degrees per name of :data:`~posetok.data.synthetic.ANGLE_NAMES`, within the limits.
        root: ``(S, T, 3)`` root yaw, pitch, roll (degrees, :func:`~posetok.data.synthetic.root_rotation_matrix`).
        bones: ``(S,)`` per key of :func:`~posetok.data.synthetic.sample_bone_lengths`.
        world: ``(S, T, K, 3)`` float32 layout joints in the world frame (metres, y up).
        camera: ``(S, T, K, 3)`` float32 layout joints in each frame's camera frame (metres).
        pixels: ``(S, T, K, 2)`` float32 projections (pixels).
        conf: ``(S, T, K)`` float32: 1 visible, :data:`OCCLUDED_CONF` self-occluded, 0 outside the image.
        focal: ``(S,)`` focal length in pixels (principal point at the image centre).
        image_size, fps, skeleton: as requested.
    """

    kinds: np.ndarray
    mask: np.ndarray
    angles: dict[str, np.ndarray]
    root: np.ndarray
    bones: dict[str, np.ndarray]
    world: np.ndarray
    camera: np.ndarray
    pixels: np.ndarray
    conf: np.ndarray
    focal: np.ndarray
    image_size: tuple[int, int]
    fps: float
    skeleton: str

    def poses(self, coords: str) -> np.ndarray:
        """``(S, T, K, D)`` float32 in the file format of :mod:`posetok.data.sequences`, zero in masked frames."""
        coords_dims(coords)
        if coords == "3d":
            out = self.camera.copy()
        elif coords == "2d":
            out = self.pixels.copy()
        else:
            out = np.concatenate([self.pixels, self.conf[..., None]], axis=-1)
        out[~self.mask] = 0.0
        return out.astype(np.float32, copy=False)


def _check_args(num_sequences: int, length: int, skeleton: str, fps: float) -> tuple[int, int, float]:
    if skeleton not in SUPPORTED_SKELETONS:
        raise PosetokError(f"synthetic motion does not support skeleton '{skeleton}'; "
                           f"choose one of {', '.join(SUPPORTED_SKELETONS)}")
    if int(num_sequences) < 0:
        raise PosetokError(f"number of synthetic sequences must be >= 0, got {num_sequences}")
    if int(length) < 1:
        raise PosetokError(f"synthetic sequence length must be >= 1 frame, got {length}")
    if not float(fps) > 0:
        raise PosetokError(f"fps must be > 0, got {fps}")
    return int(num_sequences), int(length), float(fps)


def simulate_motion(
    num_sequences: int,
    length: int,
    skeleton: str = "coco17",
    fps: float = 30.0,
    seed: int | None = 0,
    image_size: tuple[int, int] = (1280, 720),
) -> MotionClips:
    """Draw ``num_sequences`` synthetic clips of ``length`` frames (see the module docstring).

    Kinds are balanced: every motion of :data:`MOTIONS` appears once in every ``len(MOTIONS)`` sequences (in
    random order). The same seed gives the same clips.

    Raises:
        PosetokError: unsupported skeleton, bad counts, fps or image size.
    """
    s_num, t_num, fps = _check_args(num_sequences, length, skeleton, fps)
    w, h = _check_image_size(image_size)
    rng = np.random.default_rng(seed)
    wholebody = skeleton == "wholebody133"
    idx = layout_indices("coco17" if wholebody else skeleton)
    k_num = get_skeleton(skeleton).num_joints
    kinds = rng.permutation(np.arange(s_num) % len(MOTIONS)).astype(np.int64)
    t = np.arange(t_num) / fps

    mask = np.ones((s_num, t_num), dtype=bool)
    angles = {name: np.zeros((s_num, t_num)) for name in ANGLE_NAMES}
    root = np.zeros((s_num, t_num, 3))
    bones_all: dict[str, np.ndarray] = {}
    world_out = np.zeros((s_num, t_num, k_num, 3), dtype=np.float32)
    cam_out = np.zeros_like(world_out)
    pix_out = np.zeros((s_num, t_num, k_num, 2), dtype=np.float32)
    conf_out = np.zeros((s_num, t_num, k_num), dtype=np.float32)
    focal = np.zeros(s_num)

    chunk = max(1, _CHUNK_FRAMES // t_num)
    for c0 in range(0, s_num, chunk):
        seqs = range(c0, min(c0 + chunk, s_num))
        series, cams, faces, people = [], [], [], []
        for s in seqs:
            people.append(sample_bone_lengths(1, rng))
            stature = float(people[-1]["stature"][0])
            ctx = _Ctx(t=t, fps=fps, stature=stature, yaw0=float(rng.uniform(-180, 180)))
            d = _SeqDraw(rng, t_num)
            p = _GENERATORS[MOTIONS[kinds[s]]](d, ctx)
            _alive(p, rng, t)
            for name in ANGLE_NAMES:  # every person holds themselves a little differently
                p[name] = p[name] + rng.normal(0, 2.5)
            _shoulder_rhythm(p)
            sm = {k: _gaussian(np.asarray(p[k], dtype=np.float64), SMOOTH_S * fps) for k in ANGLE_NAMES + _SERIES}
            sm.update(clip_to_limits({k: sm[k] for k in ANGLE_NAMES}))
            sm["left_curl"], sm["right_curl"] = np.clip(sm["left_curl"], 0, 1), np.clip(sm["right_curl"], 0, 1)
            sm["jaw"] = np.clip(sm["jaw"], 0, 20)
            series.append(sm)
            cams.append(_draw_camera(rng, stature, ctx.yaw0, h))
            # The person's face: proportions +-5 %, each landmark a millimetre or two off the template.
            face = _FACE_POINTS * rng.normal(1.0, 0.05, 3).clip(0.88, 1.12) + rng.normal(0, 0.0015, (68, 3))
            faces.append(face)
            if t_num >= 8 and rng.random() < GAP_SHARE:
                gap = int(rng.integers(2, min(10, t_num // 4) + 1))
                start = int(rng.integers(0, t_num - gap + 1))
                mask[s, start:start + gap] = False

        n_seq = len(seqs)
        bones = {k: np.concatenate([b[k] for b in people]) for k in people[0]}
        flat = {k: np.concatenate([sm[k] for sm in series]) for k in ANGLE_NAMES + _SERIES}
        bones_flat = {k: np.repeat(v, t_num) for k, v in bones.items()}
        rot0 = root_rotation_matrix(flat["yaw"], flat["pitch"], flat["roll"])
        body = forward_kinematics({k: flat[k] for k in ANGLE_NAMES}, bones_flat, rot0)  # pelvis at the origin
        # Feet on the ground: lift each frame so the lowest foot point touches y = 0, plus any flight height.
        feet = [_J[f"{s}_{p}"] for s in ("left", "right") for p in ("toe", "heel", "ankle")]
        lift = -body[:, feet, 1].min(axis=1) + flat["air"]
        yaw = np.radians(flat["yaw"]).reshape(n_seq, t_num)
        step = flat["speed"].reshape(n_seq, t_num)[..., None] * np.stack([np.sin(yaw), np.cos(yaw)], -1) / fps
        ground = np.cumsum(step, axis=1) - step[:, :1]
        offset = np.stack([ground[..., 0].ravel(), lift, ground[..., 1].ravel()], -1)
        world = body + offset[:, None]

        rots, centres = [], []
        for j, cp in enumerate(cams):
            pelvis = world[j * t_num:(j + 1) * t_num, _J["pelvis"]]
            r, c = _camera_path(cp, pelvis, float(bones["stature"][j]), fps)
            rots.append(r)
            centres.append(c)
        rot = np.concatenate(rots)
        centre = np.concatenate(centres)
        cam = np.einsum("nij,nkj->nki", rot, world - centre[:, None])
        hidden = self_occlusion(cam, np.arange(len(JOINT_NAMES)), bones_flat["stature"], bones_flat["head_scale"])

        lay_world, lay_cam, lay_hidden = world[:, idx], cam[:, idx], hidden[:, idx]
        if wholebody:
            flexed = {k: flat[k] for k in ANGLE_NAMES}
            flexed["left_elbow_flex"] = flexed["left_elbow_flex"] + 10.0
            flexed["right_elbow_flex"] = flexed["right_elbow_flex"] + 10.0
            wrists = [_J["left_wrist"], _J["right_wrist"]]
            bent = forward_kinematics(flexed, bones_flat, rot0)[:, wrists] + offset[:, None]
            face_flat = np.repeat(np.stack(faces), t_num, axis=0)
            extra = _wholebody_extras(world, bent, flat, bones_flat, face_flat)
            extra_cam = np.einsum("nij,nkj->nki", rot, extra - centre[:, None])
            lay_world = np.concatenate([lay_world, extra], axis=1)
            lay_cam = np.concatenate([lay_cam, extra_cam], axis=1)
            lay_hidden = np.concatenate([lay_hidden, _wholebody_hidden(cam, extra_cam, hidden)], axis=1)

        f_seq = np.array([cp.focal for cp in cams])
        f_flat = np.repeat(f_seq, t_num)[:, None]
        z = np.maximum(lay_cam[..., 2], 0.05)  # never divide by ~0; such points count as outside below
        u = (f_flat * lay_cam[..., 0] / z + w / 2.0).astype(np.float32)
        v = (f_flat * lay_cam[..., 1] / z + h / 2.0).astype(np.float32)
        inside = (lay_cam[..., 2] > 0.05) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        conf = np.where(inside, np.where(lay_hidden, OCCLUDED_CONF, 1.0), 0.0)

        sl = slice(c0, c0 + n_seq)
        shape = (n_seq, t_num, k_num)
        world_out[sl] = lay_world.reshape(shape + (3,))
        cam_out[sl] = lay_cam.reshape(shape + (3,))
        pix_out[sl] = np.stack([u, v], -1).reshape(shape + (2,))
        conf_out[sl] = conf.reshape(shape)
        focal[sl] = f_seq
        for k in ANGLE_NAMES:
            angles[k][sl] = flat[k].reshape(n_seq, t_num)
        root[sl] = np.stack([flat["yaw"], flat["pitch"], flat["roll"]], -1).reshape(n_seq, t_num, 3)
        for k, v_ in bones.items():
            bones_all.setdefault(k, np.zeros(s_num))[sl] = v_

    if not bones_all:
        bones_all = {k: np.zeros(0) for k in sample_bone_lengths(0, rng)}
    return MotionClips(kinds, mask, angles, root, bones_all, world_out, cam_out, pix_out, conf_out, focal, (w, h),
                       fps, skeleton)


def sample_motion(
    num_sequences: int,
    length: int,
    skeleton: str = "coco17",
    coords: str = "2d+conf",
    fps: float = 30.0,
    seed: int | None = 0,
    image_size: tuple[int, int] = (1280, 720),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic pose sequences in the file format of :mod:`posetok.data.sequences`.

    Args:
        num_sequences: ``S``.
        length: ``T`` frames per sequence.
        skeleton: ``coco17``, ``mpii16``, ``h36m17`` or ``wholebody133``.
        coords: ``"2d"`` (pixels), ``"2d+conf"`` (pixels and confidence) or ``"3d"`` (camera frame, metres).
        fps: frames per second.
        seed: the same seed gives the same output; None draws fresh entropy.
        image_size: ``(W, H)`` pixels.

    Returns:
        ``poses`` ``(S, T, N, D)`` float32 (zero in masked frames), ``mask`` ``(S, T)`` bool and ``kinds``
        ``(S,)`` int64 indices into :data:`MOTIONS`.
    """
    coords_dims(coords)
    clips = simulate_motion(num_sequences, length, skeleton, fps, seed, image_size)
    return clips.poses(coords), clips.mask, clips.kinds


def write_motion_dataset(
    root: str | os.PathLike,
    num_train: int,
    num_val: int,
    num_test: int,
    length: int,
    skeleton: str = "coco17",
    coords: str = "2d+conf",
    seed: int | None = 0,
    fps: float = 30.0,
    image_size: tuple[int, int] = (1280, 720),
) -> None:
    """Write ``root/{train,val,test}/seq_00000.npz ...`` for :func:`~posetok.data.sequences.list_sequences`.

    Each file holds ``poses`` ``(T, N, D)`` float32 and ``mask`` ``(T,)`` bool, plus ``motion`` (the kind's name),
    ``skeleton``, ``coords``, ``fps`` and ``image_size`` for reference. Every split comes from its own random stream
    derived from ``seed``, so splits never share a sequence. Files are written atomically.
    """
    coords_dims(coords)
    streams = np.random.SeedSequence(seed).generate_state(3) if seed is not None else [None] * 3
    for split, num, stream in zip(("train", "val", "test"), (num_train, num_val, num_test), streams):
        split_seed = None if stream is None else int(stream)
        clips = simulate_motion(num, length, skeleton, fps, split_seed, image_size)
        poses = clips.poses(coords)
        folder = Path(root) / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(len(poses)):
            save_sequence(folder / f"seq_{i:05d}.npz", poses[i], clips.mask[i],
                          motion=np.str_(MOTIONS[clips.kinds[i]]), skeleton=np.str_(skeleton),
                          coords=np.str_(coords), fps=np.float64(fps),
                          image_size=np.array(clips.image_size, dtype=np.int64))
