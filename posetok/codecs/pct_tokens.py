"""The PCT token classifier's codec: keypoints in input-crop pixels <-> PCT token ids (targets) and the
classifier's outputs -> keypoints and scores.

Frames. Keypoints are ``(N, K, 3)`` float32 ``x, y, v`` in *input pixels* of the ``input_size = (w, h)`` crop,
pixel ``i`` centred on ``i`` (:mod:`posetok.data.topdown`), in the classic frame of MMPose 0.x that the official
PCT uses (``use_udp=False``): ``x_in = (u + 0.5) * w`` for the normalised crop coordinate ``u`` of
:mod:`posetok.codecs.crop`, the frame the pose tokenizer works in. A crop cut with the tokenizer's aspect ratio and
padding (checked at construction) therefore puts a pose at the same normalised coordinates the tokenizer saw
when it was trained, whatever the augmentation did to the crop: the tokens are those of the pose as it appears in
the crop.

* :meth:`PCTTokenCodec.encode`: keypoints -> the token ids of the frozen tokenizer's encoder ``(N, M)`` int64,
  the normalised coordinates ``(N, K, 2)`` and target weights ``(N, K)`` (``v > 0``). It needs the tokenizer's
  encoder (``encoder``); a codec rebuilt from an estimator checkpoint has none and only decodes.
* :meth:`PCTTokenCodec.decode_outputs`: the network's ``{"logits": (N, M, V), "coords": (N, K, 2)}``
  (``coords`` decoded from the soft tokens ``softmax(logits) @ codebook`` by the frozen decoder inside the
  network, :class:`~posetok.models.pct_classifier.SoftTokenDecoder`) -> keypoints ``(N, K, 2)`` input pixels and
  scores ``(N, K)``: the person's score for every joint, the official mean over tokens of the top-1 logit
  (``score="logit"``, unbounded) or the mean top-1 softmax probability (``score="prob"``, in ``[0, 1]``).
* :meth:`PCTTokenCodec.merge_flip`: the flip test as the official code: the joints of the mirrored crop are
  mirrored back (``x -> w - 1 - x``, left and right swapped) and averaged with the first pass's, and so are the
  two passes' scores. Token logits of a mirrored pose are no permutation of the original's: the first pass's are
  kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import PosetokError, field_error

SCORES = ("logit", "prob")


def _person_scores_np(logits: np.ndarray) -> dict[str, np.ndarray]:
    """``(N, M, V)`` logits -> ``{"score_logit": (N,) mean top-1 logit, "score_prob": (N,) mean top-1
    probability}``."""
    x = np.asarray(logits, np.float64)
    top = x.max(-1)
    prob = 1.0 / np.exp(x - top[..., None]).sum(-1)  # softmax at the top-1 entry
    return {"score_logit": top.mean(-1).astype(np.float32), "score_prob": prob.mean(-1).astype(np.float32)}


class PCTTokenCodec:
    """Keypoints <-> PCT tokens for the token classifier (frames and outputs in the module docstring).

    Args:
        input_size: ``(w, h)`` of the network input (pixels).
        num_joints: ``K``.
        num_tokens: ``M``, the tokenizer's tokens per pose.
        codebook_size: ``V``.
        score: ``"logit"`` (official) or ``"prob"``, the joint score :meth:`decode_outputs` returns.
        encoder: the tokenizer's inference encoder, ``(B, K, 2)`` normalised coords and ``(B, K)`` bool
            visibility -> ``(B, M)`` int64 ids (:meth:`~posetok.models.pct.PCTTokenizerModel.inference_encoder`);
            None: decoding only.
        guide: an image-guided tokenizer's guide (:class:`~posetok.models.pct_guide.ImageGuide`): its ids need
            the crops, so :meth:`encode` leaves them out and the training step computes them on its device
            from the batch's crops (:meth:`tokens_for`), as the official code runs its frozen copy there.
    """

    type: ClassVar[str] = "pct"
    udp: ClassVar[bool] = False  # the classic crop warp (MMPose 0.x, as the official PCT)

    def __init__(self, input_size: tuple[int, int], num_joints: int, num_tokens: int, codebook_size: int,
                 score: str = "logit", encoder: nn.Module | None = None, guide: nn.Module | None = None) -> None:
        if score not in SCORES:
            raise PosetokError(f"codec: field 'score': expected one of {', '.join(SCORES)}, got {score!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.num_joints = int(num_joints)
        self.num_tokens = int(num_tokens)
        self.codebook_size = int(codebook_size)
        self.score = score
        self.encoder = encoder
        self.guide = guide
        self._span_t = torch.tensor(self.input_size, dtype=torch.float32)

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, skeleton: str, input_size: tuple[int, int], padding: float,
                      score: str = "logit", source: str = "model.tokenizer") -> PCTTokenCodec:
        """The codec of an estimator with ``skeleton``, ``input_size`` and crop ``padding`` whose targets come from
        ``tokenizer`` (a loaded pose tokenizer: ``.model``, ``.skeleton``, ``.input_size``, ``.padding``, as
        :class:`~posetok.codecs.pct.PCTCodec`); ``source`` (the tokenizer file) is named in errors.

        Raises:
            PosetokError: the tokenizer's skeleton, input size or padding differs from the estimator's: its
                tokens would describe poses framed otherwise than the crops the classifier sees.
        """
        if tokenizer.skeleton.name != skeleton:
            raise field_error(source, "skeleton", f"the tokenizer's skeleton is '{tokenizer.skeleton.name}', the "
                              f"estimator's model.skeleton is '{skeleton}'")
        tok_size = [int(v) for v in tokenizer.input_size]
        if tok_size != [int(v) for v in input_size]:
            raise field_error(source, "codec.input_size", f"the tokenizer was trained with input_size {tok_size}, "
                              f"the estimator's model.input_size is {[int(v) for v in input_size]}; train the "
                              "tokenizer with the classifier's input size")
        if abs(float(tokenizer.padding) - float(padding)) > 1e-9:
            raise field_error(source, "codec.padding", f"the tokenizer was trained with padding "
                              f"{float(tokenizer.padding):g}, the estimator's model.padding is {float(padding):g}")
        model = tokenizer.model
        return cls(input_size, model.num_joints, model.num_tokens, model.codebook_size, score,
                   encoder=model.inference_encoder(), guide=model.guide)

    # -- frames ----------------------------------------------------------------------------------------
    def crop_to_input(self, uv: np.ndarray) -> np.ndarray:
        """Normalised crop coordinates ``(..., 2)`` -> input pixels, float32."""
        return ((np.asarray(uv, np.float64) + 0.5) * np.array(self.input_size, np.float64)).astype(np.float32)

    def input_to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Input pixels ``(..., 2)`` -> normalised crop coordinates, float32."""
        return (np.asarray(xy, np.float64) / np.array(self.input_size, np.float64) - 0.5).astype(np.float32)

    def num_outputs(self, num_joints: int) -> int:
        """Tokens per person (the heatmap codecs' channel count has no meaning here)."""
        return self.num_tokens

    # -- targets ---------------------------------------------------------------------------------------
    @property
    def needs_crops(self) -> bool:
        """The token ids need the crops (an image-guided tokenizer): :meth:`encode` gives none, see
        :meth:`tokens_for`."""
        return self.guide is not None

    def encode(self, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        """``(N, K, 3)`` input-pixel keypoints -> ``tokens`` ``(N, M)`` int64 (the frozen tokenizer's ids of the
        labelled joints; unlabelled joints enter as its invisible token; absent when :attr:`needs_crops`),
        ``coords`` ``(N, K, 2)`` float32 normalised crop coordinates and ``target_weights`` ``(N, K)`` float32
        (1 for ``v > 0``)."""
        if self.encoder is None:
            raise PosetokError("codec: this PCT codec has no tokenizer encoder (a checkpoint's codec decodes only); "
                               "training needs model.tokenizer")
        kp = keypoints.detach().cpu().numpy() if isinstance(keypoints, Tensor) else np.asarray(keypoints)
        if kp.ndim != 3 or kp.shape[1] != self.num_joints or kp.shape[2] not in (2, 3):
            raise PosetokError(f"keypoints: expected shape (N, {self.num_joints}, 3), got {tuple(kp.shape)}")
        kp = kp.astype(np.float32)
        visible = kp[..., 2] > 0 if kp.shape[2] == 3 else np.ones(kp.shape[:2], bool)
        if not np.isfinite(kp[visible][:, :2]).all():
            raise PosetokError("keypoints: NaN or infinite coordinates of labelled joints")
        coords = np.where(visible[..., None], self.input_to_crop(kp[..., :2]), 0.0).astype(np.float32)
        if self.needs_crops:
            return {"coords": coords, "target_weights": visible.astype(np.float32)}
        with torch.inference_mode():
            tokens = self.encoder(torch.from_numpy(coords), torch.from_numpy(visible)).numpy().astype(np.int64)
        return {"tokens": tokens, "coords": coords, "target_weights": visible.astype(np.float32)}

    @torch.no_grad()
    def tokens_for(self, coords: Tensor, visible: Tensor, images: Tensor) -> Tensor:
        """The token ids ``(B, M)`` int64 of an image-guided tokenizer, on the device of the inputs: ``coords``
        ``(B, K, 2)`` normalised, ``visible`` ``(B, K)`` bool and ``images`` ``(B, 3, H, W)`` the normalised crops
        (the encoder and guide move to that device on first use), computed in float32 under any autocast."""
        if self.encoder is None or self.guide is None:
            raise PosetokError("codec: tokens_for needs an image-guided tokenizer's encoder and guide")
        device = coords.device
        if next(self.guide.parameters()).device != device:
            self.encoder.to(device)
            self.guide.to(device)
        # float32 whatever the training precision: the ids must be those the tokenizer itself gives
        with torch.autocast(device.type, enabled=False):
            return self.encoder(coords.float(), visible, self.guide(images.float(), coords.float()))

    # -- decoding --------------------------------------------------------------------------------------
    def person_scores(self, outputs: Mapping[str, Any]) -> np.ndarray:
        """``(N,)`` person scores of the outputs (this codec's ``score`` kind; merged ones after the flip test)."""
        key = f"score_{self.score}"
        if key in outputs:
            return np.asarray(outputs[key], np.float32)
        return _person_scores_np(outputs["logits"])[key]

    def decode_outputs(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``{"logits": (N, M, V), "coords": (N, K, 2)}`` (numpy) -> keypoints ``(N, K, 2)`` input pixels and
        scores ``(N, K)``, float32."""
        coords = np.asarray(outputs["coords"], np.float32)
        scores = np.repeat(self.person_scores(outputs)[:, None], coords.shape[1], axis=1)
        return self.crop_to_input(coords), scores.astype(np.float32)

    def decode_tensor(self, logits: Tensor, coords: Tensor) -> tuple[Tensor, Tensor]:
        """Torch :meth:`decode_outputs` for export: ``(N, M, V)`` logits and ``(N, K, 2)`` normalised coords ->
        keypoints ``(N, K, 2)`` input pixels and scores ``(N, K)`` (no Python branch on data)."""
        logits = logits.float()
        if self.score == "logit":
            person = logits.amax(-1).mean(-1)
        else:
            person = torch.softmax(logits, -1).amax(-1).mean(-1)
        span = self._span_t.to(device=coords.device, dtype=coords.dtype)
        keypoints = (coords + 0.5) * span
        return keypoints, person[:, None].expand(-1, coords.shape[1])

    # -- flip test -------------------------------------------------------------------------------------
    def flip_back(self, coords: np.ndarray, flip_index: Any) -> np.ndarray:
        """Normalised joints ``(N, K, 2)`` predicted on the mirrored crop -> joints of the original crop:
        ``x_in -> w - 1 - x_in`` (``u -> -u - 1 / w``) and joint ``i`` of the result is joint
        ``flip_index[i]`` of the input."""
        out = np.array(np.asarray(coords, np.float32)[:, np.asarray(flip_index, np.int64)])
        out[..., 0] = -out[..., 0] - 1.0 / self.input_size[0]
        return out

    def merge_flip(self, outputs: Mapping[str, Any], flipped: Mapping[str, Any], flip_index: Any) -> dict[str, Any]:
        """Flip test (official PCT): joints and both person scores averaged over the crop and its mirror image;
        the first pass's logits are kept."""
        a, b = _person_scores_np(outputs["logits"]), _person_scores_np(flipped["logits"])
        coords = 0.5 * (np.asarray(outputs["coords"], np.float32) + self.flip_back(flipped["coords"], flip_index))
        return {"logits": outputs["logits"], "coords": coords.astype(np.float32),
                **{k: 0.5 * (a[k] + b[k]) for k in a}}

    # -- configuration ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """What :meth:`from_dict` rebuilds the (decoding) codec from."""
        return {"type": self.type, "input_size": list(self.input_size), "num_joints": self.num_joints,
                "num_tokens": self.num_tokens, "codebook_size": self.codebook_size, "score": self.score}

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> PCTTokenCodec:
        """Inverse of :meth:`to_dict` (a codec without encoder)."""
        args = dict(cfg)
        if args.pop("type", cls.type) != cls.type:
            raise PosetokError(f"codec: field 'type': expected 'pct', got {cfg.get('type')!r}")
        try:
            return cls(**args)
        except TypeError as e:
            raise PosetokError(f"codec: pct codec: {e}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items() if k != 'type')})"
