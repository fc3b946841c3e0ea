"""The lifting codec: 2D keypoints in pixels <-> the lifter's inputs, and its outputs -> root-relative 3D in metres.

Encoding (pixels -> network input ``(T, K, 3)``: ``x, y, conf`` normalised), two rules, chosen per clip:

* ``"image"`` (the file says its image size ``(w, h)``): VideoPose3D's screen normalisation
  ``xy / w * 2 - [1, h / w]``, so ``x`` spans ``[-1, 1]`` over the image width, the aspect ratio is kept and the
  image centre is 0 (:func:`posetok.data.h36m_cameras.normalize_screen`).
* ``"box"`` (no image size: a COCO results file, a track without ``image_size``): each frame is centred on the
  box of its detected joints, and the clip is scaled so that the median over its frames of the box's longer side
  becomes :data:`BOX_EXTENT` units, about what a standing person measures in the image rule (1.7 m at 5 m with
  Human3.6M's 1145 px focal length and 1000 px wide images). One scale per clip keeps motion in depth visible.

A joint is missing when its confidence is 0 or below, or a coordinate is not finite; a frame whose ``mask`` is
False has every joint missing. Missing joints enter as ``(0, 0, 0)``, and the networks replace them with a learned
mask token (:mod:`posetok.models.lifter`), so a temporal lifter fills in a lost frame from its neighbours.

Decoding: the network's output is already root-relative 3D in metres in the camera frame (``x`` right, ``y`` down,
``z`` forward; :class:`~posetok.models.lifter.LifterModel`). The flip test (:meth:`LiftingCodec.predict`) runs
the network on the mirrored input too (``x`` negated, left and right joints swapped) and averages the mirrored-back
output with the plain one, as VideoPose3D and MotionBERT do.

Clips longer than the network's window are cut into windows of ``frames`` frames (the last one ends on the clip's
last frame); a clip shorter than a window is padded by repeating its last frame (:func:`windows`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ..data.h36m_cameras import denormalize_screen, normalize_screen
from ..errors import PosetokError
from ..models.lifter import LifterModel
from ..skeletons import Skeleton

NORMALIZATIONS = ("image", "box")
#: Size of the person's box (longer side, median over the clip) in the ``"box"`` rule, in normalised units.
BOX_EXTENT = 0.75


def split_2d(poses: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(T, K, C)`` 2D (``C = 2``: no confidence, every finite joint counts) -> ``xy`` ``(T, K, 2)`` float64 and
    ``visible`` ``(T, K)`` bool; missing joints (confidence <= 0, a non-finite value, a masked-out frame) get
    ``xy = 0``."""
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] not in (2, 3):
        raise ValueError(f"expected 2D keypoints (T, K, 2 or 3), got shape {p.shape}")
    xy = p[..., :2].copy()
    visible = np.isfinite(xy).all(-1)
    if p.shape[-1] == 3:
        with np.errstate(invalid="ignore"):
            visible &= p[..., 2] > 0
    if mask is not None:
        visible &= np.asarray(mask, dtype=bool)[:, None]
    xy[~visible] = 0.0
    return xy, visible


def _fill_frames(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per-frame rows where ``ok`` is False take the value of the nearest earlier (else later) frame that has one."""
    if ok.all() or not ok.any():
        return values
    idx = np.where(ok, np.arange(len(ok)), -1)
    idx = np.maximum.accumulate(idx)
    first = int(np.flatnonzero(ok)[0])
    idx[idx < 0] = first
    return values[idx]


def normalize_2d(poses: np.ndarray, mode: str, image_size: tuple[float, float] | None = None,
                 mask: np.ndarray | None = None, per_frame: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Pixels -> the network's input (module docstring).

    Args:
        poses: ``(T, K, 2 or 3)`` pixels ``x, y`` (and a confidence) of one clip (or ``T`` separate people when
            they are normalised one by one: call once per person).
        mode: ``"image"`` (needs ``image_size`` ``(w, h)``) or ``"box"``.
        mask: ``(T,)`` bool, False where a frame holds no pose.
        per_frame: ``"box"``: scale every frame by its own box (the ``T`` frames are separate people).

    Returns:
        ``inputs`` ``(T, K, 3)`` float32 ``x, y, conf`` (missing joints ``0, 0, 0``; confidence 1 when the input has
        none) and the parameters that undo it (``mode``, ``image_size``, ``centre`` ``(T, 2)`` and ``scale``
        ``(T,)`` pixels per unit).
    """
    if mode not in NORMALIZATIONS:
        raise PosetokError(f"normalization: expected one of {', '.join(NORMALIZATIONS)}, got {mode!r}")
    p = np.asarray(poses, dtype=np.float64)
    xy, visible = split_2d(p, mask)
    conf = (np.clip(np.nan_to_num(p[..., 2]), 0.0, None) if p.shape[-1] == 3 else np.ones(p.shape[:2])) * visible
    t = len(xy)
    if mode == "image":
        if image_size is None:
            raise PosetokError("normalization 'image': the image size (w, h) is not known; use 'box'")
        w, h = float(image_size[0]), float(image_size[1])
        normed = normalize_screen(xy, w, h)
        centre, scale = np.tile([w / 2.0, h / 2.0], (t, 1)), np.full(t, w / 2.0)
    else:
        big = np.where(visible[..., None], xy, np.nan)
        ok = visible.sum(1) >= 2
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames without joints: all-NaN slices
            lo, hi = np.nanmin(big, axis=1), np.nanmax(big, axis=1)
        centre = np.where(ok[:, None], (lo + hi) / 2.0, 0.0)
        centre = _fill_frames(centre, ok)
        sides = np.where(ok, (hi - lo).max(axis=1), 0.0)
        if per_frame:
            scale = np.where(sides > 0, sides / BOX_EXTENT, 1.0)
        else:
            side = float(np.median(sides[ok])) if ok.any() else 0.0
            scale = np.full(t, side / BOX_EXTENT if side > 0 else 1.0)
        normed = (xy - centre[:, None]) / scale[:, None, None]
    normed[~visible] = 0.0
    inputs = np.concatenate([normed, conf[..., None]], axis=-1).astype(np.float32)
    return inputs, {"mode": mode, "image_size": None if image_size is None else [float(v) for v in image_size],
                    "centre": centre.astype(np.float64), "scale": scale.astype(np.float64)}


def fill_missing_frames(inputs: np.ndarray) -> np.ndarray:
    """Encoded ``(T, K, 3)`` inputs with every frame that holds no detected joint filled in: each joint linearly
    interpolated between the nearest frames before and after that hold a pose (joints missing in either stay
    missing), the first or last such frame held past the ends. A lifter trained on detector output has seen a few
    missing joints, not runs of empty frames; VideoPose3D interpolates lost detections the same way."""
    present = (inputs[..., 2] > 0).any(-1)
    if present.all() or not present.any():
        return inputs
    idx = np.flatnonzero(present)
    t = np.arange(len(inputs))
    prev = idx[np.clip(np.searchsorted(idx, t, side="right") - 1, 0, len(idx) - 1)]
    nxt = idx[np.clip(np.searchsorted(idx, t, side="left"), 0, len(idx) - 1)]
    w = np.where(nxt > prev, (t - prev) / np.maximum(nxt - prev, 1), 0.0)[:, None, None]
    a, b = inputs[prev], inputs[nxt]
    filled = a * (1.0 - w) + b * w
    filled[~((a[..., 2] > 0) & (b[..., 2] > 0))] = 0.0
    out = inputs.copy()
    out[~present] = filled[~present]
    return out


def denormalize_2d(normed: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """The inverse of :func:`normalize_2d` on ``(T, K, >=2)`` coordinates: pixels (extra channels pass through)."""
    out = np.array(normed, dtype=np.float64)
    if params["mode"] == "image":
        w, h = params["image_size"]
        return denormalize_screen(out, w, h)
    out[..., :2] = out[..., :2] * np.asarray(params["scale"])[:, None, None] + np.asarray(params["centre"])[:, None]
    return out


def flip_poses(x: torch.Tensor, flip_index: torch.Tensor) -> torch.Tensor:
    """Mirror ``(..., K, C)`` poses: channel 0 (``x``) negated, left and right joints swapped."""
    y = x.index_select(-2, flip_index)
    return torch.cat([-y[..., :1], y[..., 1:]], dim=-1)


def windows(length: int, frames: int) -> np.ndarray:
    """Start frames of the windows that cover a clip of ``length`` frames: ``0, frames, 2 frames, ...`` and a
    last one ending on the last frame (one window at 0 when the clip is shorter than a window)."""
    if length <= frames:
        return np.zeros(1, np.int64)
    starts = list(range(0, length - frames + 1, frames))
    if starts[-1] + frames < length:
        starts.append(length - frames)
    return np.asarray(starts, np.int64)


def window_frames(length: int, frames: int) -> np.ndarray:
    """``(W, frames)`` frame indices of :func:`windows`, the last frame repeated past the clip's end."""
    idx = windows(length, frames)[:, None] + np.arange(frames)
    return np.minimum(idx, length - 1)


def stitch(outputs: np.ndarray, length: int) -> np.ndarray:
    """``(W, frames, ...)`` window outputs of :func:`window_frames` -> ``(length, ...)``: each frame from the
    first window that holds it."""
    frames = outputs.shape[1]
    starts = windows(length, frames)
    out = np.empty((length,) + outputs.shape[2:], outputs.dtype)
    done = 0
    for w, s in enumerate(starts):
        end = min(s + frames, length)
        if end > done:
            out[done:end] = outputs[w, done - s:end - s]
            done = end
    return out


def best_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA, then Apple MPS, then the CPU; any other name as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class LiftingCodec:
    """A trained lifter ready to use: 2D pixels in, root-relative 3D metres out (``posetok.load`` of a lifter).

    Args:
        model: a :class:`~posetok.models.lifter.LifterModel` (put in eval mode here).
        mapping: ``"2d_3d"``, ``"2d_2d"`` or ``"3d_3d"`` (what the network was trained for).
        flip_test: average with the mirrored input's prediction by default.
        batch_size: windows per forward pass.
        device: ``"auto"`` (CUDA, MPS, CPU), ``"cpu"``, ``"cuda"``...; metrics stay in float64 numpy on the CPU.
        box_trained: whether training normalised some windows by the person box (:func:`normalize_2d`).
    """

    def __init__(self, model: LifterModel, mapping: str = "2d_3d", flip_test: bool = True, batch_size: int = 64,
                 device: str = "auto", box_trained: bool = True) -> None:
        self.device = best_device(device)
        self.model = model.eval().to(self.device)
        self.mapping = mapping
        self.flip_test = bool(flip_test)
        self.batch_size = int(batch_size)
        self.box_trained = bool(box_trained)
        self.info: dict[str, Any] = {}
        self._flip_in = torch.from_numpy(self.skeleton_in.flip_index).to(self.device)
        self._flip_out = torch.from_numpy(self.skeleton_out.flip_index).to(self.device)

    @property
    def skeleton_in(self) -> Skeleton:
        return self.model.skeleton_in

    @property
    def skeleton_out(self) -> Skeleton:
        return self.model.skeleton_out

    @property
    def frames(self) -> int:
        """The window length ``T`` the network was trained on."""
        return self.model.dims.frames

    def encode(self, poses: np.ndarray, image_size: tuple[float, float] | None = None,
               mask: np.ndarray | None = None, normalization: str | None = None, per_frame: bool = False
               ) -> tuple[np.ndarray, dict[str, Any]]:
        """:func:`normalize_2d` with the default rule: ``"image"`` when ``image_size`` is known, else ``"box"``."""
        mode = normalization or ("image" if image_size is not None else "box")
        return normalize_2d(poses, mode, image_size, mask, per_frame)

    @torch.no_grad()
    def predict(self, inputs: np.ndarray, visible: np.ndarray | None = None, flip: bool | None = None
                ) -> np.ndarray:
        """The network on ``(N, T, K_in, C_in)`` encoded windows (``visible`` ``(N, T, K_in)`` for inputs without
        a confidence), in batches, averaged with the mirrored prediction when ``flip`` (default: ``flip_test``).
        Returns ``(N, T, K_out, C_out)`` float32."""
        flip = self.flip_test if flip is None else flip
        outs = []
        for i in range(0, len(inputs), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(inputs[i:i + self.batch_size], np.float32)).to(self.device)
            v = None if visible is None else torch.from_numpy(visible[i:i + self.batch_size]).to(self.device)
            y = self.model(x, v)
            if flip:
                fv = None if v is None else v.index_select(-1, self._flip_in)
                y = (y + flip_poses(self.model(flip_poses(x, self._flip_in), fv), self._flip_out)) / 2
            outs.append(y.float().cpu().numpy())
        if not outs:
            k, c = self.skeleton_out.num_joints, self.model.dims.out_channels
            return np.zeros((0, inputs.shape[1] if inputs.ndim > 1 else self.frames, k, c), np.float32)
        return np.concatenate(outs)

    def predict_clip(self, inputs: np.ndarray, visible: np.ndarray | None = None, flip: bool | None = None
                     ) -> np.ndarray:
        """:meth:`predict` on one encoded clip ``(L, K_in, C_in)`` of any length, through :func:`window_frames`;
        returns ``(L, K_out, C_out)``."""
        idx = window_frames(len(inputs), self.frames)
        out = self.predict(inputs[idx], None if visible is None else visible[idx], flip)
        return stitch(out, len(inputs))

    def lift(self, poses: np.ndarray, image_size: tuple[float, float] | None = None, mask: np.ndarray | None = None,
             normalization: str | None = None, flip: bool | None = None, fill_gaps: bool = True) -> dict[str, Any]:
        """Lift one clip (or one person: ``T = 1``) of 2D keypoints.

        Args:
            poses: ``(T, K_in, 2 or 3)`` pixels ``x, y`` (and a confidence; missing joints: confidence 0 or NaN).
            image_size: ``(w, h)`` of the images, for the ``"image"`` rule; None: the ``"box"`` rule.
            mask: ``(T,)`` bool, False where a frame holds no pose.
            normalization: force ``"image"`` or ``"box"``.
            fill_gaps: frames without any detected joint are interpolated from their neighbours first
                (:func:`fill_missing_frames`); their 3D is then an estimate (the caller's ``mask`` says which).

        Returns:
            ``poses3d`` ``(T, K_out, 3)`` float32, root-relative metres in the camera frame (``x`` right, ``y``
            down, ``z`` forward), and ``normalization`` (the rule used) with its ``params``.
        """
        if self.mapping != "2d_3d":
            raise PosetokError(f"this checkpoint reconstructs ({self.mapping}); lifting needs a 2d_3d lifter")
        inputs, params = self.encode(poses, image_size, mask, normalization)
        if fill_gaps:
            inputs = fill_missing_frames(inputs)
        return {"poses3d": self.predict_clip(inputs, flip=flip), "normalization": params["mode"], "params": params}
