"""Training the PCT pose tokenizer with Lightning."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from ..codecs.crop import box_to_center_scale, to_crop
from ..data.transforms import KeypointAugment
from ..metrics.tokens import codebook_usage, perplexity
from ..models.pct import PCTDims, PCTTokenizerModel
from ..skeletons import Skeleton, get_skeleton


class CropTargets(Dataset):
    """Poses in image pixels -> (augmented) normalised crop coordinates for the tokenizer.

    Fetching is batched (``__getitems__``): the DataLoader hands over a whole batch of indices and the
    augmentation and normalisation run vectorised over it, which matters on a 2-core machine.

    Args:
        keypoints: ``(N, K, 3)`` pixels + visibility.
        boxes: ``(N, 4)`` xywh person boxes.
        aspect_ratio, padding: the crop frame (see :mod:`posetok.codecs.crop`).
        augment: random flips, rotations, scales, shifts and half-body boxes, or None.
        seed: seed of the augmentation stream (offset by the rank under DDP).
    """

    def __init__(self, keypoints: np.ndarray, boxes: np.ndarray, aspect_ratio: float, padding: float,
                 augment: KeypointAugment | None = None, seed: int = 0) -> None:
        self.keypoints = np.ascontiguousarray(keypoints, dtype=np.float32)
        self.boxes = np.ascontiguousarray(boxes, dtype=np.float32)
        self.aspect_ratio = aspect_ratio
        self.padding = padding
        self.augment = augment
        self.seed = seed
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.keypoints)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        if self._rng is None:
            info = torch.utils.data.get_worker_info()
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            self._rng = np.random.default_rng([self.seed, rank, info.id if info else 0])
        idx = np.asarray(indices)
        kp, bx = self.keypoints[idx], self.boxes[idx]
        if self.augment is not None:
            kp, bx = self.augment(kp, bx, self._rng)
        center, size = box_to_center_scale(bx, self.aspect_ratio, self.padding)
        visible = kp[..., 2] > 0
        coords = np.where(visible[..., None], to_crop(kp[..., :2], center, size), 0.0).astype(np.float32)
        return {"coords": torch.from_numpy(coords), "visible": torch.from_numpy(visible)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


def _keep_batch(batch: Any) -> Any:
    return batch


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float, time_fraction: float = 0.0) -> float:
    """LR multiplier: linear warm-up from ``min_ratio`` over ``warmup`` steps, then cosine to ``min_ratio``.

    The cosine follows whichever bound of the run is nearer: the step count (``step / total``) or the
    share of a time budget already spent (``time_fraction``), so a run stopped by ``trainer.max_time`` has
    annealed by then instead of ending at a high learning rate.
    """
    if step < warmup:
        return min_ratio + (1.0 - min_ratio) * step / max(1, warmup)
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class TokenizerTask(L.LightningModule):
    """Trains :class:`PCTTokenizerModel`: Smooth-L1 on labelled joints plus the VQ commitment loss.

    The network is built in :meth:`configure_model`, after Lightning has set up the process group, so the
    quantizer synchronises its codebook EMA statistics and k-means init across ranks under DDP.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg: DictConfig = OmegaConf.create(config)
        self.skeleton: Skeleton = get_skeleton(self.cfg.model.skeleton)
        self.model: PCTTokenizerModel | None = None
        self._val: list[tuple[torch.Tensor, ...]] = []
        self._time_before = 0.0  # training seconds of earlier sessions of this run (restored on resume)
        self._session_start: float | None = None

    def train_time_s(self) -> float:
        """Seconds spent training this run, across resumes."""
        now = time.monotonic()
        return self._time_before + (now - self._session_start if self._session_start is not None else 0.0)

    def time_fraction(self) -> float:
        """Share of ``trainer.max_time`` already spent (0 without a time bound)."""
        limit = self.cfg.trainer.max_time
        return self.train_time_s() / (60.0 * limit) if limit else 0.0

    def on_train_start(self) -> None:
        self._session_start = time.monotonic()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["posetok_train_time_s"] = self.train_time_s()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._time_before = float(checkpoint.get("posetok_train_time_s", 0.0))

    def configure_model(self) -> None:
        if self.model is None:
            dims = PCTDims.from_dict(OmegaConf.to_container(self.cfg.model))  # type: ignore[arg-type]
            self.model = PCTTokenizerModel(self.skeleton.num_joints, dims)

    @property
    def quantizing(self) -> bool:
        """False during the quantizer warm-up (``optim.vq_start_step``), and for validation before it ends."""
        return self.global_step >= self.cfg.optim.vq_start_step

    @property
    def crop_px(self) -> float:
        """Crop height of the model input in pixels: turns normalised errors into input-resolution pixels."""
        return float(self.cfg.model.input_size[1])

    def _losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        assert self.model is not None
        out = self.model(batch["coords"], batch["visible"], quantize=self.quantizing)
        w = batch["visible"].float()
        per_joint = F.smooth_l1_loss(out["recon"], batch["coords"], beta=self.cfg.loss.beta, reduction="none")
        joint_loss = (per_joint.sum(-1) * w).sum() / w.sum().clamp(min=1.0)
        loss = self.cfg.loss.joint_weight * joint_loss + self.cfg.loss.commit_weight * out["commit_loss"]
        err = ((out["recon"] - batch["coords"]).norm(dim=-1) * w).sum() / w.sum().clamp(min=1.0)
        return {"loss": loss, "joint_loss": joint_loss, "commit_loss": out["commit_loss"].detach(),
                "error_px": err.detach() * self.crop_px, "recon": out["recon"].detach(), "tokens": out["tokens"]}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self._losses(batch)
        bs = batch["coords"].shape[0]
        self.log_dict({"train/loss": out["loss"].detach(), "train/joint_loss": out["joint_loss"].detach(),
                       "train/commit_loss": out["commit_loss"]}, batch_size=bs)
        self.log("train/error_px", out["error_px"], prog_bar=True, batch_size=bs)
        if self.quantizing:
            usage = out["tokens"].unique().numel() / self.model.codebook_size  # type: ignore[union-attr]
            self.log("train/batch_code_usage", usage, batch_size=bs)
        return out["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self._losses(batch)
        self._val.append((out["recon"], batch["coords"], batch["visible"], out["tokens"]))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        recon, coords, visible, tokens = (torch.cat(t) for t in zip(*self._val))
        self._val.clear()
        err = (recon - coords).norm(dim=-1)[visible].mean() * self.crop_px
        self.log("val/error_px", err, prog_bar=True, sync_dist=True)
        if self.quantizing:
            tok = tokens.cpu().numpy()
            v = self.model.codebook_size  # type: ignore[union-attr]
            self.log_dict({"val/code_usage": codebook_usage(tok, v), "val/perplexity": perplexity(tok, v)},
                          sync_dist=True)

    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 or "norm" in name or "invisible_token" in name else decay).append(p)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=o.lr, betas=tuple(o.betas))
        total = int(self.trainer.max_steps) if self.trainer.max_steps > 0 else int(self.cfg.trainer.max_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, o.warmup_steps, total, o.min_lr_ratio, self.time_fraction()))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def make_loader(dataset: CropTargets, batch_size: int, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """A DataLoader that fetches whole batches through :meth:`CropTargets.__getitems__`."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      collate_fn=_keep_batch, drop_last=shuffle, persistent_workers=num_workers > 0)
