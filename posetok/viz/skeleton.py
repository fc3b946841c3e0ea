"""Poses in the image frame: one skeleton on an axes, a grid of reconstructions, skeletons drawn on a photo.

Coordinates are image pixels, x right, y down, with the pixel convention of :mod:`posetok.data.transforms`
(and MMPose, OpenCV): pixel centres sit at integers, so column ``j`` covers ``[j - 0.5, j + 0.5]``.
Keypoints are ``(..., K, 3)`` = x, y, visibility (0 not labelled, 1 occluded, 2 visible) in a
:class:`~posetok.skeletons.Skeleton`'s joint order; where a function also takes ``(..., K, 2)`` every joint
with finite coordinates counts as visible. Joints with NaN coordinates are never drawn.

:func:`draw_skeleton` draws on a matplotlib axes; :func:`save_reconstruction_grid` lays originals and their
reconstructions out in a grid of such axes; :func:`save_overlay` draws on the image itself with OpenCV.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib.patheffects as pe
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..io import atomic_path
from ..skeletons import Skeleton
from ._common import (
    _DPI,
    SIDE_COLORS,
    _as_keypoints,
    _check_path,
    _check_rgb_image,
    _fit_aspect,
    _joint_sides,
    _limb_side,
    _save_figure,
)

__all__ = ["draw_skeleton", "save_overlay", "save_reconstruction_grid"]

# Reconstruction grid: ground truth in a calm dark teal, the reconstruction in a contrasting red.
_ORIGINAL_COLOR = "#0b7285"
_RECON_COLOR = "#e03131"


# ------------------------------------------------------------------------------------------ draw_skeleton


def _drawn_and_occluded(v: np.ndarray, show_occluded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which joints to draw and which to draw as occluded, from COCO visibilities ``(K,)``.

    0 is not labelled, 1 labelled but occluded, 2 visible; any other value > 0 is an annotation tool's or a
    detector's score (COCO-WholeBody face, hand and foot points carry such values) and counts as labelled and seen.
    """
    occluded = v == 1.0
    drawn = (v > 0) & (show_occluded | ~occluded)
    return drawn, occluded


def draw_skeleton(
    ax: Axes,
    keypoints: np.ndarray,
    skeleton: Skeleton,
    color: str | tuple[float, ...] | None = None,
    alpha: float = 1.0,
    lw: float = 2.0,
    show_occluded: bool = True,
    *,
    linestyle: str | tuple[float, tuple[float, ...]] = "-",
    marker_size: float | None = None,
    outline: str | None = None,
    zorder: float = 2.0,
) -> list:
    """Draw one pose's limbs and joints on a matplotlib axes in the image frame.

    Args:
        ax: the axes; its y axis is inverted (y down) if it is not already, and its aspect set to equal if it
            is ``"auto"``, so a pose drawn on an empty axes is upright and undistorted.
        keypoints: ``(K, 3)`` x, y, visibility in image pixels, or ``(K, 2)`` (all visible).
        skeleton: joint layout, for the limbs and the joint names.
        color: one colour for everything; ``None`` colours the left side, the right side and the centre
            with :data:`SIDE_COLORS` (sides come from joint names starting ``left_`` / ``right_``).
        alpha: opacity. Limbs that end at an occluded joint are drawn at 60 % of it.
        lw: limb width in points; joints are about ``2.3 * lw`` points wide unless ``marker_size`` is given.
        show_occluded: draw occluded joints (``v=1``, as hollow circles) and their limbs; if ``False`` only
            visible joints are drawn. Unlabelled joints (``v=0``) are never drawn.
        linestyle: limb line style (``"--"``, or ``(offset, (on, off))`` in points) e.g. for a
            reconstruction drawn over its original.
        marker_size: joint marker diameter in points.
        outline: colour of a halo drawn under limbs and joints (e.g. ``"white"`` over a photo), or ``None``.
        zorder: limbs are drawn at ``zorder``, joints just above.

    Returns:
        The artists added (limb collections and joint scatters).
    """
    kp = _as_keypoints(keypoints, "keypoints", skeleton, ndim=2, allow_xy=True)
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    if ax.get_aspect() == "auto":
        ax.set_aspect("equal")

    sides = _joint_sides(skeleton)
    drawn, occluded = _drawn_and_occluded(kp[:, 2], show_occluded)
    ms = 2.3 * lw if marker_size is None else marker_size
    halo = None if outline is None else [pe.Stroke(linewidth=lw + 2.0, foreground=outline), pe.Normal()]

    def col(side: str) -> str | tuple[float, ...]:
        return SIDE_COLORS[side] if color is None else color

    artists: list = []
    # One collection per (colour, opacity) keeps the number of artists small in grids of many poses.
    groups: dict[tuple[str, bool], list[np.ndarray]] = {}
    for a, b in skeleton.limbs:
        if drawn[a] and drawn[b]:
            key = (_limb_side(sides, a, b), bool(occluded[a] or occluded[b]))
            groups.setdefault(key, []).append(kp[[a, b], :2])
    for (side, faint), segs in groups.items():
        lc = LineCollection(
            segs,
            colors=[col(side)],
            linewidths=lw,
            linestyles=linestyle,
            alpha=alpha * (0.6 if faint else 1.0),
            capstyle="round",
            zorder=zorder,
        )
        if halo is not None:
            lc.set_path_effects(halo)
        ax.add_collection(lc, autolim=True)
        artists.append(lc)

    edge_w = max(1.0, 0.45 * lw)
    for side in ("left", "right", "centre"):
        for hollow in (False, True):
            sel = drawn & (np.array(sides) == side) & (occluded == hollow)
            if not sel.any():
                continue
            c = col(side)
            sc = ax.scatter(
                kp[sel, 0],
                kp[sel, 1],
                s=ms**2,
                facecolors="none" if hollow else [c],
                edgecolors=[c] if hollow else [outline or "white"],
                linewidths=edge_w if hollow else 0.6,
                alpha=alpha,
                zorder=zorder + 0.1,
            )
            if halo is not None and hollow:
                sc.set_path_effects([pe.Stroke(linewidth=edge_w + 1.5, foreground=outline), pe.Normal()])
            artists.append(sc)
    ax.autoscale_view()
    return artists


# ------------------------------------------------------------------------------- save_reconstruction_grid


def _joint_errors(orig: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """``(N, K)`` Euclidean distance over joints labelled in ``orig``; NaN elsewhere."""
    d = np.linalg.norm(orig[..., :2] - recon[..., :2], axis=-1)
    ok = (orig[..., 2] > 0) & np.isfinite(d)
    return np.where(ok, d, np.nan)


def _cell_region(
    orig: np.ndarray, recon: np.ndarray, box: np.ndarray | None, image: np.ndarray | None
) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` in image pixels that one grid cell must show.

    The box (with a margin), else the whole image, else the joints; always grown to hold every drawn joint,
    since a crop that hides a wild reconstructed joint would hide the very error the grid is for.
    """
    pts = np.concatenate([orig[orig[:, 2] > 0, :2], recon[recon[:, 2] > 0, :2]])
    if box is not None:
        x, y, w, h = box
        m = 0.06 * max(w, h)
        x0, y0, x1, y1 = x - m, y - m, x + w + m, y + h + m
    elif image is not None:
        x0, y0, x1, y1 = -0.5, -0.5, image.shape[1] - 0.5, image.shape[0] - 0.5
    elif len(pts):
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    else:
        return -0.5, -0.5, 0.5, 0.5
    if len(pts):
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        m = 0.08 * max(hi[0] - lo[0], hi[1] - lo[1]) + 2.0
        x0, y0 = min(x0, lo[0] - m), min(y0, lo[1] - m)
        x1, y1 = max(x1, hi[0] + m), max(y1, hi[1] + m)
    return float(x0), float(y0), float(x1), float(y1)


def save_reconstruction_grid(
    path: str | os.PathLike,
    originals: np.ndarray,
    reconstructions: np.ndarray,
    skeleton: Skeleton,
    boxes: np.ndarray | None = None,
    images: Sequence[np.ndarray | None] | np.ndarray | None = None,
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    max_items: int = 24,
    *,
    unit: str = "px",
) -> Path:
    """Grid of poses, each original overlaid with its reconstruction.

    Each cell shows the original (solid, teal) and the reconstruction (dashed, red) over an optional
    background image, cropped to the box (with a margin), else to the whole image, else to the joints; its
    title is the mean joint error, e.g. ``"#3  err 2.3 px"``. A legend and the mean error over the shown poses
    head the figure. Only the first ``max_items`` poses are drawn.

    Args:
        path: destination image file (``.png``).
        originals: ``(N, K, 3)`` x, y, visibility in image pixels.
        reconstructions: ``(N, K, 2)`` or ``(N, K, 3)`` in the same pixels. With 2 columns the original's
            visibility decides which joints are drawn, so both show the same joints; with 3 columns the
            reconstruction's own visibility does. The error only counts joints labelled in the original.
        skeleton: layout of the ``K`` joints.
        boxes: ``(N, 4)`` x, y, w, h crop boxes in the same pixels, or ``None``.
        images: ``N`` background images, each ``(H, W, 3)`` uint8 **RGB** or ``None`` (OpenCV loads BGR:
            convert with ``img[..., ::-1]``), or ``None`` for no backgrounds.
        titles: ``N`` cell titles replacing the error titles, or ``None``.
        ncols: cells per row (fewer if there are fewer poses).
        max_items: the most poses drawn.
        unit: unit of the coordinates, for the titles.

    Returns:
        ``Path(path)``.
    """
    path = _check_path(path)
    orig = _as_keypoints(originals, "originals", skeleton, ndim=3, allow_xy=False)
    recon = _as_keypoints(reconstructions, "reconstructions", skeleton, ndim=3, allow_xy=True)
    n_all = orig.shape[0]
    if n_all == 0:
        raise ValueError("originals is empty (N = 0); nothing to draw")
    if recon.shape[0] != n_all:
        raise ValueError(f"reconstructions has {recon.shape[0]} poses but originals has {n_all}")
    if np.asarray(reconstructions).shape[-1] == 2:
        recon[..., 2] = np.where(recon[..., 2] > 0, orig[..., 2], 0.0)
    if ncols < 1 or max_items < 1:
        raise ValueError(f"ncols and max_items must be >= 1, got ncols={ncols}, max_items={max_items}")
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.shape != (n_all, 4):
            raise ValueError(f"boxes must have shape (N, 4) = ({n_all}, 4) as x, y, w, h, got {boxes.shape}")
        if not np.isfinite(boxes).all() or (boxes[:, 2:] <= 0).any():
            raise ValueError("boxes must be finite with positive width and height (x, y, w, h)")
    if images is not None:
        if len(images) != n_all:
            raise ValueError(f"images has {len(images)} entries but originals has {n_all} poses")
    if titles is not None and len(titles) != n_all:
        raise ValueError(f"titles has {len(titles)} entries but originals has {n_all} poses")

    n = min(n_all, max_items)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    errors = _joint_errors(orig[:n], recon[:n])
    imgs = [None if images is None or images[i] is None else _check_rgb_image(images[i], f"images[{i}]")
            for i in range(n)]  # fmt: skip
    regions = [
        _cell_region(orig[i], recon[i], None if boxes is None else boxes[i], imgs[i]) for i in range(n)
    ]
    # One cell shape for the grid, that of the typical crop: people are tall, and tall crops in square cells
    # would leave most of each cell empty. Clipped so titles fit and odd crops stay readable.
    aspect = float(np.clip(np.median([(r[2] - r[0]) / max(r[3] - r[1], 1e-6) for r in regions]), 0.6, 1.5))
    ax_h = 2.3
    cell_w, cell_h = ax_h * aspect + 0.1, ax_h + 0.35  # + the title line
    fig = Figure(figsize=(ncols * cell_w, nrows * cell_h + 0.8), dpi=_DPI, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.03, h_pad=0.03, wspace=0.02, hspace=0.02)

    for i in range(n):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        img = imgs[i]
        if img is not None:
            ax.imshow(img, interpolation="antialiased")  # default extent: pixel centres at integers
        ax.set_facecolor("#f1f3f5")
        x0, y0, x1, y1 = _fit_aspect(regions[i], aspect)
        halo = "white" if img is not None else None
        # Only the original gets a halo: a halo around the reconstruction would paint over the original
        # wherever the two agree, which is most of the time.
        draw_skeleton(
            ax, orig[i], skeleton, color=_ORIGINAL_COLOR, lw=3.0, marker_size=5.5, outline=halo, zorder=2
        )
        draw_skeleton(
            ax, recon[i], skeleton, color=_RECON_COLOR, lw=1.7, linestyle=(0, (2.2, 1.6)),
            marker_size=3.6, zorder=3,
        )  # fmt: skip
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_color("#ced4da")
        if titles is not None:
            text = str(titles[i])
        else:
            e = np.nanmean(errors[i]) if np.isfinite(errors[i]).any() else np.nan
            text = f"#{i}  err {e:.1f} {unit}" if np.isfinite(e) else f"#{i}  no labelled joints"
        ax.set_title(text, fontsize=9, pad=3)

    handles = [
        Line2D([], [], color=_ORIGINAL_COLOR, lw=3.0, marker="o", ms=5.5, mec="white", label="original"),
        Line2D([], [], color=_RECON_COLOR, lw=1.7, ls=(0, (2.2, 1.6)), marker="o", ms=3.6, mec="white",
               label="reconstruction"),
        Line2D([], [], ls="none", marker="o", ms=6, mfc="none", mec="#495057", mew=1.2,
               label="occluded joint"),
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    if np.isfinite(errors).any():
        head = f"mean joint error {np.nanmean(errors):.2f} {unit}, median {np.nanmedian(errors):.2f} {unit}"
    else:
        head = "no labelled joints"
    shown = f"{n} poses" if n == n_all else f"first {n} of {n_all} poses"
    fig.suptitle(f"Reconstructions: {shown}, {head}", fontsize=11, fontweight="bold")
    return _save_figure(fig, path)


# ------------------------------------------------------------------------------------------ save_overlay


def _bgr(hex_color: str) -> tuple[int, int, int]:
    r, g, b = (round(c * 255) for c in to_rgb(hex_color))
    return b, g, r


def save_overlay(
    path: str | os.PathLike,
    image: np.ndarray,
    keypoints: np.ndarray,
    skeleton: Skeleton,
    *,
    rgb: bool = False,
    scale: float = 1.0,
    thickness: int | None = None,
    show_occluded: bool = True,
) -> Path:
    """Draw skeletons on an image with OpenCV and write it with ``cv2.imwrite``.

    Limbs and joints use :data:`SIDE_COLORS` (left, right, centre) with a dark outline so they stand out on
    any background; occluded joints (``v=1``) are hollow circles and unlabelled ones (``v=0``) are skipped.

    Args:
        path: destination image file (``.png``; any suffix OpenCV encodes works).
        image: ``(H, W, 3)`` uint8, **BGR** as OpenCV loads it; pass ``rgb=True`` for RGB. Not modified.
        keypoints: ``(N, K, 3)`` x, y, visibility of ``N`` people (or ``(K, 3)`` for one) in the image's
            pixels; a last axis of 2 means all visible.
        skeleton: layout of the ``K`` joints.
        rgb: ``image`` is RGB rather than BGR.
        scale: resize the image by this factor before drawing (coordinates follow), e.g. 2 for small crops,
            so lines stay thin relative to the person.
        thickness: limb thickness in output pixels; default grows with the output size.
        show_occluded: draw occluded joints and their limbs.

    Returns:
        ``Path(path)``.
    """
    path = _check_path(path)
    img = _check_rgb_image(image, "image")
    kp_in = np.asarray(keypoints)
    kp = _as_keypoints(
        kp_in[None] if kp_in.ndim == 2 else kp_in, "keypoints", skeleton, ndim=3, allow_xy=True
    )
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale}")
    canvas = np.ascontiguousarray(img[..., ::-1] if rgb else img).copy()
    if scale != 1.0:
        size = (max(1, round(canvas.shape[1] * scale)), max(1, round(canvas.shape[0] * scale)))
        interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
        canvas = cv2.resize(canvas, size, interpolation=interp)
        # Pixel centres are at integers, so the pixel grid scales about the point (-0.5, -0.5).
        kp[..., :2] = (kp[..., :2] + 0.5) * scale - 0.5
    h, w = canvas.shape[:2]
    t = thickness if thickness is not None else max(2, round(max(h, w) / 250))
    if t < 1:
        raise ValueError(f"thickness must be >= 1, got {t}")
    r = max(2, round(1.4 * t))
    dark = (30, 30, 30)
    # Sub-pixel positions: OpenCV takes fixed-point coordinates with `shift` fractional bits.
    shift = 4
    one = 1 << shift

    def pt(xy: np.ndarray) -> tuple[int, int]:
        return round(xy[0] * one), round(xy[1] * one)

    sides = _joint_sides(skeleton)
    for person in kp:
        drawn = _drawn_and_occluded(person[:, 2], show_occluded)[0]
        # Outlines first for every limb, then colours, so no outline crosses a coloured limb.
        limbs = [(a, b) for a, b in skeleton.limbs if drawn[a] and drawn[b]]
        for a, b in limbs:
            cv2.line(canvas, pt(person[a]), pt(person[b]), dark, t + 2, cv2.LINE_AA, shift)
        for a, b in limbs:
            c = _bgr(SIDE_COLORS[_limb_side(sides, a, b)])
            cv2.line(canvas, pt(person[a]), pt(person[b]), c, t, cv2.LINE_AA, shift)
        for j in np.flatnonzero(drawn):
            c = _bgr(SIDE_COLORS[sides[j]])
            centre = pt(person[j])
            if person[j, 2] >= 2:
                cv2.circle(canvas, centre, (r + 1) * one, dark, -1, cv2.LINE_AA, shift)
                cv2.circle(canvas, centre, r * one, c, -1, cv2.LINE_AA, shift)
            else:
                ring = max(1, t // 2 + 1)
                cv2.circle(canvas, centre, r * one, dark, ring + 2, cv2.LINE_AA, shift)
                cv2.circle(canvas, centre, r * one, c, ring, cv2.LINE_AA, shift)

    with atomic_path(path) as tmp:
        try:
            ok = cv2.imwrite(str(tmp), canvas)
        except cv2.error as exc:
            raise ValueError(f"{path}: OpenCV cannot write this file type ({path.suffix})") from exc
        if not ok:
            raise OSError(f"{path}: cv2.imwrite failed")
    return path
