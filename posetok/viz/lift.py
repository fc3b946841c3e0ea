"""Pictures of 2D-to-3D lifting: the 2D input beside the 3D output (and the ground truth), as an animation with a
rotating view (``.gif`` or ``.mp4``) or a PNG strip of frames.

Frames: the 2D is in image pixels (``x`` right, ``y`` down), drawn upright. The 3D is root-relative in the camera
frame (``x`` right, ``y`` down, ``z`` forward, metres) and drawn with the camera's ``y`` up: axes ``x``, ``z``
(depth) and ``-y``. Colours are the body sides of :data:`~posetok.viz._common.SIDE_COLORS`; the ground truth is
drawn grey under the prediction.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import mpl_toolkits.mplot3d  # noqa: F401 - registers the 3d projection
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Line3DCollection
from PIL import Image

from ..errors import PosetokError
from ..io import atomic_path
from ..skeletons import Skeleton
from ._common import SIDE_COLORS, _joint_sides, _limb_side

__all__ = ["save_lift_animation", "save_lift_frames"]

_GHOST = "#adb5bd"
_DPI = 80


def _check(poses: np.ndarray, skeleton: Skeleton, name: str, dims: int) -> np.ndarray:
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim != 3 or p.shape[1] != skeleton.num_joints or p.shape[2] < dims or len(p) == 0:
        raise ValueError(f"{name} must have shape (T, {skeleton.num_joints}, >={dims}) for skeleton "
                         f"'{skeleton.name}', got {p.shape}")
    return p


def _xy_hidden(poses_2d: np.ndarray) -> np.ndarray:
    """``(T, K, 2)`` pixels with NaN where a joint is missing (confidence <= 0 or not finite)."""
    xy = poses_2d[..., :2].copy()
    hidden = ~np.isfinite(xy).all(-1)
    if poses_2d.shape[-1] >= 3:
        with np.errstate(invalid="ignore"):
            hidden |= ~(poses_2d[..., 2] > 0)
    xy[hidden] = np.nan
    return xy


def _centred_2d(xy: np.ndarray) -> tuple[np.ndarray, float]:
    """Each frame centred on its joints' box centre (a runner stays in view); the half-size of the panel."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = (np.nanmin(xy, axis=1) + np.nanmax(xy, axis=1)) / 2
        out = xy - np.nan_to_num(centre)[:, None]
        half = np.nanmax(np.abs(out)) if np.isfinite(out).any() else 1.0
    return out, float(half) * 1.1 + 1e-6


class _Scene:
    """One figure: the 2D panel and a 3D panel, with artists updated frame by frame."""

    def __init__(self, skeleton_2d: Skeleton, skeleton_3d: Skeleton, half_2d: float, half_3d: float,
                 size: tuple[int, int] = (560, 300), title: str | None = None, has_gt: bool = False) -> None:
        w, h = size
        self.fig = Figure(figsize=(w / _DPI, h / _DPI), dpi=_DPI, facecolor="white")
        self.canvas = FigureCanvasAgg(self.fig)
        if title:
            self.fig.suptitle(title, fontsize=9, y=0.99)
        self.ax2 = self.fig.add_axes((0.02, 0.05, 0.42, 0.82))
        self.ax2.set_xlim(-half_2d, half_2d)
        self.ax2.set_ylim(half_2d, -half_2d)
        self.ax2.set_aspect("equal")
        self.ax2.set_xticks([])
        self.ax2.set_yticks([])
        self.ax2.set_title("2D input", fontsize=8)
        self.ax3 = self.fig.add_axes((0.48, 0.02, 0.5, 0.8), projection="3d")
        for set_lim in (self.ax3.set_xlim, self.ax3.set_ylim, self.ax3.set_zlim):
            set_lim(-half_3d, half_3d)
        self.ax3.set_box_aspect((1, 1, 1))
        self.ax3.set_xticklabels([])
        self.ax3.set_yticklabels([])
        self.ax3.set_zticklabels([])
        self.ax3.set_title("3D output (m)" + (", grey: truth" if has_gt else ""), fontsize=8)
        s2, s3 = _joint_sides(skeleton_2d), _joint_sides(skeleton_3d)
        self.limbs2 = np.asarray(skeleton_2d.limbs).reshape(-1, 2)
        self.limbs3 = np.asarray(skeleton_3d.limbs).reshape(-1, 2)
        self.lc2 = LineCollection([], colors=[SIDE_COLORS[_limb_side(s2, a, b)] for a, b in self.limbs2],
                                  linewidths=2)
        self.ax2.add_collection(self.lc2)
        # matplotlib's 3D collections need segments when added; the first frame replaces these
        blank = np.zeros((len(self.limbs3), 2, 3))
        self.gt3 = Line3DCollection(blank, colors=_GHOST, linewidths=3) if has_gt else None
        if self.gt3 is not None:
            self.ax3.add_collection3d(self.gt3)
        self.lc3 = Line3DCollection(blank, colors=[SIDE_COLORS[_limb_side(s3, a, b)] for a, b in self.limbs3],
                                    linewidths=2)
        self.ax3.add_collection3d(self.lc3)
        self.label = self.fig.text(0.01, 0.01, "", fontsize=8, color="#495057")

    @staticmethod
    def _up(p: np.ndarray) -> np.ndarray:
        return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)  # camera (x, y down, z) -> (x, depth, up)

    def render(self, xy: np.ndarray, p3: np.ndarray, gt: np.ndarray | None, azim: float, label: str) -> np.ndarray:
        self.lc2.set_segments([s for s in xy[self.limbs2] if np.isfinite(s).all()])
        self.lc3.set_segments(list(self._up(p3)[self.limbs3]))
        if self.gt3 is not None and gt is not None:
            self.gt3.set_segments(list(self._up(gt)[self.limbs3]))
        self.ax3.view_init(elev=12, azim=azim)
        self.label.set_text(label)
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()


def save_lift_animation(path: str | os.PathLike, poses_2d: np.ndarray, poses_3d: np.ndarray,
                        skeleton_2d: Skeleton, skeleton_3d: Skeleton, gt_3d: np.ndarray | None = None,
                        fps: float = 25.0, max_frames: int | None = 150, title: str | None = None,
                        rotate: bool = True) -> Path:
    """Animate a lifted clip: the 2D input (each frame centred on the person) beside the 3D output, the 3D view
    turning once around the person over the clip when ``rotate``.

    Args:
        path: ``.gif`` (Pillow) or ``.mp4`` (OpenCV ``mp4v``); written atomically.
        poses_2d: ``(T, K2, 2 or 3)`` pixels (missing joints: confidence <= 0 or NaN).
        poses_3d: ``(T, K3, 3)`` root-relative camera-frame metres; ``gt_3d`` the same, drawn grey.
        max_frames: the most frames written, evenly spread (playback slowed in proportion); None: all.
    """
    p = Path(path)
    if p.suffix.lower() not in (".gif", ".mp4"):
        raise PosetokError(f"{p}: cannot write an animation with suffix '{p.suffix}'; use .gif or .mp4")
    p2 = _check(poses_2d, skeleton_2d, "poses_2d", 2)
    p3 = _check(poses_3d, skeleton_3d, "poses_3d", 3)[..., :3]
    gt = None if gt_3d is None else _check(gt_3d, skeleton_3d, "gt_3d", 3)[..., :3]
    if len(p2) != len(p3) or (gt is not None and len(gt) != len(p3)):
        raise ValueError(f"poses_2d, poses_3d (and gt_3d) must have the same frames: {len(p2)} and {len(p3)}")
    xy, half2 = _centred_2d(_xy_hidden(p2))
    pts = p3 if gt is None else np.concatenate([p3, gt])
    half3 = float(np.nanmax(np.abs(pts))) * 1.05 + 1e-3
    t_all = len(p3)
    n = t_all if max_frames is None else max(1, min(max_frames, t_all))
    frames = np.round(np.linspace(0, t_all - 1, n)).astype(int)
    scene = _Scene(skeleton_2d, skeleton_3d, half2, half3, title=title, has_gt=gt is not None)
    play_fps = max(fps * n / t_all, 1.0)
    images = []
    for i, t in enumerate(frames):
        azim = -90 + (360.0 * i / n if rotate else 0.0)
        images.append(scene.render(xy[t], p3[t], None if gt is None else gt[t], azim, f"frame {t + 1} / {t_all}"))
    with atomic_path(p) as tmp:
        if p.suffix.lower() == ".gif":
            palette = Image.fromarray(images[0]).quantize(64, method=Image.Quantize.MEDIANCUT)
            frames_q = [Image.fromarray(im).quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
            frames_q[0].save(tmp, format="GIF", save_all=True, append_images=frames_q[1:],
                             duration=round(1000 / play_fps), loop=0)
        else:
            h, w = images[0].shape[:2]
            video = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), play_fps, (w, h))
            if not video.isOpened():
                raise OSError(f"{p}: OpenCV cannot open an MPEG-4 (mp4v) video writer")
            try:
                for im in images:
                    video.write(cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
            finally:
                video.release()
    return p


def save_lift_frames(path: str | os.PathLike, poses_2d: np.ndarray, poses_3d: np.ndarray, skeleton_2d: Skeleton,
                     skeleton_3d: Skeleton, gt_3d: np.ndarray | None = None, num: int = 4,
                     title: str | None = None) -> Path:
    """A PNG of ``num`` frames spread over the clip, one row each: the 2D input and the 3D output (front view)."""
    p = Path(path)
    p2 = _check(poses_2d, skeleton_2d, "poses_2d", 2)
    p3 = _check(poses_3d, skeleton_3d, "poses_3d", 3)[..., :3]
    gt = None if gt_3d is None else _check(gt_3d, skeleton_3d, "gt_3d", 3)[..., :3]
    xy, half2 = _centred_2d(_xy_hidden(p2))
    pts = p3 if gt is None else np.concatenate([p3, gt])
    half3 = float(np.nanmax(np.abs(pts))) * 1.05 + 1e-3
    frames = np.unique(np.round(np.linspace(0, len(p3) - 1, max(1, num))).astype(int))
    scene = _Scene(skeleton_2d, skeleton_3d, half2, half3, title=title, has_gt=gt is not None)
    rows = [scene.render(xy[t], p3[t], None if gt is None else gt[t], -60.0, f"frame {t + 1} / {len(p3)}")
            for t in frames]
    with atomic_path(p) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")
    return p
