"""Top-down image crops for pose estimators: the crop warp, MMPose-style augmentation, the dataset.

Conventions (the same as :mod:`posetok.data.transforms`):

- Coordinates are pixel indices: pixel ``i`` covers ``[i - 0.5, i + 0.5]``; a horizontal flip of an image
  of width ``W`` maps ``x -> W - 1 - x``.
- A crop is given by its centre ``(cx, cy)`` and size ``(w, h)`` in image pixels (computed by the caller,
  normally with :func:`posetok.codecs.crop.box_to_center_scale`, which fixes the aspect ratio and pads by
  1.25) and a rotation in degrees, positive = counter-clockwise on screen (OpenCV's convention).
- The warp (:func:`warp_matrix`) takes image pixels to input-crop pixels, either the classic way (the
  centre lands on ``(W/2, H/2)`` of the input, scale ``W / w``: MMPose ``get_warp_matrix``) or the unbiased
  way (UDP: the centre lands on ``((W-1)/2, (H-1)/2)``, scale ``(W-1) / w``: MMPose ``get_udp_warp_matrix``).
  The codec that turns input-crop keypoints into targets must use the same choice.

Keypoints are ``(K, 3)`` ``x, y, v`` with COCO visibility; joints with ``v = 0`` keep ``x = y = 0``.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import PosetokError
from ..skeletons import Skeleton
from .images import read_image
from .occlusion import grid_dropout

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0-255 scale (MMPose's data preprocessor)
IMAGENET_STD = (58.395, 57.12, 57.375)


# ----------------------------------------------------------------------------------------------------------
# The crop warp
# ----------------------------------------------------------------------------------------------------------


def warp_matrix(center: Sequence[float] | np.ndarray, size: Sequence[float] | np.ndarray, rot_deg: float,
                output_size: tuple[int, int], udp: bool = False) -> np.ndarray:
    """The ``(2, 3)`` float64 affine taking image pixels to input-crop pixels.

    The crop is the rectangle of ``size`` (w, h) image pixels centred on ``center`` and turned by
    ``rot_deg``; it fills an input of ``output_size`` (W, H) pixels. A point ``p`` maps to
    ``S R (p - center) + t`` with ``R`` OpenCV's rotation (positive = counter-clockwise on screen, as
    ``cv2.getRotationMatrix2D``) and

    - classic (``udp=False``): ``S = diag(W / w, H / h)``, ``t = (W / 2, H / 2)``. When ``size`` has the
      input's aspect ratio this is exactly MMPose's three-point ``get_warp_matrix`` (which takes the scale
      from the width only).
    - UDP (``udp=True``): ``S = diag((W - 1) / w, (H - 1) / h)``, ``t = ((W - 1) / 2, (H - 1) / 2)``, as
      MMPose's ``get_udp_warp_matrix``, except that MMPose's UDP matrix turns the other way (clockwise for a
      positive angle, unlike its classic matrix); here both turn the same way. Random rotations are
      symmetric, so training is unaffected.

    The inverse (crop -> image) is ``cv2.invertAffineTransform`` of the result.
    """
    cx, cy = (float(v) for v in np.asarray(center, dtype=np.float64).reshape(2))
    w, h = (float(v) for v in np.asarray(size, dtype=np.float64).reshape(2))
    if not (w > 0 and h > 0):
        raise ValueError(f"crop size must be positive, got {(w, h)}")
    out_w, out_h = (float(v) for v in output_size)
    if udp:
        sx, sy = (out_w - 1.0) / w, (out_h - 1.0) / h
        tx, ty = 0.5 * (out_w - 1.0), 0.5 * (out_h - 1.0)
    else:
        sx, sy = out_w / w, out_h / h
        tx, ty = 0.5 * out_w, 0.5 * out_h
    a = math.radians(float(rot_deg))
    c, s = math.cos(a), math.sin(a)
    lin = np.array([[sx * c, sx * s], [-sy * s, sy * c]])
    mat = np.empty((2, 3), dtype=np.float64)
    mat[:, :2] = lin
    mat[:, 2] = np.array([tx, ty]) - lin @ np.array([cx, cy])
    return mat


def flip_matrix(image_width: float) -> np.ndarray:
    """The ``(2, 3)`` affine of a horizontal image flip, ``x -> W - 1 - x``."""
    return np.array([[-1.0, 0.0, float(image_width) - 1.0], [0.0, 1.0, 0.0]])


def compose(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` affine applying ``first`` and then ``then``."""
    return then[:, :2] @ first + np.concatenate([np.zeros((2, 2)), then[:, 2:]], axis=1)


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Warp ``image`` (H, W, C) uint8 with ``matrix`` (image -> crop) to ``(h, w, C)``, ``output_size = (w, h)``.

    Bilinear, with black outside the image (MMPose's ``TopdownAffine``).
    """
    w, h = (int(v) for v in output_size)
    return cv2.warpAffine(image, np.asarray(matrix, dtype=np.float64), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def transform_keypoints(keypoints: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply an affine ``matrix`` ((2, 3), or (N, 2, 3) for (N, K, 3) keypoints) to ``x, y`` of keypoints.

    ``keypoints`` are ``(K, 3)`` or ``(N, K, 3)``; visibility is kept, joints with ``v = 0`` stay at
    ``(0, 0)``. Returns a new float32 array of the same shape.
    """
    kp = np.asarray(keypoints)
    if kp.ndim not in (2, 3) or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must have shape (K, 3) or (N, K, 3), got {kp.shape}")
    mat = np.asarray(matrix, dtype=np.float64)
    xy = kp[..., :2].astype(np.float64)
    if mat.shape == (2, 3):
        new = xy @ mat[:, :2].T + mat[:, 2]
    elif kp.ndim == 3 and mat.shape == (kp.shape[0], 2, 3):
        new = np.einsum("nij,nkj->nki", mat[:, :, :2], xy) + mat[:, None, :, 2]
    else:
        raise ValueError(f"matrix must have shape (2, 3) or ({kp.shape[0]}, 2, 3), got {mat.shape}")
    out = np.empty(kp.shape, dtype=np.float32)
    out[..., :2] = new
    out[..., 2] = kp[..., 2]
    out[kp[..., 2] == 0] = 0.0
    return out


def flip_keypoints(keypoints: np.ndarray, image_width: float, flip_index: Sequence[int] | np.ndarray
                   ) -> np.ndarray:
    """Mirror ``(K, 3)`` or ``(N, K, 3)`` keypoints in an image of width ``W`` (``x -> W - 1 - x``) and swap
    left and right joints: joint ``i`` of the result is joint ``flip_index[i]`` of the input."""
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    kp = kp[..., np.asarray(flip_index), :]
    kp[..., 0] = np.float32(image_width - 1.0) - kp[..., 0]
    kp[kp[..., 2] == 0] = 0.0
    return kp


# ----------------------------------------------------------------------------------------------------------
# Augmentation
# ----------------------------------------------------------------------------------------------------------


def truncated_normal(rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
    """Standard normal samples truncated to ``[-1, 1]`` (rejection; scipy's ``truncnorm(-1, 1)``)."""
    x = rng.standard_normal(size)
    bad = np.abs(x) > 1.0
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > 1.0
    return x


@dataclass
class CropParams:
    """One sample's crop after augmentation, all in the (flipped, when ``flipped``) image frame.

    ``keypoints`` ``(K, 3)`` float32 image pixels; ``center`` and ``size`` ``(2,)`` float64 pixels;
    ``rotation`` degrees (counter-clockwise on screen).
    """

    keypoints: np.ndarray
    center: np.ndarray
    size: np.ndarray
    rotation: float = 0.0
    flipped: bool = False


class TopdownAugment:
    """MMPose 1.x top-down augmentation: ``RandomFlip``, ``RandomHalfBody``, ``RandomBBoxTransform``, then a
    colour jitter of the crop. The defaults are MMPose's (and PCT's colour jitter).

    Rules, in order (``t`` is a standard normal truncated to ``[-1, 1]``, drawn afresh for each use):

    1. flip with probability ``flip_prob``: keypoints ``x -> W - 1 - x`` with left/right swapped by
       ``flip_index``, and the crop centre likewise.
    2. half-body, tried with probability ``half_body_prob`` on a pose with at least ``half_body_min_total``
       labelled joints (v > 0): the upper body (``upper_body`` joints) is preferred with probability
       ``upper_prob``; a half with fewer labelled joints than its minimum (``half_body_min_upper``,
       ``half_body_min_lower``) gives way to the other, and if both fall short nothing changes. The new centre
       is the mean of the chosen labelled joints, the new size their extent times ``half_body_padding`` grown
       to ``aspect_ratio`` (w / h) as MMPose's ``TopdownAffine`` does (at least 1 px).
    3. shift with probability ``shift_prob``: ``centre += t * shift_factor * size`` per axis.
    4. scale with probability ``scale_prob``: ``size *= mu + t * sigma`` with ``mu, sigma`` the middle and
       half-width of ``scale_range``, so the factor stays inside ``scale_range``.
    5. rotation with probability ``rot_prob``: ``t * rot_factor`` degrees, so ``|rotation| <= rot_factor``.
    6. (:meth:`color`, on the warped crop) with probability ``color_prob``, torchvision-style ``ColorJitter``
       in random order: brightness, contrast, saturation factors uniform in ``[1 - b, 1 + b]`` (contrast
       blends with the crop's mean grey, saturation with each pixel's grey), hue shifted by a fraction of a
       turn uniform in ``[-hue, hue]``. Done on the crop, not the whole image, because it is cheaper;
       contrast therefore uses the crop's mean (black padding included).
    7. (:meth:`grid_dropout`, on the crop after the colour) with probability ``grid_dropout_prob``, the grid
       dropout of the official PCT recipe (albumentations' ``GridDropout`` with ``random_offset``): a unit size
       ``u`` uniform in ``grid_unit``, square holes of ``int(u * grid_ratio)`` pixels set to black at every ``u``
       pixels in both directions, the grid shifted by a random offset in ``[0, u - hole]``. Off by default
       (MMPose's recipes have none).

    Args:
        flip_index: ``(K,)`` permutation of a horizontal flip (:attr:`Skeleton.flip_index`).
        upper_body: joints of the upper half; the rest are the lower half.
        aspect_ratio: width / height of the model input (the half-body box is grown to it).
        Others: as in the rules above.
    """

    def __init__(
        self,
        flip_index: Sequence[int] | np.ndarray,
        upper_body: Sequence[int],
        aspect_ratio: float,
        *,
        flip_prob: float = 0.5,
        half_body_prob: float = 0.3,
        half_body_min_total: int = 9,
        half_body_min_upper: int = 2,
        half_body_min_lower: int = 3,
        half_body_padding: float = 1.5,
        upper_prob: float = 0.7,
        shift_factor: float = 0.16,
        shift_prob: float = 0.3,
        scale_range: tuple[float, float] = (0.5, 1.5),
        scale_prob: float = 1.0,
        rot_factor: float = 80.0,
        rot_prob: float = 0.6,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.2,
        color_prob: float = 1.0,
        grid_dropout_prob: float = 0.0,
        grid_unit: tuple[int, int] = (10, 40),
        grid_ratio: float = 0.5,
    ) -> None:
        self.flip_index = np.asarray(flip_index, dtype=np.int64)
        k = len(self.flip_index)
        if sorted(self.flip_index.tolist()) != list(range(k)):
            raise ValueError("flip_index must be a permutation of 0..K-1")
        upper = sorted(set(int(i) for i in upper_body))
        if any(not 0 <= i < k for i in upper):
            raise ValueError(f"upper_body indices must lie in 0..{k - 1}")
        self.upper_body = np.asarray(upper, dtype=np.int64)
        self.lower_body = np.asarray([i for i in range(k) if i not in set(upper)], dtype=np.int64)
        if not aspect_ratio > 0:
            raise ValueError(f"aspect_ratio must be > 0, got {aspect_ratio}")
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        self.aspect_ratio = float(aspect_ratio)
        self.flip_prob, self.half_body_prob, self.upper_prob = flip_prob, half_body_prob, upper_prob
        self.half_body_min_total, self.half_body_padding = half_body_min_total, half_body_padding
        self.half_body_min_upper, self.half_body_min_lower = half_body_min_upper, half_body_min_lower
        self.shift_factor, self.shift_prob = shift_factor, shift_prob
        self.scale_range, self.scale_prob = (float(scale_range[0]), float(scale_range[1])), scale_prob
        self.rot_factor, self.rot_prob = rot_factor, rot_prob
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.color_prob = color_prob
        if not (0 < grid_unit[0] <= grid_unit[1] and 0 < grid_ratio < 1):
            raise ValueError(f"grid_unit must be (low, high) with 0 < low <= high and grid_ratio in (0, 1), got "
                             f"{grid_unit}, {grid_ratio}")
        self.grid_dropout_prob = grid_dropout_prob
        self.grid_unit, self.grid_ratio = (int(grid_unit[0]), int(grid_unit[1])), float(grid_ratio)

    @classmethod
    def for_skeleton(cls, skeleton: Skeleton, aspect_ratio: float, **kwargs: Any) -> TopdownAugment:
        """The augmentation for a keypoint layout (its flip pairs and upper body)."""
        return cls(skeleton.flip_index, skeleton.upper_body, aspect_ratio, **kwargs)

    def _half_body(self, kp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        labelled = kp[:, 2] > 0
        if labelled.sum() < self.half_body_min_total or rng.random() >= self.half_body_prob:
            return None
        upper = self.upper_body[labelled[self.upper_body]]
        lower = self.lower_body[labelled[self.lower_body]]
        prefer_upper = rng.random() < self.upper_prob
        upper_ok, lower_ok = len(upper) >= self.half_body_min_upper, len(lower) >= self.half_body_min_lower
        if not (upper_ok or lower_ok):
            return None
        chosen = upper if (upper_ok and (prefer_upper or not lower_ok)) else lower
        pts = kp[chosen, :2].astype(np.float64)
        w, h = (pts.max(axis=0) - pts.min(axis=0)) * self.half_body_padding
        if w > self.aspect_ratio * h:
            h = w / self.aspect_ratio
        else:
            w = h * self.aspect_ratio
        if h < 1.0:
            w, h = self.aspect_ratio, 1.0
        return pts.mean(axis=0), np.array([w, h])

    def __call__(self, keypoints: np.ndarray, center: np.ndarray, size: np.ndarray, image_width: int,
                 rng: np.random.Generator) -> CropParams:
        """Draw one sample's flip, half-body box, shift, scale and rotation (rules 1-5)."""
        kp = np.asarray(keypoints, dtype=np.float32)
        if kp.shape != (len(self.flip_index), 3):
            raise ValueError(f"keypoints must have shape ({len(self.flip_index)}, 3), got {kp.shape}")
        center = np.array(center, dtype=np.float64).reshape(2)
        size = np.array(size, dtype=np.float64).reshape(2)
        flipped = bool(rng.random() < self.flip_prob)
        if flipped:
            kp = flip_keypoints(kp, image_width, self.flip_index)
            center[0] = image_width - 1.0 - center[0]
        half = self._half_body(kp, rng)
        if half is not None:
            center, size = half
        t = truncated_normal(rng, 4)
        if rng.random() < self.shift_prob:
            center = center + t[:2] * self.shift_factor * size
        if rng.random() < self.scale_prob:
            lo, hi = self.scale_range
            size = size * (0.5 * (lo + hi) + t[2] * 0.5 * (hi - lo))
        rotation = float(t[3] * self.rot_factor) if rng.random() < self.rot_prob else 0.0
        return CropParams(np.array(kp, dtype=np.float32), center, size, rotation, flipped)

    def color(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Colour jitter (rule 6) of a ``(h, w, 3)`` uint8 RGB image; returns a new image."""
        if rng.random() >= self.color_prob:
            return image
        out = image
        ident = np.arange(256, dtype=np.float32)
        for op in rng.permutation(4):
            if op == 0 and self.brightness > 0:
                f = rng.uniform(max(0.0, 1 - self.brightness), 1 + self.brightness)
                out = cv2.LUT(out, np.clip(ident * f + 0.5, 0, 255).astype(np.uint8))
            elif op == 1 and self.contrast > 0:
                f = rng.uniform(max(0.0, 1 - self.contrast), 1 + self.contrast)
                mean = float(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).mean())
                out = cv2.LUT(out, np.clip(ident * f + (1 - f) * mean + 0.5, 0, 255).astype(np.uint8))
            elif op == 2 and self.saturation > 0:
                f = rng.uniform(max(0.0, 1 - self.saturation), 1 + self.saturation)
                grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
                out = cv2.addWeighted(out, f, grey, 1 - f, 0.0)
            elif op == 3 and self.hue > 0:
                shift = int(round(rng.uniform(-self.hue, self.hue) * 256))
                hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV_FULL)
                lut = ((np.arange(256) + shift) % 256).astype(np.uint8)
                hsv[..., 0] = cv2.LUT(hsv[..., 0], lut)
                out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)
        return out

    def grid_dropout(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Grid dropout (rule 7) of a ``(h, w, 3)`` uint8 image; returns a new image (or the same one, untouched)."""
        if self.grid_dropout_prob <= 0 or rng.random() >= self.grid_dropout_prob:
            return image
        return grid_dropout(image, rng, self.grid_unit, self.grid_ratio)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(aspect_ratio={self.aspect_ratio:g}, flip_prob={self.flip_prob}, "
                f"half_body_prob={self.half_body_prob}, shift={self.shift_factor}@{self.shift_prob}, "
                f"scale={self.scale_range}@{self.scale_prob}, rot={self.rot_factor}@{self.rot_prob}, "
                f"color=({self.brightness}, {self.contrast}, {self.saturation}, {self.hue})@{self.color_prob})")


# ----------------------------------------------------------------------------------------------------------
# Normalisation
# ----------------------------------------------------------------------------------------------------------


def imagenet_normalize(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(B, h, w, 3)`` -> float32 ``(B, 3, h, w)`` (``(h, w, 3)`` -> ``(3, h, w)``), ImageNet
    mean and std on the 0-255 scale (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`)."""
    x = np.asarray(crops)
    if x.ndim not in (3, 4) or x.shape[-1] != 3:
        raise ValueError(f"crops must have shape (h, w, 3) or (B, h, w, 3), got {x.shape}")
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    inv_std = 1.0 / np.asarray(IMAGENET_STD, dtype=np.float32)
    out = (x.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(np.moveaxis(out, -1, -3))


def imagenet_normalize_torch(crops: torch.Tensor) -> torch.Tensor:
    """:func:`imagenet_normalize` for tensors on any device: uint8 (or float 0-255) ``(B, h, w, 3)`` ->
    contiguous float32 ``(B, 3, h, w)``; ``(h, w, 3)`` -> ``(3, h, w)``. Run it after moving the uint8 batch
    to the accelerator (a quarter of the bytes of float32)."""
    if crops.dim() not in (3, 4) or crops.shape[-1] != 3:
        raise ValueError(f"crops must have shape (h, w, 3) or (B, h, w, 3), got {tuple(crops.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=crops.device)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=crops.device)
    x = (crops.to(torch.float32) - mean) / std
    return x.movedim(-1, -3).contiguous()


# ----------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------


class _ImageCache:
    """A least-recently-used cache of decoded images, bounded in bytes (one per worker process)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, path: str) -> np.ndarray:
        image = self._items.get(path)
        if image is not None:
            self._items.move_to_end(path)
            return image
        image = read_image(path)
        if image.nbytes <= self.max_bytes:
            image.setflags(write=False)  # shared between samples: never modified in place
            self._items[path] = image
            self.bytes += image.nbytes
            while self.bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.bytes -= old.nbytes
        return image


class TopdownDataset(Dataset):
    """Person crops for top-down pose estimation: reads the image, augments, warps the crop and keypoints.

    Args:
        image_paths: ``N`` image files, one per sample (a file may repeat); None when ``images`` is given.
        keypoints: ``(N, K, 3)`` x, y, v in image pixels.
        centers: ``(N, 2)`` crop centres in image pixels.
        sizes: ``(N, 2)`` crop sizes (w, h) in image pixels, normally with the input's aspect ratio and padding
            (:func:`posetok.codecs.crop.box_to_center_scale`).
        input_size: ``(w, h)`` of the model input, e.g. ``(192, 256)``.
        udp: unbiased warp (see :func:`warp_matrix`).
        flip_index: optional ``(K,)`` flip permutation; when given with ``augment`` it must equal the
            augmentation's (a check that both follow the same skeleton).
        augment: random augmentation, or None for the plain crop.
        seed: augmentation seed. Each worker process draws from its own stream seeded with
            ``(seed, rank, worker id, epoch)``; the stream runs on across epochs with persistent workers.
            With workers re-created each epoch, call :meth:`set_epoch` or every epoch repeats the first.
        extras: per-sample arrays passed through by index (image ids, scores, ...), each of length ``N``.
        cache_mb: size of each process's cache of decoded images (0 turns it off).
        images: instead of files, a callable ``index -> (H, W, 3) uint8 RGB image`` of sample ``index``
            (e.g. rendered in memory, :meth:`posetok.data.synthetic_images.SyntheticPeople.image`); it must
            be picklable for worker processes and is not cached.

    ``dataset[i]`` is a dict of numpy arrays: ``image`` ``(h, w, 3)`` uint8 RGB crop; ``keypoints``
    ``(K, 3)`` float32 in input-crop pixels (joints warped outside the crop keep their ``v``; the codec
    decides their weights); ``center``, ``size`` ``(2,)`` float32 and ``rotation`` float32 of the crop actually
    taken, in the image frame, mirrored when ``flipped`` (bool) is true; ``matrix`` ``(2, 3)`` float64 from
    the *original* image's pixels to crop pixels (flip included; joints are also swapped when flipped); and
    the extras.
    """

    def __init__(
        self,
        image_paths: Sequence[str | os.PathLike] | None,
        keypoints: np.ndarray,
        centers: np.ndarray,
        sizes: np.ndarray,
        *,
        input_size: tuple[int, int],
        udp: bool = False,
        flip_index: Sequence[int] | np.ndarray | None = None,
        augment: TopdownAugment | None = None,
        seed: int = 0,
        extras: Mapping[str, Any] | None = None,
        cache_mb: float = 64.0,
        images: Callable[[int], np.ndarray] | None = None,
    ) -> None:
        if (image_paths is None) == (images is None):
            raise ValueError("give either image_paths or images (a callable index -> image), not both or neither")
        self.images = images
        self.image_paths = None if image_paths is None else [str(p) for p in image_paths]
        n = len(keypoints) if self.image_paths is None else len(self.image_paths)
        self.keypoints = np.ascontiguousarray(keypoints, dtype=np.float32)
        self.centers = np.ascontiguousarray(centers, dtype=np.float64)
        self.sizes = np.ascontiguousarray(sizes, dtype=np.float64)
        if self.keypoints.ndim != 3 or self.keypoints.shape[0] != n or self.keypoints.shape[2] != 3:
            raise ValueError(f"keypoints must have shape ({n}, K, 3), got {self.keypoints.shape}")
        for name, arr in (("centers", self.centers), ("sizes", self.sizes)):
            if arr.shape != (n, 2):
                raise ValueError(f"{name} must have shape ({n}, 2), got {arr.shape}")
        if not (self.sizes > 0).all():
            raise ValueError(f"sizes must be positive; sample {int(np.flatnonzero(~(self.sizes > 0).all(1))[0])}")
        k = self.keypoints.shape[1]
        if flip_index is not None:
            flip_index = np.asarray(flip_index, dtype=np.int64)
            if flip_index.shape != (k,):
                raise ValueError(f"flip_index must have shape ({k},), got {flip_index.shape}")
        if augment is not None:
            if len(augment.flip_index) != k:
                raise ValueError(f"augment is for {len(augment.flip_index)} joints, the keypoints have {k}")
            if flip_index is not None and not np.array_equal(flip_index, augment.flip_index):
                raise ValueError("flip_index differs from the augmentation's flip_index")
            flip_index = augment.flip_index
        self.flip_index = flip_index
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.udp = bool(udp)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.extras = {}
        for name, values in (extras or {}).items():
            arr = np.asarray(values)
            if len(arr) != n:
                raise ValueError(f"extra '{name}' has {len(arr)} values for {n} samples")
            self.extras[name] = arr
        self.cache_mb = float(cache_mb)
        self._cache: _ImageCache | None = None
        self._rng: np.random.Generator | None = None
        self._owner: tuple[int, int, int] | None = None

    def __len__(self) -> int:
        return len(self.keypoints)

    def __getstate__(self) -> dict[str, Any]:
        # Workers start with an empty image cache and their own random stream (see _generator).
        return {**self.__dict__, "_cache": None, "_rng": None, "_owner": None}

    def set_epoch(self, epoch: int) -> None:
        """Mix ``epoch`` into the augmentation seed (for DataLoaders whose workers are re-created)."""
        self.epoch = int(epoch)
        self._rng = None

    def _generator(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        owner = (os.getpid(), worker, self.epoch)
        # Re-seed when the dataset was copied into another process (a worker) after being used here.
        if self._rng is None or self._owner != owner:
            dist = torch.distributed
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
            self._rng = np.random.default_rng([self.seed, rank, worker, self.epoch])
            self._owner = owner
        return self._rng

    def load_image(self, index: int) -> np.ndarray:
        """The decoded image of sample ``index`` (cached; do not modify it)."""
        if self.images is not None:
            image = np.asarray(self.images(index))
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise PosetokError(f"images({index}) must be an (H, W, 3) uint8 RGB array, got {image.shape} "
                                   f"{image.dtype}")
            return image
        if self._cache is None or self._cache.max_bytes != int(self.cache_mb * 2**20):
            self._cache = _ImageCache(int(self.cache_mb * 2**20))
        return self._cache.get(self.image_paths[index])

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        image = self.load_image(index)
        kp, center, size = self.keypoints[index], self.centers[index], self.sizes[index]
        if self.augment is not None:
            rng = self._generator()
            params = self.augment(kp, center, size, image.shape[1], rng)
        else:
            params = CropParams(kp, center, size)
        mat = warp_matrix(params.center, params.size, params.rotation, self.input_size, self.udp)
        full = compose(flip_matrix(image.shape[1]), mat) if params.flipped else mat
        crop = warp_image(image, full, self.input_size)
        if self.augment is not None:
            crop = self.augment.grid_dropout(self.augment.color(crop, rng), rng)
        sample = {
            "image": crop,
            "keypoints": transform_keypoints(params.keypoints, mat),
            "center": np.asarray(params.center, dtype=np.float32),
            "size": np.asarray(params.size, dtype=np.float32),
            "rotation": np.float32(params.rotation),
            "flipped": np.bool_(params.flipped),
            "matrix": full,
        }
        for name, arr in self.extras.items():
            sample[name] = arr[index]
        return sample


def topdown_collate(batch: Sequence[Mapping[str, Any]], normalize: bool = False) -> dict[str, Any]:
    """Stack :class:`TopdownDataset` samples into a dict of tensors.

    ``image`` stays uint8 ``(B, h, w, 3)`` by default: a quarter of the bytes of float32 through the worker
    queue and the host-to-device copy; normalise it on the device with :func:`imagenet_normalize_torch`.
    ``normalize=True`` (e.g. ``functools.partial(topdown_collate, normalize=True)``) gives float32
    ``(B, 3, h, w)`` here instead. Other numeric fields become stacked tensors; anything non-numeric (strings)
    is returned as a list.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [sample[key] for sample in batch]
        arr = np.stack([np.asarray(v) for v in values])
        if arr.dtype.kind not in "biuf":
            out[key] = list(values)
            continue
        if key == "image" and normalize:
            out[key] = torch.from_numpy(imagenet_normalize(arr))
        else:
            out[key] = torch.from_numpy(arr)
    return out


def coco_image_paths(images: Mapping[int, Mapping[str, Any]], image_ids: np.ndarray,
                     image_dir: str | os.PathLike) -> list[Path]:
    """The image file of each person: ``image_dir / images[id]["file_name"]`` (``CocoKeypoints.images``)."""
    root = Path(image_dir)
    paths = []
    for i in np.asarray(image_ids).tolist():
        record = images.get(int(i))
        if record is None or "file_name" not in record:
            raise PosetokError(f"image id {i}: no image record with a file_name in the annotation file")
        paths.append(root / str(record["file_name"]))
    return paths
