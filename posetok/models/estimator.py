"""The top-down heatmap estimator: backbone + heatmap (or fusion) head on person crops.

Input: normalised float images ``(B, 3, H, W)`` of the crop (MMPose's RGB mean / std; normalising is the data
pipeline's job). Output: a dict with ``heatmaps`` ``(B, C, h, w)`` (``h = H / 4 * 2^n`` for ``n`` head
deconvolutions): the codec's maps, ``C = K`` for plain heatmaps, ``3 K`` for UDP's combined target and ``4 K``
for the fusion head (K heatmaps, 2K offsets, K log-variances; see :class:`~posetok.models.heads.FusionHead`).
The model does no I/O except loading a backbone weights file when asked to at build time.

With ``head="pct"`` the network is the PCT token classifier (:class:`TopdownPCTModel`): backbone, the classifier
head of :mod:`posetok.models.pct_classifier` on the backbone's stride-32 map, and a frozen copy of the pose
tokenizer's decoder; its output is ``{"logits": (B, M, V), "coords": (B, K, 2)}`` (joints decoded from the soft
tokens, normalised crop coordinates). ``dims.tokenizer`` fixes that decoder, so the network and its checkpoint
need no tokenizer file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from ..errors import field_error
from .backbones import HRNETS, build_backbone
from .heads import FusionHead, HeatmapHead
from .pct_classifier import PCTClassifierHead, PCTHeadDims, SoftDecoderDims, SoftTokenDecoder

HEADS = ("heatmap", "fusion", "pct")


@dataclass
class EstimatorDims:
    """Everything that fixes the estimator's architecture (saved with checkpoints, JSON-friendly).

    ``input_size`` is ``(width, height)`` of the crop; ``drop_path`` None means the backbone's default.
    ``num_outputs``: channels of the heatmap head (None: ``num_joints``; the UDP ``combined`` codec needs
    ``3 K``); for the fusion head None or ``4 K`` (its K heatmaps + 2K offsets + K log-variances).
    ``pct`` (head sizes, :class:`~posetok.models.pct_classifier.PCTHeadDims`) and ``tokenizer`` (the frozen
    decoder, :class:`~posetok.models.pct_classifier.SoftDecoderDims`) as dicts: the ``pct`` head only.
    """

    backbone: str = "hrnet_w32"
    head: str = "heatmap"
    num_joints: int = 17
    input_size: tuple[int, int] = (192, 256)
    deconv_channels: tuple[int, ...] = ()
    highest_only: bool = True
    lowest_only: bool = False  # pct: the backbone's stride-32 branch alone (build_backbone); False in older files
    drop_path: float | None = None
    final_bias: float = 0.0
    num_outputs: int | None = None
    pct: dict[str, Any] | None = None
    tokenizer: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Lists from YAML / JSON become tuples, so dims compare equal after a round trip.
        self.input_size = tuple(int(v) for v in self.input_size)
        self.deconv_channels = tuple(int(v) for v in self.deconv_channels)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"], d["deconv_channels"] = list(self.input_size), list(self.deconv_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EstimatorDims:
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys raise ``KeyError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KeyError(", ".join(unknown))
        return cls(**d)

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """``(width, height)`` of the head's output."""
        scale = 2 ** len(self.deconv_channels)
        return self.input_size[0] // 4 * scale, self.input_size[1] // 4 * scale


class TopdownHeatmapModel(nn.Module):
    """Backbone + head. ``forward(images)`` -> ``{"heatmaps": (B, C, h, w)}`` (see the module doc)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, dims: EstimatorDims | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.dims = dims

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.head(self.backbone(images))
        return out if isinstance(out, dict) else {"heatmaps": out}


class TopdownPCTModel(nn.Module):
    """Backbone + PCT classifier head + frozen soft-token decoder.

    ``forward(images (B, 3, H, W))`` -> ``{"logits": (B, M, V), "coords": (B, K, 2)}``: token logits and the joints
    their soft tokens decode to, normalised crop coordinates (float32).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, decoder: SoftTokenDecoder,
                 dims: EstimatorDims | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.decoder = decoder
        self.dims = dims
        self.backbone_frozen = False

    def freeze_backbone(self) -> None:
        """Stop training the backbone (the official Stage II recipe): no gradients, and eval mode (batch-norm
        statistics, dropout and stochastic depth as at test time) whatever :meth:`train` is asked."""
        self.backbone.requires_grad_(False)
        self.backbone_frozen = True
        self.backbone.eval()

    def train(self, mode: bool = True) -> TopdownPCTModel:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        # A frozen backbone keeps no activations for a backward pass.
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.backbone_frozen):
            feats = self.backbone(images)
        logits = self.head(feats)
        return {"logits": logits, "coords": self.decoder(logits)}


def build_estimator(dims: EstimatorDims, *, pretrained: bool = False, weights: str | None = None,
                    source: str = "config") -> TopdownHeatmapModel | TopdownPCTModel:
    """Build the estimator of ``dims``; ``pretrained`` / ``weights`` go to :func:`~.backbones.build_backbone`.

    Raises:
        PosetokError: an unknown backbone or head, an HRNet input size not divisible by 32, a bad weights file
            (``source`` names the config file in the message).
    """
    if dims.head not in HEADS:
        raise field_error(source, "model.head.kind", f"unknown head {dims.head!r} (known: {', '.join(HEADS)})")
    k = dims.num_joints
    if dims.head == "fusion" and dims.num_outputs not in (None, 4 * k):
        raise field_error(source, "model.head.kind", f"the fusion head outputs {4 * k} channels for {k} joints "
                          f"(K heatmaps, 2K offsets, K log-variances), not {dims.num_outputs}")
    pct = dims.head == "pct"
    if (dims.backbone in HRNETS or pct) and any(v % 32 for v in dims.input_size):
        why = "the pct head flattens its stride-32 map" if pct else f"{dims.backbone} fuses by fixed factors"
        raise field_error(source, "model.input_size", f"needs a width and height divisible by 32 ({why}; got "
                          f"{list(dims.input_size)})")
    if pct and not dims.tokenizer:
        raise field_error(source, "model.tokenizer", "the pct head needs the tokenizer's decoder dims (set "
                          "model.tokenizer to a trained pose tokenizer checkpoint)")
    # The pct head reads the last (stride-32) map: HRNet and HRFormer give it alone (lowest_only, what a
    # heatmap-trained backbone fully provides) or, in checkpoints written before that, with all four branches.
    backbone = build_backbone(dims.backbone, pretrained=pretrained, weights=weights, drop_path=dims.drop_path,
                              highest_only=dims.highest_only and not pct, lowest_only=dims.lowest_only and pct,
                              source=source, input_size=dims.input_size)
    if pct:
        dec = SoftDecoderDims.from_dict(dict(dims.tokenizer or {}))
        if dec.num_joints != dims.num_joints:
            raise field_error(source, "model.tokenizer", f"the tokenizer decodes {dec.num_joints} joints, the "
                              f"estimator's skeleton has {dims.num_joints}")
        cells = (dims.input_size[0] // 32, dims.input_size[1] // 32)
        head_pct = PCTClassifierHead(backbone.out_channels[-1], cells, dec.num_tokens, dec.codebook_size,
                                     PCTHeadDims(**(dims.pct or {})))
        return TopdownPCTModel(backbone, head_pct, SoftTokenDecoder(dec), dims)
    if backbone.strides[0] != 4 and len(dims.deconv_channels) != 3:
        raise field_error(source, "model.head.deconv_channels", f"{dims.backbone} gives a stride-"
                          f"{backbone.strides[0]} map: a heatmap head needs 3 deconvolutions to reach stride 4")
    cin = backbone.out_channels[0]
    if dims.head == "heatmap":
        head: nn.Module = HeatmapHead(cin, dims.num_outputs or k, dims.deconv_channels, final_bias=dims.final_bias)
    else:
        head = FusionHead(cin, k, dims.deconv_channels, final_bias=dims.final_bias)
    return TopdownHeatmapModel(backbone, head, dims)
