"""The estimator's Lightning module: losses on the codec's targets, the optimiser and the learning-rate schedule,
and the held-out OKS-AP during training (and, for the PCT classifier, the held-out token accuracy)."""

from __future__ import annotations

import math
from typing import Any

import torch
from omegaconf import OmegaConf

from ...codecs.heatmap import build_heatmap_codec
from ...data.topdown import imagenet_normalize_torch
from ...models.estimator import EstimatorDims, build_estimator
from ...models.heatmap_losses import CombinedTargetMSELoss, FusionLoss, KeypointMSELoss
from ...models.pct_classifier import SoftTokenDecoder, token_accuracy
from ...skeletons import Skeleton, get_skeleton
from ..runner import TimedTask
from .pct import check_tokenizer, layer_scales, load_tokenizer, pct_codec, pct_losses
from .pct import decoder_dims as pct_decoder_dims


def estimator_dims(cfg: Any) -> EstimatorDims:
    """The network description of a resolved estimator config (pct: the tokenizer decoder's dims from
    ``model.pct.decoder``, or read from ``model.tokenizer`` before training has filled it)."""
    m = cfg.model
    if m.head.kind == "pct":
        head = {k: m.pct[k] for k in ("conv_channels", "conv_blocks", "hidden_dim", "num_blocks", "token_inter_dim",
                                      "hidden_inter_dim", "dropout")}
        return EstimatorDims(backbone=m.backbone.name, head="pct", num_joints=get_skeleton(m.skeleton).num_joints,
                             input_size=(int(m.input_size[0]), int(m.input_size[1])), highest_only=False,
                             lowest_only=True,
                             drop_path=m.backbone.drop_path, pct=head, tokenizer=pct_decoder_dims(cfg))
    return EstimatorDims(backbone=m.backbone.name, head=m.head.kind, num_joints=get_skeleton(m.skeleton).num_joints,
                         input_size=(int(m.input_size[0]), int(m.input_size[1])),
                         deconv_channels=tuple(int(c) for c in m.head.deconv_channels),
                         num_outputs=build_heatmap_codec(codec_spec(cfg)).num_outputs(
                             get_skeleton(m.skeleton).num_joints),
                         final_bias=float(m.head.final_bias),
                         drop_path=m.backbone.drop_path)


def codec_spec(cfg: Any) -> dict[str, Any]:
    """The codec description (``build_heatmap_codec``'s argument, or the pct codec's ``to_dict``) of a resolved
    estimator config."""
    if cfg.model.head.kind == "pct":
        return pct_codec(cfg).to_dict()
    c = cfg.model.codec
    spec: dict[str, Any] = {"type": c.type, "input_size": list(cfg.model.input_size),
                            "heatmap_size": list(c.heatmap_size), "sigma": float(c.sigma)}
    if c.type == "msra":
        spec["unbiased"] = bool(c.unbiased)
    elif c.type == "udp":
        spec["target"] = c.target
    return spec


def soft_argmax(heatmaps: torch.Tensor, beta: float = 20.0) -> torch.Tensor:
    """``(B, K, H, W)`` maps -> ``(B, K, 2)`` expected x, y in heatmap pixels under ``softmax(beta * map)``."""
    b, k, h, w = heatmaps.shape
    p = torch.softmax(heatmaps.float().reshape(b, k, -1) * beta, dim=-1).reshape(b, k, h, w)
    xs = torch.arange(w, device=heatmaps.device, dtype=p.dtype)
    ys = torch.arange(h, device=heatmaps.device, dtype=p.dtype)
    return torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], dim=-1)


class EstimatorTask(TimedTask):
    """Trains a top-down network on its codec's targets (heatmap MSE with target weights, or the fusion head's
    six terms), with Adam/AdamW, a linear warm-up and multi-step or cosine decay."""

    def __init__(self, config: dict[str, Any], steps_per_epoch: int = 1) -> None:
        super().__init__(config)
        self.skeleton: Skeleton = get_skeleton(self.cfg.model.skeleton)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.pct = self.cfg.model.head.kind == "pct"
        self.tokenizer: Any = None
        loss, c = self.cfg.loss, self.cfg.model.codec
        self.val_tokens: Any = None  # pct: a loader of held-out crops with their token ids (set by the task)
        if self.pct:
            # The frozen tokenizer: its encoder makes the targets, its decoder starts the network's copy.
            if self.cfg.model.tokenizer:
                self.tokenizer = load_tokenizer(self.cfg.model.tokenizer)
                check_tokenizer(self.cfg, self.tokenizer)
            self.codec: Any = pct_codec(self.cfg, self.tokenizer)
            self.criterion = torch.nn.Identity()  # the pct losses are a function (pct_losses)
        elif self.cfg.model.head.kind == "fusion":
            self.criterion: torch.nn.Module = FusionLoss(
                heatmap=loss.heatmap, offset=loss.offset, peak=loss.peak, variance=loss.variance,
                overlap=loss.overlap, shape=loss.shape, target_sigma=c.sigma, edges=list(self.skeleton.limbs))
        elif c.type == "udp" and c.target == "combined":
            self.criterion = CombinedTargetMSELoss(use_target_weight=True)
        else:
            self.criterion = KeypointMSELoss(use_target_weight=True)
        if not self.pct:
            self.codec = build_heatmap_codec(codec_spec(self.cfg))
        self.evaluator: Any = None  # set by the task: held-out people -> metrics, run at validation

    def configure_model(self) -> None:
        if self.model is None:
            b = self.cfg.model.backbone
            # ImageNet / timm weights start the backbone (a local file, or timm's download when pretrained=true);
            # resuming from last.ckpt then overwrites them with the run's own.
            self.model = build_estimator(estimator_dims(self.cfg), pretrained=bool(b.pretrained), weights=b.weights,
)
            if self.pct and self.tokenizer is not None:
                # the frozen decoder and code vectors of the tokenizer (resuming overwrites them with the same)
                self.model.decoder.load_state_dict(SoftTokenDecoder.from_tokenizer(self.tokenizer.model).state_dict())
            if b.frozen and self.pct:
                self.model.freeze_backbone()  # no gradients and eval mode, the official Stage II
            elif b.frozen:
                for p in self.model.backbone.parameters():
                    p.requires_grad_(False)

    def _losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        assert self.model is not None
        images = imagenet_normalize_torch(batch["image"])
        out = self.model(images)
        if self.pct:
            if "tokens" not in batch:  # an image-guided tokenizer: its ids need the crops, computed here
                tokens = self.codec.tokens_for(batch["coords"], batch["target_weights"] > 0, images)
                batch = {**batch, "tokens": tokens}  # the caller's batch stays as it was
            lo = self.cfg.loss
            return pct_losses(out, batch, tuple(self.cfg.model.input_size), lo.token, lo.joint, lo.joint_beta)
        weights = batch["target_weights"]
        if self.cfg.model.head.kind == "fusion":
            terms = self.criterion(out["heatmaps"], batch)
        else:
            hm = self.criterion(out["heatmaps"].float(), batch["heatmaps"], weights)
            terms = {"heatmap": hm, "loss": self.cfg.loss.heatmap * hm}
        if self.cfg.loss.coord > 0:
            # An integral term gives every joint a gradient toward its target from the first step, while the
            # heatmap MSE first spends its steps flattening the output (issue 9's probe); units: heatmap px.
            xy = soft_argmax(out["heatmaps"][:, : self.skeleton.num_joints])
            err = (xy - batch["target_xy"]).abs().sum(-1)
            coord = (err * weights).sum() / weights.sum().clamp(min=1.0)
            terms["coord"] = coord
            terms["loss"] = terms["loss"] + self.cfg.loss.coord * coord
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        terms = self._losses(batch)
        bs = batch["image"].shape[0]
        if self.logging_step():  # what the loggers receive; see TimedTask.logging_step for why not every step
            self.log_dict({f"train/{k}": v.detach() for k, v in terms.items() if k != "loss"}, batch_size=bs)
            self.show("train/loss", terms["loss"].detach())
        return terms["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        pass  # the held-out AP is computed once per validation in on_validation_epoch_end

    def on_validation_epoch_end(self) -> None:
        if self.evaluator is None or self.trainer.sanity_checking:
            return
        metrics = self.evaluator(self.model)
        if self.pct and self.val_tokens is not None:
            metrics.update(self.held_out_token_accuracy())
        metrics["train_minutes"] = self.train_time_s() / 60.0  # the x of "held-out AP against minutes"
        self.log_dict({f"val/{k}": float(v) for k, v in metrics.items()}, prog_bar=False, sync_dist=False,
                      rank_zero_only=True)
        if self.trainer.is_global_zero:
            ap = metrics.get("AP", float("nan"))
            self.print(f"step {self.global_step}: held-out AP {ap:.3f}")
        self.model.train()

    @torch.no_grad()
    def held_out_token_accuracy(self) -> dict[str, float]:
        """pct: token top-1 / top-5 accuracy (%) of the held-out crops (``val_tokens``: their ids from the
        tokenizer), without flip test or augmentation."""
        assert self.model is not None
        was = self.model.training
        self.model.eval()
        hits = {1: 0.0, 5: 0.0}
        n = 0
        for batch in self.val_tokens:
            images = imagenet_normalize_torch(batch["image"].to(self.device))
            logits = self.model(images)["logits"]
            if "tokens" in batch:
                tokens = batch["tokens"].to(self.device)
            else:  # image-guided tokenizer
                coords = batch["coords"].to(self.device)
                tokens = self.codec.tokens_for(coords, batch["target_weights"].to(self.device) > 0, images)
            acc = token_accuracy(logits.float(), tokens, (1, 5))
            m = tokens.numel()
            hits = {k: hits[k] + float(acc[k]) * m for k in hits}
            n += m
        self.model.train(was)
        return {"token_top1": 100.0 * hits[1] / max(n, 1), "token_top5": 100.0 * hits[5] / max(n, 1)}

    # ------------------------------------------------------------------------------------------------------
    # Optimiser and schedule
    # ------------------------------------------------------------------------------------------------------

    def lr_factor(self, step: int) -> float:
        """The learning-rate multiplier at ``step``: linear warm-up from ``optim.warmup_ratio``, then steps
        of ``gamma`` at the milestone epochs, or a cosine to ``min_lr_ratio`` over the run (or its time)."""
        o = self.cfg.optim
        if step < o.warmup_steps:
            warm = o.warmup_ratio + (1.0 - o.warmup_ratio) * step / max(1, o.warmup_steps)
        else:
            warm = 1.0
        if o.schedule == "multistep":
            epoch = step / self.steps_per_epoch
            return warm * o.gamma ** sum(epoch >= m for m in o.milestones)
        total = int(self.trainer.max_steps) if self.trainer.max_steps > 0 else 1
        progress = min(1.0, max(step / max(1, total), self.time_fraction()))
        return warm * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        assert self.model is not None
        scales = layer_scales(self.model, float(o.layer_decay))
        by_key: dict[tuple[float, bool], list[torch.nn.Parameter]] = {}
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            # no decay on norms, biases and relative-position tables (HRFormer's recipe; Swin's logit scales
            # and continuous position MLP as the official PCT's no_decay_names)
            plain = p.ndim < 2 or any(k in name for k in ("norm", "relative_position", "logit_scale", "cpb_mlp"))
            by_key.setdefault((scales[name], plain), []).append(p)
        groups = [{"params": ps, "weight_decay": 0.0 if plain else o.weight_decay, "lr": o.lr * scale}
                  for (scale, plain), ps in sorted(by_key.items(), key=lambda kv: (-kv[0][0], kv[0][1]))]
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        opt = cls(groups, lr=o.lr, betas=tuple(o.betas))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self.lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def config_dict(cfg: Any) -> dict[str, Any]:
    """A resolved config as a plain dict (the Lightning hyper-parameters)."""
    return OmegaConf.to_container(cfg) if OmegaConf.is_config(cfg) else dict(cfg)  # type: ignore[return-value]

