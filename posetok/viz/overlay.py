"""Predictions drawn on RGB images in memory, and the pictures of an evaluation: best and worst people, per-joint error.

Conventions are those of :mod:`posetok.viz.skeleton` (image pixels, pixel centres at integers), except that the
third keypoint value is read as a **score**: a joint is drawn when its score is above ``kpt_thr`` (and its
coordinates are finite), a limb when both its joints are. COCO visibilities (0, 1, 2) work as scores: with
``kpt_thr`` below 1 every labelled joint is drawn.

* :func:`draw_pose_on_image`: people on an RGB image with OpenCV, coloured by body side as
  :func:`~posetok.viz.skeleton.save_overlay`, returning a new RGB array.
* :func:`save_image`: write an RGB array atomically.
* :func:`save_best_worst`: a grid of the best and worst people by OKS (or any per-person value), ground truth and
  prediction in two colours.
* :func:`save_per_joint_error`: :func:`~posetok.viz.charts.save_error_per_joint` from predictions and ground truth.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..io import atomic_path
from ..metrics.pck import keypoint_errors
from ..skeletons import Skeleton
from ._common import (
    _DPI,
    SIDE_COLORS,
    _as_keypoints,
    _check_path,
    _check_rgb_image,
    _joint_sides,
    _limb_side,
    _save_figure,
)
from .charts import save_error_per_joint

__all__ = ["GT_COLOR", "PRED_COLOR", "draw_pose_on_image", "save_best_worst", "save_image",
           "save_per_joint_error"]

#: Colours of :func:`save_best_worst`: ground truth green, prediction red (both clear of skin and sky).
GT_COLOR = "#2f9e44"
PRED_COLOR = "#e03131"
_DARK = (30, 30, 30)
_SHIFT = 4  # OpenCV fixed-point fractional bits: sub-pixel positions


def _rgb255(color: str | tuple[float, ...]) -> tuple[int, int, int]:
    r, g, b = (round(c * 255) for c in to_rgb(color))
    return r, g, b


def draw_pose_on_image(
    image: np.ndarray,
    keypoints: np.ndarray,
    skeleton: Skeleton,
    kpt_thr: float = 0.3,
    *,
    color: str | tuple[float, ...] | None = None,
    thickness: int | None = None,
    radius: int | None = None,
) -> np.ndarray:
    """Draw people's limbs and joints on a copy of an RGB image.

    Args:
        image: ``(H, W, 3)`` uint8 **RGB**; not modified.
        keypoints: ``(N, K, 3)`` x, y, score of ``N`` people (``(K, 3)`` for one) in the image's pixels;
            ``(.., K, 2)`` means every joint is drawn.
        skeleton: layout of the ``K`` joints.
        kpt_thr: joints scored ``<= kpt_thr`` are not drawn, nor limbs touching them.
        color: one matplotlib colour for everything; ``None`` colours left, right and centre with
            :data:`~posetok.viz.SIDE_COLORS`.
        thickness: limb width in pixels; default grows with the image (``max(1, max(H, W) // 200)``).
        radius: joint radius in pixels; default ``max(2, round(1.4 * thickness))``.

    Returns:
        A new ``(H, W, 3)`` uint8 RGB image.
    """
    img = _check_rgb_image(image, "image")
    kp_in = np.asarray(keypoints)
    kp = _as_keypoints(kp_in[None] if kp_in.ndim == 2 else kp_in, "keypoints", skeleton, ndim=3, allow_xy=True)
    canvas = np.ascontiguousarray(img).copy()
    h, w = canvas.shape[:2]
    t = thickness if thickness is not None else max(1, max(h, w) // 200)
    r = radius if radius is not None else max(2, round(1.4 * t))
    if t < 1 or r < 1:
        raise ValueError(f"thickness and radius must be >= 1, got {t} and {r}")
    one = 1 << _SHIFT
    # Far-off joints would overflow OpenCV's fixed-point ints; drawing is clipped to the image anyway.
    lim = 4.0 * max(h, w) + 1e4

    def pt(xy: np.ndarray) -> tuple[int, int]:
        x, y = np.clip(xy[:2], -lim, lim)
        return round(x * one), round(y * one)

    sides = _joint_sides(skeleton)
    cols = {s: _rgb255(SIDE_COLORS[s] if color is None else color) for s in SIDE_COLORS}
    for person in kp:
        drawn = person[:, 2] > kpt_thr
        limbs = [(a, b) for a, b in skeleton.limbs if drawn[a] and drawn[b]]
        # Outlines first for every limb, then colours, so no outline crosses a coloured limb.
        for a, b in limbs:
            cv2.line(canvas, pt(person[a]), pt(person[b]), _DARK, t + 2, cv2.LINE_AA, _SHIFT)
        for a, b in limbs:
            cv2.line(canvas, pt(person[a]), pt(person[b]), cols[_limb_side(sides, a, b)], t, cv2.LINE_AA, _SHIFT)
        for j in np.flatnonzero(drawn):
            centre = pt(person[j])
            cv2.circle(canvas, centre, (r + 1) * one, _DARK, -1, cv2.LINE_AA, _SHIFT)
            cv2.circle(canvas, centre, r * one, cols[sides[j]], -1, cv2.LINE_AA, _SHIFT)
    return canvas


def save_image(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 RGB image atomically with OpenCV (format from the suffix, e.g. ``.png``)."""
    path = _check_path(path)
    img = _check_rgb_image(rgb, "rgb")
    with atomic_path(path) as tmp:
        try:
            ok = cv2.imwrite(str(tmp), np.ascontiguousarray(img[..., ::-1]))
        except cv2.error as exc:
            raise ValueError(f"{path}: OpenCV cannot write this file type ({path.suffix})") from exc
        if not ok:
            raise OSError(f"{path}: cv2.imwrite failed")
    return path


def _people(arr: object, n: int, name: str, skeleton: Skeleton) -> list[np.ndarray]:
    items = list(arr)
    if len(items) != n:
        raise ValueError(f"{name} must hold one (K, 2|3) pose per crop ({n}), got {len(items)}")
    return [_as_keypoints(p, f"{name}[{i}]", skeleton, ndim=2, allow_xy=True) for i, p in enumerate(items)]


def _cell(crop: np.ndarray, gt: np.ndarray, pred: np.ndarray, skeleton: Skeleton, kpt_thr: float,
          height: int) -> np.ndarray:
    """One grid cell: the crop scaled to ``height`` rows with the ground truth under the prediction."""
    s = height / crop.shape[0]
    size = (max(1, round(crop.shape[1] * s)), height)
    img = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)

    def scaled(kp: np.ndarray) -> np.ndarray:
        out = kp.copy()
        out[:, :2] = (out[:, :2] + 0.5) * s - 0.5  # pixel centres at integers: scale about (-0.5, -0.5)
        return out

    t = max(1, height // 110)
    img = draw_pose_on_image(img, scaled(gt), skeleton, kpt_thr=0.0, color=GT_COLOR, thickness=t + 1)
    return draw_pose_on_image(img, scaled(pred), skeleton, kpt_thr=kpt_thr, color=PRED_COLOR, thickness=t)


def save_best_worst(
    path: str | os.PathLike,
    crops: Sequence[np.ndarray],
    preds: Sequence[np.ndarray] | np.ndarray,
    gts: Sequence[np.ndarray] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    skeleton: Skeleton,
    n: int = 8,
    *,
    higher_is_better: bool = True,
    label: str = "OKS",
    kpt_thr: float = 0.3,
    cell_height: int = 256,
) -> Path:
    """A PNG grid of the ``n`` best people (top row) and the ``n`` worst (bottom row) by a per-person value.

    Each cell shows the person's crop with the ground truth (green, joints with v > 0) and the prediction (red,
    joints scored above ``kpt_thr``), captioned with the person's index and value. People with a NaN value are
    left out; with fewer than ``2 n`` people the worst row holds those not already among the best.

    Args:
        path: destination image file (``.png``).
        crops: ``N`` RGB uint8 crops (any sizes).
        preds, gts: ``N`` poses ``(K, 3)`` (or an ``(N, K, 3)`` array) in their crop's pixels: the prediction
            with joint scores, the ground truth with visibilities.
        values: ``(N,)`` per-person OKS (``higher_is_better``) or error (pass ``higher_is_better=False``).
        skeleton: layout of the ``K`` joints.
        n: people per row, >= 1.
        label: name of the value in the captions.
        cell_height: crops are scaled to this many pixels high before drawing.

    Returns:
        ``Path(path)``.
    """
    path = _check_path(path)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    imgs = [_check_rgb_image(c, f"crops[{i}]") for i, c in enumerate(crops)]
    count = len(imgs)
    pr = _people(preds, count, "preds", skeleton)
    gt = _people(gts, count, "gts", skeleton)
    vals = np.asarray(values, dtype=np.float64)
    if vals.shape != (count,):
        raise ValueError(f"values must have shape ({count},), got {vals.shape}")
    valid = np.flatnonzero(np.isfinite(vals))
    if not len(valid):
        raise ValueError("values holds no finite value; nothing to show")
    key = -vals[valid] if higher_is_better else vals[valid]
    order = valid[np.argsort(key, kind="stable")]  # best first
    best = order[:n]
    worst = order[len(best):][::-1][:n]  # worst first
    rows = [("best", best)] + ([("worst", worst)] if len(worst) else [])
    ncols = max(len(r[1]) for r in rows)

    cells = {int(i): _cell(imgs[i], gt[i], pr[i], skeleton, kpt_thr, cell_height) for _, idx in rows for i in idx}
    aspect = float(np.clip(np.median([c.shape[1] / c.shape[0] for c in cells.values()]), 0.5, 1.5))
    cell_h = 2.4
    fig = Figure(figsize=(ncols * (cell_h * aspect + 0.1) + 0.4, len(rows) * (cell_h + 0.35) + 0.9), dpi=_DPI,
                 layout="constrained")
    for r, (name, idx) in enumerate(rows):
        for c, i in enumerate(idx):
            ax = fig.add_subplot(len(rows), ncols, r * ncols + c + 1)
            ax.imshow(cells[int(i)], interpolation="antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"#{int(i)}  {label} {vals[i]:.3f}", fontsize=9, pad=3)
            if c == 0:
                ax.set_ylabel(name, fontsize=11, fontweight="bold")
    handles = [Line2D([], [], color=GT_COLOR, lw=3, marker="o", mec="#1e1e1e", label="ground truth"),
               Line2D([], [], color=PRED_COLOR, lw=2, marker="o", mec="#1e1e1e", label="prediction")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    mean = float(np.mean(vals[valid]))
    fig.suptitle(f"Best and worst {len(best) + len(worst)} of {len(valid)} people by {label} (mean {mean:.3f})",
                 fontsize=11, fontweight="bold")
    return _save_figure(fig, path)


def save_per_joint_error(
    path: str | os.PathLike,
    preds: np.ndarray,
    gts: np.ndarray,
    skeleton: Skeleton,
    *,
    unit: str = "px",
    title: str | None = None,
) -> Path:
    """:func:`~posetok.viz.charts.save_error_per_joint` of the pixel distances of ``preds`` ``(N, K, 2|3)`` to
    ``gts`` ``(N, K, 3)`` over the joints labelled in ``gts`` (:func:`posetok.metrics.pck.keypoint_errors`)."""
    return save_error_per_joint(path, keypoint_errors(preds, gts), skeleton, unit, title=title)
