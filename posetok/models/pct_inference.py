"""The PCT tokenizer's inference modules: poses to token ids and token ids to poses, frozen copies of a trained
:class:`~posetok.models.pct.PCTTokenizerModel` that give its tokens faster and export to ONNX and TorchScript.

An image-guided tokenizer's encoders take a third input, the joints' image features ``(B, K, C)`` of
:class:`~posetok.models.pct_guide.ImageGuide`; the guide itself stays outside them (one frozen backbone, shared).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from .pct import PCTTokenizerModel


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
    ``model`` do not reach it): ``start_embed``, ``guide_embed`` (None unless image-guided),
    ``invisible_token``, ``blocks``, ``norm``, ``token_mlp``, ``feature_embed``, ``quantizer``."""
    module.start_embed = copy.deepcopy(model.start_embed)
    module.guide_embed = copy.deepcopy(model.guide_embed)
    module.invisible_token = nn.Parameter(model.invisible_token.detach().clone(), requires_grad=False)
    module.blocks = copy.deepcopy(model.encoder)
    module.norm = copy.deepcopy(model.encoder_norm)
    module.token_mlp = copy.deepcopy(model.token_mlp)
    module.feature_embed = copy.deepcopy(model.feature_embed)
    module.quantizer = copy.deepcopy(model.quantizer)


def _chunks(size: int, *xs: torch.Tensor | None) -> list[tuple[torch.Tensor | None, ...]]:
    """``xs`` (batch first; None passes through) in chunks of ``size`` rows; one chunk takes the inputs whole (no
    slice, no test of the batch size: tracing would fix either)."""
    n = xs[0].shape[0]
    if size <= 0 or n <= size:
        return [xs]
    return [tuple(None if x is None else x[i:i + size] for x in xs) for i in range(0, n, size)]


def _start(module: nn.Module, coords: torch.Tensor, visible: torch.Tensor, guide: torch.Tensor | None
           ) -> torch.Tensor:
    """The joints' first features, as :meth:`PCTTokenizerModel.encode_features` in eval mode: the coordinate
    embedding (beside the image features' embedding, when guided), the invisible token where not visible."""
    x = module.start_embed(coords)
    if module.guide_embed is not None:
        if guide is None:
            raise ValueError("this tokenizer is image-guided: pass the joints' image features (B, K, C)")
        x = torch.cat([x, module.guide_embed(guide)], dim=-1)
    return torch.where(visible[..., None], x, module.invisible_token)


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

    def forward(self, coords: torch.Tensor, visible: torch.Tensor, guide: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``(B, K, 2)`` normalised coords, ``(B, K)`` bool visibility (and, image-guided, the joints' image
        features ``(B, K, C)``) -> ``(B, M)`` int64 token ids.

        Large batches run in chunks of ``chunk_size`` poses: the intermediates then stay in cache and the
        allocator reuses their memory instead of page-faulting fresh buffers, which on CPU is worth about 1.5x
        (see docs/benchmarks.md). Set ``chunk_size = 0`` for one pass (export does). The near ties of all chunks
        are re-decided together at the end, in one call of the quantizer.
        """
        exact = self.recheck and not torch.jit.is_tracing() and self.token_bias.shape[1] > 1
        ids, rows, where, offset = [], [], [], 0
        for best_ids, tied, t in self._search(coords, visible, guide, exact):
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
    def near_ties(self, coords: torch.Tensor, visible: torch.Tensor, guide: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """``(B, M)`` bool: the positions :meth:`forward` re-decides, where the folded search's best and second
        best codes lie within the rounding bound. An exported graph runs the folded search alone, so its tokens
        can differ from :meth:`forward`'s at such positions."""
        ties = [tied for _, tied, _ in self._search(coords, visible, guide, True)]
        return ties[0] if len(ties) == 1 else torch.cat(ties)

    def _search(self, coords: torch.Tensor, visible: torch.Tensor, guide: torch.Tensor | None, exact: bool
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]:
        """The folded search, chunk by chunk: best ids ``(b, M)``, then, if ``exact``, the near ties ``(b, M)``
        and the token mixes ``(b, M, H)`` of the chunk (None otherwise)."""
        for c, v, g in _chunks(self.chunk_size, coords, visible, guide):
            h = self._joint_features(c, v, g)  # (b, K, H)
            scores = torch.matmul(self.mix, torch.matmul(h, self.code_proj_t)).add_(self.token_bias)  # (b, M, V)
            if not exact:
                yield scores.argmax(-1), None, None
                continue
            # Best and second-best score: max, then max again with the best knocked out (topk is 40 % slower).
            best, best_ids = scores.max(-1)
            gap = best - scores.scatter_(-1, best_ids[..., None], float("-inf")).amax(-1)
            t = self._token_mix(h)  # (b, M, H)
            yield best_ids, gap <= self._tie_tolerance(h.norm(dim=-1), t.square().sum(-1).sqrt_()), t

    def _joint_features(self, coords: torch.Tensor, visible: torch.Tensor, guide: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """``(B, K, 2)``, ``(B, K)`` (and ``(B, K, C)``) -> ``(B, K, H)`` joint features ``h``, bit for bit as
        :meth:`PCTTokenizerModel.encode_features` computes them (the blocks' reference ``forward``, not
        ``forward_inference``: the tie bound and the re-check need the training forward's ``h``)."""
        x = _start(self, coords, visible, guide)
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

    def _features(self, coords: torch.Tensor, visible: torch.Tensor, guide: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """``(b, K, 2)``, ``(b, K)`` (and ``(b, K, C)``) -> ``(b, M, token_dim)``, as
        :meth:`PCTTokenizerModel.encode_features` in eval mode."""
        x = _start(self, coords, visible, guide)
        for block in self.blocks:
            x = block(x)
        x = self.token_mlp(self.norm(x).transpose(1, 2)).transpose(1, 2)
        return self.feature_embed(x)

    def forward(self, coords: torch.Tensor, visible: torch.Tensor, guide: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``(B, K, 2)`` normalised coords, ``(B, K)`` bool visibility (and, image-guided, the joints' image
        features ``(B, K, C)``) -> ``(B, M)`` int64 token ids."""
        ids = [self.quantizer(self._features(c, v, g))[1].long() for c, v, g in _chunks(self.chunk_size, coords,
                                                                                         visible, guide)]
        return ids[0] if len(ids) == 1 else torch.cat(ids)

    @torch.no_grad()
    def near_ties(self, coords: torch.Tensor, visible: torch.Tensor, guide: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """``(B, M)`` bool: positions where a quantized number lies within rounding distance of a decision
        boundary (an fsq value half-way between two levels, an lfq value at 0), so another runtime's float
        rounding may give another id there. :func:`posetok.export.export_tokenizer` tells such differences
        apart from export errors."""
        z = self.quantizer.project_in(self._features(coords, visible, guide)).float()  # (B, M, d)
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
