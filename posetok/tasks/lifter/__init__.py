"""Task ``lifter``: 2D-to-3D lifting (and masked 2D / 3D pose modelling) with the dual-stream transformer, the ViT-style
lifter or SimpleBaseline (:mod:`posetok.models.lifter`). Its data, Lightning module, training (with an optional
masked 2D pretraining stage), evaluation with the Human3.6M protocols, ``posetok lift`` and its checkpoint kind.

``model.ckpt`` of kind ``lifter`` (:mod:`posetok.checkpoint` envelope)::

    format: "posetok.lifter"   format_version: 1   kind: "lifter"
    mapping: "2d_3d" | "2d_2d" | "3d_3d"
    skeleton_in, skeleton_out: layout names (the 2D input's, the 3D output's)
    dims: LifterDims as a dict (arch, channels, frames, sizes)
    normalization: {box_norm_prob, box_extent}   eval: {flip_test}
    state_dict (the weights of the best validation), config (resolved training config),
    meta {global_step, train_time_s, best_step, best_val, monitor, val_history, pretrained_from, posetok_version}

A Lightning ``last.ckpt`` of a lifter run loads too (its last weights).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from ... import checkpoint
from ...codecs.lifting import BOX_EXTENT, LiftingCodec
from ...config import build_config, lifter_dims_dict
from ...errors import PosetokError, field_error
from ...models.lifter import LifterDims, build_lifter
from ..runner import fit_run, prepare_run
from .data import WindowSet, build_clips
from .evaluation import eval_set, evaluate, save_eval_figures
from .inference import lift_file
from .module import LifterTask, load_pretrained, monitor_key

TASK = "lifter"

__all__ = ["TASK", "KIND", "train", "evaluate_file", "lift_file", "load_lifter", "lifter_payload", "LiftingCodec",
           "load_pretrained"]


# ----------------------------------------------------------------------------------------------------------
# Checkpoint kind
# ----------------------------------------------------------------------------------------------------------


def _build(path: Path, payload: dict[str, Any], batch_size: int | None) -> LiftingCodec:
    if payload["mapping"] not in ("2d_3d", "2d_2d", "3d_3d"):
        raise field_error(path, "mapping", f"unknown mapping {payload['mapping']!r}")
    try:
        dims = LifterDims.from_dict(dict(payload["dims"]))
    except (TypeError, ValueError, PosetokError) as e:
        raise field_error(path, "dims", str(e).splitlines()[0][:160]) from None
    for key in ("skeleton_in", "skeleton_out"):
        if payload[key] != getattr(dims, key):
            raise field_error(path, key, f"{payload[key]!r} contradicts dims.{key} {getattr(dims, key)!r}")
    model = build_lifter(dims)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, KeyError) as e:
        raise checkpoint.state_dict_error(path, e) from None
    norm = payload.get("normalization") or {}
    codec = LiftingCodec(model, payload["mapping"], flip_test=bool((payload.get("eval") or {}).get("flip_test", True)),
                         batch_size=batch_size or 64, box_trained=float(norm.get("box_norm_prob", 0.5)) > 0)
    codec.source = str(path)  # type: ignore[attr-defined]
    return codec


def _fields(cfg: Any) -> dict[str, Any]:
    m = cfg["model"]
    return {"mapping": m["mapping"], "skeleton_in": m["skeleton_in"], "skeleton_out": m["skeleton_out"],
            "dims": LifterDims.from_dict(lifter_dims_dict(cfg)).to_dict(),
            "normalization": {"box_norm_prob": float(cfg["data"]["box_norm_prob"]), "box_extent": BOX_EXTENT},
            "eval": {"flip_test": bool(cfg["eval"]["flip_test"])}}


def _from_lightning(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    cfg = checkpoint.lightning_config(path, obj)
    if cfg["model"].get("kind") != "lifter":
        raise PosetokError(f"{path}: field 'hyper_parameters.config': not a posetok lifter training checkpoint")
    cfg = OmegaConf.to_container(build_config(TASK, cfg, str(path)))  # type: ignore[assignment]
    return {"format": KIND.format, "format_version": KIND.format_version, "kind": "lifter", **_fields(cfg),
            "state_dict": checkpoint.lightning_weights(obj), "config": cfg,
            "meta": {"global_step": obj.get("global_step")}}


KIND = checkpoint.register(checkpoint.CheckpointKind(
    name="lifter", task=TASK, format="posetok.lifter", format_version=1,
    fields=("mapping", "skeleton_in", "skeleton_out", "dims"), build=_build, from_lightning=_from_lightning))


def lifter_payload(state_dict: dict[str, torch.Tensor], cfg: dict[str, Any] | DictConfig,
                   meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``model.ckpt`` dict of a lifter's weights under a resolved config (layout in the module docstring)."""
    plain = OmegaConf.to_container(cfg) if OmegaConf.is_config(cfg) else cfg  # torch.load(weights_only) reads it
    return checkpoint.envelope(KIND, state_dict, plain, meta, **_fields(plain))  # type: ignore[arg-type]


def load_lifter(path: str | Path, batch_size: int = 64) -> LiftingCodec:
    """Load a lifter checkpoint (``model.ckpt`` or a run's ``last.ckpt``) as a :class:`LiftingCodec`."""
    return checkpoint.load_as(path, batch_size, kind=KIND.name)[1]


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------


class _WriteModel:
    def __init__(self, out: Path, cfg: dict[str, Any]) -> None:
        self.out = out
        self.cfg = cfg

    def write(self, trainer: L.Trainer, task: LifterTask) -> Path:
        meta = {"global_step": trainer.global_step, "train_time_s": round(task.train_time_s(), 1),
                "best_step": task.best_step, "best_val": task.best_value, "monitor": task.monitor,
                "val_history": [list(v) for v in task.val_history], "pretrained_from": task.pretrained_from}
        return checkpoint.save(self.out / "model.ckpt", lifter_payload(task.final_state(), self.cfg, meta))


def pretrain_stage(cfg: DictConfig) -> DictConfig:
    """The config of the masked 2D pretraining stage of a run with ``pretrain.enabled`` (``out/pretrain``): the same
    network and data, mapping ``2d_2d``, the ``pretrain`` section's masks, bounds and learning rate, every 2D."""
    stage = copy.deepcopy(cfg)
    p = cfg.pretrain
    stage.out = str(Path(cfg.out) / "pretrain")
    stage.model.mapping = "2d_2d"
    stage.model.skeleton_out = cfg.model.skeleton_in
    stage.model.pretrained = None
    stage.mask.joint_ratio, stage.mask.frame_ratio, stage.mask.noise_std = p.joint_ratio, p.frame_ratio, p.noise_std
    stage.trainer.max_steps, stage.trainer.max_time = p.max_steps, p.max_time
    stage.optim.lr = p.lr if p.lr is not None else cfg.optim.lr
    stage.data.train_fraction = 1.0  # 2D is abundant: every pair's 2D pretrains, whatever share of 3D fine-tunes
    stage.pretrain.enabled = False
    return build_config(TASK, stage)


def _fit(cfg: DictConfig, callbacks: list[L.Callback] | None) -> Path:
    prepare_run(cfg)
    m, d = cfg.model, cfg.data
    train_clips, val_clips = build_clips(cfg)
    stride = d.window_stride or max(1, m.frames // 3)
    train_ds = WindowSet(train_clips, m.frames, stride, m.mapping)
    val_ds = WindowSet(val_clips, m.frames, m.frames, m.mapping, max_windows=4096 if m.frames > 1 else 65536)
    if len(train_ds) < d.batch_size:
        raise PosetokError(f"{train_clips[0].name if train_clips else 'data'}: field 'poses': {len(train_ds)} training "
                           f"windows, fewer than one batch of data.batch_size={d.batch_size}")
    loader = torch.utils.data.DataLoader(train_ds, batch_size=d.batch_size, shuffle=True, drop_last=True,
                                         num_workers=d.num_workers, persistent_workers=d.num_workers > 0)
    val_loader = torch.utils.data.DataLoader(val_ds, batch_size=d.val_batch_size, shuffle=False)
    plain: dict[str, Any] = OmegaConf.to_container(cfg)  # type: ignore[assignment]
    task = LifterTask(plain)
    extra = list(callbacks or [])
    if cfg.trainer.early_stopping_patience:
        extra.append(L.pytorch.callbacks.EarlyStopping(monitor=monitor_key(m.mapping), mode="min",
                                                       patience=int(cfg.trainer.early_stopping_patience),
                                                       check_on_train_epoch_end=False, strict=False))
    return fit_run(cfg, task, loader, val_loader, _WriteModel(Path(cfg.out), plain), extra)


def train(config: DictConfig | dict[str, Any], callbacks: list[L.Callback] | None = None) -> Path:
    """Train as ``config`` says (``task: lifter``, or a partial dict of one); returns ``out/model.ckpt``.

    With ``pretrain.enabled`` the masked 2D pretraining runs first into ``out/pretrain`` (skipped when its
    ``model.ckpt`` exists; resumed from its ``last.ckpt``), and the fine-tuning starts from its encoder. Each
    folder receives ``config.yaml``, ``last.ckpt`` (resumed from), ``model.ckpt`` (the best validation's weights)
    and the logs; early stopping follows ``trainer.early_stopping_patience`` validations.
    """
    cfg = build_config(TASK, config)
    if cfg.pretrain.enabled and not cfg.model.pretrained:
        stage = pretrain_stage(cfg)
        done = Path(stage.out) / "model.ckpt"
        if not done.exists():
            _fit(stage, callbacks)
        cfg.model.pretrained = str(done)
    return _fit(cfg, callbacks)


# ----------------------------------------------------------------------------------------------------------
# posetok eval
# ----------------------------------------------------------------------------------------------------------


def evaluate_file(codec: LiftingCodec, data: str | Path, visualize: str | Path | None = None,
                  flip: bool | None = None, procrustes: bool | None = None, per_joint: bool | None = None,
                  per_action: bool | None = None, actions: list[str] | None = None, noise_px: float | None = None,
                  drop_prob: float | None = None) -> dict[str, Any]:
    """``posetok eval`` of a lifter: ``data`` is ``synthetic``, a Human3.6M folder or file, or a pairs ``.npz``
    (:mod:`posetok.tasks.lifter.evaluation`); MPJPE, N-MPJPE, MPJVE in mm, with ``procrustes`` PA-MPJPE, with
    ``per_joint`` / ``per_action`` the tables. ``actions`` keeps those Human3.6M actions; ``noise_px`` and
    ``drop_prob`` change the detector model of ``synthetic``."""
    es = eval_set(codec, data, actions, noise_px, drop_prob)
    metrics, arrays = evaluate(codec, es, flip, bool(procrustes), bool(per_joint), bool(per_action))
    if visualize and codec.mapping == "2d_3d":
        metrics["figures"] = save_eval_figures(visualize, codec, es, arrays)
    return metrics
