"""Synthetic occluders on person crops: the robustness test of ``posetok eval --occlusion``, and the grid dropout
of the official PCT training augmentation."""

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


def grid_dropout(image: np.ndarray, rng: np.random.Generator, unit_range: tuple[int, int] = (10, 40),
                 ratio: float = 0.5) -> np.ndarray:
    """Albumentations' ``GridDropout`` with ``random_offset`` (the official PCT augmentation): a unit size ``u``
    uniform in ``unit_range`` (inclusive), square holes of ``int(u * ratio)`` pixels set to black every ``u``
    pixels in both directions, the grid shifted by a random offset in ``[0, u - hole]``.

    Args:
        image: ``(h, w, 3)`` uint8 (not modified).
    Returns:
        A new ``(h, w, 3)`` uint8 image.
    """
    # albumentations is not a dependency; its GridDropout is a few lines of slicing.
    unit = int(rng.integers(unit_range[0], unit_range[1] + 1))
    hole = max(1, int(unit * ratio))
    ox, oy = (int(v) for v in rng.integers(0, unit - hole + 1, size=2))
    ys, xs = np.arange(image.shape[0]), np.arange(image.shape[1])
    rows = (ys >= oy) & ((ys - oy) % unit < hole)  # the first ``hole`` pixels of every unit after the offset
    cols = (xs >= ox) & ((xs - ox) % unit < hole)
    return np.where((rows[:, None] & cols[None, :])[..., None], np.uint8(0), image)
