"""Sizes of the pose sequence tokenizer: :class:`SequenceDims`, the named :data:`PRESETS` and :func:`preset_dims`."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: The residual quantizers of the sequence tokenizer (``SequenceDims.quantizer``).
QUANTIZERS = ("rvq", "rfsq", "rlfq")


@dataclass
class SequenceDims:
    """Sizes of a :class:`~posetok.models.sequence.SequenceTokenizerModel`.

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
        codebook_size: ``V`` codes per quantizer (rfsq: ``prod(levels)``; rlfq: a power of 2).
        ema_decay: codebook EMA decay (rvq only, as are the next three).
        kmeans_init: initialise each codebook by k-means on its first training batch.
        kmeans_iters: k-means iterations of that initialisation.
        dead_code_threshold: EMA cluster size below which a code is re-seeded from the batch.
        quantizer: ``rvq`` (residual VQ), ``rfsq`` (residual finite scalar quantization) or ``rlfq`` (residual
            lookup-free quantization); see :mod:`~posetok.models.sequence.quantizer`.
        levels: rfsq: quantization levels per dimension (each >= 2), ``V = prod(levels)``.
        entropy_loss_weight: rlfq: weight of the entropy loss of each level.
        diversity_gamma: rlfq: weight of the batch entropy in that loss.
        quantize_dropout: train with a random number of quantizers so every prefix decodes.
        quantize_dropout_cutoff_index: the least number of quantizers minus 1 that dropout keeps.
        commitment_weight: weight of the commitment loss inside the quantizer (rvq, rlfq).
        dropout: dropout in the ST-GCN blocks.
        graph_strategy: adjacency partition (:func:`~posetok.models.stgcn.skeleton_graph`).
        skeleton: registered skeleton name; ``None`` picks the one with ``num_keypoints`` joints.
        joint_groups: ``"parts"`` (:func:`~posetok.models.sequence.groups.joint_groups`), ``"single"``
            (``G = 1``) or explicit lists of joint indices that partition the joints.
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
    quantizer: str = "rvq"  # checkpoints written before the choice existed are rvq
    levels: list[int] | None = None
    entropy_loss_weight: float = 0.1
    diversity_gamma: float = 1.0

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
        self.validate_quantizer()

    def validate_quantizer(self) -> None:
        """Raise ``ValueError("field: problem")`` when the quantizer settings do not fit together."""
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer: unknown quantizer '{self.quantizer}' (known: {', '.join(QUANTIZERS)})")
        if self.quantizer == "rfsq":
            if not self.levels or any(int(v) < 2 for v in self.levels):
                raise ValueError("levels: rfsq needs a list of levels, each >= 2 (e.g. [8, 5, 5, 5])")
            if self.codebook_size != math.prod(self.levels):
                raise ValueError(f"codebook_size: {self.codebook_size} != prod(levels) = {math.prod(self.levels)} "
                                 "(leave it unset for rfsq)")
        elif self.levels is not None:
            raise ValueError(f"levels: applies to rfsq only, the quantizer is {self.quantizer}")
        v = self.codebook_size
        if self.quantizer == "rlfq" and (v < 2 or v & (v - 1)):
            raise ValueError(f"codebook_size: rlfq needs a power of 2 (2^bits codes), got {v}")

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

