"""The top-down crop frame shared by every codec.

A person box (xywh, image pixels) becomes a crop centre and a crop size in pixels: the box is widened or
heightened to the model's aspect ratio (width / height of its input) and then padded by ``padding`` (1.25, as in
HRNet, MMPose and PCT). Normalised coordinates are ``u = (x - cx) / crop_w``, ``v = (y - cy) / crop_h``, so the
crop spans ``[-0.5, 0.5]`` on both axes. They do not change when a pose is shifted or scaled with its box.
"""

from __future__ import annotations

import numpy as np

from ..errors import PosetokError


def boxes_from_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """``(N, K, 3)`` keypoints -> ``(N, 4)`` xywh boxes around the labelled joints (``v > 0``).

    A person with one labelled joint gets a zero-size box there; one with none raises.
    """
    labelled = keypoints[..., 2] > 0
    if not labelled.any(axis=1).all():
        bad = int(np.flatnonzero(~labelled.any(axis=1))[0])
        raise PosetokError(f"keypoints[{bad}]: no labelled joint to take a box from")
    big = np.float32(np.finfo(np.float32).max)
    x, y = keypoints[..., 0], keypoints[..., 1]
    x0 = np.where(labelled, x, big).min(1)
    y0 = np.where(labelled, y, big).min(1)
    x1 = np.where(labelled, x, -big).max(1)
    y1 = np.where(labelled, y, -big).max(1)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.float32)


def box_to_center_scale(boxes: np.ndarray, aspect_ratio: float, padding: float = 1.25,
                        min_size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 4)`` xywh boxes -> centres ``(N, 2)`` and crop sizes ``(N, 2)`` (w, h), pixels.

    ``aspect_ratio`` is the model input's width / height. Boxes smaller than ``min_size`` pixels are grown to
    it, so a single-joint person still has a usable frame.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    center = boxes[:, :2] + 0.5 * boxes[:, 2:]
    w = np.maximum(boxes[:, 2], min_size)
    h = np.maximum(boxes[:, 3], min_size)
    wider = w > aspect_ratio * h
    h = np.where(wider, w / aspect_ratio, h)
    w = np.where(wider, w, h * aspect_ratio)
    size = np.stack([w, h], axis=1) * padding
    return center, size


def to_crop(xy: np.ndarray, center: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Image pixels ``(N, K, 2)`` -> normalised crop coordinates ``(N, K, 2)`` float32."""
    return ((xy - center[:, None, :]) / size[:, None, :]).astype(np.float32)


def from_crop(uv: np.ndarray, center: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Normalised crop coordinates ``(N, K, 2)`` -> image pixels ``(N, K, 2)`` float32."""
    return (uv * size[:, None, :] + center[:, None, :]).astype(np.float32)
