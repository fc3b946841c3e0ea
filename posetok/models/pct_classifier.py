"""Stage II of PCT (Geng et al., CVPR 2023): the token classifier head and the soft-token decoder.

The classifier reads the backbone's lowest-resolution map (stride 32: ``8 x 8`` cells at a ``256 x 256`` input)
and predicts, for each of the tokenizer's ``M`` tokens, logits over its ``V`` codebook entries. The layers are
those of the official ``PCT_Head`` (``models/pct_head.py``, ``configs/pct_base_classifier.py``):

* 1 x 1 conv to ``conv_channels`` (256), BN, ReLU; ``conv_blocks`` (2) residual basic blocks (two 3 x 3 convs
  with BN);
* flatten the ``h x w`` cells, cell-major (``(N, C, h, w) -> (N, h w C)``, as the official code transposes
  before flattening); Linear to ``M x hidden_dim`` (64), LayerNorm, ReLU; reshape to ``(N, M, hidden_dim)``;
* ``num_blocks`` (4) Mixer layers (:class:`~posetok.models.mixer.MixerLayer`: hidden 64, channel MLP 256, token
  MLP 64, the same block as the official ``MixerLayer``), then Linear 64 -> 64, LayerNorm, ReLU;
* Linear ``hidden_dim -> V``: logits ``(N, M, V)``.

At test time there is no argmax: :class:`SoftTokenDecoder` mixes the code vectors by ``softmax(logits)`` and runs
the frozen tokenizer decoder on the mixture, giving joints in the tokenizer's normalised crop frame (``u, v`` in
``[-0.5, 0.5]``, :mod:`posetok.codecs.crop`). Training uses the same path for its joint loss.

Initialisation follows the official head: convolutions N(0, 0.001) without bias, BN weight 1 and bias 0; linear
layers keep PyTorch's default.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .mixer import MixerLayer
from .pct import DecoderDims, PCTTokenizerModel


@dataclass
class PCTHeadDims:
    """Layer sizes of the classifier head (defaults: the official ``pct_base_classifier.py``)."""

    conv_channels: int = 256
    conv_blocks: int = 2
    hidden_dim: int = 64
    num_blocks: int = 4
    token_inter_dim: int = 64
    hidden_inter_dim: int = 256
    dropout: float = 0.0


@dataclass
class SoftDecoderDims:
    """What fixes the tokenizer's decoder as the estimator keeps it (JSON-friendly; saved in checkpoints).

    ``num_tokens`` ``M``, ``token_dim`` the code vectors' width, ``codebook_size`` ``V``, ``decoder`` the Mixer
    decoder's sizes (:class:`~posetok.models.pct.DecoderDims`).
    """

    num_joints: int = 17
    num_tokens: int = 34
    token_dim: int = 512
    codebook_size: int = 2048
    decoder: dict[str, Any] = field(default_factory=lambda: asdict(DecoderDims()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SoftDecoderDims:
        """Inverse of :meth:`to_dict`; unknown keys raise ``KeyError``."""
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise KeyError(", ".join(unknown))
        out = cls(**d)
        out.decoder = asdict(DecoderDims(**out.decoder))  # checks the decoder's keys too
        return out

    @classmethod
    def of_tokenizer(cls, model: PCTTokenizerModel) -> SoftDecoderDims:
        """The dims of a trained tokenizer's decoder."""
        cb = model.dims.codebook
        return cls(num_joints=model.num_joints, num_tokens=cb.num_tokens, token_dim=int(model.codebook.shape[1]),
                   codebook_size=model.codebook_size, decoder=asdict(model.dims.decoder))


class BasicBlock(nn.Module):
    """ResNet basic block at constant width: ``relu(x + bn(conv3x3(relu(bn(conv3x3(x))))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(out)))


def _fc_block(din: int, dout: int) -> nn.Sequential:
    """Linear, LayerNorm, ReLU (the official ``FCBlock``)."""
    return nn.Sequential(nn.Linear(din, dout), nn.LayerNorm(dout), nn.ReLU())


class PCTClassifierHead(nn.Module):
    """Backbone maps -> token logits ``(N, M, V)`` (see the module docstring for the layers).

    Args:
        in_channels: channels of the backbone's last map ``feats[-1]``.
        feature_size: ``(w, h)`` cells of that map (the input size / 32); the flattening Linear depends on it.
        num_tokens: ``M``.
        codebook_size: ``V``.
        dims: layer sizes.
    """

    def __init__(self, in_channels: int, feature_size: tuple[int, int], num_tokens: int, codebook_size: int,
                 dims: PCTHeadDims | None = None) -> None:
        super().__init__()
        d = dims or PCTHeadDims()
        self.dims = d
        self.num_tokens = int(num_tokens)
        self.feature_size = (int(feature_size[0]), int(feature_size[1]))
        c = d.conv_channels
        self.transition = nn.Sequential(nn.Conv2d(in_channels, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.blocks = nn.Sequential(*(BasicBlock(c) for _ in range(d.conv_blocks)))
        cells = self.feature_size[0] * self.feature_size[1]
        self.token_embed = _fc_block(c * cells, self.num_tokens * d.hidden_dim)
        self.mixers = nn.ModuleList(
            MixerLayer(d.hidden_dim, d.hidden_inter_dim, self.num_tokens, d.token_inter_dim, d.dropout)
            for _ in range(d.num_blocks))
        self.mixer_out = _fc_block(d.hidden_dim, d.hidden_dim)
        self.classifier = nn.Linear(d.hidden_dim, int(codebook_size))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, feats: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """``feats[-1]`` ``(N, C, h, w)`` (or that tensor alone) -> logits ``(N, M, V)``."""
        x = feats if isinstance(feats, torch.Tensor) else feats[-1]
        x = self.blocks(self.transition(x))
        # cell-major flattening, as the official head (flatten(2).transpose(2, 1).flatten(1))
        x = self.token_embed(x.flatten(2).transpose(1, 2).flatten(1))
        x = x.reshape(x.shape[0], self.num_tokens, -1)
        for block in self.mixers:
            x = block(x)
        return self.classifier(self.mixer_out(x))


class SoftTokenDecoder(nn.Module):
    """Token logits ``(N, M, V)`` -> joints ``(N, K, 2)`` in the normalised crop frame, through a frozen PCT
    decoder: ``softmax(logits) @ codebook`` (a soft mixture of code vectors per token), then the decoder's layers
    exactly as :meth:`~posetok.models.pct.PCTTokenizerModel.decode_codes` runs them. One-hot logits give the
    decoding of their argmax tokens.

    Build it empty from :class:`SoftDecoderDims` (a checkpoint then fills it) or copied from a trained tokenizer
    with :meth:`from_tokenizer`. Its weights never train: ``requires_grad`` is off and :meth:`train` keeps it
    in eval mode; gradients still flow through it to the logits. A plain module: export traces it.
    """

    def __init__(self, dims: SoftDecoderDims) -> None:
        super().__init__()
        self.dims = dims
        dec = DecoderDims(**dims.decoder)
        k, m = dims.num_joints, dims.num_tokens
        self.register_buffer("codebook", torch.zeros(dims.codebook_size, dims.token_dim))  # (V, Dt)
        self.decoder_token_mlp = nn.Linear(m, k)
        self.decoder_start = nn.Linear(dims.token_dim, dec.hidden_dim)
        self.decoder = nn.ModuleList(
            MixerLayer(dec.hidden_dim, dec.hidden_inter_dim, k, dec.token_inter_dim, dec.dropout)
            for _ in range(dec.num_blocks))
        self.decoder_norm = nn.LayerNorm(dec.hidden_dim)
        self.recover_embed = nn.Linear(dec.hidden_dim, 2)
        self.requires_grad_(False)
        super().train(False)

    _COPIED = ("decoder_token_mlp", "decoder_start", "decoder", "decoder_norm", "recover_embed")

    @classmethod
    def from_tokenizer(cls, model: PCTTokenizerModel) -> SoftTokenDecoder:
        """A frozen copy of ``model``'s decoder and code vectors (``model.codebook``: the learned codes of vq,
        the implicit codes of fsq and lfq)."""
        out = cls(SoftDecoderDims.of_tokenizer(model))
        with torch.no_grad():
            out.codebook.copy_(model.codebook.detach().float())
            for name in cls._COPIED:
                getattr(out, name).load_state_dict(copy.deepcopy(getattr(model, name).state_dict()))
        return out

    def train(self, mode: bool = True) -> SoftTokenDecoder:
        return super().train(False)  # frozen: always eval (no dropout), whatever the parent does

    def codes(self, logits: torch.Tensor) -> torch.Tensor:
        """``(N, M, V)`` logits -> ``(N, M, Dt)`` soft code vectors ``softmax(logits) @ codebook``."""
        return torch.matmul(torch.softmax(logits.float(), dim=-1), self.codebook.float())

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """``(N, M, Dt)`` code vectors -> ``(N, K, 2)`` normalised coords (the tokenizer decoder's ops)."""
        x = self.decoder_token_mlp(codes.transpose(1, 2)).transpose(1, 2)
        x = self.decoder_start(x)
        for block in self.decoder:
            x = block(x)
        return self.recover_embed(self.decoder_norm(x))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """``(N, M, V)`` logits -> ``(N, K, 2)`` float32 joints, normalised crop coordinates.

        Always in float32, also under mixed-precision autocast: a mixture of up to 2048 codes in fp16 / bf16 would
        lose the small probabilities, and the decoder's joints are a fraction of a pixel apart."""
        if torch.is_autocast_enabled(logits.device.type):
            with torch.autocast(logits.device.type, enabled=False):
                return self.decode_codes(self.codes(logits)).float()
        return self.decode_codes(self.codes(logits)).float()


def person_scores(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, M, V)`` logits -> the official person score ``(N,)``: the mean over tokens of the top-1 logit
    (unbounded), and a calibrated one in ``[0, 1]``: the mean over tokens of the top-1 softmax probability."""
    logits = logits.float()
    return logits.amax(-1).mean(-1), torch.softmax(logits, -1).amax(-1).mean(-1)


def token_accuracy(logits: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...] = (1, 5)
                   ) -> dict[int, torch.Tensor]:
    """Share of tokens whose target id ``(N, M)`` is among the top-``k`` logits ``(N, M, V)``, for each ``k``."""
    top = logits.topk(min(max(ks), logits.shape[-1]), dim=-1).indices  # (N, M, kmax)
    hit = top == targets[..., None]
    return {k: hit[..., :k].any(-1).float().mean() for k in ks}
