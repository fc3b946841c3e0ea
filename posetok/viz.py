"""Pictures of poses, reconstructions and codebooks.

Every ``save_*`` function writes one file atomically (through :func:`posetok.io.atomic_path`, so a crash
never leaves a half-written file), creates the parent folders and returns the destination
:class:`~pathlib.Path`. The format follows the file's suffix: ``.png`` is the intended one; the matplotlib
figures also take ``.pdf`` or ``.svg``; :func:`save_sequence_animation` writes ``.gif`` or ``.mp4``.

Coordinates are image pixels, x right, y down, with the pixel convention of :mod:`posetok.data.transforms`
(and MMPose, OpenCV): pixel centres sit at integers, so column ``j`` covers ``[j - 0.5, j + 0.5]``.
Keypoints are ``(..., K, 3)`` = x, y, visibility (0 not labelled, 1 occluded, 2 visible) in a
:class:`~posetok.skeletons.Skeleton`'s joint order; where a function also takes ``(..., K, 2)`` every joint
with finite coordinates counts as visible. Joints with NaN coordinates are never drawn.

The matplotlib figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so importing this module neither changes matplotlib's backend nor opens windows, and it is safe in
threads and on headless machines.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib.patheffects as pe
import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import LogNorm, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image

from .errors import PosetokError
from .io import atomic_path
from .metrics.tokens import code_histogram, codebook_usage, per_position_usage, perplexity
from .skeletons import Skeleton

__all__ = [
    "SIDE_COLORS",
    "draw_skeleton",
    "save_codebook_usage",
    "save_codebook_usage_per_quantizer",
    "save_error_per_joint",
    "save_overlay",
    "save_rate_distortion",
    "save_reconstruction_grid",
    "save_sequence_animation",
]

# Left blue, right orange, centre violet: distinguishable with the common colour-vision deficiencies and
# none of them is close to sky, foliage or skin, the usual backgrounds of the pictures.
SIDE_COLORS: dict[str, str] = {"left": "#1c7ed6", "right": "#f76707", "centre": "#ae3ec9"}
# Reconstruction grid: ground truth in a calm dark teal, the reconstruction in a contrasting red.
_ORIGINAL_COLOR = "#0b7285"
_RECON_COLOR = "#e03131"
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


def _joint_errors(orig: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """``(N, K)`` Euclidean distance over joints labelled in ``orig``; NaN elsewhere."""
    d = np.linalg.norm(orig[..., :2] - recon[..., :2], axis=-1)
    ok = (orig[..., 2] > 0) & np.isfinite(d)
    return np.where(ok, d, np.nan)


# ------------------------------------------------------------------------------------------ draw_skeleton


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
    min_vis = 1.0 if show_occluded else 2.0
    drawn = kp[:, 2] >= min_vis
    occluded = kp[:, 2] < 2.0
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


# ------------------------------------------------------------------------------------ save_codebook_usage


def save_codebook_usage(
    path: str | os.PathLike,
    tokens: np.ndarray,
    codebook_size: int,
    title: str | None = None,
    *,
    heatmap_max_codes: int = 1024,
) -> Path:
    """Two panels on how a tokenizer uses its codebook.

    Top: code counts sorted from most to least frequent (log y), with the uniform level and the unused codes
    marked; its title gives the usage (share of codes used) and the perplexity. Bottom: a heat map of counts
    per token position (rows) and code (columns, in the top panel's order) when ``V <= heatmap_max_codes``,
    else a bar chart of the share of codes each position uses.

    Args:
        path: destination image file (``.png``).
        tokens: ``(N, M)`` integer code indices in ``[0, V)``: ``N`` poses of ``M`` tokens.
        codebook_size: ``V``.
        title: figure title, or ``None``.
        heatmap_max_codes: the largest ``V`` drawn as a heat map.

    Returns:
        ``Path(path)``.
    """
    path = _check_path(path)
    arr = np.asarray(tokens)
    if arr.ndim != 2:
        raise ValueError(f"tokens must have shape (N, M) (poses, tokens per pose), got {arr.shape}")
    hist = code_histogram(arr, codebook_size)  # validates range, dtype and emptiness
    arr = arr.astype(np.int64)
    v, (n, m) = codebook_size, arr.shape
    usage, ppl = codebook_usage(arr, v), perplexity(arr, v)
    pos_usage = per_position_usage(arr, v)
    order = np.argsort(-hist, kind="stable")
    sorted_counts = hist[order]
    used = int(np.count_nonzero(hist))

    heatmap = v <= heatmap_max_codes
    # Wide enough for about one screen pixel per code in the heat map, so no code column is dropped.
    width = float(np.clip(v / _DPI + 2.2, 10.0, 14.0)) if heatmap else 10.0
    fig = Figure(figsize=(width, 7.8), dpi=_DPI, layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, height_ratios=[1.0, 1.25])

    # Code of rank r spans [r, r + 1) so the curve ends exactly where the unused span begins.
    edges = np.arange(used + 1)
    steps = np.append(sorted_counts[:used], sorted_counts[used - 1])
    ax1.fill_between(edges, steps, step="post", color="#4263eb", alpha=0.3, lw=0)
    ax1.step(edges, steps, where="post", color="#364fc7", lw=1.2, label="code count")
    ax1.set_yscale("log")
    uniform = n * m / v
    ax1.axhline(uniform, color="#495057", ls="--", lw=1, label=f"uniform ({uniform:.3g} per code)")
    if used < v:
        ax1.axvspan(used, v, color="#fa5252", alpha=0.12, lw=0, label=f"unused ({v - used} codes)")
    ax1.set_xlim(0, v)
    ax1.set_ylim(0.7, sorted_counts[0] * 1.6)
    ax1.set_xlabel("code rank (most to least frequent)")
    ax1.set_ylabel("count (log scale)")
    ax1.set_title(
        f"Code frequency: {used}/{v} codes used ({usage:.1%}), perplexity {ppl:.1f} of {v}",
        fontsize=11, loc="left",
    )  # fmt: skip
    ax1.legend(loc="upper right", fontsize=9, framealpha=0.9)
    ax1.grid(True, which="major", axis="y", color="#dee2e6", lw=0.6)
    ax1.set_axisbelow(True)

    if heatmap:
        flat = np.arange(m)[None, :] * v + arr
        per_pos = np.bincount(flat.ravel(), minlength=m * v).reshape(m, v)[:, order].astype(float)
        masked = np.ma.masked_equal(per_pos, 0)
        cmap = colormaps["viridis"].with_extremes(bad="#f8f9fa")
        im = ax2.imshow(
            masked, aspect="auto", cmap=cmap, norm=LogNorm(vmin=1, vmax=max(per_pos.max(), 1.0)),
            interpolation="nearest", extent=(0, v, m - 0.5, -0.5),
        )  # fmt: skip
        ax2.set_xlabel("code rank (same order as above; blank = never used at this position)")
        ax2.set_ylabel("token position")
        fig.colorbar(im, ax=ax2, label="count", pad=0.01, fraction=0.04)
        ax2.set_title(
            f"Codes used per token position: {pos_usage.mean():.1%} of the codebook on average "
            f"(min {pos_usage.min():.1%}, max {pos_usage.max():.1%})",
            fontsize=11, loc="left",
        )  # fmt: skip
        if m <= 40:
            ax2.set_yticks(np.arange(m))
            ax2.tick_params(axis="y", labelsize=7 if m > 20 else 9)
    else:
        ax2.bar(np.arange(m), pos_usage * 100, color="#4263eb", alpha=0.8, width=0.8)
        ax2.axhline(
            usage * 100, color="#e03131", ls="--", lw=1.2, label=f"all positions pooled ({usage:.1%})"
        )
        ax2.set_xlabel("token position")
        ax2.set_ylabel("codes used at this position (%)")
        ax2.set_ylim(0, 105)
        ax2.set_xlim(-0.6, m - 0.4)
        ax2.legend(loc="upper right", fontsize=9, framealpha=0.9)
        ax2.grid(True, axis="y", color="#dee2e6", lw=0.6)
        ax2.set_axisbelow(True)
        ax2.set_title(f"Share of the {v} codes used at each token position", fontsize=11, loc="left")
    sub = f"{n} poses x {m} tokens, codebook of {v}"
    fig.suptitle(f"{title}\n{sub}" if title else sub, fontsize=12 if title else 10, fontweight="bold")
    return _save_figure(fig, path)


# ----------------------------------------------------------------------------------- save_error_per_joint


def save_error_per_joint(
    path: str | os.PathLike,
    errors: np.ndarray,
    skeleton: Skeleton,
    unit: str = "px",
    *,
    title: str | None = None,
) -> Path:
    """Horizontal bar chart of the per-joint error: mean (bar, coloured by body side) and median (marker).

    Args:
        path: destination image file (``.png``).
        errors: ``(N, K)`` non-negative errors (e.g. pixel distances) per pose and joint; NaN where a joint
            was not evaluated (unlabelled, or in a masked-out frame). Joints evaluated in fewer than ``N`` poses
            show their count. Sequence errors such as ``(T, K)`` or ``(W, T, K)`` (any ``(..., K)`` with at
            least two axes) are pooled over every leading axis, so each frame counts as one pose.
        skeleton: layout of the ``K`` joints, listed top to bottom in its order.
        unit: unit of the errors for the axis label.
        title: figure title, or ``None`` for a default one.

    Returns:
        ``Path(path)``.
    """
    path = _check_path(path)
    err = np.asarray(errors)
    if err.dtype.kind not in "fiu" or err.ndim < 2 or err.shape[-1] != skeleton.num_joints:
        raise ValueError(
            f"errors must be a numeric (N, K) array with K = {skeleton.num_joints} joints of "
            f"'{skeleton.name}', got shape {err.shape} dtype {err.dtype}"
        )
    err = err.reshape(-1, err.shape[-1]).astype(np.float64)
    if np.isinf(err).any():
        raise ValueError("errors must not contain inf; mark joints that were not evaluated with NaN")
    valid = ~np.isnan(err)
    if not valid.any():
        raise ValueError("errors holds no value (all NaN or N = 0); nothing to plot")
    n, k = err.shape
    count = valid.sum(axis=0)
    # nanmean/nanmedian warn on all-NaN columns; those joints are drawn as "no data" instead.
    filled = np.where(valid, err, 0.0)
    mean = np.where(count > 0, filled.sum(axis=0) / np.maximum(count, 1), np.nan)
    median = np.array([np.median(err[valid[:, j], j]) if count[j] else np.nan for j in range(k)])
    overall = float(err[valid].mean())

    sides = _joint_sides(skeleton)
    fig = Figure(figsize=(8.5, 0.3 * k + 1.9), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(k)
    colors = [SIDE_COLORS[s] for s in sides]
    ax.barh(y, np.nan_to_num(mean), height=0.7, color=colors, alpha=0.85, zorder=2)
    ax.scatter(median, y, marker="D", s=22, color="#212529", edgecolors="white", linewidths=0.6, zorder=3)
    xmax = float(np.nanmax(np.concatenate([mean, median])))
    for j in range(k):
        if count[j] == 0:
            ax.text(xmax * 0.01, j, "no data", va="center", fontsize=8, color="#868e96")
        else:
            right = max(mean[j], median[j])
            # The white box keeps the number readable where the all-joints line crosses it.
            ax.text(right + xmax * 0.015, j, f"{mean[j]:.2f} / {median[j]:.2f}", va="center", fontsize=8,
                    color="#343a40", bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 0.4},
                    zorder=4)  # fmt: skip
    ax.axvline(overall, color="#495057", ls="--", lw=1, zorder=1)
    labels = [nm if count[j] == n else f"{nm} (n={count[j]})" for j, nm in enumerate(skeleton.joint_names)]
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_ylim(k - 0.4, -0.6)
    ax.set_xlim(0, xmax * 1.22 if xmax > 0 else 1.0)
    ax.set_xlabel(f"error ({unit}); labels: mean / median")
    ax.grid(True, axis="x", color="#dee2e6", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    handles = [
        Patch(color=SIDE_COLORS[s], alpha=0.85, label=f"mean, {s}")
        for s in ("left", "right", "centre")
        if s in sides
    ]
    handles += [
        Line2D([], [], ls="none", marker="D", ms=5, color="#212529", mec="white", label="median"),
        Line2D([], [], ls="--", color="#495057", lw=1, label=f"all joints: {overall:.2f} {unit}"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    ax.set_title(title or f"Error per joint ({skeleton.name}, {n} poses)", fontsize=12, loc="left")
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
    min_vis = 1.0 if show_occluded else 2.0
    for person in kp:
        drawn = person[:, 2] >= min_vis
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


# ------------------------------------------------------------------------------- save_sequence_animation

_ANIM_DPI = 80
# Pixel size of one animation panel and of the bands above and below the panels. Even totals, since some
# MPEG-4 encoders reject odd frame sizes.
_ANIM_PANEL = (240, 256)
_ANIM_TOP, _ANIM_BOTTOM = 44, 8
_ANIM_SUFFIXES = (".gif", ".mp4")
_GHOST_COLOR = "#adb5bd"


def _sequence_xy(arr: object, name: str, skeleton: Skeleton, min_conf: float | None) -> np.ndarray:
    """Validate a ``(T, K, C)`` sequence (``C >= 2``); return ``(T, K, 2)`` float64 x, y with NaN for hidden joints.

    A joint is hidden when a coordinate is not finite, or, with ``min_conf`` and ``C >= 3``, when its third
    channel (then a confidence) is below ``min_conf``.
    """
    seq = np.asarray(arr)
    if seq.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {seq.dtype}")
    if seq.ndim != 3 or seq.shape[2] < 2 or seq.shape[0] == 0:
        raise ValueError(f"{name} must have shape (T, K, C) with T >= 1 and C >= 2, got {seq.shape}")
    if seq.shape[1] != skeleton.num_joints:
        raise ValueError(
            f"{name} has {seq.shape[1]} joints but skeleton '{skeleton.name}' has {skeleton.num_joints}"
        )
    xy = seq[..., :2].astype(np.float64)
    hidden = ~np.isfinite(xy).all(axis=-1)
    if min_conf is not None and seq.shape[2] >= 3:
        conf = seq[..., 2].astype(np.float64)
        hidden |= ~(conf >= min_conf)  # NaN confidence hides the joint too
    xy[hidden] = np.nan
    return xy


def _follow_view(orig: np.ndarray, rec: np.ndarray, valid: np.ndarray, follow: bool | None
                 ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both ``(T, K, 2)`` arrays relative to the per-frame centre of ``orig`` when following the person.

    Moving the poses rather than the axes keeps the axes fixed, which the blitted rendering needs.
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames
        centre = np.nanmean(orig, axis=1)  # (T, 2)
        size = np.nanmax(orig, axis=1) - np.nanmin(orig, axis=1)
    ok = valid & np.isfinite(centre).all(axis=1)
    if not ok.any():
        return orig, rec, False
    if follow is None:
        travel = np.ptp(centre[ok], axis=0).max()
        follow = bool(travel > np.nanmax(size[ok]))
    if not follow:
        return orig, rec, False
    # Frames without a centre (no pose) hold the nearest one before them, or the first one.
    idx = np.where(ok, np.arange(len(ok)), 0)
    idx = np.maximum.accumulate(idx)
    idx[: np.flatnonzero(ok)[0]] = np.flatnonzero(ok)[0]
    c = centre[idx][:, None, :]
    return orig - c, rec - c, True


def save_sequence_animation(
    path: str | os.PathLike,
    original: np.ndarray,
    recon: np.ndarray,
    skeleton: Skeleton,
    mask: np.ndarray | None = None,
    fps: float = 25,
    title: str | None = None,
    max_frames: int | None = None,
    *,
    min_conf: float | None = None,
    unit: str = "px",
    follow: bool | None = None,
) -> Path:
    """Animate a pose sequence and its reconstruction side by side.

    Left panel: the original; right panel: the reconstruction, over a faint grey copy of the original so the
    error shows at a glance. Limbs and joints take the body-side colours of :data:`SIDE_COLORS`. Both panels
    share the same fixed limits, computed once from every shown joint of the valid frames of both arrays, so
    nothing jumps between frames and the two panels compare directly. A header gives the title, the frame
    counter (``frame t / T``, 1-based, in the input's numbering) and the frame's mean joint error.

    Coordinates: the first two channels are drawn as x right, y down, i.e. image pixels (the module's frame).
    For 3-D input (``x, y, z``) that is the orthographic x/y projection, upright for camera coordinates
    (y down); a world frame with z up must be rotated by the caller first.

    Args:
        path: destination ``.gif`` (written with Pillow, one shared palette)
            or ``.mp4`` (MPEG-4 ``mp4v`` through :class:`cv2.VideoWriter`). Any other suffix raises
            :class:`~posetok.errors.PosetokError`.
        original: ``(T, K, C)`` float, ``C >= 2``: x, y (image pixels) then optional channels, e.g. the
            confidence of ``"2d+conf"`` data or the z of ``"3d"`` data; only x, y are drawn. Joints with a
            non-finite x or y are not drawn.
        recon: ``(T, K, C')`` float, ``C' >= 2``, in the same frame and units.
        skeleton: layout of the ``K`` joints.
        mask: ``(T,)`` bool, True where the frame holds a pose; frames with False show "no pose" and no
            skeleton, and are left out of the limits and the error. ``None``: every frame is valid.
        fps: frame rate of the sequence. With ``max_frames`` the playback rate drops in proportion, so the
            clip keeps its real duration.
        title: header line, or ``None``.
        max_frames: the most frames written, picked evenly over the sequence (first and last included) to
            bound the file size; ``None`` writes every frame.
        min_conf: with ``C >= 3``, treat the third channel as a confidence and hide joints below ``min_conf``
            (in each array that has one). ``None`` ignores extra channels; do not set it for 3-D data.
        unit: unit of the coordinates, for the error in the header.
        follow: move the view with the person: every frame is drawn relative to the centre of the original's
            joints in that frame, so a person who crosses the image (a sprinter) stays large. ``None`` follows
            when the poses' centres travel more than the size of one pose.

    Returns:
        ``Path(path)``.
    """
    p = Path(path)
    fmt = p.suffix.lower()
    if fmt not in _ANIM_SUFFIXES:
        raise PosetokError(
            f"{p}: cannot write an animation with suffix '{p.suffix}'; use one of {', '.join(_ANIM_SUFFIXES)}"
        )
    orig = _sequence_xy(original, "original", skeleton, min_conf)
    rec = _sequence_xy(recon, "recon", skeleton, min_conf)
    t_all = orig.shape[0]
    if rec.shape[0] != t_all:
        raise ValueError(f"recon has {rec.shape[0]} frames but original has {t_all}")
    if mask is None:
        valid = np.ones(t_all, dtype=bool)
    else:
        valid = np.asarray(mask)
        if valid.shape != (t_all,):
            raise ValueError(f"mask must have shape (T,) = ({t_all},), got {valid.shape}")
        valid = valid.astype(bool)
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")

    orig, rec, follow = _follow_view(orig, rec, valid, follow)

    n = t_all if max_frames is None else min(max_frames, t_all)
    # Steps of (T - 1) / (n - 1) >= 1 frame, so the rounded indices are distinct.
    frames = np.round(np.linspace(0, t_all - 1, n)).astype(np.int64)
    play_fps = fps * n / t_all

    # Frame errors over joints shown in both arrays.
    dist = np.linalg.norm(orig - rec, axis=-1)  # (T, K), NaN where either joint is hidden
    counted = np.isfinite(dist)
    n_counted = counted.sum(axis=1)
    frame_err = np.where(n_counted > 0, np.where(counted, dist, 0.0).sum(axis=1) / np.maximum(n_counted, 1), np.nan)

    pw, ph = _ANIM_PANEL
    width, height = 2 * pw, ph + _ANIM_TOP + _ANIM_BOTTOM
    pts = np.concatenate([orig[valid].reshape(-1, 2), rec[valid].reshape(-1, 2)])
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts):
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        m = 0.08 * max(hi[0] - lo[0], hi[1] - lo[1]) + 1e-3
        region = (lo[0] - m, lo[1] - m, hi[0] + m, hi[1] + m)
    else:
        region = (-0.5, -0.5, 0.5, 0.5)
    pad = 4  # pixels between a panel's frame and its neighbours
    x0, y0, x1, y1 = _fit_aspect(region, (pw - 2 * pad) / (ph - 2 * pad))

    # A fixed layout in pixels (no layout engine), built once; the frames are then blitted: the static parts
    # (panels, labels, title) are rendered once and each frame only draws the few artists that change, about
    # a tenth of the cost of a full draw, so a few hundred frames take seconds.
    fig = Figure(figsize=(width / _ANIM_DPI, height / _ANIM_DPI), dpi=_ANIM_DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    sides = _joint_sides(skeleton)
    limbs = np.asarray(skeleton.limbs, dtype=np.int64).reshape(-1, 2)
    limb_colors = [SIDE_COLORS[_limb_side(sides, a, b)] for a, b in limbs]
    joint_colors = [SIDE_COLORS[s] for s in sides]
    nan_xy = np.full((skeleton.num_joints, 2), np.nan)

    def panel(i: int, label: str) -> Axes:
        ax = fig.add_axes(((i * pw + pad) / width, (_ANIM_BOTTOM + pad) / height,
                           (pw - 2 * pad) / width, (ph - 2 * pad) / height))  # fmt: skip
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)  # y down
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_facecolor("#f8f9fa")
        for s in ax.spines.values():
            s.set_color("#ced4da")
        ax.text(0.03, 0.97, label, transform=ax.transAxes, va="top", fontsize=9, color="#343a40")
        return ax

    def pose_artists(ax: Axes, color: str | None, lw: float, z: float) -> tuple[LineCollection, PathCollection]:
        """Limbs and joints of one pose, in ``color`` or, if ``None``, in the body-side colours."""
        # Limbs or joints with a NaN end are skipped when drawn, so each artist keeps one entry per limb or
        # joint and the colours stay aligned whatever is hidden.
        lc = LineCollection(np.zeros((len(limbs), 2, 2)), colors=color or limb_colors, linewidths=lw,
                            capstyle="round", zorder=z, animated=True)  # fmt: skip
        ax.add_collection(lc, autolim=False)
        sc = ax.scatter(np.zeros(len(sides)), np.zeros(len(sides)), s=(1.9 * lw) ** 2, c=color or joint_colors,
                        edgecolors="white", linewidths=0.5, zorder=z + 0.1, animated=True)  # fmt: skip
        return lc, sc

    ax_o = panel(0, "original (view follows the person)" if follow else "original")
    ax_r = panel(1, "reconstruction (grey: original)")
    # Drawn in this order: the grey original goes under the reconstruction.
    poses = [(pose_artists(ax_o, None, 2.0, 2.0), orig),
             (pose_artists(ax_r, _GHOST_COLOR, 2.6, 1.0), orig),
             (pose_artists(ax_r, None, 2.0, 2.0), rec)]  # fmt: skip
    no_pose = [ax.text(0.5, 0.5, "no pose", transform=ax.transAxes, ha="center", va="center", fontsize=12,
                       color="#868e96", animated=True) for ax in (ax_o, ax_r)]  # fmt: skip
    top = 1 - 6 / height
    if title:
        fig.text(6 / width, top, title, va="top", fontsize=10, fontweight="bold", color="#212529")
    # One text for the counter and the error: text layout is the dearest part of a frame. DejaVu Sans digits
    # all have one width, so the right-aligned counter does not jitter.
    header = fig.text(1 - 6 / width, top, "", va="top", ha="right", fontsize=9, color="#495057",
                      linespacing=1.5, animated=True)  # fmt: skip
    canvas.draw()  # the static parts; animated artists are left out
    background = canvas.copy_from_bbox(fig.bbox)

    def render(t: int) -> np.ndarray:
        """Frame ``t`` as an ``(H, W, 3)`` uint8 RGB image."""
        shown = bool(valid[t])
        canvas.restore_region(background)
        for (lc, sc), xy in poses:
            kp = xy[t] if shown else nan_xy
            lc.set_segments(kp[limbs])
            sc.set_offsets(kp)
            if shown:
                fig.draw_artist(lc)
                fig.draw_artist(sc)
        if not shown:
            for txt in no_pose:
                fig.draw_artist(txt)
        e = frame_err[t]
        err = f"mean joint error {e:.2f} {unit}" if shown and np.isfinite(e) else ""
        header.set_text(f"frame {t + 1} / {t_all}\n{err}")
        fig.draw_artist(header)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    with atomic_path(p) as tmp:
        if fmt == ".gif":
            # Pillow (matplotlib's own GIF writer, PillowWriter, re-renders the whole figure per frame). One
            # palette, from a frame with a pose, for every frame: mapping to it is ~40x faster than a palette
            # per frame, and with a shared palette Pillow stores only what changed between frames.
            first = int(frames[np.argmax(valid[frames])])
            palette = Image.fromarray(render(first)).quantize(64, method=Image.Quantize.MEDIANCUT)
            images = [Image.fromarray(render(int(t))).quantize(palette=palette, dither=Image.Dither.NONE)
                      for t in frames]  # fmt: skip
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=round(1000 / play_fps), loop=0)  # fmt: skip
        else:
            video = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), play_fps, (width, height))
            if not video.isOpened():
                raise OSError(f"{p}: OpenCV cannot open an MPEG-4 (mp4v) video writer")
            try:
                for t in frames:
                    video.write(cv2.cvtColor(render(int(t)), cv2.COLOR_RGB2BGR))
            finally:
                video.release()
    return p


# ------------------------------------------------------------------------ save_codebook_usage_per_quantizer


def save_codebook_usage_per_quantizer(
    path: str | os.PathLike,
    tokens: np.ndarray,
    codebook_size: int,
    names: Sequence[str] | None = None,
    *,
    title: str | None = None,
) -> Path:
    """Codebook usage of each quantizer of a residual VQ, one panel per quantizer, stacked.

    Each panel is the top panel of :func:`save_codebook_usage` for one quantizer: code counts sorted from most
    to least frequent (log y) with the uniform level and the unused codes marked; its title gives the codes
    used (share of the codebook) and the perplexity, ``exp`` of the entropy of the code distribution. Panels
    share both axes, so the quantizers compare directly.

    Args:
        path: destination image file (``.png``).
        tokens: integer code ids of any shape whose **last** axis is the quantizer, e.g. ``(W, T', G, Q)``; ids
            lie in ``[0, V)`` and ``-1`` means "no token" (masked windows, dropped quantizers) and is ignored.
        codebook_size: ``V``, the size of every quantizer's codebook.
        names: ``Q`` panel names, or ``None`` for ``"quantizer 1"`` ... ``"quantizer Q"``.
        title: figure title, or ``None``.

    Returns:
        ``Path(path)``.

    Raises:
        PosetokError: ``tokens`` holds ids outside ``[-1, V)``, is not integer, or holds no token at all.
    """
    path = _check_path(path)
    arr = np.asarray(tokens)
    if isinstance(codebook_size, bool) or not isinstance(codebook_size, (int, np.integer)) or codebook_size < 1:
        raise ValueError(f"codebook_size must be an int >= 1, got {codebook_size!r}")
    v = int(codebook_size)
    if arr.ndim < 1 or arr.size == 0:
        raise PosetokError(f"{path}: tokens is empty (shape {arr.shape}); nothing to plot")
    if arr.dtype.kind not in "iu":
        # Whole-number floats (tokens saved through a float tensor) pass, as in posetok.metrics.tokens.
        if arr.dtype.kind != "f" or not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise PosetokError(f"{path}: tokens must hold integer code ids, got dtype {arr.dtype}")
    flat = arr.astype(np.int64).reshape(-1, arr.shape[-1])  # (positions, Q)
    lo, hi = int(flat.min()), int(flat.max())
    if lo < -1 or hi >= v:
        raise PosetokError(f"{path}: token ids must lie in [0, {v}) or be -1 (no token), got min {lo}, max {hi}")
    if hi < 0:
        raise PosetokError(f"{path}: tokens holds no token (all {flat.size} entries are -1); nothing to plot")
    nq = flat.shape[1]
    if names is None:
        names = [f"quantizer {q + 1}" for q in range(nq)]
    elif len(names) != nq:
        raise ValueError(f"names has {len(names)} entries but tokens has Q = {nq} quantizers (its last axis)")

    # Counts per quantizer and code, shifted by one so -1 lands in a column that is then dropped.
    hist = np.stack([np.bincount(flat[:, q] + 1, minlength=v + 1)[1:] for q in range(nq)])  # (Q, V)
    ymax = float(hist.max())
    fig = Figure(figsize=(10.0, 1.9 * nq + 1.0), dpi=_DPI, layout="constrained")
    axes = fig.subplots(nq, 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for q, ax in enumerate(axes):
        counts = hist[q]
        total = int(counts.sum())
        ax.set_yscale("log")
        ax.grid(True, which="major", axis="y", color="#dee2e6", lw=0.6)
        ax.set_axisbelow(True)
        if total == 0:
            ax.text(0.5, 0.5, "no tokens", transform=ax.transAxes, ha="center", va="center", color="#868e96")
            ax.set_title(f"{names[q]}: no tokens", fontsize=10, loc="left")
            continue
        sorted_counts = np.sort(counts)[::-1]
        used = int(np.count_nonzero(counts))
        prob = counts[counts > 0] / total
        ppl = math.exp(float(-(prob * np.log(prob)).sum()))
        # Code of rank r spans [r, r + 1) so the curve ends exactly where the unused span begins.
        edges = np.arange(used + 1)
        steps = np.append(sorted_counts[:used], sorted_counts[used - 1])
        ax.fill_between(edges, steps, step="post", color="#4263eb", alpha=0.3, lw=0)
        ax.step(edges, steps, where="post", color="#364fc7", lw=1.2, label="code count")
        uniform = total / v
        ax.axhline(uniform, color="#495057", ls="--", lw=1, label=f"uniform ({uniform:.3g} per code)")
        if used < v:
            ax.axvspan(used, v, color="#fa5252", alpha=0.12, lw=0, label=f"unused ({v - used} codes)")
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
        ax.set_title(
            f"{names[q]}: {used}/{v} codes used ({used / v:.1%}), perplexity {ppl:.1f} of {v}, {total} tokens",
            fontsize=10, loc="left",
        )  # fmt: skip
        ax.set_ylabel("count")
    axes[-1].set_xlim(0, v)
    axes[-1].set_ylim(0.7, ymax * 1.6)
    axes[-1].set_xlabel("code rank (most to least frequent, per quantizer)")
    shape = " x ".join(str(d) for d in arr.shape)
    sub = f"{nq} quantizers of {v} codes; tokens {shape}, -1 entries ignored"
    fig.suptitle(f"{title}\n{sub}" if title else sub, fontsize=12 if title else 10, fontweight="bold")
    return _save_figure(fig, path)


# ------------------------------------------------------------------------------------ save_rate_distortion


def _ratio_label(r: float) -> str:
    return f"{r:.0f}x" if r >= 9.5 else f"{r:.1f}x"


def save_rate_distortion(
    path: str | os.PathLike,
    rows: Sequence[dict],
    unit: str = "px",
    reference: float | None = None,
    reference_label: str = "target",
    *,
    title: str | None = None,
) -> Path:
    """Reconstruction error against the number of residual quantizers used, each point labelled with its rate.

    Args:
        path: destination image file (``.png``).
        rows: one dict per quantizer count, ``{"num_quantizers": q, "mpjpe": err, "compression_ratio": r}``
            (``q`` an int >= 1, ``err`` >= 0 in ``unit``, ``r`` > 0); extra keys are ignored, order is free.
        unit: unit of the error, for the y label.
        reference: a level to compare with (e.g. 3 % of the box height), drawn as a dashed horizontal line,
            or ``None``.
        reference_label: legend text of the reference line.
        title: figure title, or ``None`` for a default one.

    Returns:
        ``Path(path)``.
    """
    path = _check_path(path)
    if len(rows) == 0:
        raise ValueError("rows is empty; nothing to plot")
    pts = []
    for i, row in enumerate(rows):
        missing = [k for k in ("num_quantizers", "mpjpe", "compression_ratio") if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks {', '.join(missing)}")
        q, err, ratio = row["num_quantizers"], float(row["mpjpe"]), float(row["compression_ratio"])
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 1:
            raise ValueError(f"rows[{i}]: num_quantizers must be an int >= 1, got {q!r}")
        if not (np.isfinite(err) and err >= 0) or not (np.isfinite(ratio) and ratio > 0):
            raise ValueError(f"rows[{i}]: mpjpe must be finite >= 0 and compression_ratio finite > 0")
        pts.append((int(q), err, ratio))
    pts.sort()
    qs = [p[0] for p in pts]
    if len(set(qs)) != len(qs):
        raise ValueError(f"rows repeat a num_quantizers value: {qs}")
    if reference is not None and not (np.isfinite(reference) and reference >= 0):
        raise ValueError(f"reference must be a finite number >= 0, got {reference}")
    errs = np.array([p[1] for p in pts])

    fig = Figure(figsize=(6.4, 4.2), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(qs, errs, color="#364fc7", lw=1.6, marker="o", ms=6, mec="white", zorder=3, label="reconstruction")
    for q, e, r in pts:
        ax.annotate(_ratio_label(r), (q, e), xytext=(0, 7), textcoords="offset points", ha="center",
                    fontsize=8, color="#343a40")  # fmt: skip
    if reference is not None:
        label = f"{reference_label} ({reference:.3g} {unit})"
        ax.axhline(reference, color="#e03131", ls="--", lw=1.2, zorder=2, label=label)
    ax.set_xticks(qs)
    ax.set_xlim(qs[0] - 0.5, qs[-1] + 0.5)
    # From zero, so the gain of an extra quantizer is not exaggerated; headroom for the labels.
    top = max(float(errs.max()), reference or 0.0)
    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)
    ax.set_xlabel("number of quantizers (labels: compression ratio)")
    ax.set_ylabel(f"mean joint error ({unit})")
    ax.grid(True, color="#dee2e6", lw=0.6)
    ax.set_axisbelow(True)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    ax.set_title(title or "Rate-distortion: error against quantizers", fontsize=11, loc="left")
    return _save_figure(fig, path)
