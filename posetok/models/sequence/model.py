"""The pose sequence tokenizer network, :class:`SequenceTokenizerModel`: encoder, residual quantizer, decoder.

The design (token grid, joint groups, prefix decoding, masks) is described in :mod:`posetok.models.sequence`.
"""

from __future__ import annotations

import torch
from torch import nn

from ...skeletons import Skeleton, get_skeleton, skeleton_for_joints
from ..stgcn import skeleton_graph
from .decoder import SequenceDecoder
from .dims import SequenceDims
from .encoder import SequenceEncoder
from .groups import resolve_groups
from .inference import SequenceTokenDecoder, SequenceTokenEncoder
from .quantizer import build_quantizer, code_tables, codes_from_indices, fixed_depth, run_quantizer


class SequenceTokenizerModel(nn.Module):
    """Pose sequence tokenizer network (see :mod:`posetok.models.sequence` for the design).

    Args:
        dims: sizes (:data:`~posetok.models.sequence.dims.PRESETS`).
        skeleton: the joint layout; default ``dims.skeleton`` or the registered one with ``num_keypoints``.
    """

    def __init__(self, dims: SequenceDims, skeleton: Skeleton | None = None) -> None:
        super().__init__()
        dims.validate()
        if skeleton is None:
            skeleton = get_skeleton(dims.skeleton) if dims.skeleton else skeleton_for_joints(dims.num_keypoints)
        if skeleton.num_joints != dims.num_keypoints:
            raise ValueError(f"skeleton '{skeleton.name}' has {skeleton.num_joints} joints, "
                             f"dims.num_keypoints is {dims.num_keypoints}")
        self.dims = dims
        self.skeleton = skeleton
        groups = resolve_groups(dims.joint_groups, skeleton)
        self.group_names = list(groups)
        self.groups = list(groups.values())
        A = skeleton_graph(skeleton, dims.graph_strategy)
        self.encoder = SequenceEncoder(dims, A, self.groups)
        self.quantizer = build_quantizer(dims)
        self.decoder = SequenceDecoder(dims, A, self.groups)

    @property
    def num_groups(self) -> int:
        """``G``."""
        return len(self.groups)

    @property
    def num_quantizers(self) -> int:
        """``Q``."""
        return self.dims.num_quantizers

    @property
    def quantizer_kind(self) -> str:
        """``rvq``, ``rfsq`` or ``rlfq``."""
        return self.dims.quantizer

    @property
    def codebook_size(self) -> int:
        """``V``: codes per quantizer (learned for rvq, implicit for rfsq and rlfq)."""
        return self.dims.codebook_size

    @property
    def codebooks(self) -> torch.Tensor:
        """``(Q, V, d)`` code vectors (:func:`~posetok.models.sequence.quantizer.code_tables`): in token space
        for rvq, in the quantizer's inner space, scaled per level, for rfsq and rlfq."""
        return code_tables(self.quantizer)

    def token_grid_shape(self, num_frames: int) -> tuple[int, int, int]:
        """``(T', G, Q)`` of a clip of ``num_frames`` frames."""
        return num_frames // self.dims.temporal_downsample, self.num_groups, self.num_quantizers

    def split_confidence(self, poses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, T, N, D)`` -> coordinates ``(B, T, N, Dc)`` and confidence ``(B, T, N)`` (None without one)."""
        if not self.dims.has_confidence:
            return poses, None
        return poses[..., : self.dims.coord_dim], poses[..., -1]

    def _check_input(self, poses: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        d = self.dims
        if poses.ndim != 4 or poses.shape[2] != d.num_keypoints or poses.shape[3] != d.keypoint_dim:
            raise ValueError(f"poses must be (B, T, {d.num_keypoints}, {d.keypoint_dim}), got {tuple(poses.shape)}")
        b, t = poses.shape[:2]
        if t % d.temporal_downsample:
            raise ValueError(f"T={t} frames is not a multiple of temporal_downsample={d.temporal_downsample}")
        if mask is None:
            return torch.ones(b, t, dtype=torch.bool, device=poses.device)
        if mask.shape != (b, t):
            raise ValueError(f"mask must be (B, T) = ({b}, {t}), got {tuple(mask.shape)}")
        return mask.bool()

    def _check_num_quantizers(self, num_quantizers: int | None) -> int | None:
        if num_quantizers is None or num_quantizers == self.num_quantizers:
            return None
        if not 1 <= num_quantizers <= self.num_quantizers:
            raise ValueError(f"num_quantizers must be in 1..{self.num_quantizers}, got {num_quantizers}")
        return num_quantizers

    def codes_from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T', G, q)`` token ids, ``q <= Q``, ``-1`` for none -> summed code vectors ``(B, T', G, token_dim)``."""
        return codes_from_indices(self.quantizer, tokens)

    def forward(self, poses: torch.Tensor, mask: torch.Tensor | None = None, num_quantizers: int | None = None,
                quantize: bool = True) -> dict[str, torch.Tensor]:
        """Training-time forward.

        Args:
            poses: ``(B, T, N, D)``, ``T`` a multiple of ``temporal_downsample``.
            mask: ``(B, T)`` bool, True for valid frames (None: all valid). Token windows without a valid frame
                get token ``-1``, zero code vectors, and stay out of the codebook updates and commitment loss.
            num_quantizers: decode from the first ``q`` quantizers only (all ``Q`` still run and, in training,
                update their codebooks). None: all, or in training a random prefix (quantizer dropout).
            quantize: False bypasses the quantizer (a warm-up of the auto-encoder): tokens are ``-1``.

        Returns:
            ``recon`` ``(B, T, N, Dc)``; ``tokens`` int64 ``(B, T', G, q)`` (``q = num_quantizers or Q``; in
            training with quantizer dropout, ids past the sampled depth are ``-1``); ``commit_loss`` scalar (the
            sum over the quantizers used, already scaled by ``commitment_weight``; 0 in eval mode);
            ``commit_losses`` ``(q,)``; ``quantized`` ``(B, T', G, token_dim)`` decoder input; ``features`` the
            encoder output before quantization; ``token_mask`` ``(B, T')`` bool.
        """
        mask = self._check_input(poses, mask)
        q = self._check_num_quantizers(num_quantizers)
        feats = self.encoder(poses, mask)  # (B, T', G, Dt)
        token_mask = self.encoder.token_mask(mask)
        b, tp, g, dt = feats.shape
        if not quantize:
            width = q or self.num_quantizers
            return {
                "recon": self.decoder(feats), "features": feats, "quantized": feats, "token_mask": token_mask,
                "tokens": torch.full((b, tp, g, width), -1, dtype=torch.long, device=feats.device),
                "commit_loss": feats.new_zeros(()), "commit_losses": feats.new_zeros(width),
            }
        flat = feats.reshape(b, tp * g, dt)
        flat_mask = token_mask[:, :, None].expand(b, tp, g).reshape(b, tp * g)
        with fixed_depth(self.quantizer, q is not None):
            quantized, indices, losses = run_quantizer(self.quantizer, flat, flat_mask)
        if q is not None:
            indices, losses = indices[..., :q], losses[:q]
            codes = self.codes_from_tokens(indices.reshape(b, tp, g, q)).reshape(b, tp * g, dt)
            if self.training:
                codes = flat + (codes - flat).detach()  # straight-through, as the quantizer itself does
            quantized = torch.where(flat_mask[..., None], codes, torch.zeros_like(codes))
        quantized = quantized.reshape(b, tp, g, dt)
        return {
            "recon": self.decoder(quantized),
            "tokens": indices.reshape(b, tp, g, -1),
            "commit_loss": losses.sum(),
            "commit_losses": losses,
            "quantized": quantized,
            "features": feats,
            "token_mask": token_mask,
        }

    @torch.no_grad()
    def encode(self, poses: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, N, D)`` poses -> ``(B, T', G, Q)`` int64 tokens (reference path, eval mode only).

        In training mode the forward would update the codebooks and drop quantizers, hence the error.
        """
        if self.training:
            raise RuntimeError("encode() needs the model in eval mode (call .eval())")
        return self.forward(poses, mask)["tokens"]

    @torch.no_grad()
    def decode_tokens(self, tokens: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """``(B, T', G, q)`` int64 tokens (``q <= Q``, ``-1`` for none) -> ``(B, T, N, Dc)`` coordinates.

        A prefix of the quantizers decodes: pass ``tokens[..., :q]`` or ``num_quantizers=q``.
        """
        if tokens.ndim != 4 or tokens.shape[2] != self.num_groups or tokens.shape[3] > self.num_quantizers:
            raise ValueError(f"tokens must be (B, T', {self.num_groups}, <= {self.num_quantizers}), "
                             f"got {tuple(tokens.shape)}")
        if num_quantizers is not None:
            tokens = tokens[..., : self._check_num_quantizers(num_quantizers) or self.num_quantizers]
        return self.decoder(self.codes_from_tokens(tokens))

    def inference_encoder(self) -> SequenceTokenEncoder:
        """A frozen, export-friendly copy of the encoder that maps poses to tokens (:class:`SequenceTokenEncoder`)."""
        return SequenceTokenEncoder(self)

    def inference_decoder(self, num_quantizers: int | None = None) -> SequenceTokenDecoder:
        """A frozen, export-friendly copy of the decoder that maps tokens to poses (:class:`SequenceTokenDecoder`)."""
        return SequenceTokenDecoder(self, num_quantizers)
