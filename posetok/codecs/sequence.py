"""The pose sequence tokenizer as a codec: whole clips in the user's units <-> grids of residual tokens.

A clip ``(T, N, D)`` (``D`` = 2 for ``x, y``, 3 for ``x, y, conf`` or ``x, y, z``) is cut into windows of the
model's ``sequence_length`` frames, each window normalised on its own by
:class:`~posetok.data.sequences.SequenceNormalizer` (root-centred per frame or per window, scaled by the torso
size) and encoded to ``(T', G, Q)`` tokens (``T'`` token frames, ``G`` joint groups, ``Q`` residual quantizers).
Decoding undoes the normalisation with the parameters kept beside the tokens, so users see their own units.
The codec holds a trained :class:`~posetok.models.sequence.SequenceTokenizerModel` and knows nothing of training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.sequences import PoseSequence, SequenceNormalizer, coords_dims, sliding_windows
from ..errors import PosetokError, field_error
from ..models.sequence import SequenceTokenizerModel


class SequenceCodec:
    """Whole clips in the user's units <-> token grids.

    A clip ``(T, N, D)`` is cut into windows of ``sequence_length`` frames (:func:`sliding_windows`, ``stride``
    frames apart, the last one ending at the last frame, a short clip padded), each window normalised on its own
    (:class:`SequenceNormalizer`) and encoded to ``(T', G, Q)`` tokens. :meth:`decode` decodes every window,
    undoes its normalisation and stitches the windows back, averaging frames that several windows cover.

    >>> codec = posetok.load("runs/seq/model.ckpt")
    >>> tokens, params = codec.encode(poses, mask, return_params=True)   # (W, T', G, Q), dict
    >>> recon = codec.decode(tokens, params)                              # (T, N, Dc) in the file's units

    Attributes:
        model, skeleton, coords, dims, normalizer, length (window frames), stride, info (the checkpoint's
        fields besides the weights, when loaded from a file).
    """

    def __init__(self, model: SequenceTokenizerModel, coords: str, min_conf: float = 0.3, stride: int | None = None,
                 batch_size: int = 64, center: str = "window") -> None:
        self.model = model.eval()
        self.dims = model.dims
        self.skeleton = model.skeleton
        self.coords = coords
        if coords_dims(coords) != self.dims.keypoint_dim or (coords == "2d+conf") != self.dims.has_confidence:
            raise PosetokError(f"coords '{coords}' does not fit the model's input: {self.dims.keypoint_dim} "
                               f"channels, {'with' if self.dims.has_confidence else 'without'} a confidence")
        self.normalizer = SequenceNormalizer(self.skeleton, coords, min_conf, center)
        self.length = int(self.dims.sequence_length)
        self.stride = int(stride) if stride else self.length
        self.batch_size = int(batch_size)
        self.encoder = model.inference_encoder()
        self._decoders: dict[int, torch.nn.Module] = {}
        self.info: dict[str, Any] = {}

    @property
    def num_quantizers(self) -> int:
        return self.model.num_quantizers

    @property
    def codebook_size(self) -> int:
        return self.model.codebook_size

    def decoder(self, num_quantizers: int | None = None) -> torch.nn.Module:
        q = int(num_quantizers or self.num_quantizers)
        if q not in self._decoders:
            self._decoders[q] = self.model.inference_decoder(q)
        return self._decoders[q]

    # -- input checks -------------------------------------------------------------------------------------

    def _check(self, poses: Any, mask: Any, source: str) -> tuple[np.ndarray, np.ndarray, bool]:
        x = np.asarray(poses.detach().cpu().numpy() if isinstance(poses, torch.Tensor) else poses)
        single = x.ndim == 3
        if x.ndim not in (3, 4):
            raise field_error(source, "poses", f"expected rank 3 (T, N, D) or 4 (B, T, N, D), got shape {x.shape}")
        if single:
            x = x[None]
        b, t, n, d = x.shape
        if t == 0:
            raise field_error(source, "poses", f"has no frames, got shape {x.shape}")
        if d != self.dims.keypoint_dim:
            raise field_error(source, "poses", f"expected D = {self.dims.keypoint_dim} channels per keypoint "
                                                f"(coords '{self.coords}') for this checkpoint, got shape {x.shape}")
        if n != self.skeleton.num_joints:
            raise field_error(source, "poses", f"expected N = {self.skeleton.num_joints} keypoints of skeleton "
                                                f"'{self.skeleton.name}', got shape {x.shape}")
        if mask is None:
            m = np.ones((b, t), dtype=bool)
        else:
            m = np.asarray(mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else mask).astype(bool)
            if single:
                m = m[None]
            if m.shape != (b, t):
                want = (t,) if single else (b, t)
                raise field_error(source, "mask", f"expected shape {want} to match 'poses', got "
                                                  f"{m.shape[1:] if single else m.shape}")
        x = x.astype(np.float32)
        bad = m & ~np.isfinite(x).all(axis=(2, 3))
        if bad.any():
            raise field_error(source, "poses", f"NaN or infinite values in valid frames ({int(bad.sum())} frames)")
        x = np.where(m[..., None, None], x, 0.0).astype(np.float32)
        return x, m, single

    # -- encode / decode ----------------------------------------------------------------------------------

    @torch.no_grad()
    def _encode_windows(self, windows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(windows), self.batch_size):
            p = torch.from_numpy(np.ascontiguousarray(windows[i:i + self.batch_size], dtype=np.float32))
            mk = torch.from_numpy(np.ascontiguousarray(masks[i:i + self.batch_size]))
            out.append(self.encoder(p, mk).cpu().numpy())
        return np.concatenate(out)

    def encode(self, poses: Any, mask: Any = None, return_params: bool = False, source: str = "input"
               ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
        """Poses ``(T, N, D)`` or ``(B, T, N, D)`` in the file's units -> tokens ``(W, T', G, Q)`` or
        ``(B, W, T', G, Q)`` int64 (``-1`` for windows without a valid frame).

        With ``return_params``, also the dict :meth:`decode` needs: ``root`` ``(W, C)`` (``(W, L, C)``, the
        root trajectory, when the codec centres per frame), ``scale`` ``(W,)``,
        ``starts`` ``(W,)``, ``mask`` ``(T,)`` (with a batch axis in front for batched input) and
        ``num_frames``. ``source`` names the input in error messages (a file path).
        """
        x, m, single = self._check(poses, mask, source)
        toks, roots, scales, starts = [], [], [], None
        for clip, cm in zip(x, m):
            windows, wmask, starts = sliding_windows(PoseSequence(source, clip, cm), self.length, self.stride)
            normed, params = self.normalizer.normalize(windows, wmask)
            normed[~wmask] = 0.0
            toks.append(self._encode_windows(normed, wmask))
            roots.append(params["root"])
            scales.append(params["scale"])
        tokens = np.stack(toks)
        params = {"root": np.stack(roots), "scale": np.stack(scales), "starts": starts, "mask": m,
                  "num_frames": np.int64(x.shape[1])}
        if single:
            tokens = tokens[0]
            params.update(root=params["root"][0], scale=params["scale"][0], mask=m[0])
        return (tokens, params) if return_params else tokens

    @torch.no_grad()
    def decode(self, tokens: Any, params: dict[str, Any], num_quantizers: int | None = None,
               with_confidence: bool = False, source: str = "tokens") -> np.ndarray:
        """Tokens of :meth:`encode` and its ``params`` -> poses ``(T, N, Dc)`` (or ``(B, T, N, Dc)``) float32 in
        the original units; frames outside ``params["mask"]`` are 0.

        Args:
            num_quantizers: decode from the first ``q`` quantizers only (a prefix of the residual code); tokens
                with fewer than ``Q`` columns are taken as such a prefix.
            with_confidence: for ``"2d+conf"`` checkpoints, append a confidence channel (1 in valid frames) so
                the output has the file format's ``D`` channels.
            source: names the tokens in error messages (a file path).
        """
        tok = np.asarray(tokens.detach().cpu().numpy() if isinstance(tokens, torch.Tensor) else tokens)
        single = tok.ndim == 4
        if tok.ndim not in (4, 5):
            raise field_error(source, "tokens", f"expected (W, T', G, Q) or (B, W, T', G, Q), got {tok.shape}")
        if tok.dtype.kind not in "iu" or (tok.size and (tok.min() < -1 or tok.max() >= self.codebook_size)):
            span = f", range [{tok.min()}, {tok.max()}]" if tok.size else ""
            raise field_error(source, "tokens", f"expected integer ids in [-1, {self.codebook_size}), got dtype "
                                                f"{tok.dtype}{span}")
        for key in ("root", "scale", "starts", "mask", "num_frames"):
            if key not in params:
                raise field_error(source, key, "missing; keep the params that encode(return_params=True) gave")
        root, scale = np.asarray(params["root"]), np.asarray(params["scale"])
        starts = np.asarray(params["starts"], dtype=np.int64)
        t = int(params["num_frames"])
        mask = np.asarray(params["mask"], dtype=bool)
        if single:
            tok, root, scale, mask = tok[None], root[None], scale[None], mask[None]
        g, qn = self.model.num_groups, self.num_quantizers
        if tok.shape[1] != len(starts) or tok.shape[3] != g or not 1 <= tok.shape[4] <= qn:
            raise field_error(source, "tokens", f"expected {len(starts)} windows of (T', {g}, <= {qn}) tokens, "
                                                  f"got {tok.shape[1:]}")
        q = int(num_quantizers or tok.shape[4])
        if not 1 <= q <= qn:
            raise PosetokError(f"num_quantizers must be in 1..{qn}, got {q}")
        tok = tok[..., :q]
        if q < qn:
            tok = np.concatenate([tok, np.full(tok.shape[:-1] + (qn - q,), -1, dtype=tok.dtype)], -1)
        dec = self.decoder(q)
        dc = self.dims.coord_dim
        out = np.zeros((len(tok), t, self.skeleton.num_joints, dc), dtype=np.float64)
        for c in range(len(tok)):
            flat = torch.from_numpy(tok[c].astype(np.int64))
            recon = torch.cat([dec(flat[i:i + self.batch_size]) for i in range(0, len(flat), self.batch_size)])
            # The decoder gives the coordinate channels only, which is what denormalize scales and moves.
            win = self.normalizer.denormalize(recon.cpu().numpy().astype(np.float64),
                                              {"root": root[c], "scale": scale[c]})
            acc = np.zeros_like(out[c])
            cnt = np.zeros(t)
            for w, s in enumerate(starts):
                e = min(int(s) + self.length, t)
                acc[s:e] += win[w, : e - s]
                cnt[s:e] += 1
            out[c] = acc / np.maximum(cnt, 1)[:, None, None]
        out[~mask] = 0.0
        if with_confidence and self.dims.has_confidence:
            out = np.concatenate([out, mask[..., None, None].repeat(out.shape[2], 2).astype(np.float64)], -1)
        out = out.astype(np.float32)
        return out[0] if single else out

    @torch.no_grad()
    def analyse(self, poses: Any, mask: Any = None, source: str = "input") -> dict[str, np.ndarray]:
        """The model's eval forward on the windows of one clip ``(T, N, D)``, for evaluation.

        Returns ``features`` and ``quantized`` ``(W, T', G, Dt)``, ``tokens`` ``(W, T', G, Q)`` (the model's
        reference path), ``token_mask`` ``(W, T')``, normalised ``target`` and ``recon`` ``(W, L, N, Dc)`` and
        the windows' ``mask`` ``(W, L)``.
        """
        x, m, _ = self._check(poses, mask, source)
        windows, wmask, _ = sliding_windows(PoseSequence(source, x[0], m[0]), self.length, self.stride)
        normed, _ = self.normalizer.normalize(windows, wmask)
        normed[~wmask] = 0.0
        p, mk = torch.from_numpy(np.ascontiguousarray(normed, dtype=np.float32)), torch.from_numpy(wmask)
        out = self.model(p, mk)
        coords, _ = self.model.split_confidence(p)
        return {"tokens": out["tokens"].numpy(), "features": out["features"].numpy(),
                "quantized": out["quantized"].numpy(),
                "token_mask": out["token_mask"].numpy(), "target": coords.numpy(), "recon": out["recon"].numpy(),
                "mask": wmask}


def side_bits(params: list[dict[str, Any]]) -> float:
    """Bits that decoding needs beside the tokens of clips encoded with ``params``
    (:meth:`SequenceCodec.encode`): ``root`` and ``scale`` as float32 and the frame ``mask`` at 1 bit per frame
    (window starts follow from the clip length)."""
    return float(sum((np.size(p["root"]) + np.size(p["scale"])) * 32 + np.size(p["mask"]) for p in params))
