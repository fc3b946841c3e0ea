"""Synthetic occluders on person crops: the robustness test of ``posetok eval --occlusion``."""

from __future__ import annotations

import math

import numpy as np

from ..errors import PosetokError


def occlude_crops(crops: np.ndarray, rng: np.random.Generator, area: tuple[float, float] = (0.2, 0.4),
                  fill: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic occluder on each crop: one axis-aligned block of ``fill`` grey covering a share of the crop drawn
    uniformly from ``area``, with an aspect ratio drawn log-uniformly from [1/2, 2] (clipped to the crop) and a
    position drawn uniformly inside it. The test of PCT's claim of robustness to occlusion.

    Args:
        crops: ``(N, H, W, 3)`` uint8 RGB (not modified).
        rng: the generator (seed it for a repeatable test).
        area: the smallest and largest share of the crop's area covered, in (0, 1].

    Returns:
        The occluded crops ``(N, H, W, 3)`` uint8 and the blocks ``(N, 4)`` int64 ``x0, y0, x1, y1`` (pixels,
        ``x1`` / ``y1`` exclusive).
    """
    lo, hi = float(area[0]), float(area[1])
    if not 0.0 < lo <= hi <= 1.0:
        raise PosetokError(f"--occlusion: expected 0 < MIN <= MAX <= 1 (shares of the crop's area), got {lo} {hi}")
    out = np.array(crops, dtype=np.uint8, copy=True)
    n, h, w = out.shape[:3]
    blocks = np.zeros((n, 4), np.int64)
    for i in range(n):
        share = rng.uniform(lo, hi)
        aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))  # width / height
        bw = int(round(min(w, math.sqrt(share * w * h * aspect))))
        bh = int(round(min(h, share * w * h / max(bw, 1))))
        bw = int(round(min(w, share * w * h / max(bh, 1))))  # a clipped side gives its area to the other
        x0 = int(rng.integers(0, w - bw + 1))
        y0 = int(rng.integers(0, h - bh + 1))
        out[i, y0:y0 + bh, x0:x0 + bw] = fill
        blocks[i] = (x0, y0, x0 + bw, y0 + bh)
    return out, blocks
