"""``posetok info``: what a config or a checkpoint describes: kind, skeleton, input size, parameters, GMACs.

GMACs are multiply-accumulates of one forward pass at batch 1 (``torch.utils.flop_counter`` counts two
operations per multiply-accumulate; the "GFLOPs" HRNet and HRFormer publish are MACs), so both are given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import load_config
from .errors import PosetokError
from .models.complexity import count_macs, count_parameters
from .skeletons import get_skeleton


def _estimator_info(cfg: Any, model: torch.nn.Module | None = None) -> dict[str, Any]:
    from .tasks.estimator.module import codec_spec, estimator_dims

    dims = estimator_dims(cfg)
    if model is None:
        model = _build_estimator(dims)
    w, h = dims.input_size
    macs = count_macs(model, (1, 3, h, w))
    return {"task": "estimator", "kind": str(cfg.model.kind), "skeleton": cfg.model.skeleton,
            "num_joints": dims.num_joints, "input_size": [w, h], "backbone": dims.backbone, "head": dims.head,
            "codec": codec_spec(cfg),
            "parameters": count_parameters(model), "parameters_M": round(count_parameters(model) / 1e6, 2),
            "GMACs": round(macs / 1e9, 3), "GFLOPs": round(2 * macs / 1e9, 3)}


def _build_estimator(dims: Any) -> torch.nn.Module:
    from .models.estimator import build_estimator

    return build_estimator(dims).eval()


def _tokenizer_info(cfg: Any, model: torch.nn.Module | None = None) -> dict[str, Any]:
    if model is None:
        from .models.pct import PCTTokenizerModel
        from .tasks.tokenizer import resolve_guide, tokenizer_dims

        if cfg.model.get("guide_ratio") and not cfg.model.guide.channels:
            resolve_guide(cfg)  # an image-guided config: its guide's size comes from model.guide_backbone
        model = PCTTokenizerModel(get_skeleton(cfg.model.skeleton).num_joints, tokenizer_dims(cfg.model))
    guide = getattr(model, "guide", None)
    own = count_parameters(model) - (count_parameters(guide) if guide is not None else 0)
    info = {"task": "tokenizer", "kind": "pct", "skeleton": cfg.model.skeleton, "preset": cfg.model.preset,
            "input_size": list(cfg.model.input_size), "parameters": own, "parameters_M": round(own / 1e6, 3)}
    if guide is not None:  # the frozen guide backbone, counted apart from the tokenizer's own weights
        info.update({"guide_ratio": float(cfg.model.guide_ratio), "guide_backbone": model.dims.guide.backbone,
                     "guide_parameters": count_parameters(guide)})
    return info


def _sequence_info(cfg: Any, model: torch.nn.Module | None = None) -> dict[str, Any]:
    from .config import sequence_dims

    if model is None:
        from .models.sequence import SequenceTokenizerModel

        model = SequenceTokenizerModel(sequence_dims(cfg))
    return {"task": "sequence", "kind": "sequence", "skeleton": cfg.model.skeleton, "preset": cfg.model.preset,
            "sequence_length": cfg.model.sequence_length, "parameters": count_parameters(model),
            "parameters_M": round(count_parameters(model) / 1e6, 3)}


def devices() -> list[str]:
    """The devices this machine offers a run, in the order ``trainer.accelerator: auto`` picks them."""
    found = [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def _lifter_info(cfg: Any, model: torch.nn.Module | None = None) -> dict[str, Any]:
    from .config import lifter_dims_dict
    from .models.lifter import LifterDims, build_lifter

    dims = LifterDims.from_dict(lifter_dims_dict(cfg))
    if model is None:
        model = build_lifter(dims).eval()
    m = cfg.model
    macs = count_macs(model, (1, dims.frames, get_skeleton(dims.skeleton_in).num_joints, dims.in_channels))
    return {"task": "lifter", "kind": "lifter", "arch": dims.arch, "mapping": m.mapping,
            "skeleton_in": dims.skeleton_in, "skeleton_out": dims.skeleton_out, "frames": dims.frames,
            "dims": {k: v for k, v in dims.to_dict().items() if k not in ("skeleton_in", "skeleton_out", "arch")},
            "parameters": count_parameters(model), "parameters_M": round(count_parameters(model) / 1e6, 3),
            "GMACs_per_window": round(macs / 1e9, 4), "GFLOPs_per_window": round(2 * macs / 1e9, 4),
            "pretrained": m.pretrained, "devices": devices()}


_INFO = {"estimator": _estimator_info, "tokenizer": _tokenizer_info, "sequence": _sequence_info,
         "lifter": _lifter_info}


def model_info(source: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The description of the model a YAML config (with ``key=value`` overrides) or a checkpoint holds."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        cfg = load_config(path, overrides)
        return {"source": str(path), **_INFO[cfg.task](cfg)}
    if overrides:
        raise PosetokError(f"{overrides[0]}: overrides apply to configs, not to checkpoints")
    from omegaconf import OmegaConf

    from .tasks import load_with_task

    codec, task = load_with_task(path)
    cfg = OmegaConf.create(codec.info.get("config") or {})
    if "model" not in cfg:
        raise PosetokError(f"{path}: field 'config': missing; the checkpoint does not describe its model")
    from .config import build_config

    cfg = build_config(task.TASK, cfg, str(path))
    model = getattr(codec, "model", None)
    return {"source": str(path), **_INFO[task.TASK](cfg, model)}
