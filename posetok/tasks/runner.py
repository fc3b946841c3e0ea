"""Running a tokenizer: training from a config, and evaluation of a checkpoint on a COCO file."""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ..checkpoint import save_tokenizer, tokenizer_payload
from ..codecs.pct import PCTCodec
from ..config import save_config
from ..data.coco import CocoKeypoints, load_coco_keypoints
from ..data.transforms import KeypointAugment
from ..errors import PosetokError
from ..metrics import tokens as token_metrics
from ..metrics.coco import coco_keypoint_eval, keypoint_gt
from ..metrics.pck import bbox_size, keypoint_errors, pck
from ..perf import keep_freed_memory
from ..skeletons import Skeleton, get_skeleton
from .tokenizer import CropTargets, TokenizerTask, make_loader


def load_poses(path: str | None, skeleton: Skeleton, synthetic: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(N, K, 3)`` and boxes ``(N, 4)`` from a COCO file, or ``synthetic`` synthetic people."""
    if path:
        data = load_coco_keypoints(path, skeleton=skeleton.name)
        return data.keypoints, data.boxes
    from ..data.synthetic import sample_poses

    poses = sample_poses(synthetic, skeleton=skeleton.name, seed=seed)
    return poses.keypoints, poses.boxes


def _threads(cfg: DictConfig) -> None:
    if cfg.trainer.threads:
        torch.set_num_threads(int(cfg.trainer.threads))


class _WriteModel(L.Callback):
    """Writes ``model.ckpt`` (weights plus everything needed to use them) at the end of training."""

    def __init__(self, out: Path, cfg: DictConfig) -> None:
        self.out = out
        self.cfg = cfg

    def write(self, trainer: L.Trainer, task: TokenizerTask) -> Path:
        m = self.cfg.model
        payload = tokenizer_payload(
            task.model, m.skeleton, list(m.input_size), m.padding, OmegaConf.to_container(self.cfg),  # type: ignore
            {"global_step": trainer.global_step, "train_time_s": round(task.train_time_s(), 1)})
        return save_tokenizer(self.out / "model.ckpt", payload)


def launcher_layout(cfg: DictConfig) -> tuple[Any, int, str]:
    """``(devices, num_nodes, strategy)`` for the Trainer.

    Under ``torchrun`` the launcher already fixed the process layout (``LOCAL_WORLD_SIZE`` processes on each
    of ``WORLD_SIZE / LOCAL_WORLD_SIZE`` nodes); settings left at ``auto`` / 1 follow it, and the strategy
    becomes DDP (gloo on CPU, NCCL on GPUs).
    """
    t = cfg.trainer
    devices, num_nodes, strategy = t.devices, int(t.num_nodes), t.strategy
    local = os.environ.get("LOCAL_WORLD_SIZE")
    world = os.environ.get("WORLD_SIZE")
    if local and world and int(world) > 1:
        if devices == "auto":
            devices = int(local)
        if num_nodes == 1:
            num_nodes = int(world) // int(local)
        if strategy == "auto":
            strategy = "ddp"
    return devices, num_nodes, strategy


def train(cfg: DictConfig, callbacks: list[L.Callback] | None = None) -> Path:
    """Train a tokenizer as ``cfg`` says; returns the path of ``model.ckpt``.

    ``cfg.out`` receives ``config.yaml`` (resolved), ``last.ckpt`` (resume state, rewritten every
    ``trainer.val_every_n_steps`` steps and at the end), ``model.ckpt`` and TensorBoard logs under ``tb/``.
    If ``last.ckpt`` exists the run resumes from it. A config with ``task: sequence`` trains the pose sequence
    tokenizer (:func:`posetok.tasks.sequence.train_sequence`).
    """
    if cfg.get("task") == "sequence":
        from .sequence import train_sequence

        return train_sequence(cfg, callbacks)
    _threads(cfg)
    keep_freed_memory()
    # Lightning's own use of a deprecated torch API; nothing a posetok user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    out = Path(cfg.out)
    skeleton = get_skeleton(cfg.model.skeleton)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    aspect = cfg.model.input_size[0] / cfg.model.input_size[1]
    a = cfg.data.augment
    augment = KeypointAugment(
        skeleton, flip_prob=a.flip_prob, rot_deg=a.rot_deg, rot_prob=a.rot_prob,
        scale_range=tuple(a.scale_range), shift_factor=a.shift_factor, shift_prob=a.shift_prob,
        half_body_prob=a.half_body_prob) if a.enabled else None
    train_kp, train_bx = load_poses(cfg.data.train, skeleton, cfg.data.synthetic_train, cfg.data.seed)
    val_kp, val_bx = load_poses(cfg.data.val, skeleton, cfg.data.synthetic_val, cfg.data.seed + 1_000_003)
    if len(train_kp) < cfg.data.batch_size:
        raise PosetokError(f"{cfg.data.train or 'synthetic data'}: field 'annotations': {len(train_kp)} people, "
                           f"fewer than one batch of data.batch_size={cfg.data.batch_size}")
    train_loader = make_loader(
        CropTargets(train_kp, train_bx, aspect, cfg.model.padding, augment, seed=cfg.data.seed),
        cfg.data.batch_size, shuffle=True, num_workers=cfg.data.num_workers)
    val_loader = make_loader(CropTargets(val_kp, val_bx, aspect, cfg.model.padding), 1024, shuffle=False)

    task = TokenizerTask(OmegaConf.to_container(cfg))  # type: ignore[arg-type]
    return fit_run(cfg, task, train_loader, val_loader, _WriteModel(out, cfg), callbacks)


def fit_run(cfg: DictConfig, task: L.LightningModule, train_loader: Any, val_loader: Any, writer: Any,
            callbacks: list[L.Callback] | None = None) -> Path:
    """Fit ``task`` and leave ``cfg.out`` as every tokenizer run does; returns the path of ``model.ckpt``.

    The folder receives ``config.yaml``, ``last.ckpt`` (Lightning state, rewritten every
    ``trainer.val_every_n_steps`` and at the end; an existing one is resumed from), ``model.ckpt`` (from
    ``writer.write(trainer, task)``) and TensorBoard logs in ``tb/``. ``task`` needs ``quantizing`` (the
    quantizer warm-up is over). Shared by the pose and the sequence tokenizer.
    """
    out = Path(cfg.out)
    t = cfg.trainer
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=out, filename="step{step}", save_top_k=0, save_last=True,
        every_n_train_steps=t.val_every_n_steps, save_on_train_epoch_end=False)
    callbacks = [checkpoint, L.pytorch.callbacks.LearningRateMonitor("step"), *(callbacks or [])]
    devices, num_nodes, strategy = launcher_layout(cfg)
    trainer = L.Trainer(
        default_root_dir=out, max_steps=t.max_steps, max_epochs=-1,
        max_time={"minutes": t.max_time} if t.max_time else None,
        accelerator=t.accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
        precision=t.precision, log_every_n_steps=t.log_every_n_steps,
        val_check_interval=t.val_every_n_steps, check_val_every_n_epoch=None,
        logger=L.pytorch.loggers.TensorBoardLogger(out, name="tb", version=""),
        callbacks=callbacks, enable_progress_bar=t.progress_bar, enable_model_summary=False,
        num_sanity_val_steps=0)
    if trainer.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    last = out / "last.ckpt"
    trainer.fit(task, train_loader, val_loader, ckpt_path=str(last) if last.exists() else None)
    # Lightning's ModelCheckpoint writes last.ckpt on its step schedule; the final state is saved here too.
    trainer.save_checkpoint(last)
    if trainer.is_global_zero:
        if not task.quantizing:
            print(f"warning: training stopped at step {trainer.global_step}, before optim.vq_start_step="
                  f"{cfg.optim.vq_start_step}: the codebook was never trained; raise trainer.max_time or lower "
                  "optim.vq_start_step", file=sys.stderr)
        writer.write(trainer, task)
    return out / "model.ckpt"


def evaluate(codec: PCTCodec, data: CocoKeypoints, pck_thr: float = 0.05) -> tuple[dict[str, Any], dict]:
    """Reconstruct every annotated person of ``data`` and score it.

    Returns the metrics and the arrays behind them (``tokens``, ``recon``, ``errors``). Reconstructions use
    each annotation's box; OKS-AP scores them (pycocotools) against the same people's annotations (their
    ``area``) with the skeleton's sigmas, and every labelled joint is scored (occluded ones included).
    """
    if data.skeleton.num_joints != codec.skeleton.num_joints:
        raise PosetokError(f"{data.path}: field 'annotations[0].keypoints': {data.skeleton.num_joints} joints, "
                           f"the checkpoint's skeleton '{codec.skeleton.name}' has {codec.skeleton.num_joints}")
    t0 = time.perf_counter()
    tokens = codec.encode(data.keypoints, data.boxes)
    recon = codec.decode(tokens, data.boxes)
    seconds = time.perf_counter() - t0
    errors = keypoint_errors(recon, data.keypoints)
    metrics: dict[str, Any] = {"num_people": len(data), "num_joints": codec.skeleton.num_joints}
    if codec.skeleton.sigmas is not None:
        results = [{"image_id": int(i), "category_id": 1, "score": 1.0,
                    "keypoints": np.concatenate([r, np.ones((len(r), 1))], 1).ravel().tolist()}
                   for i, r in zip(data.image_ids, recon)]
        gt = keypoint_gt(data.keypoints, data.boxes, data.areas, data.image_ids)
        metrics.update(coco_keypoint_eval(gt, results, codec.skeleton.sigmas))
    v, m = codec.codebook_size, codec.num_tokens
    metrics.update({
        "mean_error_px": float(np.nanmean(errors)),
        "median_error_px": float(np.nanmedian(errors)),
        f"pck_{pck_thr:g}": pck(recon, data.keypoints, bbox_size(data.boxes), pck_thr),
        "codebook_usage": token_metrics.codebook_usage(tokens, v),
        "perplexity": token_metrics.perplexity(tokens, v),
        "bits_per_pose": token_metrics.bits_per_pose(m, v),
        "compression_ratio": token_metrics.compression_ratio(codec.skeleton.num_joints, m, v),
        "num_tokens": m,
        "codebook_size": v,
        "poses_per_s": len(data) / max(seconds, 1e-9),
    })
    return metrics, {"tokens": tokens, "recon": recon, "errors": errors}
