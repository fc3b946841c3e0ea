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
- ``Q`` residual quantizers (``dims.quantizer``: ``rvq``, ``vector_quantize_pytorch.ResidualVQ`` with EMA
  codebooks, k-means init and dead-code re-seeding; or ``rfsq`` / ``rlfq``, residual finite scalar or lookup-free
  quantization with implicit codebooks): token ``q`` codes what tokens ``0..q-1`` left over. Training with
  quantizer dropout makes every prefix ``1..Q`` decodable, so a coarser, shorter code is the same token grid cut
  after ``q``.

Each group's token vector is a learned linear map of that group's per-joint features (and the decoder maps it
back to per-joint features), so a token keeps which joint moved how, not just a pooled average.

The decoder upsamples back to ``T`` (transposed temporal convolutions between ST-GCN blocks) and a shared
per-joint head outputs coordinates ``(B, T, N, Dc)``. Only coordinates are reconstructed: a confidence channel
(``has_confidence``) is an input the encoder sees and, in :func:`sequence_losses`, a per-joint loss weight.

The model expects coordinates already normalised by the caller (e.g. centred on the root and scaled to unit
body size); it holds no data transforms, no I/O and no training loop. Token id ``-1`` means "no code": a

Modules: :mod:`.dims` (:class:`SequenceDims`, :data:`PRESETS`, :func:`preset_dims`), :mod:`.groups` (joint
groups), :mod:`.encoder` (:class:`SequenceEncoder`), :mod:`.quantizer` (the residual quantizer and helpers around
it), :mod:`.decoder` (:class:`SequenceDecoder`), :mod:`.model` (:class:`SequenceTokenizerModel`),
:mod:`.inference` (:class:`SequenceTokenEncoder`, :class:`SequenceTokenDecoder`) and :mod:`.losses`
(:func:`sequence_losses`). Their public names are importable from this package.
"""

from .decoder import SequenceDecoder
from .dims import PRESETS, QUANTIZERS, SequenceDims, preset_dims
from .encoder import SequenceEncoder
from .groups import joint_groups
from .inference import SequenceTokenDecoder, SequenceTokenEncoder
from .losses import DEFAULT_LOSS_WEIGHTS, sequence_losses
from .model import SequenceTokenizerModel

__all__ = [
    "DEFAULT_LOSS_WEIGHTS",
    "PRESETS",
    "QUANTIZERS",
    "SequenceDecoder",
    "SequenceDims",
    "SequenceEncoder",
    "SequenceTokenDecoder",
    "SequenceTokenEncoder",
    "SequenceTokenizerModel",
    "joint_groups",
    "preset_dims",
    "sequence_losses",
]
