"""The top-down estimator at inference: person boxes in, keypoints in image pixels out.

A box (xywh, image pixels) becomes the crop frame of :mod:`posetok.codecs.crop` (the input's aspect ratio,
``padding``); an OpenCV affine warp (:func:`posetok.data.topdown.warp_matrix`, classic or unbiased as the codec
says) cuts the crop; the network predicts the codec's targets; the codec decodes them to input-crop pixels; the
inverse warp takes them back to the image. With the flip test the mirrored crop is predicted too and its maps,
mirrored back with the skeleton's flip pairs, are averaged with the first before decoding.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from ...codecs.crop import box_to_center_scale
from ...codecs.heatmap import HeatmapCodecBase
from ...data.topdown import imagenet_normalize_torch, transform_keypoints, warp_image, warp_matrix
from ...errors import PosetokError
from ...skeletons import Skeleton


def check_boxes(boxes: Any, image_shape: tuple[int, ...], source: str = "boxes") -> np.ndarray:
    """``(N, 4)`` float64 xywh boxes that have a size and overlap the image; else a one-line error."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4 or not np.isfinite(arr).all():
        raise PosetokError(f"{source}: expected finite x, y, w, h boxes of shape (N, 4), got shape {arr.shape}")
    h, w = image_shape[:2]
    for i, (x, y, bw, bh) in enumerate(arr):
        if bw <= 0 or bh <= 0:
            raise PosetokError(f"{source}: box {i} [{x:g}, {y:g}, {bw:g}, {bh:g}] has zero or negative size")
        if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
            raise PosetokError(f"{source}: box {i} [{x:g}, {y:g}, {bw:g}, {bh:g}] lies outside the {w}x{h} image")
    return arr


class TopdownEstimator:
    """A trained top-down estimator: ``predict(image, boxes)`` -> ``(N, K, 3)`` x, y, score in image pixels.

    Args:
        model: the network; ``model(images (B, 3, h, w) normalised) -> dict`` of the codec's outputs.
        codec: the heatmap codec whose targets the network predicts.
        skeleton: joint layout (flip pairs for the flip test).
        input_size: network input ``(w, h)`` pixels.
        padding: box -> crop padding (1.25).
        flip_test: average with the prediction of the mirrored crop.
        batch_size: crops per forward pass.
    """

    def __init__(self, model: torch.nn.Module, codec: HeatmapCodecBase, skeleton: Skeleton,
                 input_size: tuple[int, int], padding: float = 1.25, flip_test: bool = True,
                 batch_size: int = 32) -> None:
        self.model = model
        self.codec = codec
        self.skeleton = skeleton
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.padding = float(padding)
        self.flip_test = flip_test
        self.batch_size = int(batch_size)
        self.info: dict[str, Any] = {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------------------------------------------
    # Crops
    # ------------------------------------------------------------------------------------------------------

    def crop_frames(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 4)`` xywh boxes -> crop centres ``(N, 2)`` and sizes ``(N, 2)`` in image pixels."""
        return box_to_center_scale(np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                                   self.input_size[0] / self.input_size[1], self.padding)

    def matrices(self, centers: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """``(N, 2, 3)`` affine maps from image pixels to input-crop pixels."""
        return np.stack([warp_matrix(c, s, 0.0, self.input_size, self.codec.udp) for c, s in zip(centers, sizes)]
                        ) if len(centers) else np.zeros((0, 2, 3))

    def crops(self, image: np.ndarray, matrices: np.ndarray) -> np.ndarray:
        """``(N, h, w, 3)`` uint8 RGB crops of ``image`` cut by ``matrices``."""
        w, h = self.input_size
        if not len(matrices):
            return np.zeros((0, h, w, 3), np.uint8)
        return np.stack([warp_image(image, m, self.input_size) for m in matrices])

    # ------------------------------------------------------------------------------------------------------
    # Network
    # ------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def forward_crops(self, crops: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
        """The network's outputs for uint8 RGB crops ``(N, h, w, 3)``, flip test included, as numpy arrays."""
        self.model.eval()
        outs: list[dict[str, np.ndarray]] = []
        for i in range(0, len(crops), self.batch_size):
            x = torch.as_tensor(np.ascontiguousarray(crops[i:i + self.batch_size])).to(self.device)
            images = imagenet_normalize_torch(x)
            out = {k: v.float().cpu().numpy() for k, v in self.model(images).items()}
            if self.flip_test:
                flipped = {k: v.float().cpu().numpy() for k, v in self.model(images.flip(-1)).items()}
                out = self.codec.merge_flip(out, flipped, self.skeleton.flip_index)
            outs.append(out)
        if not outs:
            return {}
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def predict_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints ``(N, K, 2)`` in input-crop pixels and scores ``(N, K)`` of uint8 RGB crops."""
        k = self.skeleton.num_joints
        if not len(crops):
            return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)
        return self.codec.decode_outputs(self.forward_crops(crops))

    def predict(self, image: np.ndarray, boxes: Any = None) -> np.ndarray:
        """People in ``image`` (RGB uint8 ``(H, W, 3)``) -> ``(N, K, 3)`` float32 x, y, score in image pixels.

        ``boxes``: ``(N, 4)`` xywh person boxes in image pixels; None: one person filling the whole image.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise PosetokError(f"image: expected an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}")
        if boxes is None:
            boxes = np.array([[0.0, 0.0, image.shape[1], image.shape[0]]])
        boxes = check_boxes(boxes, image.shape)
        centers, sizes = self.crop_frames(boxes)
        mats = self.matrices(centers, sizes)
        kp, scores = self.predict_crops(self.crops(image, mats))
        return to_image(kp, scores, mats)


def to_image(keypoints: np.ndarray, scores: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Input-crop pixels ``(N, K, 2)`` and scores ``(N, K)`` -> ``(N, K, 3)`` x, y, score in image pixels,
    through the inverse of each crop's warp ``(N, 2, 3)``."""
    out = np.zeros((*keypoints.shape[:2], 3), np.float32)
    for i, m in enumerate(matrices):
        inv = cv2.invertAffineTransform(m)
        pts = np.concatenate([keypoints[i], np.full((keypoints.shape[1], 1), 2.0, np.float32)], 1)
        out[i, :, :2] = transform_keypoints(pts, inv)[:, :2]
    out[..., 2] = scores
    return out
