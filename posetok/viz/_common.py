"""What the picture modules of :mod:`posetok.viz` share: the body-side colours, input checks and saving.

:func:`_as_keypoints` and :func:`_check_rgb_image` validate poses and images in the conventions of
:mod:`posetok.viz.skeleton`; :func:`_check_path` and :func:`_save_figure` write a figure atomically through
:func:`posetok.io.atomic_path`; :func:`_joint_sides` and :func:`_limb_side` give each joint and limb its body
side, hence its colour in :data:`SIDE_COLORS`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_path
from ..skeletons import Skeleton

# Left blue, right orange, centre violet: distinguishable with the common colour-vision deficiencies and
# none of them is close to sky, foliage or skin, the usual backgrounds of the pictures.
SIDE_COLORS: dict[str, str] = {"left": "#1c7ed6", "right": "#f76707", "centre": "#ae3ec9"}
_DPI = 100


# ----------------------------------------------------------------------------------------------- helpers


def _as_keypoints(arr: object, name: str, skeleton: Skeleton, ndim: int, allow_xy: bool) -> np.ndarray:
    """Validate keypoints of shape ``(K, 2|3)`` (``ndim=2``) or ``(N, K, 2|3)`` (``ndim=3``).

    Returns a float64 ``(..., K, 3)`` copy in which missing visibility is 2 and joints with a non-finite
    coordinate have visibility 0, so the drawing code only has to look at the visibility.
    """
    kp = np.asarray(arr)
    dims = "(K, 2) or (K, 3)" if ndim == 2 else "(N, K, 2) or (N, K, 3)"
    if not allow_xy:
        dims = "(K, 3)" if ndim == 2 else "(N, K, 3)"
    if kp.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {kp.dtype}")
    if kp.ndim != ndim or kp.shape[-1] not in ((2, 3) if allow_xy else (3,)):
        raise ValueError(f"{name} must have shape {dims} with K = {skeleton.num_joints}, got {kp.shape}")
    if kp.shape[-2] != skeleton.num_joints:
        raise ValueError(
            f"{name} has {kp.shape[-2]} joints but skeleton '{skeleton.name}' has {skeleton.num_joints}"
        )
    out = np.empty(kp.shape[:-1] + (3,), dtype=np.float64)
    out[..., :2] = kp[..., :2]
    out[..., 2] = kp[..., 2] if kp.shape[-1] == 3 else 2.0
    finite = np.isfinite(out[..., :2]).all(axis=-1)
    out[..., 2] = np.where(finite & np.isfinite(out[..., 2]), out[..., 2], 0.0)
    return out


def _check_rgb_image(img: object, name: str) -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 image, got shape {arr.shape} dtype {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return arr


def _check_path(path: str | os.PathLike) -> Path:
    # The temporary file of atomic_path keeps the suffix, and both matplotlib and OpenCV pick the encoder
    # from it; without one they fail with an obscure message, so say it here.
    p = Path(path)
    if not p.suffix:
        raise ValueError(f"{p}: the file name needs an image extension such as .png")
    return p


def _save_figure(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=_DPI, format=path.suffix[1:].lower(), facecolor=fig.get_facecolor())
    return path


def _joint_sides(skeleton: Skeleton) -> list[str]:
    """``"left"``, ``"right"`` or ``"centre"`` per joint, from the ``left_``/``right_`` name prefixes."""
    sides = []
    for n in skeleton.joint_names:
        low = n.lower()
        sides.append("left" if low.startswith("left_") else "right" if low.startswith("right_") else "centre")
    return sides


def _limb_side(sides: Sequence[str], a: int, b: int) -> str:
    # A bone from a centre joint to a left joint (nose-left_eye, root-left_hip) belongs to the left side;
    # only bones that join the two sides (the shoulder and hip lines) are centre.
    pair = {sides[a], sides[b]}
    if pair <= {"left", "centre"} and "left" in pair:
        return "left"
    if pair <= {"right", "centre"} and "right" in pair:
        return "right"
    return "centre"


def _fit_aspect(
    region: tuple[float, float, float, float], aspect: float
) -> tuple[float, float, float, float]:
    """Grow ``region`` about its centre to width / height = ``aspect``, so it fills its cell."""
    x0, y0, x1, y1 = region
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
