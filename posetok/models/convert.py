"""Convert MMPose top-down checkpoints (HRNet, HRFormer, ``HeatmapHead``) to posetok's estimator keys.

What differs, and what does not:

* HRNet. timm's HRNet and the pose HRNet (MMPose's ``HRNet``, the official ``pose_hrnet.py``) use the same
  names for every module with parameters: stem ``conv1/bn1/conv2/bn2``, ``layer1.{i}.conv1..bn3/downsample``,
  ``transition{n}.{i}[.{k}].{0,1}``, ``stage{n}.{m}.branches.{b}.{i}.conv1/bn1/conv2/bn2`` and
  ``stage{n}.{m}.fuse_layers.{i}.{j}[.{k}].{0,1}``; an identity transition or fusion is ``None`` in MMPose
  and ``nn.Identity`` in timm, neither of which has keys, so indices line up. The shapes agree too. The one
  real difference is the last module of stage 4: MMPose builds it with ``multi_scale_output=False``, so its
  checkpoint has only ``fuse_layers.0``. With ``highest_only=True`` (the estimator's default) posetok's model
  has exactly those keys; with False the other rows are absent from the checkpoint and stay at their
  initial values (``model.load_state_dict(new, strict=False).missing_keys`` lists them).
* Heads. MMPose 1.x calls the head ``head.``, 0.x ``keypoint_head.``; the official HRNet code has no prefixes
  and its head is the top-level ``final_layer``. ``HeatmapHead`` keeps MMPose's names (``deconv_layers.*``,
  ``final_layer``); for a :class:`~.heads.FusionHead` an MMPose ``final_layer`` becomes the heatmap branch's last
  conv, and the offset and variance branches stay new.
* HRFormer. posetok's modules carry the names of MMPose 1.x's ``HRFormer`` (``...branches.{b}.{i}.norm1``,
  ``attn.attn.{qkv,proj,relative_position_bias_table}``, ``norm2``, ``ffn.{fc1,norm1,dw3x3,norm2,fc2,norm3}``,
  depthwise-separable fusion steps ``.{0,1,2,3}``, 3x3 transitions), checked against MMPose's source
  (``mmpose/models/backbones/hrformer.py``; tests/test_estimator_models.py holds names, shapes and the relative
  position index to it), not against a downloaded checkpoint (none can be fetched here). The aliases of the
  original HRFormer repository (``attn.attn.in_proj_weight/in_proj_bias``, ``attn.attn.out_proj``, ``mlp.``)
  are unverified. The shape check below keeps a wrong guess from loading silently: any key that does not land
  on a tensor of the same shape is returned as unplaced. MMPose's ``relative_position_index`` buffers are
  dropped: posetok derives the same index (Swin's layout) from the window size.

Anything else that does not fit (``data_preprocessor.*``, extra head convs, a mismatched shape) is returned in
the unplaced list rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .estimator import TopdownHeatmapModel
from .heads import FusionHead

# Original HRFormer repository -> MMPose 1.x names (unverified, see the module doc).
_HRFORMER_ALIASES = (
    (".attn.attn.in_proj_weight", ".attn.attn.qkv.weight"),
    (".attn.attn.in_proj_bias", ".attn.attn.qkv.bias"),
    (".attn.attn.out_proj.", ".attn.attn.proj."),
    (".mlp.", ".ffn."),
)


def _layout(keys: list[str]) -> str:
    if any(k.startswith(("backbone.", "head.", "keypoint_head.")) for k in keys):
        return "mmpose"
    return "official"  # leoxiaobin/deep-high-resolution-net.pytorch: backbone keys bare, head = final_layer


def _rename(key: str, layout: str, model: TopdownHeatmapModel) -> str:
    key = key.removeprefix("module.")
    if layout == "official":
        key = "head." + key if key.startswith("final_layer.") else "backbone." + key
    elif key.startswith("keypoint_head."):
        key = "head." + key.removeprefix("keypoint_head.")
    if isinstance(model.head, FusionHead) and key.startswith("head.final_layer."):
        last = len(model.head.heatmap_layer) - 1
        key = f"head.heatmap_layer.{last}." + key.removeprefix("head.final_layer.")
    return key


def convert_mmpose_state_dict(state_dict: Mapping[str, object],
                              model: TopdownHeatmapModel) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map an MMPose top-down checkpoint onto ``model``'s keys.

    Args:
        state_dict: the checkpoint's ``state_dict`` (or the whole checkpoint dict, which is unwrapped).
        model: the posetok estimator to receive the weights (only its keys and shapes are read).

    Returns:
        ``(new_state_dict, unplaced)``: tensors under posetok's keys, ready for
        ``model.load_state_dict(new_state_dict, strict=False)``, and the source keys that could not be placed
        (no matching name, or a shape that differs).
    """
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        state_dict = state_dict["state_dict"]
    own = model.state_dict()
    is_hrformer = str(getattr(model.backbone, "backbone_name", "")).startswith("hrformer")
    layout = _layout([str(k) for k in state_dict])
    out: dict[str, torch.Tensor] = {}
    unplaced: list[str] = []
    for key, value in state_dict.items():
        key = str(key)
        if key.endswith("relative_position_index"):
            continue  # derived from the window size; posetok rebuilds the same index
        target = _rename(key, layout, model)
        if is_hrformer and target not in own:
            for old, new in _HRFORMER_ALIASES:
                target = target.replace(old, new)
        if (isinstance(value, torch.Tensor) and target in own and target not in out
                and tuple(value.shape) == tuple(own[target].shape)):
            out[target] = value
        else:
            unplaced.append(key)
    return out, unplaced
