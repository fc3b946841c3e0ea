"""Image guidance of the PCT tokenizer (the official PCT's ``guide_ratio``): the appearance at each joint.

A frozen, heatmap-trained backbone maps the person crop to its stride-32 map (``lowest_only``, see
:func:`~posetok.models.backbones.build_backbone`); each joint takes the feature of the cell nearest to it, as the
official code indexes it: in input-crop pixels ``x = (u + 0.5) * W`` of the normalised crop coordinate ``u``
(the classic crop frame of :mod:`posetok.codecs.crop`), cell ``int(x / stride + 0.5)`` clamped to the map. The
tokenizer projects these features to ``guide_ratio`` of its width and concatenates them with the coordinate
embedding, so its tokens carry appearance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .backbones import build_backbone


@dataclass
class GuideDims:
    """The guide of an image-guided tokenizer (``ratio`` 0: none; the defaults are an unguided tokenizer's).

    ``backbone``: the backbone name (:func:`~posetok.models.backbones.build_backbone`); ``channels``: its
    stride-32 map's channels; ``ratio``: share of the encoder width given to the image features (official 0.5);
    ``input_size``: ``(w, h)`` of the crops it reads.
    """

    ratio: float = 0.0
    backbone: str | None = None
    channels: int = 0
    input_size: tuple[int, int] = (256, 256)

    def __post_init__(self) -> None:
        self.input_size = tuple(int(v) for v in self.input_size)  # type: ignore[assignment]

    @property
    def enabled(self) -> bool:
        return self.ratio > 0


def joint_features(fmap: torch.Tensor, coords: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """The feature of the cell nearest each joint.

    Args:
        fmap: ``(B, C, h, w)`` feature map of the crop.
        coords: ``(B, K, 2)`` normalised crop coordinates (``[-0.5, 0.5]`` inside the crop).
        input_size: ``(W, H)`` of the crop in pixels.
    Returns:
        ``(B, K, C)``.
    """
    b, c, h, w = fmap.shape
    size = torch.tensor([float(input_size[0]), float(input_size[1])], device=coords.device)
    stride = size / torch.tensor([float(w), float(h)], device=coords.device)
    cell = torch.floor((coords.float() + 0.5) * size / stride + 0.5).long()  # (B, K, 2)
    ix, iy = cell[..., 0].clamp(0, w - 1), cell[..., 1].clamp(0, h - 1)
    index = (iy * w + ix)[:, None, :].expand(b, c, -1)  # (B, C, K)
    return fmap.flatten(2).gather(2, index).transpose(1, 2)


class ImageGuide(nn.Module):
    """Frozen backbone + nearest-cell lookup: ``forward(images (B, 3, H, W) normalised, coords (B, K, 2))`` ->
    ``(B, K, C)`` float32, computed in float32 under any autocast. Always in eval mode (batch-norm statistics as
    trained); no gradients.

    Args:
        dims: the guide (``backbone``, ``input_size``).
        weights: a state dict file for the backbone (an estimator ``model.ckpt``); None: left at its
            initialisation (weights then come from a tokenizer checkpoint's state dict).
    """

    def __init__(self, dims: GuideDims, weights: str | None = None, source: str = "config") -> None:
        super().__init__()
        if not dims.backbone:
            raise ValueError("an image guide needs a backbone name")
        self.input_size = dims.input_size
        self.backbone = build_backbone(dims.backbone, weights=weights, lowest_only=True, input_size=dims.input_size,
                                       source=source)
        self.channels = int(self.backbone.out_channels[-1])
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ImageGuide:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        # float32 under any training autocast: the features (and so the tokens) a guided tokenizer learns from
        # are then the ones its codec computes at test time
        with torch.autocast(images.device.type, enabled=False):
            fmap = self.backbone(images.float())[-1]
        return joint_features(fmap, coords, self.input_size).float()


class GuidedEncoder(nn.Module):
    """An image-guided tokenizer's encoder as one module (what export traces): ``(coords (B, K, 2), visible
    (B, K), images (B, 3, H, W) normalised crops)`` -> token ids ``(B, M)``, the guide's lookup inside."""

    def __init__(self, encoder: nn.Module, guide: ImageGuide) -> None:
        super().__init__()
        self.encoder, self.guide = encoder, guide

    def forward(self, coords: torch.Tensor, visible: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(coords, visible, self.guide(images, coords))

    def near_ties(self, coords: torch.Tensor, visible: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The encoder's :meth:`near_ties` on these crops."""
        return self.encoder.near_ties(coords, visible, self.guide(images, coords))
