"""Time-series helpers of the synthetic motion: easing, keyframe interpolation and Gaussian smoothing.

Series are dicts of ``(T,)`` arrays (or ``(T, ...)`` arrays for smoothing), one per name, over the frames of a
clip.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Series = dict[str, np.ndarray]  # series name -> (T,)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Smooth 0 -> 1 ramp ``3x^2 - 2x^3`` over ``x`` in [0, 1], clamped outside."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


_EASE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "smooth": smoothstep,
    "in": lambda s: np.clip(s, 0, 1) ** 2,  # starts at rest, ends at full speed (push-off)
    "out": lambda s: 1.0 - (1.0 - np.clip(s, 0, 1)) ** 2,  # starts at full speed (landing)
}


def lerp(a: Series, b: Series, w: np.ndarray) -> Series:
    """Per name of ``a``, ``a + w (b - a)``; ``w`` ``(T,)`` or scalar."""
    return {k: a[k] + w * (b[k] - a[k]) for k in a}


def keyframes(tp: np.ndarray, times: list[float], poses: list[Series], eases: list[str]) -> Series:
    """Series through ``poses`` at ``times`` (seconds), eased per segment; held before the first and after the last."""
    out = {k: np.array(poses[0][k], dtype=np.float64) for k in poses[0]}
    for i, ease in enumerate(eases):
        s = _EASE[ease]((tp - times[i]) / max(times[i + 1] - times[i], 1e-6))
        seg = lerp(poses[i], poses[i + 1], s)
        for k in out:
            out[k] = np.where(tp >= times[i], seg[k], out[k])
    return out


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
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
