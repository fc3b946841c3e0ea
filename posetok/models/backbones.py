"""Image backbones of the top-down estimator: timm's HRNet and Swin, and posetok's HRFormer.

Every backbone maps a normalised ``(B, 3, H, W)`` image to a list of NCHW feature maps, highest resolution first,
and exposes ``out_channels`` (channels of each map) and ``strides`` (their strides: 4, 8, 16, 32).

HRNet comes from timm with ``features_only=True, feature_location=''``: the raw outputs of the four branches
(timm's default ``'incre'`` returns the classification head's widened maps instead). timm builds the
classification network, whose last module fuses into all four branches; the pose HRNet of the paper and MMPose
(``multi_scale_output=False``) fuses only into the stride-4 branch. ``highest_only=True`` removes the unused
fusion layers of that last module, so the parameters (28.5 M for W32, 63.6 M for W48 with a 1x1 head) and the
compute match the published pose network. Module names stay timm's, which are also the pose HRNet's, so timm /
ImageNet state dicts and MMPose weights load by name; the removed layers' keys are skipped when loading.

HRNet has no stochastic depth; HRFormer's rate is ``drop_path``. HRNet needs an input whose sides divide by 32
(timm's fusion upsamples by fixed factors); HRFormer resizes to the exact size and takes any input.

Swin (v1 and v2, timm) returns one map: the last stage after the final LayerNorm (stride 32, ``8 x 8`` cells at a
``256 x 256`` input; 768 / 1024 / 1536 channels for tiny / base / large), the only map the PCT classifier reads.
timm's Swin works channels-last; the map is permuted to NCHW here. timm builds it for the estimator's input
(``img_size``); the v1 models, made for 224 x 224 with 7 x 7 windows, get 8 x 8 windows (a 256 x 256 input then
tiles every stage exactly: 64, 32, 16, 8 cells); SwinV2 keeps the windows of its timm name (the 256 x 256 models;
stages smaller than a window use the whole stage, so ``swinv2_base`` has the official PCT's 16, 16, 16, 8). Module
names are timm's under ``body.``: timm / ImageNet state dicts load by name (the prefix is added on loading).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
from torch import nn

from ..errors import field_error
from .hrformer import SPECS as HRFORMER_SPECS
from .hrformer import HRFormer

log = logging.getLogger(__name__)

HRNETS = ("hrnet_w18_small", "hrnet_w18_small_v2", "hrnet_w32", "hrnet_w48")
#: posetok name -> (timm model, window size override or None: the timm name's own).
SWINS: dict[str, tuple[str, int | None]] = {
    "swin_tiny": ("swin_tiny_patch4_window7_224", 8),
    "swin_base": ("swin_base_patch4_window7_224", 8),
    "swin_large": ("swin_large_patch4_window7_224", 8),
    "swinv2_tiny": ("swinv2_tiny_window8_256", None),
    "swinv2_base": ("swinv2_base_window16_256", None),
    "swinv2_large": ("swinv2_large_window12to16_192to256", None),
}
#: The multi-resolution backbones (four maps at strides 4 to 32).
BACKBONES = HRNETS + tuple(HRFORMER_SPECS)
#: Every backbone :func:`build_backbone` builds.
ALL_BACKBONES = BACKBONES + tuple(SWINS)

WEIGHTS_FIELD = "model.backbone.weights"
# Keys of timm's classification HRNet that a features-only model lacks by design.
_CLASSIFIER_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.", "fc.", "head.")
# Buffers that are derived from the architecture (not saved by posetok), present in other codebases' files.
_DERIVED_SUFFIXES = ("relative_position_index",)


@dataclass
class WeightsReport:
    """What :func:`load_backbone_weights` did with a weights file.

    ``missing``: backbone keys the file lacked (left at their initial values); ``unexpected``: file keys that
    fit nowhere; ``ignored``: file keys skipped on purpose (classification head, fusion layers removed by
    ``highest_only``, derived buffers).
    """

    path: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _prune_last_fusion(model: nn.Module) -> tuple[str, ...]:
    """Keep only the fusion into branch 0 in timm HRNet's last module; return the removed key prefixes."""
    idx = len(model.stage4) - 1
    last = model.stage4[idx]
    removed = tuple(f"stage4.{idx}.fuse_layers.{i}." for i in range(1, len(last.fuse_layers)))
    last.fuse_layers = nn.ModuleList(list(last.fuse_layers)[:1])
    # timm's module returns one map per fusion row, so the features model now returns only the stride-4 map.
    last.multi_scale_output = False
    return removed


class _LowestBranchModule(nn.Module):
    """The last multi-resolution module reduced to its stride-32 branch, without fusion: it passes the other
    branches' inputs through untouched (nothing reads them) and keeps the branch under its original key
    (``branches.3``), so the weights of a heatmap-trained pose network load by name."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        n = len(module.branches)
        self.branches = nn.ModuleList([nn.Identity()] * (n - 1) + [module.branches[n - 1]])

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(xs[:-1]) + [self.branches[-1](xs[-1])]


def _keep_lowest_branch(model: nn.Module) -> tuple[str, ...]:
    """Replace the last module of ``model.stage4`` (timm HRNet or posetok HRFormer) by :class:`_LowestBranchModule`;
    return the removed key prefixes (its other branches and all its fusion layers)."""
    idx = len(model.stage4) - 1
    last = model.stage4[idx]
    n = len(last.branches)
    model.stage4[idx] = _LowestBranchModule(last)
    return (f"stage4.{idx}.fuse_layers.",) + tuple(f"stage4.{idx}.branches.{i}." for i in range(n - 1))


def _hrnet(name: str, pretrained: bool, highest_only: bool, lowest_only: bool = False) -> nn.Module:
    model = timm.create_model(name, pretrained=pretrained, features_only=True, feature_location="",
                              out_indices=(1, 2, 3, 4))
    channels = list(model.feature_info.channels())
    strides = list(model.feature_info.reduction())
    keep = slice(0, 1) if highest_only else slice(3, 4) if lowest_only else slice(0, 4)
    if highest_only:
        model.pruned_prefixes = _prune_last_fusion(model)
    elif lowest_only:
        model.pruned_prefixes = _keep_lowest_branch(model)
        model._out_idx = {4}  # timm's features forward then returns the stride-32 map alone
    else:
        model.pruned_prefixes = ()
    model.out_channels = channels[keep]
    model.strides = strides[keep]
    return model


class SwinBackbone(nn.Module):
    """timm's Swin / SwinV2 as a backbone: ``(B, 3, H, W)`` -> ``[(B, C, H / 32, W / 32)]``, the last stage after
    the final norm, channels-first. The timm model (its classifier removed) is ``body``."""

    weights_prefix = "body."

    def __init__(self, name: str, input_size: tuple[int, int], pretrained: bool = False,
                 drop_path: float | None = None) -> None:
        super().__init__()
        timm_name, window = SWINS[name]
        kwargs: dict[str, object] = {"img_size": (int(input_size[1]), int(input_size[0]))}
        if window is not None:
            kwargs["window_size"] = window
        if drop_path is not None:
            kwargs["drop_path_rate"] = float(drop_path)
        self.body = timm.create_model(timm_name, pretrained=pretrained, num_classes=0, **kwargs)
        self.out_channels = [int(self.body.num_features)]
        self.strides = [32]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.body.forward_features(x).permute(0, 3, 1, 2).contiguous()]


def build_backbone(name: str, *, pretrained: bool = False, weights: str | None = None,
                   drop_path: float | None = None, highest_only: bool = False, lowest_only: bool = False,
                   source: str = "config", input_size: tuple[int, int] = (256, 256)) -> nn.Module:
    """Build backbone ``name`` (one of :data:`ALL_BACKBONES`).

    Args:
        name: ``hrnet_w18_small``, ``hrnet_w18_small_v2``, ``hrnet_w32``, ``hrnet_w48`` (timm),
            ``hrformer_s``, ``hrformer_b`` (:mod:`posetok.models.hrformer`) or a Swin of :data:`SWINS` (timm).
        pretrained: timm's own ImageNet download (HRNet and Swin; needs the internet).
        weights: a local timm / ImageNet (or estimator) state dict to load, see :func:`load_backbone_weights`;
            the report is kept as ``backbone.weights_report``.
        drop_path: HRFormer's stochastic-depth rate (None: 0.1 for S, 0.2 for B); HRNet has none, so only None
            or 0 is accepted there.
        highest_only: return only the stride-4 map and drop the last module's other fusion layers (the pose
            network); False returns all four branches (HRNet, HRFormer; Swin always returns its stride-32 map).
        lowest_only: return only the stride-32 map, the last module's stride-32 branch *before* that module's
            fusion (HRNet, HRFormer). This is the map the PCT classifier and the image-guided tokenizer read: a
            pose network (``highest_only``) trains every layer it depends on, since that branch fuses into the
            stride-4 output, whereas the last module's fusion into branch 3 exists only in the classification
            network and a heatmap-trained checkpoint has no weights for it.
        source: the config file named in error messages.
        input_size: ``(w, h)`` of the input (Swin builds its position tables for it).

    Raises:
        PosetokError: unknown name, drop path on HRNet, ``pretrained`` on HRFormer, or a bad weights file.
    """
    if highest_only and lowest_only:
        raise ValueError("highest_only and lowest_only exclude each other")
    if name in HRNETS:
        if drop_path:
            raise field_error(source, "model.backbone.drop_path", f"{name} has no stochastic depth (got "
                              f"{drop_path}); leave it unset")
        model = _hrnet(name, pretrained, highest_only, lowest_only)
    elif name in HRFORMER_SPECS:
        if pretrained:
            raise field_error(source, "model.backbone.pretrained", f"timm has no {name} to download; give a local "
                              f"state dict in {WEIGHTS_FIELD}")
        model = HRFormer(HRFORMER_SPECS[name], drop_path=drop_path, highest_only=highest_only)
        n = len(model.stage4) - 1
        model.pruned_prefixes = tuple(f"stage4.{n}.fuse_layers.{i}." for i in range(1, 4)) if highest_only else ()
        if lowest_only:
            model.pruned_prefixes = _keep_lowest_branch(model)
            model.lowest_only = True
            model.out_channels, model.strides = model.out_channels[3:], model.strides[3:]
    elif name in SWINS:
        model = SwinBackbone(name, input_size, pretrained=pretrained, drop_path=drop_path)
    else:
        raise field_error(source, "model.backbone.name", f"unknown backbone {name!r} (known: "
                          f"{', '.join(ALL_BACKBONES)})")
    model.backbone_name = name
    model.highest_only = highest_only
    model.lowest_only = lowest_only
    model.weights_report = load_backbone_weights(model, weights) if weights else None
    return model


def _read_state_dict(path: Path) -> Mapping[str, object]:
    if not path.is_file():
        raise field_error(path, WEIGHTS_FIELD, "no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any reader failure is the same user error: an unreadable file
        raise field_error(path, WEIGHTS_FIELD, f"cannot read a state dict ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from None


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a plain, Lightning (``state_dict``) or MMPose / DDP-wrapped state dict, backbone keys only."""
    while isinstance(obj, Mapping):
        for key in ("state_dict", "model", "module"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
        else:
            break
    if not isinstance(obj, Mapping) or not obj:
        raise field_error(path, WEIGHTS_FIELD, "not a state dict (expected a mapping of names to tensors)")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    # An estimator / MMPose checkpoint: keep the backbone's part ("model.backbone.x" or "backbone.x" -> "x").
    if any(".backbone." in "." + k for k in sd):
        sd = {("." + k).split(".backbone.", 1)[1]: v for k, v in sd.items() if ".backbone." in "." + k}
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_backbone_weights(backbone: nn.Module, weights: str | Path) -> WeightsReport:
    """Load a local state dict into ``backbone`` by name.

    Strict about shapes (any mismatch is an error), tolerant of keys a features-only model lacks by design: the
    classification head of timm's HRNet, the fusion layers removed by ``highest_only`` and derived buffers.
    Other extra keys and backbone keys absent from the file are reported (``WeightsReport``) and logged.

    Raises:
        PosetokError: naming the file and ``model.backbone.weights`` when it is missing, unreadable, not a state
            dict, has mismatched shapes, or shares no key with the backbone.
    """
    path = Path(weights)
    sd = _unwrap(_read_state_dict(path), path)
    prefix = getattr(backbone, "weights_prefix", "")
    if prefix:  # timm / ImageNet files name the wrapped model's modules without the wrapper's prefix
        sd = {k if k.startswith(prefix) else prefix + k: v for k, v in sd.items()}
    own = backbone.state_dict()
    pruned = tuple(getattr(backbone, "pruned_prefixes", ()))
    report = WeightsReport(str(path))
    usable, mismatched = {}, []
    for key, value in sd.items():
        if key in own:
            if tuple(value.shape) != tuple(own[key].shape):
                mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}")
            else:
                usable[key] = value
        elif (key.removeprefix(prefix).startswith(_CLASSIFIER_PREFIXES + pruned)
              or key.endswith(_DERIVED_SUFFIXES)):
            report.ignored.append(key)
        else:
            report.unexpected.append(key)
    name = getattr(backbone, "backbone_name", "the backbone")
    if mismatched:
        more = f" and {len(mismatched) - 3} more" if len(mismatched) > 3 else ""
        raise field_error(path, WEIGHTS_FIELD, f"shapes differ from {name}: {'; '.join(mismatched[:3])}{more}")
    if not usable:
        raise field_error(path, WEIGHTS_FIELD, f"no key matches {name} (first keys: {', '.join(list(sd)[:3])})")
    backbone.load_state_dict(usable, strict=False)
    report.loaded = len(usable)
    report.missing = [k for k in own if k not in usable]
    if report.missing or report.unexpected:
        log.warning("%s: loaded %d tensors; %d backbone keys missing (e.g. %s), %d unexpected (e.g. %s)", path,
                    report.loaded, len(report.missing), report.missing[:3], len(report.unexpected),
                    report.unexpected[:3])
    return report
