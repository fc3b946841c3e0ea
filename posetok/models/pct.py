"""The PCT compositional pose tokenizer (Geng et al., "Human Pose as Compositional Tokens", CVPR 2023).

The model works on keypoints already normalised to the top-down crop (see :mod:`posetok.codecs.pct`):
coordinates ``(B, K, 2)`` in ``[-0.5, 0.5]`` of the crop width and height, and a visibility mask ``(B, K)``.
The encoder mixes joints with MLP-Mixer blocks, a learned linear map turns the ``K`` joint features into ``M``
token features, each token is quantized against one shared codebook of ``V`` entries (EMA updates, k-means
init, dead-code re-seeding; vector-quantize-pytorch), and a Mixer decoder maps the ``M`` code vectors back to
``K`` joints.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import FSQ, LFQ, VectorQuantize

from .mixer import MixerLayer
from .pct_guide import GuideDims, ImageGuide
from .pct_inference import ScalarTokenEncoder, TokenDecoder, TokenEncoder


@dataclass
class EncoderDims:
    num_blocks: int = 4
    hidden_dim: int = 512
    token_inter_dim: int = 64
    hidden_inter_dim: int = 512
    dropout: float = 0.0
    drop_rate: float = 0.2  # share of visible joints hidden behind the invisible token while training


@dataclass
class DecoderDims:
    num_blocks: int = 1
    hidden_dim: int = 32
    token_inter_dim: int = 64
    hidden_inter_dim: int = 64
    dropout: float = 0.0


#: The quantizers of the PCT tokenizer (``dims.codebook.quantizer``).
QUANTIZERS = ("vq", "fsq", "lfq")


@dataclass
class CodebookDims:
    num_tokens: int = 34
    token_dim: int = 512
    size: int = 2048  # V; for fsq it is prod(levels), for lfq a power of 2
    ema_decay: float = 0.9  # vq only, as are the next three
    kmeans_init: bool = True
    kmeans_iters: int = 10
    dead_code_threshold: float = 1.0  # EMA cluster size below which a code is re-seeded from the batch
    quantizer: str = "vq"  # vq | fsq | lfq; checkpoints written before the choice existed are vq
    levels: list[int] | None = None  # fsq: values per dimension, each >= 3 (the library needs 2 to be symmetric)
    commitment_weight: float = 1.0  # vq and lfq: weight of the commitment loss inside the quantizer
    entropy_loss_weight: float = 0.1  # lfq: weight of its entropy loss (per-sample minus batch entropy)
    diversity_gamma: float = 1.0  # lfq: weight of the batch entropy in that loss


def check_codebook(cb: CodebookDims) -> None:
    """Raise ``ValueError("field: problem")`` when the quantizer settings of ``cb`` do not fit together
    (``field`` relative to the codebook section, or ``quantizer``)."""
    if cb.quantizer not in QUANTIZERS:
        raise ValueError(f"quantizer: unknown quantizer '{cb.quantizer}' (known: {', '.join(QUANTIZERS)})")
    if cb.quantizer == "fsq":
        if not cb.levels or any(int(v) < 3 for v in cb.levels):
            raise ValueError("levels: fsq needs a list of levels, each >= 3 (e.g. [8, 5, 5, 5])")
        if cb.size != math.prod(cb.levels):
            raise ValueError(f"size: {cb.size} != prod(levels) = {math.prod(cb.levels)} (leave it unset for fsq)")
    elif cb.levels is not None:
        raise ValueError(f"levels: applies to fsq only, the quantizer is {cb.quantizer}")
    if cb.quantizer == "lfq" and (cb.size < 2 or cb.size & (cb.size - 1)):
        raise ValueError(f"size: lfq needs a power of 2 (2^bits codes), got {cb.size}")


def effective_codebook_size(cb: CodebookDims) -> int:
    """``V``, the number of distinct token ids: ``size`` for vq and lfq, ``prod(levels)`` for fsq."""
    return math.prod(cb.levels) if cb.quantizer == "fsq" and cb.levels else cb.size


def build_quantizer(cb: CodebookDims) -> nn.Module:
    """The vector-quantize-pytorch module of ``cb.quantizer`` for ``(B, M, token_dim)`` features."""
    check_codebook(cb)
    if cb.quantizer == "fsq":
        return FSQ(levels=[int(v) for v in cb.levels or ()], dim=cb.token_dim)
    if cb.quantizer == "lfq":
        return LFQ(dim=cb.token_dim, codebook_size=cb.size, entropy_loss_weight=cb.entropy_loss_weight,
                   diversity_gamma=cb.diversity_gamma, commitment_loss_weight=cb.commitment_weight)
    return VectorQuantize(
        dim=cb.token_dim,
        codebook_size=cb.size,
        decay=cb.ema_decay,
        kmeans_init=cb.kmeans_init,
        kmeans_iters=cb.kmeans_iters,
        threshold_ema_dead_code=cb.dead_code_threshold,
        commitment_weight=cb.commitment_weight,
        rotation_trick=False,  # PCT trains with the plain straight-through estimator
    )


@dataclass
class PCTDims:
    encoder: EncoderDims
    decoder: DecoderDims
    codebook: CodebookDims
    guide: GuideDims = field(default_factory=GuideDims)  # image guidance; none in files written before it

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PCTDims:
        return cls(EncoderDims(**d["encoder"]), DecoderDims(**d["decoder"]), CodebookDims(**d["codebook"]),
                   GuideDims(**(d.get("guide") or {})))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["guide"]["input_size"] = list(self.guide.input_size)
        return d


# pct_base: the public PCT base tokenizer dimensions. pct_small: a CPU-friendly model for demos and tests.
PRESETS: dict[str, PCTDims] = {
    "pct_base": PCTDims(EncoderDims(), DecoderDims(), CodebookDims()),
    "pct_small": PCTDims(
        EncoderDims(num_blocks=2, hidden_dim=128, token_inter_dim=64, hidden_inter_dim=256),
        DecoderDims(num_blocks=1, hidden_dim=64, token_inter_dim=64, hidden_inter_dim=128),
        CodebookDims(num_tokens=34, token_dim=128, size=512),
    ),
}


def preset_dims(name: str, overrides: dict[str, dict[str, Any]] | None = None) -> PCTDims:
    """The dims of preset ``name`` with ``overrides[section][field]`` replacing any value that is not None."""
    if name not in PRESETS:
        raise KeyError(name)
    dims = copy.deepcopy(PRESETS[name])
    for section, values in (overrides or {}).items():
        target = getattr(dims, section)
        names = {f.name for f in fields(target)}
        for key, value in values.items():
            if key not in names:
                raise KeyError(f"{section}.{key}")
            if value is not None:
                setattr(target, key, value)
    return dims


class PCTTokenizerModel(nn.Module):
    """PCT tokenizer network.

    Image-guided (``dims.guide.ratio > 0``, the official ``guide_ratio``): each joint's first feature is its
    coordinate embedding (``1 - ratio`` of the width) beside a projection of the image feature at the joint
    (``ratio`` of it) from a frozen backbone (``guide``, :class:`~posetok.models.pct_guide.ImageGuide`), so the
    encoder also needs the person crop.

    Args:
        num_joints: ``K``.
        dims: layer sizes (:data:`PRESETS`) and the guide.
        guide_weights: the guide backbone's weights file (an estimator ``model.ckpt``) when guided; None leaves it
            to a later ``load_state_dict`` (a tokenizer checkpoint holds the guide's weights).
    """

    def __init__(self, num_joints: int, dims: PCTDims, guide_weights: str | None = None) -> None:
        super().__init__()
        enc, dec, cb, g = dims.encoder, dims.decoder, dims.codebook, dims.guide
        self.num_joints = num_joints
        self.dims = dims
        self.drop_rate = enc.drop_rate
        image_dim = int(enc.hidden_dim * g.ratio) if g.enabled else 0
        self.start_embed = nn.Linear(2, enc.hidden_dim - image_dim)
        self.guide = ImageGuide(g, guide_weights) if g.enabled else None
        self.guide_embed = nn.Linear(self.guide.channels, image_dim) if self.guide is not None else None
        self.invisible_token = nn.Parameter(torch.zeros(1, 1, enc.hidden_dim))
        nn.init.normal_(self.invisible_token, std=0.02)
        self.encoder = nn.ModuleList(
            MixerLayer(enc.hidden_dim, enc.hidden_inter_dim, num_joints, enc.token_inter_dim, enc.dropout)
            for _ in range(enc.num_blocks)
        )
        self.encoder_norm = nn.LayerNorm(enc.hidden_dim)
        self.token_mlp = nn.Linear(num_joints, cb.num_tokens)
        self.feature_embed = nn.Linear(enc.hidden_dim, cb.token_dim)
        self.quantizer = build_quantizer(cb)
        self.decoder_token_mlp = nn.Linear(cb.num_tokens, num_joints)
        self.decoder_start = nn.Linear(cb.token_dim, dec.hidden_dim)
        self.decoder = nn.ModuleList(
            MixerLayer(dec.hidden_dim, dec.hidden_inter_dim, num_joints, dec.token_inter_dim, dec.dropout)
            for _ in range(dec.num_blocks)
        )
        self.decoder_norm = nn.LayerNorm(dec.hidden_dim)
        self.recover_embed = nn.Linear(dec.hidden_dim, 2)

    @property
    def num_tokens(self) -> int:
        return self.dims.codebook.num_tokens

    @property
    def quantizer_kind(self) -> str:
        """``vq``, ``fsq`` or ``lfq``."""
        return self.dims.codebook.quantizer

    @property
    def codebook_size(self) -> int:
        """``V``: learned codes (vq) or implicit ones (``prod(levels)`` for fsq, ``2^bits`` for lfq)."""
        return effective_codebook_size(self.dims.codebook)

    @property
    def codebook(self) -> torch.Tensor:
        """``(V, token_dim)`` code vectors: what the decoder reads for each id (for fsq and lfq the implicit
        codes through the quantizer's output projection)."""
        if self.quantizer_kind == "vq":
            return self.quantizer.codebook
        ids = torch.arange(self.codebook_size, device=self.start_embed.weight.device)
        return self.quantizer.indices_to_codes(ids)

    def quantize(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, M, token_dim)`` features -> quantized features (same shape; straight-through gradients), int64
        ids ``(B, M)`` and the quantizer's scalar loss (vq: commitment; lfq: entropy and commitment; fsq: 0)."""
        if self.quantizer_kind == "vq":
            return self.quantizer(feats)
        if self.quantizer_kind == "fsq":
            quantized, ids = self.quantizer(feats)
            return quantized, ids.long(), feats.new_zeros(())
        quantized, ids, loss = self.quantizer(feats)
        return quantized, ids.long(), loss

    @property
    def guided(self) -> bool:
        """Whether the encoder reads images too (``dims.guide.ratio > 0``)."""
        return self.guide is not None

    def encode_features(self, coords: torch.Tensor, visible: torch.Tensor, guide: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """``(B, K, 2)`` normalised coords and ``(B, K)`` bool visibility (and, when guided, the joints' image
        features ``(B, K, C)`` of :attr:`guide`) -> ``(B, M, token_dim)`` features.

        While training, a random ``drop_rate`` share of the visible joints is also replaced by the invisible
        token, so the tokenizer learns to complete poses.
        """
        if self.training and self.drop_rate > 0:
            visible = visible & (torch.rand(visible.shape, device=visible.device) >= self.drop_rate)
        x = self.start_embed(coords)
        if self.guide_embed is not None:
            if guide is None:
                raise ValueError("this tokenizer is image-guided: pass the joints' image features (B, K, C)")
            x = torch.cat([x, self.guide_embed(guide.to(x.dtype))], dim=-1)
        x = torch.where(visible[..., None], x, self.invisible_token.to(x.dtype))
        for block in self.encoder:
            x = block(x)
        x = self.encoder_norm(x)
        x = self.token_mlp(x.transpose(1, 2)).transpose(1, 2)
        return self.feature_embed(x)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """``(B, M, token_dim)`` code vectors -> ``(B, K, 2)`` normalised coords."""
        x = self.decoder_token_mlp(codes.transpose(1, 2)).transpose(1, 2)
        x = self.decoder_start(x)
        for block in self.decoder:
            x = block(x)
        return self.recover_embed(self.decoder_norm(x))

    def forward(self, coords: torch.Tensor, visible: torch.Tensor, quantize: bool = True,
                images: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training-time forward; ``images``: the normalised crops ``(B, 3, H, W)`` of an image-guided tokenizer.

        Returns ``recon`` ``(B, K, 2)``, ``tokens`` int64 ``(B, M)`` and the scalar ``commit_loss`` (the
        quantizer's loss, :meth:`quantize`). In training mode a vq quantizer also updates its codebook (EMA,
        k-means init on its first call, dead codes); fsq and lfq have no codebook state.
        With ``quantize=False`` the decoder reads the continuous features (the quantizer warm-up of
        :class:`~posetok.tasks.tokenizer.TokenizerTask`); ``tokens`` are then -1 and ``commit_loss`` is 0.
        """
        if self.guide is not None:
            if images is None:
                raise ValueError("this tokenizer is image-guided: pass the crops (B, 3, H, W)")
            feats = self.encode_features(coords, visible, self.guide(images, coords))
        else:
            feats = self.encode_features(coords, visible)
        if not quantize:
            tokens = torch.full(feats.shape[:2], -1, dtype=torch.long, device=feats.device)
            return {"recon": self.decode_codes(feats), "tokens": tokens, "commit_loss": feats.new_zeros(())}
        quantized, tokens, commit_loss = self.quantize(feats)
        return {"recon": self.decode_codes(quantized), "tokens": tokens, "commit_loss": commit_loss}

    @torch.no_grad()
    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` int64 token ids -> ``(B, K, 2)`` normalised coords (reference path)."""
        return self.decode_codes(F.embedding(tokens, self.codebook))

    def inference_encoder(self) -> TokenEncoder | ScalarTokenEncoder:
        """A frozen, export-friendly copy of the encoder that maps poses to token ids (:class:`TokenEncoder` for
        vq, :class:`ScalarTokenEncoder` for fsq and lfq)."""
        return TokenEncoder(self) if self.quantizer_kind == "vq" else ScalarTokenEncoder(self)

    def inference_decoder(self) -> TokenDecoder:
        """A frozen, export-friendly copy of the decoder that maps token ids to poses."""
        return TokenDecoder(self)
