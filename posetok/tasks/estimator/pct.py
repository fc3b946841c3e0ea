"""The PCT token classifier on the estimator pipeline: its pose tokenizer, codec and layer-wise learning rates.

The tokenizer comes from its ``model.ckpt`` through the checkpoint registry (kind ``pct``), so this task imports
no other task. Its decoder and code vectors are copied into the estimator's network
(:class:`~posetok.models.pct_classifier.SoftTokenDecoder`) and so into the estimator's checkpoint, which is
self-contained: only training (the token targets) reads the tokenizer file.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from ... import checkpoint
from ...codecs.pct_tokens import PCTTokenCodec
from ...errors import PosetokError
from ...models.pct import PCTDims, PCTTokenizerModel
from ...models.pct_classifier import SoftDecoderDims, token_accuracy
from ...skeletons import get_skeleton

TOKENIZER_FORMAT = "posetok.tokenizer"


class _Tokenizer:
    """A loaded pose tokenizer: what the estimator needs of it (the fields of :class:`~posetok.codecs.pct.PCTCodec`)."""

    def __init__(self, model: PCTTokenizerModel, skeleton: Any, input_size: Any, padding: float, path: str) -> None:
        self.model, self.skeleton = model, skeleton
        self.input_size, self.padding, self.path = tuple(int(v) for v in input_size), float(padding), path


def load_tokenizer(path: str | Path) -> _Tokenizer:
    """The frozen pose tokenizer of ``path`` (a tokenizer ``model.ckpt``, or a run's ``last.ckpt`` when the
    tokenizer task is registered, as under the CLI).

    Raises:
        PosetokError: naming the file and the field, when it is missing, not a pose tokenizer, or broken.
    """
    path = Path(path)
    if "pct" in checkpoint.registered():
        _, codec = checkpoint.load_as(path, kind="pct")
        model, skeleton, input_size, padding = codec.model, codec.skeleton, codec.input_size, codec.padding
    else:  # the tokenizer task is not imported: read the documented model.ckpt layout directly
        obj = checkpoint.read_checkpoint(path)
        if obj.get("format") != TOKENIZER_FORMAT or obj.get("kind", "pct") != "pct":
            raise PosetokError(f"{path}: field 'format': expected '{TOKENIZER_FORMAT}' (a pose tokenizer "
                               f"model.ckpt), got {obj.get('format')!r}")
        try:
            skeleton = get_skeleton(obj["skeleton"])
            model = PCTTokenizerModel(skeleton.num_joints, PCTDims.from_dict(obj["dims"]))
            model.load_state_dict(obj["state_dict"])
            input_size, padding = obj["codec"]["input_size"], obj["codec"]["padding"]
        except KeyError as e:
            raise PosetokError(f"{path}: field {e}: missing") from None
        except (RuntimeError, TypeError) as e:
            raise checkpoint.state_dict_error(path, e) from None
    model.eval().requires_grad_(False)
    return _Tokenizer(model, skeleton, input_size, padding, str(path))


def decoder_dims(cfg: Any, tokenizer: _Tokenizer | None = None) -> dict[str, Any]:
    """The tokenizer decoder's dims of a pct config (:class:`SoftDecoderDims` as a dict): ``model.pct.decoder``
    when training filled it, else read from ``model.tokenizer`` (or from ``tokenizer`` when loaded)."""
    m = cfg.model
    if m.pct.decoder:
        d = m.pct.decoder
        return OmegaConf.to_container(d) if OmegaConf.is_config(d) else copy.deepcopy(dict(d))  # plain: saved
    tok = tokenizer or load_tokenizer(m.tokenizer)
    return SoftDecoderDims.of_tokenizer(tok.model).to_dict()


def pct_codec(cfg: Any, tokenizer: _Tokenizer | None = None) -> PCTTokenCodec:
    """The codec of a pct config: with the tokenizer's encoder (training targets) when ``tokenizer`` is given,
    else decoding only."""
    m = cfg.model
    if tokenizer is not None:
        return PCTTokenCodec.for_tokenizer(tokenizer, m.skeleton, tuple(m.input_size), float(m.padding),
                                           m.pct.score, source=tokenizer.path)
    dec = decoder_dims(cfg)
    return PCTTokenCodec(tuple(m.input_size), dec["num_joints"], dec["num_tokens"], dec["codebook_size"],
                         m.pct.score)


def check_tokenizer(cfg: Any, tokenizer: _Tokenizer) -> None:
    """Raise when ``model.pct.decoder`` (a resumed run's) does not describe ``tokenizer``'s decoder."""
    want = SoftDecoderDims.of_tokenizer(tokenizer.model).to_dict()
    have = cfg.model.pct.decoder
    if have and SoftDecoderDims.from_dict(decoder_dims(cfg)).to_dict() != want:
        raise PosetokError(f"{tokenizer.path}: field 'dims': this tokenizer's decoder differs from the one in "
                           "model.pct.decoder (a run started with another tokenizer)")


# ----------------------------------------------------------------------------------------------------------
# Layer-wise learning-rate decay
# ----------------------------------------------------------------------------------------------------------


def _swin_layer(name: str, depths: list[int]) -> int | None:
    """Layer id of a Swin backbone parameter (``body.`` names, timm's modules) as the official
    ``SwinLayerDecayOptimizerConstructor``: patch embedding 0; block ``b`` of stage ``s`` ``1 + b + sum of the
    earlier stages' sizes``, each earlier stage counting its patch merging as one more layer; the merging into
    stage ``s`` (timm keeps it at the start of stage ``s``, the official code at the end of stage ``s - 1``) the
    last id of stage ``s - 1``; anything else (the final norm) None: the head's."""
    per_stage = [d + 1 for d in depths[:-1]] + [depths[-1]]
    parts = name.split(".")
    if parts[1] == "patch_embed" or parts[1] in ("absolute_pos_embed", "pos_embed"):
        return 0
    if parts[1] == "layers":
        s = int(parts[2])
        if parts[3] == "blocks":
            return int(parts[4]) + sum(per_stage[:s]) + 1
        if parts[3] == "downsample":
            return sum(per_stage[:s])
    return None


_HR_STAGES = (("transition1", "stage2"), ("transition2", "stage3"), ("transition3", "stage4"))


def _hr_layer(name: str) -> int:
    """Layer id of an HRNet / HRFormer parameter: the stem and stage 1 are 0, transition ``i`` and stage ``i + 1``
    are ``i``."""
    top = name.split(".")[1]
    for i, mods in enumerate(_HR_STAGES, start=1):
        if top in mods:
            return i
    return 0


def layer_scales(model: nn.Module, decay: float) -> dict[str, float]:
    """Learning-rate multiplier of every trainable parameter of an estimator network for layer-wise decay
    ``decay``: ``decay ** (L - 1 - layer)``, the head and everything outside the backbone at ``L - 1`` (scale 1)."""
    backbone = getattr(model, "backbone", None)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if decay >= 1.0 or backbone is None:
        return dict.fromkeys(names, 1.0)
    body = getattr(backbone, "body", None)
    depths = [len(layer.blocks) for layer in body.layers] if body is not None and hasattr(body, "layers") else None
    num = (sum(d + 1 for d in depths[:-1]) + depths[-1] + 2) if depths else len(_HR_STAGES) + 2
    scales = {}
    for n in names:
        layer: int | None = num - 1
        if n.startswith("backbone."):
            layer = _swin_layer(n.removeprefix("backbone."), depths) if depths else _hr_layer(n)
            layer = num - 1 if layer is None else layer
        scales[n] = float(decay) ** (num - 1 - layer)
    return scales


def pct_losses(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], input_size: tuple[int, int],
               token_w: float, joint_w: float, beta: float) -> dict[str, torch.Tensor]:
    """The official Stage II losses: cross-entropy of the token logits ``(B, M, V)`` on the tokenizer's ids
    ``(B, M)`` (weight ``token_w``) plus Smooth-L1 (``beta``) on the joints decoded from the soft tokens, in
    input-crop pixels as the official code (its tokenizer reads crop pixels), averaged over coordinates, joints
    (unlabelled ones count as 0) and people (weight ``joint_w``); and the token top-1 / top-5 accuracy."""
    logits = out["logits"].float()
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["tokens"].flatten())
    span = torch.tensor(input_size, dtype=torch.float32, device=logits.device)
    err = torch.nn.functional.smooth_l1_loss(out["coords"].float() * span, batch["coords"].float() * span,
                                             beta=beta, reduction="none")
    joint = (err * batch["target_weights"][..., None]).mean()
    acc = token_accuracy(logits.detach(), batch["tokens"], (1, 5))
    return {"token_ce": ce, "joint": joint, "top1": acc[1], "top5": acc[5], "loss": token_w * ce + joint_w * joint}
