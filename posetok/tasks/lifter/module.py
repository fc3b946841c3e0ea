"""The lifter's Lightning module: augmentation and masking of each batch, the losses of its mapping, validation
(MPJPE and PA-MPJPE in mm, or the masked reconstruction error), the best weights for ``model.ckpt``, the optimiser,
and loading a pretrained encoder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ... import checkpoint
from ...codecs.lifting import flip_poses
from ...config import lifter_dims_dict
from ...errors import field_error
from ...metrics.mpjpe import frame_errors
from ...models import lifter_losses as losses
from ...models.lifter import LifterDims, LifterModel, build_lifter
from ...skeletons import get_skeleton
from ..runner import TimedTask, warmup_cosine


def monitor_key(mapping: str) -> str:
    """The validation metric early stopping and the best weights follow."""
    return "val/recon_2d" if mapping == "2d_2d" else "val/mpjpe"


def apply_masks(x: torch.Tensor, visible: torch.Tensor, joint_ratio: float, frame_ratio: float, noise_std: float,
                generator: torch.Generator | None = None, coords: int = 2
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Masked pose modelling's corruption of ``(B, T, K, C)`` inputs: whole frames masked with probability
    ``frame_ratio``, single joints with ``joint_ratio``, Gaussian noise of s.d. ``noise_std`` on the first ``coords``
    channels of the visible joints. Masked joints become all zeros (with a confidence channel: confidence 0).

    Returns the corrupted input, its visibility and the ``masked`` joints ``(B, T, K)`` (visible before, hidden
    now). Random numbers come from ``generator`` (CPU) when given, so validation masks repeat exactly.
    """
    b, t, k = visible.shape
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(dev)

    masked = ((rand(b, t, 1) < frame_ratio) | (rand(b, t, k) < joint_ratio)) & visible
    if noise_std > 0:
        noise = torch.randn(*x.shape[:-1], coords, generator=generator).to(dev) * noise_std
        x = torch.cat([x[..., :coords] + noise * visible[..., None], x[..., coords:]], dim=-1)
    x = x.masked_fill(masked[..., None], 0.0)
    return x, visible & ~masked, masked


class LifterTask(TimedTask):
    """Trains a :class:`~posetok.models.lifter.LifterModel` on windows of :class:`~posetok.tasks.lifter.data.WindowSet`
    for its ``model.mapping`` (see :mod:`posetok.config.lifter`); keeps the weights of the best validation."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.dims = LifterDims.from_dict(lifter_dims_dict(config))
        self.mapping = self.cfg.model.mapping
        self.monitor = monitor_key(self.mapping)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_value = math.inf
        self.best_step = -1
        self.val_history: list[tuple[int, float]] = []
        self.pretrained_from: str | None = None
        sk_in, sk_out = get_skeleton(self.dims.skeleton_in), get_skeleton(self.dims.skeleton_out)
        # buffers, so they follow the module to its device
        self.register_buffer("flip_in", torch.from_numpy(sk_in.flip_index), persistent=False)
        self.register_buffer("flip_out", torch.from_numpy(sk_out.flip_index), persistent=False)
        self.limbs = list(sk_out.limbs)

    def configure_model(self) -> None:
        if self.model is not None:
            return
        self.model = build_lifter(self.dims)
        if self.cfg.model.pretrained:
            load_pretrained(self.model, self.cfg.model.pretrained, self.dims)
            self.pretrained_from = str(self.cfg.model.pretrained)

    # ------------------------------------------------------------------------------------------------------
    # Batches
    # ------------------------------------------------------------------------------------------------------

    def _prepare(self, batch: dict[str, torch.Tensor], train: bool, generator: torch.Generator | None = None
                 ) -> dict[str, torch.Tensor]:
        """Pick the encoding, augment (training), corrupt (masking), and build the target of the mapping."""
        d, mk = self.cfg.data, self.cfg.mask
        x, target = batch["image"], batch["target"]
        b = x.shape[0]
        dev = x.device
        if self.mapping != "3d_3d" and train and d.box_norm_prob > 0:
            use_box = (torch.rand(b, device=dev) < d.box_norm_prob) | ~batch["has_image"]
        else:
            use_box = ~batch["has_image"]
        x = torch.where(use_box[:, None, None, None], batch["box"], x)
        visible = (x[..., 2] > 0) if self.mapping != "3d_3d" else torch.ones(x.shape[:3], dtype=torch.bool,
                                                                              device=dev)
        if train:
            flip = torch.rand(b, device=dev) < d.flip_prob
            if flip.any():
                x = torch.where(flip[:, None, None, None], flip_poses(x, self.flip_in), x)
                visible = torch.where(flip[:, None, None], visible.index_select(-1, self.flip_in), visible)
                if self.mapping == "2d_3d":
                    target = torch.where(flip[:, None, None, None], flip_poses(target, self.flip_out), target)
            if self.mapping != "3d_3d" and d.scale_jitter > 0:
                s = 1.0 + (torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * d.scale_jitter
                x = torch.cat([x[..., :2] * s, x[..., 2:]], dim=-1)
        if self.mapping == "2d_2d":
            target = x[..., :2]
        elif self.mapping == "3d_3d":
            target = x
        if self.mapping != "2d_3d" or train:
            x, visible_in, masked = apply_masks(x, visible, mk.joint_ratio, mk.frame_ratio, mk.noise_std, generator,
                                                coords=3 if self.mapping == "3d_3d" else 2)
        else:
            visible_in, masked = visible, torch.zeros_like(visible)
        return {"x": x, "visible": visible_in, "target": target, "valid": visible, "masked": masked}

    def _losses(self, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        assert self.model is not None
        pred = self.model(p["x"], p["visible"]).float()
        lw = self.cfg.loss
        if self.mapping == "2d_3d":
            terms = losses.lifting_losses(pred, p["target"], self.limbs,
                                          {k: float(lw[k]) for k in ("mpjpe", "n_mpjpe", "velocity", "bone",
                                                                     "bone_time")})
        else:
            rec = losses.recon(pred, p["target"], p["valid"], p["masked"], float(lw.masked_weight))
            if self.mapping == "2d_2d":
                terms = {"recon_2d": rec, "total": float(lw.recon_2d) * rec}
            else:
                bone = losses.bone(pred, p["target"], self.limbs)
                terms = {"recon_3d": rec, "bone": bone, "total": float(lw.mpjpe) * rec + float(lw.bone) * bone}
        terms["pred"] = pred
        return terms["total"], terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        total, terms = self._losses(self._prepare(batch, train=True))
        bs = batch["image"].shape[0]
        if self.logging_step():  # what the loggers receive; see TimedTask.logging_step for why not every step
            self.log_dict({f"train/{k}": v.detach() for k, v in terms.items() if k not in ("pred", "total")},
                          batch_size=bs)
            self.show("train/loss", total.detach())
        return total

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        gen = torch.Generator().manual_seed(10_000 + batch_idx)  # the same masks at every validation
        p = self._prepare(batch, train=False, generator=gen)
        _, terms = self._losses(p)
        if self.mapping == "2d_2d":
            err = (terms["pred"] - p["target"]).norm(dim=-1)[p["valid"]]
            self._val.append((err.detach().cpu(),))
        else:
            self._val.append((terms["pred"].detach().cpu(), p["target"].detach().cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val or self.trainer.sanity_checking:
            self._val.clear()
            return
        if self.mapping == "2d_2d":
            value = float(torch.cat([v[0] for v in self._val]).mean())
            logs = {"val/recon_2d": value}
        else:
            pred = torch.cat([v[0] for v in self._val]).double().numpy() * 1000.0
            gt = torch.cat([v[1] for v in self._val]).double().numpy() * 1000.0
            value = float(frame_errors(pred, gt).mean())
            logs = {"val/mpjpe": value}
            if self.mapping == "2d_3d":
                logs["val/pa_mpjpe"] = float(frame_errors(pred, gt, "pa").mean())
        self._val.clear()
        self.log_dict(logs, prog_bar=True, sync_dist=True)
        self.val_history.append((int(self.global_step), value))
        if value < self.best_value:
            self.best_value, self.best_step = value, int(self.global_step)
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        if self.trainer.is_global_zero:
            self.print(f"step {self.global_step}: " + ", ".join(f"{k} {v:.4g}" for k, v in logs.items()))

    # ------------------------------------------------------------------------------------------------------
    # State across resumes, optimiser
    # ------------------------------------------------------------------------------------------------------

    def on_save_checkpoint(self, ckpt: dict[str, Any]) -> None:
        super().on_save_checkpoint(ckpt)
        ckpt["posetok_best"] = {"state": self.best_state, "value": self.best_value, "step": self.best_step,
                                "history": self.val_history}

    def on_load_checkpoint(self, ckpt: dict[str, Any]) -> None:
        super().on_load_checkpoint(ckpt)
        best = ckpt.get("posetok_best") or {}
        self.best_state = best.get("state")
        self.best_value = float(best.get("value", math.inf))
        self.best_step = int(best.get("step", -1))
        self.val_history = [tuple(v) for v in best.get("history", [])]  # type: ignore[misc]

    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            flat = p.ndim < 2 or "norm" in name or "pos" in name or "mask_token" in name or "joint_map" in name
            (no_decay if flat else decay).append(p)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=o.lr, betas=tuple(o.betas))
        total = int(self.trainer.max_steps) if self.trainer.max_steps > 0 else int(self.cfg.trainer.max_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, o.warmup_steps, total, o.min_lr_ratio, self.time_fraction()))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def final_state(self) -> dict[str, torch.Tensor]:
        """The weights ``model.ckpt`` keeps: those of the best validation, else the last ones."""
        assert self.model is not None
        return self.best_state if self.best_state is not None else self.model.state_dict()


# ----------------------------------------------------------------------------------------------------------
# Pretrained encoders
# ----------------------------------------------------------------------------------------------------------

#: Dims a pretrained encoder must share with the network it starts.
_ENCODER_DIMS = ("arch", "skeleton_in", "in_channels", "has_conf", "dim", "depth", "heads", "mlp_ratio", "hidden",
                 "blocks")


def load_pretrained(model: LifterModel, path: str | Path, dims: LifterDims) -> dict[str, Any]:
    """Copy the encoder of a lifter checkpoint (``2d_2d`` pretraining or a ``2d_3d`` lifter; ``model.ckpt`` or a
    run's ``last.ckpt``) into ``model``: everything but ``head.*``; a learned frame embedding of another length
    is resampled. Errors name the file and the field that does not fit (kind, mapping, skeleton, sizes)."""
    _, payload = checkpoint.read_payload(path, kind="lifter")
    if payload.get("mapping") not in ("2d_2d", "2d_3d"):
        raise field_error(path, "mapping", f"a {payload.get('mapping')!r} checkpoint; a lifter starts from a 2d_2d "
                                           "(masked 2D pretraining) or 2d_3d encoder")
    theirs = payload.get("dims") or {}
    mine = dims.to_dict()
    for key in _ENCODER_DIMS:
        if theirs.get(key) != mine[key]:
            fld = key if key == "skeleton_in" else f"dims.{key}"
            raise field_error(path, fld, f"{theirs.get(key)!r}, this run's model has {mine[key]!r} "
                                         f"(model.pretrained needs the same encoder and input skeleton)")
    state = {k: v for k, v in payload["state_dict"].items() if not k.startswith("head.")}
    own = model.state_dict()
    pos = "embed.frame_pos"
    if pos in state and pos in own and state[pos].shape != own[pos].shape:
        src = state[pos][0, :, 0].t()[None]  # (1, C, T_src)
        state[pos] = F.interpolate(src, size=own[pos].shape[1], mode="linear", align_corners=True)[0].t()[None, :, None]
    elif pos in state and pos not in own:
        del state[pos]
    elif pos in own and pos not in state:
        state[pos] = own[pos]
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise checkpoint.state_dict_error(path, e) from None
    bad = [k for k in missing if not k.startswith("head.")] + list(unexpected)
    if bad:
        raise field_error(path, "state_dict", f"does not fit this run's encoder (first: {bad[0]})")
    return {"loaded": len(state), "from": str(path)}
