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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import FSQ, LFQ, VectorQuantize

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

        Returns ``recon`` ``(B, K, 2)``, ``tokens`` int64 ``(B, M)`` and the scalar ``commit_loss`` (the
        quantizer's loss, :meth:`quantize`). In training mode a vq quantizer also updates its codebook (EMA,
        k-means init on its first call, dead codes); fsq and lfq have no codebook state.
        With ``quantize=False`` the decoder reads the continuous features (the quantizer warm-up of
        :class:`~posetok.tasks.tokenizer.TokenizerTask`); ``tokens`` are then -1 and ``commit_loss`` is 0.
        """
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


def _spectral_norm_bound(w: torch.Tensor, squarings: int = 4) -> float:
    """An upper bound on the spectral norm of a float64 matrix ``w``, at most ``rank^(1/2^(squarings+2))`` times
    too large (1.1x for rank 512).

    ``|w|_2^2 = |G|_2`` for ``G = w^T w``, and ``|G|_2^n <= |G^n|_F``: ``G`` is squared ``squarings`` times,
    rescaled each time. (LAPACK's SVD gives the exact norm, but took 7 s instead of 30 ms for 512 x 512 on a busy
    2-core machine with 2 threads.)
    """
    g = w.t() @ w if w.shape[1] <= w.shape[0] else w @ w.t()
    log_norm = 0.0  # log |G|_2 <= sum_i log(f_i) / 2^i, f_i = |G_i|_F, G_{i+1} = (G_i / f_i)^2
    for i in range(squarings + 1):
        f = float(g.norm())
        if f == 0.0:
            return 0.0
        log_norm += math.log(f) / 2 ** i
        if i < squarings:
            g = (g / f) @ (g / f)
    return math.exp(log_norm / 2)


def _copy_encoder(module: nn.Module, model: PCTTokenizerModel) -> None:
    """Give an inference encoder frozen copies of ``model``'s encoder layers and quantizer (later changes to
    ``model`` do not reach it): ``start_embed``, ``invisible_token``, ``blocks``, ``norm``, ``token_mlp``,
    ``feature_embed``, ``quantizer``."""
    module.start_embed = copy.deepcopy(model.start_embed)
    module.invisible_token = nn.Parameter(model.invisible_token.detach().clone(), requires_grad=False)
    module.blocks = copy.deepcopy(model.encoder)
    module.norm = copy.deepcopy(model.encoder_norm)
    module.token_mlp = copy.deepcopy(model.token_mlp)
    module.feature_embed = copy.deepcopy(model.feature_embed)
    module.quantizer = copy.deepcopy(model.quantizer)


class TokenEncoder(nn.Module):
    """Poses to token ids, for inference and export: the same tokens as the training-time forward, faster.

    Built from a trained :class:`PCTTokenizerModel`; later changes to that model do not reach it. The feature
    projection and the joint-to-token mixing are linear, so they are folded into the codebook search: with
    joint features ``h_k``, the token feature is ``e_m = W (sum_k A_mk h_k + a_m) + b`` and the nearest code
    maximises ``e_m . c - |c|^2 / 2 = sum_k A_mk (h_k . W^T c) + a_m sum(W^T c) + b . c - |c|^2 / 2``. Scoring
    the ``K`` joint features against ``W^T c`` and mixing after costs ``K/M`` of scoring ``M`` token features
    and skips the projection, which about halves the work of the quantizer.

    The folded search adds the same terms in another order than the quantizer's distance does, so where two
    codes are almost equally near, float32 rounding could pick the other one. Every position whose best and
    second-best folded scores lie within a bound on that rounding error is therefore decided again by the
    training forward's own ops (:meth:`_reference_tokens`); :attr:`rechecked` counts them. The joint features
    ``h`` come from the encoder blocks' reference :meth:`~posetok.models.mixer.MixerLayer.forward`, so both
    paths start from the same bits.
    """

    def __init__(self, model: PCTTokenizerModel, chunk_size: int = 32) -> None:
        super().__init__()
        self.chunk_size = chunk_size
        #: Re-decide near ties by the reference formula. Off, or while tracing (export), the folded argmax alone.
        self.recheck = True
        #: Token positions the last call re-decided by the reference formula (its near ties).
        self.rechecked = 0
        _copy_encoder(self, model)
        # The copy must keep this codebook: an uninitialised one would k-means itself on the re-checked rows.
        self.quantizer._codebook.initted.fill_(True)
        with torch.no_grad():
            # Folded in float64 and rounded once, so the folded scores carry no error of the D_t-long sums.
            code = model.codebook.detach().double()  # (V, Dt)
            w, b = model.feature_embed.weight.detach().double(), model.feature_embed.bias.detach().double()
            a = model.token_mlp.bias.detach().double()  # (M,)
            proj = code @ w  # (V, H): W^T c for every code
            token_bias = a[:, None] * proj.sum(1)[None, :] + (code @ b - 0.5 * (code * code).sum(1))[None, :]
            self.register_buffer("code_proj_t", proj.t().float().contiguous())  # (H, V)
            self.register_buffer("mix", model.token_mlp.weight.detach().clone())  # (M, K)
            self.register_buffer("token_bias", token_bias.float().contiguous())  # (M, V)
            self._init_tie_bound(code, w, b, model.token_mlp.weight.detach().double(), a, proj, token_bias)
        self.eval().requires_grad_(False)

    def _init_tie_bound(self, code: torch.Tensor, w: torch.Tensor, b: torch.Tensor, mix: torch.Tensor,
                        a: torch.Tensor, proj: torch.Tensor, token_bias: torch.Tensor) -> None:
        """Constants of :meth:`_tie_tolerance` from the float64 codes ``c`` ``(V, Dt)``, ``W`` ``(Dt, H)``,
        ``b`` ``(Dt,)``, ``A`` ``(M, K)``, ``a`` ``(M,)``, ``W^T c`` ``(V, H)`` and folded bias ``(M, V)``.

        Both paths compute the score ``s_v = e . c_v - |c_v|^2 / 2`` of every code (the quantizer as
        ``(|e|^2 - d_v^2) / 2``, ``d_v^2 = |e|^2 + |c_v|^2 - 2 e . c_v``) from the same joint features ``h_k`` by
        float32 sums. The terms of a sum that pass ``n`` roundings carry about ``sqrt(n) u sum|terms|`` of error
        at most (u = 2^-24; the probabilistic bound of Higham and Mary, SIAM J. Sci. Comput. 2019: roundings are
        independent and centred; the worst case ``n u sum|terms|`` needs all of them to go the same way), and
        ``sum|x_i y_i| <= |x| |y|``. With ``r = sum_k |A_mk| |h_k|``, ``rho = r + |a_m| sqrt(H)`` (at least the norm
        of ``|A| |h| + |a|``), the token mix ``t = A h + a``, ``E = |W|_2 |t| + |b|`` (at least ``|e|``) and maxima
        over the codes:
        the folded products ``h_kj (W^T c)_j`` pass H + K roundings, ``W^T c`` is rounded once and the bias is
        rounded and added once: ``(sqrt(H + K) + 2) u r max|W^T c| + 2 u max_v |bias_mv|``;
        the reference sums ``t`` over K + 1 terms, which moves ``s`` by ``sqrt(K + 1) u rho max|W^T c|``,
        ``e = W t + b`` over H + 1 by ``sqrt(H + 1) u (|t| max| |W|^T |c| | + |b| max|c|)``, ``e . c`` and ``|c|^2``
        over D_t by ``sqrt(D_t) u (E max|c| + max|c|^2 / 2)``; its two additions (``u (E^2 + max|c|^2)`` and
        ``u d^2``, where ``d^2 <= 2 (E^2 + max|c|^2)``) and its square root (which merges squared distances within
        ``4 u d^2``; the lower id then wins) move it by ``5.5 u (E^2 + max|c|^2)``, and its clamp of ``d^2`` at
        1e-8 ties scores within 0.5e-8. The chosen code and its rival each carry both paths' errors: twice the
        sum. Collected: ``tol = const_m + sum_k joint_km |h_k| + |t| (lin + quad |t|)``.
        """
        u = torch.finfo(torch.float32).eps / 2
        hidden, joints, token_dim = w.shape[1], mix.shape[1], w.shape[0]
        p_max = float(proj.norm(dim=1).max())  # max_v |W^T c_v|
        q_max = float((code.abs() @ w.abs()).norm(dim=1).max())  # max_v | |W|^T |c_v| |
        c_max, b_norm = float(code.norm(dim=1).max()), float(b.norm())
        w_norm = _spectral_norm_bound(w)
        sum_t, sum_e, sum_dot = (joints + 1) ** 0.5, (hidden + 1) ** 0.5, token_dim ** 0.5
        per_r = ((hidden + joints) ** 0.5 + 2 + sum_t) * p_max
        const = (2 * token_bias.abs().amax(1) + sum_t * p_max * hidden ** 0.5 * a.abs() + sum_e * b_norm * c_max
                 + sum_dot * (b_norm * c_max + 0.5 * c_max ** 2) + 5.5 * (b_norm ** 2 + c_max ** 2))  # (M,)
        self.register_buffer("tie_const", (2 * u * const + 0.5e-8).float())  # (M,)
        self.register_buffer("tie_joint", (2 * u * per_r * mix.abs().t()).float().contiguous())  # (K, M)
        self._tie_lin = 2 * u * (sum_e * q_max + sum_dot * w_norm * c_max + 11.0 * w_norm * b_norm)
        self._tie_quad = 2 * u * 5.5 * w_norm ** 2

    def forward(self, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(B, K, 2)`` normalised coords, ``(B, K)`` bool visibility -> ``(B, M)`` int64 token ids.

        Large batches run in chunks of ``chunk_size`` poses: the intermediates then stay in cache and the
        allocator reuses their memory instead of page-faulting fresh buffers, which on CPU is worth about 1.5x
        (see docs/benchmarks.md). Set ``chunk_size = 0`` for one pass (export does). The near ties of all chunks
        are re-decided together at the end, in one call of the quantizer.
        """
        exact = self.recheck and not torch.jit.is_tracing() and self.token_bias.shape[1] > 1
        ids, rows, where, offset = [], [], [], 0
        for best_ids, tied, t in self._search(coords, visible, exact):
            if tied is not None and bool(tied.any()):
                rows.append(t[tied])
                where.append(tied.view(-1).nonzero().squeeze(1) + offset)
            ids.append(best_ids)
            offset += best_ids.numel()
        tokens = ids[0] if len(ids) == 1 else torch.cat(ids)
        self.rechecked = sum(len(r) for r in rows)
        if rows:
            tokens.view(-1)[torch.cat(where)] = self._reference_tokens(torch.cat(rows))
        return tokens

    @torch.no_grad()
    def near_ties(self, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` bool: the positions :meth:`forward` re-decides, where the folded search's best and second
        best codes lie within the rounding bound. An exported graph runs the folded search alone, so its tokens
        can differ from :meth:`forward`'s at such positions."""
        ties = [tied for _, tied, _ in self._search(coords, visible, True)]
        return ties[0] if len(ties) == 1 else torch.cat(ties)

    def _search(self, coords: torch.Tensor, visible: torch.Tensor, exact: bool
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]:
        """The folded search, chunk by chunk: best ids ``(b, M)``, then, if ``exact``, the near ties ``(b, M)``
        and the token mixes ``(b, M, H)`` of the chunk (None otherwise)."""
        n, size = coords.shape[0], self.chunk_size
        # One chunk takes the inputs whole (no slice, no test of the batch size: tracing would fix either).
        chunks = ([(coords, visible)] if size <= 0 or n <= size
                  else [(coords[i:i + size], visible[i:i + size]) for i in range(0, n, size)])
        for c, v in chunks:
            h = self._joint_features(c, v)  # (b, K, H)
            scores = torch.matmul(self.mix, torch.matmul(h, self.code_proj_t)).add_(self.token_bias)  # (b, M, V)
            if not exact:
                yield scores.argmax(-1), None, None
                continue
            # Best and second-best score: max, then max again with the best knocked out (topk is 40 % slower).
            best, best_ids = scores.max(-1)
            gap = best - scores.scatter_(-1, best_ids[..., None], float("-inf")).amax(-1)
            t = self._token_mix(h)  # (b, M, H)
            yield best_ids, gap <= self._tie_tolerance(h.norm(dim=-1), t.square().sum(-1).sqrt_()), t

    def _joint_features(self, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(B, K, 2)``, ``(B, K)`` -> ``(B, K, H)`` joint features ``h``, bit for bit as
        :meth:`PCTTokenizerModel.encode_features` computes them (the blocks' reference ``forward``, not
        ``forward_inference``: the tie bound and the re-check need the training forward's ``h``)."""
        x = self.start_embed(coords)
        x = torch.where(visible[..., None], x, self.invisible_token)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def _token_mix(self, h: torch.Tensor) -> torch.Tensor:
        """``(B, K, H)`` -> ``(B, M, H)`` token mixes ``t = A h + a``, as a transposed view like the training
        forward's (the same op, so the same bits)."""
        return self.token_mlp(h.transpose(1, 2)).transpose(1, 2)

    def _tie_tolerance(self, h_norm: torch.Tensor, t_norm: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` bound on how far float32 rounding can move the folded gap between the best code and any
        rival from the quantizer's (derived in :meth:`_init_tie_bound`), from the norms of the joint features
        ``(B, K)`` and of the token mixes ``(B, M)``."""
        tol = torch.addmm(self.tie_const, h_norm, self.tie_joint)
        return tol.addcmul_(t_norm, t_norm * self._tie_quad + self._tie_lin)

    def _reference_tokens(self, rows: torch.Tensor) -> torch.Tensor:
        """Token ids of ``(n, H)`` reference token-mixing rows, by the training forward's ops -> ``(n,)`` int64.

        The rows go through ``feature_embed`` laid out as :meth:`PCTTokenizerModel.encode_features` hands them
        over (a transposed view) and then through the quantizer's own distance and argmax. The reference never
        runs these matrix products on fewer rows than one pose has (``M``), and BLAS computes 1 or 2 rows by
        other kernels that sum in another order, so short inputs are padded with copies of their rows.
        """
        n, m = rows.shape[0], self.mix.shape[0]
        if n < m:
            rows = rows.repeat((m + n - 1) // n, 1)[:m]
        feats = self.feature_embed(rows.t().contiguous()[None].transpose(1, 2))  # (1, n', Dt)
        return self.quantizer(feats)[1][0, :n]


class ScalarTokenEncoder(nn.Module):
    """Poses to token ids of an fsq or lfq tokenizer, for inference and export: the ids of the training forward,
    bit for bit.

    A scalar quantizer rounds a few projected numbers each on its own; there is no search over codes to fold
    into the encoder as :class:`TokenEncoder` does for vq, and so nothing to re-check. This runs the training
    forward's own ops (encoder blocks, token mixing, feature projection, then a copy of the library quantizer,
    which traces to ONNX and TorchScript with a dynamic batch) on chunks of ``chunk_size`` poses.
    """

    #: Share of a value's magnitude (plus 1) within which :meth:`near_ties` calls it a rounding tie.
    tie_rel = 1e-5

    def __init__(self, model: PCTTokenizerModel, chunk_size: int = 32) -> None:
        super().__init__()
        self.chunk_size = chunk_size
        self.kind = model.quantizer_kind
        self.recheck = False  # nothing to re-decide: the same ops as the training forward
        self.rechecked = 0
        _copy_encoder(self, model)
        self.eval().requires_grad_(False)

    def _features(self, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(b, K, 2)``, ``(b, K)`` -> ``(b, M, token_dim)``, as :meth:`PCTTokenizerModel.encode_features` in
        eval mode."""
        x = self.start_embed(coords)
        x = torch.where(visible[..., None], x, self.invisible_token)
        for block in self.blocks:
            x = block(x)
        x = self.token_mlp(self.norm(x).transpose(1, 2)).transpose(1, 2)
        return self.feature_embed(x)

    def forward(self, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(B, K, 2)`` normalised coords, ``(B, K)`` bool visibility -> ``(B, M)`` int64 token ids."""
        n, size = coords.shape[0], self.chunk_size
        chunks = ([(coords, visible)] if size <= 0 or n <= size
                  else [(coords[i:i + size], visible[i:i + size]) for i in range(0, n, size)])
        ids = [self.quantizer(self._features(c, v))[1].long() for c, v in chunks]
        return ids[0] if len(ids) == 1 else torch.cat(ids)

    @torch.no_grad()
    def near_ties(self, coords: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` bool: positions where a quantized number lies within rounding distance of a decision
        boundary (an fsq value half-way between two levels, an lfq value at 0), so another runtime's float
        rounding may give another id there. :func:`posetok.export.export_tokenizer` tells such differences
        apart from export errors."""
        z = self.quantizer.project_in(self._features(coords, visible)).float()  # (B, M, d)
        if self.kind == "fsq":
            q = self.quantizer
            half_l = (q._levels - 1) * (1 + 1e-3) / 2
            offset = torch.where(q._levels % 2 == 0, 0.5, 0.0)
            z = torch.tanh(z + torch.atanh(offset / half_l)) * half_l - offset  # in level units
            margin = ((z - z.floor()) - 0.5).abs()
        else:
            margin = z.abs()
        return (margin <= self.tie_rel * (1 + z.abs())).any(-1)


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
