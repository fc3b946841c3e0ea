"""The PCT tokenizer as a codec: keypoints in image pixels <-> ``M`` discrete tokens per person."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.topdown import imagenet_normalize_torch, warp_image, warp_matrix
from ..errors import PosetokError
from ..models.pct import PCTTokenizerModel, ScalarTokenEncoder, TokenDecoder, TokenEncoder
from ..skeletons import Skeleton
from .crop import box_to_center_scale, boxes_from_keypoints, from_crop, to_crop

#: People per guide-backbone pass of an image-guided tokenizer (crops are far larger than keypoints).
GUIDED_BATCH = 64


def _as_numpy(x: Any, name: str) -> tuple[np.ndarray, bool]:
    """Return ``x`` as a numpy array and whether it came in as a torch tensor."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy(), True
    try:
        return np.asarray(x), False
    except (TypeError, ValueError) as e:
        raise PosetokError(f"{name}: not an array ({e})") from None


class PCTCodec:
    """Encode poses into PCT tokens and decode tokens back into poses, in image pixels.

    Args:
        model: a trained :class:`PCTTokenizerModel`.
        skeleton: the joint layout the model was trained on.
        input_size: model input (width, height) in pixels; only its aspect ratio shapes the crop.
        padding: box padding of the crop (1.25 as in HRNet/MMPose/PCT).
        batch_size: poses per forward pass, bounding memory on large datasets.

    Inputs may be numpy arrays or torch tensors; outputs come back as the same kind.

    An image-guided tokenizer (:attr:`guided`) also needs each person's appearance to encode: the images they
    stand in (``images=``, cut here in the crop frame) or crops already cut in it (``crops=``); decoding needs
    only tokens and boxes, as for any tokenizer.
    """

    def __init__(self, model: PCTTokenizerModel, skeleton: Skeleton, input_size: tuple[int, int] = (256, 256),
                 padding: float = 1.25, batch_size: int = 4096) -> None:
        if model.num_joints != skeleton.num_joints:
            raise PosetokError(f"model has {model.num_joints} joints but skeleton '{skeleton.name}' has "
                               f"{skeleton.num_joints}")
        self.model = model
        self.skeleton = skeleton
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.aspect_ratio = self.input_size[0] / self.input_size[1]
        self.padding = float(padding)
        self.batch_size = batch_size
        self._fast: tuple[int, TokenEncoder | ScalarTokenEncoder, TokenDecoder] | None = None
        self.info: dict[str, Any] = {}  # checkpoint metadata (config, meta) when loaded from a file

    @property
    def num_tokens(self) -> int:
        return self.model.num_tokens

    @property
    def guided(self) -> bool:
        """Whether encoding needs the people's images (an image-guided tokenizer, ``model.guide_ratio > 0``)."""
        return self.model.guided

    @property
    def codebook_size(self) -> int:
        """``V``, the effective codebook size (learned codes, ``prod(levels)`` for fsq, ``2^bits`` for lfq)."""
        return self.model.codebook_size

    # -- crop frame ---------------------------------------------------------------------------------------
    def check_keypoints(self, keypoints: np.ndarray, name: str = "keypoints") -> np.ndarray:
        """Validate ``(N, K, 2|3)`` keypoints and return them as float32 ``(N, K, 3)`` (v = 2 if absent)."""
        k = self.skeleton.num_joints
        if keypoints.ndim == 2:
            keypoints = keypoints[None]
        if keypoints.ndim != 3 or keypoints.shape[2] not in (2, 3):
            raise PosetokError(f"{name}: expected shape (N, K, 3) or (N, K, 2), got {tuple(keypoints.shape)}")
        if keypoints.shape[1] != k:
            raise PosetokError(f"{name}: the checkpoint's skeleton '{self.skeleton.name}' has {k} joints, "
                               f"got {keypoints.shape[1]}")
        keypoints = keypoints.astype(np.float32, copy=False)
        if keypoints.shape[2] == 2:
            keypoints = np.concatenate([keypoints, np.full(keypoints.shape[:2] + (1,), 2, np.float32)], axis=2)
        if not np.isfinite(keypoints).all():
            raise PosetokError(f"{name}: NaN or infinite coordinates")
        return keypoints

    def crop_frame(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 4)`` xywh boxes -> crop centres and sizes ``(N, 2)`` each."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if not np.isfinite(boxes).all():
            raise PosetokError("boxes: NaN or infinite values")
        return box_to_center_scale(boxes, self.aspect_ratio, self.padding)

    def targets(self, keypoints: np.ndarray, boxes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs: normalised coords ``(N, K, 2)`` float32 and visibility ``(N, K)`` bool (``v > 0``)."""
        keypoints = self.check_keypoints(np.asarray(keypoints))
        if boxes is None:
            boxes = boxes_from_keypoints(keypoints)
        center, size = self.crop_frame(boxes)
        visible = keypoints[..., 2] > 0
        coords = np.where(visible[..., None], to_crop(keypoints[..., :2], center, size), 0.0).astype(np.float32)
        return coords, visible

    # -- fast inference modules -------------------------------------------------------------------------
    def _modules(self) -> tuple[TokenEncoder | ScalarTokenEncoder, TokenDecoder]:
        # Rebuilt when any weight or codebook entry changed in place since the last call (training, loading).
        version = sum(t._version for t in self.model.state_dict(keep_vars=True).values())
        if self._fast is None or self._fast[0] != version:
            self._fast = (version, self.model.inference_encoder(), self.model.inference_decoder())
        return self._fast[1], self._fast[2]

    def cut_crops(self, images: Any, boxes: np.ndarray) -> np.ndarray:
        """The crops of the people of ``boxes`` ``(N, 4)`` xywh: ``images`` is one ``(H, W, 3)`` uint8 RGB image for
        all of them or a sequence of ``N``, one per person -> ``(N, h, w, 3)`` uint8 in the codec's crop frame
        (classic warp, no rotation: the frame the tokenizer's coordinates are normalised in)."""
        center, size = self.crop_frame(boxes)
        one = isinstance(images, np.ndarray) and images.ndim == 3
        if not one and len(images) != len(center):
            raise PosetokError(f"images: expected one image or {len(center)} (one per person), got {len(images)}")
        crops = np.empty((len(center), self.input_size[1], self.input_size[0], 3), np.uint8)
        for i in range(len(center)):
            image = np.asarray(images if one else images[i])
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise PosetokError(f"images: expected (H, W, 3) uint8 RGB images, got {image.shape} {image.dtype}")
            crops[i] = warp_image(image, warp_matrix(center[i], size[i], 0.0, self.input_size), self.input_size)
        return crops

    def _guide_features(self, coords: np.ndarray, crops: np.ndarray | None) -> np.ndarray | None:
        """``(N, K, C)`` image features at the joints of an image-guided tokenizer (None when not guided)."""
        if self.model.guide is None:
            return None
        if crops is None:
            raise PosetokError("images: this tokenizer is image-guided (model.guide_ratio > 0): pass the people's "
                               "images (images=) or their crops (crops=)")
        want = (len(coords), self.input_size[1], self.input_size[0], 3)
        if tuple(crops.shape) != want or crops.dtype != np.uint8:
            raise PosetokError(f"crops: expected {want} uint8 crops in the codec's frame, got {tuple(crops.shape)} "
                               f"{crops.dtype}")
        out = [self.model.guide(imagenet_normalize_torch(torch.from_numpy(crops[i:i + GUIDED_BATCH])),
                                torch.from_numpy(coords[i:i + GUIDED_BATCH])).numpy()
               for i in range(0, len(coords), GUIDED_BATCH)]
        return np.concatenate(out) if out else np.zeros((0, coords.shape[1], self.model.guide.channels), np.float32)

    @torch.inference_mode()
    def encode_normalized(self, coords: np.ndarray, visible: np.ndarray, crops: np.ndarray | None = None
                          ) -> np.ndarray:
        """Normalised coords ``(N, K, 2)`` and visibility ``(N, K)`` (and, image-guided, the crops ``(N, h, w, 3)``
        uint8) -> tokens ``(N, M)`` int64."""
        encoder, _ = self._modules()
        guide = self._guide_features(coords, crops)
        step = self.batch_size
        out = [encoder(torch.from_numpy(coords[i:i + step]), torch.from_numpy(visible[i:i + step]),
                       None if guide is None else torch.from_numpy(guide[i:i + step]))
               for i in range(0, len(coords), step)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.num_tokens), np.int64)

    @torch.inference_mode()
    def decode_normalized(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens ``(N, M)`` -> normalised coords ``(N, K, 2)`` float32."""
        _, decoder = self._modules()
        out = [decoder(torch.from_numpy(tokens[i:i + self.batch_size]))
               for i in range(0, len(tokens), self.batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.skeleton.num_joints, 2), np.float32)

    # -- public API ---------------------------------------------------------------------------------------
    def encode(self, keypoints: Any, boxes: Any = None, images: Any = None, crops: Any = None) -> Any:
        """Poses -> tokens.

        Args:
            keypoints: ``(N, K, 3)`` x, y, visibility (or ``(N, K, 2)``, all visible) in image pixels.
            boxes: ``(N, 4)`` xywh person boxes; if None, the box around the labelled joints.
            images: image-guided tokenizers: one ``(H, W, 3)`` uint8 RGB image holding every person, or one per
                person (:meth:`cut_crops`).
            crops: image-guided tokenizers, instead of ``images``: ``(N, h, w, 3)`` uint8 crops already cut in
                the codec's frame (``input_size``, ``padding``, the box; :meth:`cut_crops`).
        Returns:
            ``(N, M)`` int64 token ids, numpy or torch like ``keypoints``.
        Raises:
            PosetokError: an image-guided tokenizer without ``images`` or ``crops``, or with the wrong number.
        """
        kp, is_torch = _as_numpy(keypoints, "keypoints")
        kp = self.check_keypoints(kp)
        bx = boxes_from_keypoints(kp) if boxes is None else _as_numpy(boxes, "boxes")[0]
        if crops is None and images is not None and self.guided:
            crops = self.cut_crops(images, bx)
        elif crops is not None:
            crops = _as_numpy(crops, "crops")[0]
        tokens = self.encode_normalized(*self.targets(kp, bx), crops=crops)
        return torch.from_numpy(tokens) if is_torch else tokens

    def decode(self, tokens: Any, boxes: Any) -> Any:
        """Tokens ``(N, M)`` and boxes ``(N, 4)`` xywh -> poses ``(N, K, 2)`` float32 in image pixels."""
        tk, is_torch = _as_numpy(tokens, "tokens")
        if tk.ndim == 1:
            tk = tk[None]
        if tk.ndim != 2 or tk.shape[1] != self.num_tokens:
            raise PosetokError(f"tokens: expected shape (N, {self.num_tokens}), got {tuple(tk.shape)}")
        if not np.issubdtype(tk.dtype, np.integer):
            raise PosetokError(f"tokens: expected integer ids, got {tk.dtype}")
        if tk.size and (tk.min() < 0 or tk.max() >= self.codebook_size):
            raise PosetokError(f"tokens: ids must lie in [0, {self.codebook_size}), got {tk.min()}..{tk.max()}")
        bx = _as_numpy(boxes, "boxes")[0].reshape(-1, 4)
        if len(bx) != len(tk):
            raise PosetokError(f"boxes: expected {len(tk)} boxes for {len(tk)} token rows, got {len(bx)}")
        center, size = self.crop_frame(bx)
        poses = from_crop(self.decode_normalized(tk.astype(np.int64)), center, size)
        return torch.from_numpy(poses) if is_torch else poses

    def reconstruct(self, keypoints: Any, boxes: Any = None, images: Any = None, crops: Any = None) -> Any:
        """Poses -> tokens -> poses ``(N, K, 2)`` in image pixels, in the same crop frame both ways
        (``images`` / ``crops``: as :meth:`encode`)."""
        kp, is_torch = _as_numpy(keypoints, "keypoints")
        kp = self.check_keypoints(kp)
        bx = boxes_from_keypoints(kp) if boxes is None else _as_numpy(boxes, "boxes")[0]
        poses = self.decode(self.encode(kp, bx, images=images, crops=crops), bx)
        return torch.from_numpy(poses) if is_torch else poses
