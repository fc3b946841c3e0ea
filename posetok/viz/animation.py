"""Animations of a pose sequence beside its reconstruction, as ``.gif`` (Pillow) or ``.mp4`` (OpenCV).

Coordinates are image pixels, x right, y down, as in :mod:`posetok.viz.skeleton`. Frames are rendered on a
matplotlib :class:`~matplotlib.figure.Figure` with the Agg canvas (blitted: the static parts are drawn once),
and the view can follow a person who crosses the image (:func:`_follow_view`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from PIL import Image

from ..errors import PosetokError
from ..io import atomic_path
from ..skeletons import Skeleton
from ._common import SIDE_COLORS, _fit_aspect, _joint_sides, _limb_side

__all__ = ["save_sequence_animation"]

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
