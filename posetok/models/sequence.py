"""A pose sequence tokenizer: ST-GCN encoder, residual vector quantization, ST-GCN decoder.

Poses ``(B, T, N, D)`` (``N`` joints of one :class:`~posetok.skeletons.Skeleton`, ``D`` channels per joint: 2-D or
3-D coordinates, optionally followed by a detection confidence) become a grid of discrete tokens
``(B, T', G, Q)``:

- ``T' = T / temporal_downsample``: the encoder's ST-GCN blocks stride along time (powers of 2).
- ``G`` joint groups: each token summarises one body part over ``temporal_downsample`` frames. By default the
  groups are the skeleton's parts (:func:`joint_groups`): body, feet, face, left hand and right hand for
  COCO-WholeBody, and torso/head, the two arms and the two legs for body-only layouts. One token per part
  rather than one pooled over all joints gives the small, fast-moving parts (hands, face) codes of their own
  instead of sharing one vector with the body, the point of the design for 133 joints;
  ``joint_groups="single"`` gives ``G = 1``.
- ``Q`` residual quantizers (``vector_quantize_pytorch.ResidualVQ``, EMA codebooks with k-means init and
  dead-code re-seeding): token ``q`` codes what tokens ``0..q-1`` left over. Training with quantizer dropout
  makes every prefix ``1..Q`` decodable, so a coarser, shorter code is the same token grid cut after ``q``.

Each group's token vector is a learned linear map of that group's per-joint features (and the decoder maps it
back to per-joint features), so a token keeps which joint moved how, not just a pooled average.

The decoder upsamples back to ``T`` (transposed temporal convolutions between ST-GCN blocks) and a shared
per-joint head outputs coordinates ``(B, T, N, Dc)``. Only coordinates are reconstructed: a confidence channel
(``has_confidence``) is an input the encoder sees and, in :func:`sequence_losses`, a per-joint loss weight.

The model expects coordinates already normalised by the caller (e.g. centred on the root and scaled to unit
body size); it holds no data transforms, no I/O and no training loop. Token id ``-1`` means "no code": a
token window with no valid frame, or a quantizer cut off by quantizer dropout. It decodes as a zero vector.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import ResidualVQ

from ..skeletons import Skeleton, get_skeleton, skeleton_for_joints
from .stgcn import STGCNBlock, skeleton_graph


@dataclass
class SequenceDims:
    """Sizes of a :class:`SequenceTokenizerModel`.

    Attributes:
        num_keypoints: ``N`` joints.
        keypoint_dim: ``D`` input channels per joint (``(x, y, conf)`` is 3).
        has_confidence: the last input channel is a confidence; only the first ``D - 1`` are reconstructed.
        sequence_length: ``T`` frames the model is trained on; any multiple of ``temporal_downsample`` runs.
        hidden_dim: channels of the ST-GCN blocks.
        num_layers: ST-GCN blocks in the encoder (and in the decoder).
        temporal_kernel: temporal kernel of the blocks (odd).
        temporal_downsample: frames per token, a power of 2; ``log2`` of it encoder blocks halve time.
        joint_dim: per-joint feature size that a group's token is made from (and decoded back to).
        token_dim: size of one token vector (the codebook vectors).
        num_quantizers: ``Q`` residual quantizers.
        codebook_size: ``V`` codes per quantizer.
        ema_decay: codebook EMA decay.
        kmeans_init: initialise each codebook by k-means on its first training batch.
        kmeans_iters: k-means iterations of that initialisation.
        dead_code_threshold: EMA cluster size below which a code is re-seeded from the batch.
        quantize_dropout: train with a random number of quantizers so every prefix decodes.
        quantize_dropout_cutoff_index: the least number of quantizers minus 1 that dropout keeps.
        commitment_weight: weight of the commitment loss inside the quantizer.
        dropout: dropout in the ST-GCN blocks.
        graph_strategy: adjacency partition (:func:`~posetok.models.stgcn.skeleton_graph`).
        skeleton: registered skeleton name; ``None`` picks the one with ``num_keypoints`` joints.
        joint_groups: ``"parts"`` (:func:`joint_groups`), ``"single"`` (``G = 1``) or explicit lists of joint
            indices that partition the joints.
    """

    num_keypoints: int = 133
    keypoint_dim: int = 3
    has_confidence: bool = True
    sequence_length: int = 64
    hidden_dim: int = 256
    num_layers: int = 6
    temporal_kernel: int = 9
    temporal_downsample: int = 4
    joint_dim: int = 32
    token_dim: int = 256
    num_quantizers: int = 4
    codebook_size: int = 1024
    ema_decay: float = 0.99
    kmeans_init: bool = True
    kmeans_iters: int = 10
    dead_code_threshold: float = 2.0
    quantize_dropout: bool = True
    quantize_dropout_cutoff_index: int = 0
    commitment_weight: float = 1.0
    dropout: float = 0.0
    graph_strategy: str = "spatial"
    skeleton: str | None = None
    joint_groups: Any = field(default="parts")  # str or list[list[int]]

    @property
    def coord_dim(self) -> int:
        """``Dc``: reconstructed channels per joint."""
        return self.keypoint_dim - int(self.has_confidence)

    @property
    def num_downsamples(self) -> int:
        return int(math.log2(self.temporal_downsample))

    def validate(self) -> None:
        """Raise ``ValueError`` on inconsistent sizes."""
        ds = self.temporal_downsample
        if ds < 1 or ds & (ds - 1):
            raise ValueError(f"temporal_downsample must be a power of 2, got {ds}")
        if self.num_layers < self.num_downsamples + 1:
            raise ValueError(f"num_layers={self.num_layers} cannot halve time {self.num_downsamples} times: "
                             "the first block never strides, so num_layers must be > log2(temporal_downsample)")
        if self.coord_dim < 1:
            raise ValueError(f"keypoint_dim={self.keypoint_dim} leaves no coordinates to reconstruct")
        if self.sequence_length % ds:
            raise ValueError(f"sequence_length={self.sequence_length} is not a multiple of temporal_downsample={ds}")
        if not 0 <= self.quantize_dropout_cutoff_index < self.num_quantizers:
            raise ValueError("quantize_dropout_cutoff_index must be in [0, num_quantizers)")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SequenceDims:
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# default: the sizes users of the reference pose sequence tokenizer know (COCO-WholeBody 133 joints of
# (x, y, conf), 64 frames, hidden 256, 4 x 1024 codes). small: trains on a CPU in minutes (COCO-17).
# large: a wider, deeper model with 8 quantizers.
PRESETS: dict[str, SequenceDims] = {
    "default": SequenceDims(),
    "small": SequenceDims(
        num_keypoints=17, sequence_length=32, hidden_dim=64, num_layers=3, joint_dim=16, token_dim=64,
        num_quantizers=4, codebook_size=256, kmeans_iters=5,
    ),
    "large": SequenceDims(hidden_dim=512, num_layers=9, joint_dim=64, token_dim=512, num_quantizers=8),
}


def preset_dims(name: str, overrides: dict[str, Any] | None = None) -> SequenceDims:
    """The dims of preset ``name`` with ``overrides[field]`` replacing any value that is not None."""
    if name not in PRESETS:
        raise KeyError(name)
    dims = copy.deepcopy(PRESETS[name])
    names = {f.name for f in fields(dims)}
    for key, value in (overrides or {}).items():
        if key not in names:
            raise KeyError(key)
        if value is not None:
            setattr(dims, key, value)
    return dims


_FINGER_WORDS = ("hand", "thumb", "forefinger", "finger", "pinky")
_ARM_WORDS = ("shoulder", "elbow", "wrist")
_LEG_WORDS = ("hip", "knee", "ankle", "foot")


def _part_of(name: str, whole_body: bool) -> str:
    side = "left" if name.startswith("left") else "right" if name.startswith("right") else ""
    if name.startswith("face"):
        return "face"
    if side and any(w in name for w in _FINGER_WORDS):
        return f"{side}_hand"
    if "toe" in name or "heel" in name:
        return "feet"
    if whole_body:
        return "body"
    if side and any(w in name for w in _ARM_WORDS):
        return f"{side}_arm"
    if side and any(w in name for w in _LEG_WORDS):
        return f"{side}_leg"
    return "torso"


_PART_ORDER = ("torso", "left_arm", "right_arm", "left_leg", "right_leg", "body", "feet", "face", "left_hand",
               "right_hand")


def joint_groups(skeleton: Skeleton) -> dict[str, list[int]]:
    """The skeleton's body parts, by joint name: one token group each, in a fixed order.

    Layouts with face, hand or foot joints (COCO-WholeBody) split into ``body``, ``feet``, ``face``,
    ``left_hand``, ``right_hand``; body-only layouts (COCO-17, MPII, Human3.6M) into ``torso`` (head, spine,
    pelvis), ``left_arm``, ``right_arm``, ``left_leg``, ``right_leg``. Empty parts are left out.
    """
    names = skeleton.joint_names
    whole_body = any(_part_of(n, False) in ("face", "feet", "left_hand", "right_hand") for n in names)
    parts: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        parts.setdefault(_part_of(n, whole_body), []).append(i)
    return {p: parts[p] for p in _PART_ORDER if p in parts}


def _resolve_groups(spec: Any, skeleton: Skeleton) -> dict[str, list[int]]:
    n = skeleton.num_joints
    if spec == "parts":
        return joint_groups(skeleton)
    if spec == "single":
        return {"all": list(range(n))}
    if isinstance(spec, str):
        raise ValueError(f"joint_groups must be 'parts', 'single' or lists of joint indices, got '{spec}'")
    groups = {f"group{g}": [int(j) for j in idx] for g, idx in enumerate(spec)}
    flat = sorted(j for idx in groups.values() for j in idx)
    if flat != list(range(n)) or any(not idx for idx in groups.values()):
        raise ValueError(f"joint_groups must partition the {n} joints into non-empty groups")
    return groups


def _strides(num_layers: int, num_downsamples: int) -> list[int]:
    """Temporal stride of each block: 2 in ``num_downsamples`` blocks spread evenly over ``1 .. num_layers - 1``.

    The first block never strides (it lifts the ``D`` input channels); the positions are distinct because they
    are at least one block apart before rounding.
    """
    step = (num_layers - 1) / max(num_downsamples, 1)
    pos = {math.floor((j + 1) * step + 0.5) for j in range(num_downsamples)}
    return [2 if i in pos else 1 for i in range(num_layers)]


class SequenceEncoder(nn.Module):
    """Poses ``(B, T, N, D)`` and a frame mask ``(B, T)`` -> continuous token features ``(B, T', G, token_dim)``."""

    def __init__(self, dims: SequenceDims, A: torch.Tensor, groups: list[list[int]]) -> None:
        super().__init__()
        self.temporal_downsample = dims.temporal_downsample
        strides = _strides(dims.num_layers, dims.num_downsamples)
        self.blocks = nn.ModuleList(
            STGCNBlock(dims.keypoint_dim if i == 0 else dims.hidden_dim, dims.hidden_dim, A, dims.temporal_kernel,
                       stride=s, dropout=dims.dropout, residual=i > 0)  # ST-GCN's first block has no residual
            for i, s in enumerate(strides)
        )
        self.joint_proj = nn.Conv2d(dims.hidden_dim, dims.joint_dim, 1)
        self.group_sizes = [len(g) for g in groups]
        for g, idx in enumerate(groups):
            self.register_buffer(f"group_index_{g}", torch.tensor(idx, dtype=torch.long), persistent=False)
        self.group_proj = nn.ModuleList(nn.Linear(len(g) * dims.joint_dim, dims.token_dim) for g in groups)

    def token_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` bool frame mask -> ``(B, T')`` bool: a token is valid if any frame of its window is."""
        # A max-pool over each window: no Python sizes, so the batch and length stay dynamic on export.
        ds = self.temporal_downsample
        return F.max_pool1d(mask.to(torch.float32)[:, None], ds, ds)[:, 0] > 0

    def forward(self, poses: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, N, D)`` poses, ``(B, T)`` bool mask (None: all valid) -> ``(B, T', G, token_dim)``.

        Invalid frames are zeroed first (a select, so NaN padding is fine too) so that padding content never
        reaches the tokens.
        """
        if mask is not None:
            poses = torch.where(mask[:, :, None, None], poses, torch.zeros_like(poses))
        x = poses.permute(0, 3, 1, 2)  # (B, D, T, N)
        for block in self.blocks:
            x = block(x)
        h = self.joint_proj(x).permute(0, 2, 3, 1)  # (B, T', N, joint_dim)
        tokens = [proj(h.index_select(2, getattr(self, f"group_index_{g}")).flatten(2))
                  for g, proj in enumerate(self.group_proj)]
        return torch.stack(tokens, dim=2)


class SequenceDecoder(nn.Module):
    """Token vectors ``(B, T', G, token_dim)`` -> coordinates ``(B, T' * temporal_downsample, N, Dc)``."""

    def __init__(self, dims: SequenceDims, A: torch.Tensor, groups: list[list[int]]) -> None:
        super().__init__()
        self.joint_dim = dims.joint_dim
        self.group_sizes = [len(g) for g in groups]
        self.group_proj = nn.ModuleList(nn.Linear(dims.token_dim, len(g) * dims.joint_dim) for g in groups)
        order = [j for g in groups for j in g]
        # The groups' joints come out concatenated in group order; this gather puts them back in joint order.
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        self.register_buffer("joint_order", inverse, persistent=False)
        # Mirror of the encoder: upsample (x2 in time) before the blocks where the encoder strided.
        layers: list[nn.Module] = []
        for i, s in enumerate(_strides(dims.num_layers, dims.num_downsamples)):
            if s == 2:
                layers.append(nn.Sequential(
                    nn.ConvTranspose2d(dims.hidden_dim, dims.hidden_dim, (4, 1), (2, 1), (1, 0)),  # exactly 2 T
                    nn.BatchNorm2d(dims.hidden_dim),
                    nn.ReLU(inplace=True),
                ))
            layers.append(STGCNBlock(dims.joint_dim if i == 0 else dims.hidden_dim, dims.hidden_dim, A,
                                     dims.temporal_kernel, dropout=dims.dropout))
        self.layers = nn.ModuleList(layers)
        self.head = nn.Conv2d(dims.hidden_dim, dims.coord_dim, 1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """``(B, T', G, token_dim)`` -> ``(B, T, N, Dc)``."""
        parts = [proj(codes[:, :, g]).unflatten(-1, (size, self.joint_dim))
                 for g, (proj, size) in enumerate(zip(self.group_proj, self.group_sizes))]
        x = torch.cat(parts, dim=2).index_select(2, self.joint_order)  # (B, T', N, joint_dim)
        x = x.permute(0, 3, 1, 2)  # (B, joint_dim, T', N)
        for layer in self.layers:
            x = layer(x)
        return self.head(x).permute(0, 2, 3, 1)


class SequenceTokenizerModel(nn.Module):
    """Pose sequence tokenizer network (see the module docstring for the design).

    Args:
        dims: sizes (:data:`PRESETS`).
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
        groups = _resolve_groups(dims.joint_groups, skeleton)
        self.group_names = list(groups)
        self.groups = list(groups.values())
        A = skeleton_graph(skeleton, dims.graph_strategy)
        self.encoder = SequenceEncoder(dims, A, self.groups)
        self.quantizer = ResidualVQ(
            dim=dims.token_dim,
            num_quantizers=dims.num_quantizers,
            codebook_size=dims.codebook_size,
            decay=dims.ema_decay,
            kmeans_init=dims.kmeans_init,
            kmeans_iters=dims.kmeans_iters,
            threshold_ema_dead_code=dims.dead_code_threshold,
            commitment_weight=dims.commitment_weight,
            quantize_dropout=dims.quantize_dropout,
            quantize_dropout_cutoff_index=dims.quantize_dropout_cutoff_index,
        )
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
    def codebook_size(self) -> int:
        """``V``."""
        return self.dims.codebook_size

    @property
    def codebooks(self) -> torch.Tensor:
        """``(Q, V, token_dim)`` code vectors."""
        return self.quantizer.codebooks

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

    @contextmanager
    def _fixed_depth(self, fixed: bool) -> Iterator[None]:
        """Switch the quantizer's random dropout off while a caller asks for an explicit number of quantizers."""
        saved = self.quantizer.quantize_dropout
        if fixed:
            self.quantizer.quantize_dropout = False
        try:
            yield
        finally:
            self.quantizer.quantize_dropout = saved

    def codes_from_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T', G, q)`` token ids, ``q <= Q``, ``-1`` for none -> summed code vectors ``(B, T', G, token_dim)``."""
        b, tp, g, q = tokens.shape
        flat = F.pad(tokens.reshape(b, tp * g, q), (0, self.num_quantizers - q), value=-1)
        return self.quantizer.get_output_from_indices(flat).reshape(b, tp, g, -1)

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
        with self._fixed_depth(q is not None):
            quantized, indices, losses = self.quantizer(flat, mask=flat_mask)
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


class SequenceTokenEncoder(nn.Module):
    """Poses to tokens, for inference and export: the tokens of the model's eval-mode forward.

    Built from a trained :class:`SequenceTokenizerModel`; later changes to that model do not reach it. The
    residual search is a fixed loop over the ``Q`` codebooks with the distance computed as
    ``vector_quantize_pytorch`` computes it (``sqrt(|x|^2 + |c|^2 - 2 x.c)``, first index on ties), so the ids
    match the library's exactly. No data-dependent control flow: it traces with a dynamic batch and a dynamic
    number of frames (a multiple of ``temporal_downsample``).
    """

    def __init__(self, model: SequenceTokenizerModel) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(model.encoder)
        self.num_groups = model.num_groups
        with torch.no_grad():
            codebooks = model.codebooks.detach().float().clone()  # (Q, V, Dt)
            self.register_buffer("codebooks", codebooks)
            self.register_buffer("code_sq", (codebooks**2).sum(-1))  # (Q, V)
        self.eval().requires_grad_(False)

    def forward(self, poses: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, N, D)`` poses, ``(B, T)`` bool frame mask (None: all valid) -> ``(B, T', G, Q)`` int64."""
        feats = self.encoder(poses, mask)  # (B, T', G, Dt)
        # Reshape back with reshape_as, never with Python sizes: the ONNX exporter would bake those in.
        grid = feats[..., 0]  # (B, T', G)
        residual = feats.float().reshape(1, -1, feats.shape[-1])  # (1, M, Dt): one row per token, as the library
        ids = []
        for q in range(self.codebooks.shape[0]):
            code = self.codebooks[q]
            xy = torch.einsum("bid,bjd->bij", residual, code[None]) * -2
            dist = ((residual**2).sum(-1)[:, :, None] + self.code_sq[q][None, None, :] + xy).clamp(min=1e-8).sqrt()
            idx = (-dist).argmax(-1)  # (1, M)
            ids.append(idx.reshape_as(grid))
            residual = residual - F.embedding(idx, code)
        tokens = torch.stack(ids, dim=-1)
        if mask is not None:
            # Arithmetic rather than where(valid, tokens, full_like(tokens, -1)): the ONNX exporter folds that
            # full_like into a constant of the traced shape, which breaks dynamic batch and length.
            valid = self.encoder.token_mask(mask)[:, :, None, None].long()
            tokens = tokens * valid + (valid - 1)
        return tokens


class SequenceTokenDecoder(nn.Module):
    """Tokens to poses, for inference and export.

    Input ``(B, T', G, Q)`` int64 with ``-1`` for "no code" (zero vector). The ``Q`` codebooks are one flat
    table, so the lookup is a single gather whatever ``Q``; ``num_quantizers = q`` bakes a prefix in (the later
    columns are ignored). Traces with a dynamic batch and number of token frames.
    """

    def __init__(self, model: SequenceTokenizerModel, num_quantizers: int | None = None) -> None:
        super().__init__()
        self.decoder = copy.deepcopy(model.decoder)
        q_all, v = model.num_quantizers, model.codebook_size
        q = model._check_num_quantizers(num_quantizers) or q_all
        with torch.no_grad():
            self.register_buffer("code_table", model.codebooks.detach().float().reshape(q_all * v, -1).clone())
            self.register_buffer("offsets", torch.arange(q_all, dtype=torch.long) * v)  # (Q,)
            self.register_buffer("keep", (torch.arange(q_all) < q).float())  # (Q,): 1 for the used prefix
        self.eval().requires_grad_(False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T', G, Q)`` int64 tokens -> ``(B, T, N, Dc)`` coordinates."""
        valid = (tokens >= 0).float() * self.keep  # (B, T', G, Q)
        codes = F.embedding(tokens.clamp(min=0) + self.offsets, self.code_table)  # (B, T', G, Q, Dt)
        return self.decoder((codes * valid[..., None]).sum(-2))


DEFAULT_LOSS_WEIGHTS: dict[str, float] = {"recon": 1.0, "velocity": 0.1, "bone": 0.1, "commit": 1.0}


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    values = torch.where(weights > 0, values, torch.zeros_like(values))
    return (values * weights).sum() / weights.sum().clamp(min=1e-6)


def sequence_losses(
    recon: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    conf: torch.Tensor | None = None,
    skeleton: Skeleton | Sequence[tuple[int, int]] | None = None,
    weights: dict[str, float] | None = None,
    commit_loss: torch.Tensor | None = None,
    kind: str = "l1",
    beta: float = 0.05,
    conf_threshold: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Losses of a reconstructed pose sequence.

    Args:
        recon: ``(B, T, N, Dc)`` reconstructed coordinates.
        target: ``(B, T, N, Dc)`` input coordinates (without the confidence channel).
        mask: ``(B, T)`` bool valid frames (None: all).
        conf: ``(B, T, N)`` joint confidences, used as per-joint weights clipped to ``[0, 1]``; joints at or
            below ``conf_threshold`` weigh 0 (None: all 1).
        skeleton: a skeleton or a list of limbs for the bone-length loss (None: no bone loss).
        weights: ``recon``, ``velocity``, ``bone``, ``commit`` weights of the total (missing keys:
            :data:`DEFAULT_LOSS_WEIGHTS`).
        commit_loss: the model's ``commit_loss`` (None: 0).
        kind: ``"l1"`` or ``"smooth_l1"`` (with ``beta``) for the position and velocity terms.

    Returns:
        ``recon`` (weighted per-joint error of the positions), ``velocity`` (of the frame-to-frame differences,
        over pairs of consecutive valid frames: a constant offset costs nothing here), ``bone`` (mean absolute
        difference of limb lengths, both ends weighted), ``commit`` and ``total``; all scalars.
    """
    if recon.shape != target.shape:
        raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} differ")
    if kind not in ("l1", "smooth_l1"):
        raise ValueError(f"unknown loss kind '{kind}'; choose l1 or smooth_l1")
    w = {**DEFAULT_LOSS_WEIGHTS, **(weights or {})}
    b, t, n, _ = recon.shape
    # Selects, not products, throughout: masked-out frames may hold NaN (NaN * 0 is NaN, also in the gradient).
    weight = recon.new_ones(b, t, n)
    if conf is not None:
        weight = torch.where(conf > conf_threshold, conf.to(recon.dtype).clamp(0, 1), torch.zeros_like(weight))
    if mask is not None:
        weight = torch.where(mask[:, :, None], weight, torch.zeros_like(weight))
    target = torch.where(weight[..., None] > 0, target, torch.zeros_like(target))

    def dist(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # per joint, averaged over coordinates
        if kind == "l1":
            return (a - c).abs().mean(-1)
        return F.smooth_l1_loss(a, c, reduction="none", beta=beta).mean(-1)

    out: dict[str, torch.Tensor] = {"recon": _weighted_mean(dist(recon, target), weight)}
    if t > 1:
        vel_w = weight[:, 1:] * weight[:, :-1]
        out["velocity"] = _weighted_mean(dist(recon[:, 1:] - recon[:, :-1], target[:, 1:] - target[:, :-1]), vel_w)
    else:
        out["velocity"] = recon.new_zeros(())
    limbs = skeleton.limbs if isinstance(skeleton, Skeleton) else (skeleton or ())
    if limbs:
        a = torch.tensor([l[0] for l in limbs], device=recon.device)
        c = torch.tensor([l[1] for l in limbs], device=recon.device)

        def lengths(x: torch.Tensor) -> torch.Tensor:  # eps keeps the gradient finite for zero-length bones
            return ((x[:, :, a] - x[:, :, c]) ** 2).sum(-1).add(1e-8).sqrt()

        out["bone"] = _weighted_mean((lengths(recon) - lengths(target)).abs(), weight[:, :, a] * weight[:, :, c])
    else:
        out["bone"] = recon.new_zeros(())
    out["commit"] = commit_loss if commit_loss is not None else recon.new_zeros(())
    out["total"] = sum(w[k] * out[k] for k in ("recon", "velocity", "bone", "commit"))
    return out
