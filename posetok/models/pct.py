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
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import VectorQuantize

from .mixer import MixerLayer


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


@dataclass
class CodebookDims:
    num_tokens: int = 34
    token_dim: int = 512
    size: int = 2048
    ema_decay: float = 0.9
    kmeans_init: bool = True
    kmeans_iters: int = 10
    dead_code_threshold: float = 1.0  # EMA cluster size below which a code is re-seeded from the batch


@dataclass
class PCTDims:
    encoder: EncoderDims
    decoder: DecoderDims
    codebook: CodebookDims

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PCTDims:
        return cls(EncoderDims(**d["encoder"]), DecoderDims(**d["decoder"]), CodebookDims(**d["codebook"]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    Args:
        num_joints: ``K``.
        dims: layer sizes (:data:`PRESETS`).
    """

    def __init__(self, num_joints: int, dims: PCTDims) -> None:
        super().__init__()
        enc, dec, cb = dims.encoder, dims.decoder, dims.codebook
        self.num_joints = num_joints
        self.dims = dims
        self.drop_rate = enc.drop_rate
        self.start_embed = nn.Linear(2, enc.hidden_dim)
        self.invisible_token = nn.Parameter(torch.zeros(1, 1, enc.hidden_dim))
        nn.init.normal_(self.invisible_token, std=0.02)
        self.encoder = nn.ModuleList(
            MixerLayer(enc.hidden_dim, enc.hidden_inter_dim, num_joints, enc.token_inter_dim, enc.dropout)
            for _ in range(enc.num_blocks)
        )
        self.encoder_norm = nn.LayerNorm(enc.hidden_dim)
        self.token_mlp = nn.Linear(num_joints, cb.num_tokens)
        self.feature_embed = nn.Linear(enc.hidden_dim, cb.token_dim)
        self.quantizer = VectorQuantize(
            dim=cb.token_dim,
            codebook_size=cb.size,
            decay=cb.ema_decay,
            kmeans_init=cb.kmeans_init,
            kmeans_iters=cb.kmeans_iters,
            threshold_ema_dead_code=cb.dead_code_threshold,
            commitment_weight=1.0,
            rotation_trick=False,  # PCT trains with the plain straight-through estimator
        )
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
    def codebook_size(self) -> int:
        return self.dims.codebook.size

    @property
    def codebook(self) -> torch.Tensor:
        """``(V, token_dim)`` code vectors."""
        return self.quantizer.codebook

    def encode_features(self, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(B, K, 2)`` normalised coords and ``(B, K)`` bool visibility -> ``(B, M, token_dim)`` features.

        While training, a random ``drop_rate`` share of the visible joints is also replaced by the invisible
        token, so the tokenizer learns to complete poses.
        """
        if self.training and self.drop_rate > 0:
            visible = visible & (torch.rand(visible.shape, device=visible.device) >= self.drop_rate)
        x = self.start_embed(coords)
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

    def forward(self, coords: torch.Tensor, visible: torch.Tensor, quantize: bool = True) -> dict[str, torch.Tensor]:
        """Training-time forward.

        Returns ``recon`` ``(B, K, 2)``, ``tokens`` int64 ``(B, M)`` and the scalar ``commit_loss``. In training
        mode the quantizer also updates its codebook (EMA, k-means init on its first call, dead codes).
        With ``quantize=False`` the decoder reads the continuous features (the quantizer warm-up of
        :class:`~posetok.tasks.tokenizer.TokenizerTask`); ``tokens`` are then -1 and ``commit_loss`` is 0.
        """
        feats = self.encode_features(coords, visible)
        if not quantize:
            tokens = torch.full(feats.shape[:2], -1, dtype=torch.long, device=feats.device)
            return {"recon": self.decode_codes(feats), "tokens": tokens, "commit_loss": feats.new_zeros(())}
        quantized, tokens, commit_loss = self.quantizer(feats)
        return {"recon": self.decode_codes(quantized), "tokens": tokens, "commit_loss": commit_loss}

    @torch.no_grad()
    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` int64 token ids -> ``(B, K, 2)`` normalised coords (reference path)."""
        return self.decode_codes(F.embedding(tokens, self.codebook))

    def inference_encoder(self) -> TokenEncoder:
        """A frozen, export-friendly copy of the encoder that maps poses to token ids (see :class:`TokenEncoder`)."""
        return TokenEncoder(self)

    def inference_decoder(self) -> TokenDecoder:
        """A frozen, export-friendly copy of the decoder that maps token ids to poses."""
        return TokenDecoder(self)


class TokenEncoder(nn.Module):
    """Poses to token ids, for inference and export: the same tokens as the training-time forward, faster.

    Built from a trained :class:`PCTTokenizerModel`; later changes to that model do not reach it. The feature
    projection and the joint-to-token mixing are linear, so they are folded into the codebook search: with
    joint features ``h_k``, the token feature is ``e_m = W (sum_k A_mk h_k + a_m) + b`` and the nearest code
    maximises ``e_m . c - |c|^2 / 2 = sum_k A_mk (h_k . W^T c) + a_m sum(W^T c) + b . c - |c|^2 / 2``. Scoring
    the ``K`` joint features against ``W^T c`` and mixing after costs ``K/M`` of scoring ``M`` token features
    and skips the projection, which about halves the work of the quantizer.
    """

    def __init__(self, model: PCTTokenizerModel, chunk_size: int = 32) -> None:
        super().__init__()
        self.chunk_size = chunk_size
        self.start_embed = copy.deepcopy(model.start_embed)
        self.invisible_token = nn.Parameter(model.invisible_token.detach().clone(), requires_grad=False)
        self.blocks = copy.deepcopy(model.encoder)
        self.norm = copy.deepcopy(model.encoder_norm)
        with torch.no_grad():
            code = model.codebook.detach().float()  # (V, Dt)
            w, b = model.feature_embed.weight.detach(), model.feature_embed.bias.detach()  # (Dt, H), (Dt,)
            proj = code @ w  # (V, H): W^T c for every code
            token_bias = model.token_mlp.bias.detach()[:, None] * proj.sum(1)[None, :]  # (M, V)
            token_bias += (code @ b - 0.5 * (code * code).sum(1))[None, :]
            self.register_buffer("code_proj_t", proj.t().contiguous())  # (H, V)
            self.register_buffer("mix", model.token_mlp.weight.detach().clone())  # (M, K)
            self.register_buffer("token_bias", token_bias.contiguous())  # (M, V)
        self.eval().requires_grad_(False)

    def forward(self, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(B, K, 2)`` normalised coords, ``(B, K)`` bool visibility -> ``(B, M)`` int64 token ids.

        Large batches run in chunks of ``chunk_size`` poses: the intermediates then stay in cache and the
        allocator reuses their memory instead of page-faulting fresh buffers, which on CPU is worth about 1.5x
        (see docs/benchmarks.md). Set ``chunk_size = 0`` for one pass (export does).
        """
        n = coords.shape[0]
        if self.chunk_size <= 0 or n <= self.chunk_size:
            return self._encode(coords, visible)
        return torch.cat([self._encode(coords[i:i + self.chunk_size], visible[i:i + self.chunk_size])
                          for i in range(0, n, self.chunk_size)])

    def _encode(self, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        x = self.start_embed(coords)
        x = torch.where(visible[..., None], x, self.invisible_token)
        for block in self.blocks:
            x = block.forward_inference(x)
        x = self.norm(x)
        scores = torch.matmul(self.mix, torch.matmul(x, self.code_proj_t))  # (B, M, V)
        return scores.add_(self.token_bias).argmax(-1)


class TokenDecoder(nn.Module):
    """Token ids to poses, for inference and export.

    The decoder's first two layers (token-to-joint mixing, then the channel projection) are linear, so the
    projection is applied once to every code when the decoder is built, and decoding starts from a table
    lookup of ``decoder_hidden`` instead of ``token_dim`` wide vectors.
    """

    def __init__(self, model: PCTTokenizerModel) -> None:
        super().__init__()
        with torch.no_grad():
            w, b = model.decoder_start.weight.detach(), model.decoder_start.bias.detach()  # (Hd, Dt), (Hd,)
            self.register_buffer("code_table", model.codebook.detach().float() @ w.t())  # (V, Hd)
            self.register_buffer("mix", model.decoder_token_mlp.weight.detach().clone())  # (K, M)
            joint_bias = model.decoder_token_mlp.bias.detach()[:, None] * w.sum(1)[None, :] + b[None, :]
            self.register_buffer("joint_bias", joint_bias)  # (K, Hd)
        self.blocks = copy.deepcopy(model.decoder)
        self.norm = copy.deepcopy(model.decoder_norm)
        self.recover_embed = copy.deepcopy(model.recover_embed)
        self.eval().requires_grad_(False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` int64 token ids -> ``(B, K, 2)`` normalised coords."""
        x = torch.matmul(self.mix, F.embedding(tokens, self.code_table)) + self.joint_bias
        for block in self.blocks:
            x = block.forward_inference(x)
        return self.recover_embed(self.norm(x))
