"""``posetok bench tokenizer --train``: the training speed of ``posetok train`` beside a plain PyTorch loop.

The posetok side is the real thing: :func:`posetok.tasks.train` of the config (its data pipeline, Lightning
loop, logging, progress bar, learning-rate schedule, precision), in a temporary run folder. A callback times
blocks of its steps; between two blocks it runs as many steps of the plain loop, on a second model of the same
dimensions on the same device and precision: AdamW, the quantizer (EMA codebook or the scalar quantizers),
straight-through, the reconstruction loss plus the commitment loss, on one batch kept on the device. Alternating
the two in one process exposes both to the same load, so their ratio holds on a shared machine.

What the blocks leave out on both sides: the first ``warmup`` steps (k-means initialisation of the codebooks,
allocator warm-up) and validation, which is switched off (``trainer.val_every_n_steps`` beyond the run).
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch.overrides import TorchFunctionMode

from ..config import resolve_precision
from ..errors import PosetokError
from ..models.sequence import sequence_losses
from . import _peak_rss_mb, machine_info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str) -> Any:
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    return torch.autocast(device.type, enabled=False)


#: Tensor operations that wait for the device: their result is needed on the host (a value, a shape that depends
#: on the data, a copy to the CPU). On a CPU run they cost nothing; on a GPU each one stalls the queue of kernels.
_SYNC_OPS = {"item", "__bool__", "__float__", "__int__", "__index__", "tolist", "unique", "unique_consecutive",
             "nonzero", "masked_select", "argwhere"}


class HostSyncCounter(TorchFunctionMode):
    """Counts the tensor operations that would make the host wait for a GPU (:data:`_SYNC_OPS`, boolean-mask
    indexing, copies to the CPU), with the line of posetok, Lightning or a library that asked for each, while the
    mode is active. It sees every torch call in the process, so it finds syncs on a CPU-only machine too."""

    def __init__(self) -> None:
        super().__init__()
        self.where: dict[str, int] = {}

    def _record(self, name: str) -> None:
        site = None
        for f in reversed(traceback.extract_stack(limit=16)[:-2]):  # innermost first
            if "/torch/optim/" in f.filename or "/torch/utils/data/" in f.filename:
                # an optimiser's step counters and a sampler's indices are CPU tensors on every device: no wait
                return
            if "/torch/" not in f.filename:
                site = f
                break
        key = f"{name} at {_short(site.filename)}:{site.lineno}" if site else name
        self.where[key] = self.where.get(key, 0) + 1

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _SYNC_OPS:
            self._record(name)
        elif name == "__getitem__" and len(args) > 1 and _bool_index(args[1]):
            self._record("boolean-mask indexing")
        elif (name == "cpu" and args and torch.is_tensor(args[0])) or (name == "to" and _to_cpu(args, kwargs)):
            self._record("copy to the CPU")
        return func(*args, **kwargs)


def _short(path: str) -> str:
    for marker in ("/posetok/", "/lightning/", "/vector_quantize_pytorch/", "/site-packages/"):
        if marker in path:
            return marker.strip("/") + "/" + path.split(marker, 1)[1]
    return path


def _bool_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(torch.is_tensor(i) and i.dtype == torch.bool and i.ndim > 0 for i in items)


def _to_cpu(args: Any, kwargs: dict[str, Any]) -> bool:
    """``tensor.to("cpu")`` (or ``device="cpu"``) of a tensor on another device. A ``.to(device)`` on a CPU run
    cannot tell a copy to the host from the move of a batch to the training device (what Lightning does every
    step), so only explicit ``.cpu()`` calls count there."""
    if not args or not torch.is_tensor(args[0]) or args[0].device.type == "cpu":
        return False
    target = kwargs.get("device", args[1] if len(args) > 1 else None)
    return isinstance(target, (str, torch.device)) and str(target).startswith("cpu")


def plain_step_fn(task_name: str, model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: DictConfig,
                  precision: str) -> Callable[[], None]:
    """One training step of a plain loop on ``model`` and a fixed ``batch`` already on the model's device: the
    forward with the quantizer, the task's reconstruction loss plus the commitment loss, backward, AdamW. fp16
    would need a gradient scaler; the recipes use bf16 or fp32."""
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = _autocast(device, precision)
    if task_name == "tokenizer":
        coords, visible = batch["coords"], batch["visible"]
        beta, commit = float(cfg.loss.beta), float(cfg.loss.commit_weight)

        def loss_fn() -> torch.Tensor:
            out = model(coords, visible)
            return F.smooth_l1_loss(out["recon"], coords, beta=beta) + commit * out["commit_loss"]
    else:
        poses, mask, conf = batch["poses"], batch["mask"], batch["conf"]
        skeleton = model.skeleton  # type: ignore[attr-defined]

        def loss_fn() -> torch.Tensor:
            out = model(poses, mask)
            target, _ = model.split_confidence(poses)  # type: ignore[operator]
            return sequence_losses(out["recon"], target, mask, conf, skeleton,
                                   commit_loss=out["commit_loss"])["total"]

    def step() -> None:
        with autocast:
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


class AlternatingClock(L.Callback):
    """Times ``block`` consecutive steps of the running fit, then ``block`` steps of a plain loop, in turn.

    The plain model is a fresh copy of the task's network (same dimensions, device and precision), built when
    training starts, fed the first batch the fit sees (moved to the device once)."""

    def __init__(self, task_name: str, cfg: DictConfig, warmup: int, block: int, timed_until: int,
                 counted: int = 0) -> None:
        self.task_name, self.cfg, self.warmup, self.block = task_name, cfg, warmup, block
        self.timed_until, self.counted = timed_until, counted
        self.fit_syncs = HostSyncCounter()
        self.plain_syncs = HostSyncCounter()
        self._counting = False
        self.fit_blocks: list[float] = []
        self.plain_blocks: list[float] = []
        self.batch_items = 0
        self._plain: Callable[[], None] | None = None
        self._start: float | None = None
        self._batch: dict[str, torch.Tensor] | None = None
        self.device = torch.device("cpu")
        self.precision = "32-true"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.device = pl_module.device
        self.precision = str(trainer.precision)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self._batch is None:
            self._batch = {k: v.detach().clone() for k, v in batch.items() if torch.is_tensor(v)}
            first = next(iter(self._batch.values()))
            self.batch_items = int(first.shape[0] * (first.shape[1] if self.task_name == "sequence" else 1))

    def _build_plain(self, pl_module: L.LightningModule) -> None:
        model = copy.deepcopy(pl_module.model).to(self.device).train()  # type: ignore[arg-type]
        batch = {k: v.to(self.device) for k, v in (self._batch or {}).items()}
        self._plain = plain_step_fn(self.task_name, model, batch, self.cfg, self.precision)
        for _ in range(3):  # k-means init of a fresh codebook, allocator warm-up
            self._plain()
        _sync(self.device)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if step >= self.timed_until:
            self._count(step)
            return
        if step < self.warmup or (step - self.warmup) % self.block:
            return
        _sync(self.device)
        now = time.perf_counter()
        if self._start is not None:
            self.fit_blocks.append(now - self._start)
        if self._plain is None:
            self._build_plain(pl_module)
        t0 = time.perf_counter()
        for _ in range(self.block):
            self._plain()  # type: ignore[misc]
        _sync(self.device)
        self.plain_blocks.append(time.perf_counter() - t0)
        self._start = time.perf_counter()

    def _count(self, step: int) -> None:
        """After the timed blocks: count the host syncs of ``counted`` whole fit steps (data loading, step, hooks,
        logging), and of as many plain steps. The counter slows every torch call, so it never runs while timing."""
        if self._counting:
            self.fit_syncs.__exit__(None, None, None)
            self._counting = False
        if step < self.timed_until + self.counted:
            if self._plain is not None and step == self.timed_until:
                with self.plain_syncs:
                    for _ in range(self.counted):
                        self._plain()
            self.fit_syncs.__enter__()
            self._counting = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._counting:
            self.fit_syncs.__exit__(None, None, None)
            self._counting = False


def _per_step(counter: HostSyncCounter, steps: int) -> dict[str, float]:
    return {k: round(v / steps, 2) for k, v in sorted(counter.where.items(), key=lambda kv: -kv[1])}


def bench_training(cfg: DictConfig, steps: int = 200, warmup: int = 20, block: int = 10) -> dict[str, Any]:
    """Training samples/s of ``posetok train`` with ``cfg`` (``task: tokenizer`` or ``sequence``) beside a plain
    loop of the same model, alternating blocks of ``block`` steps after ``warmup`` steps (:class:`AlternatingClock`);
    each rate is the batch over the median block time per step. Sequence tokenizers count frames (windows x
    frames). The config's quantizer warm-up is skipped (``optim.vq_start_step: 0``): both sides quantize every
    step."""
    from ..tasks import train

    if cfg.task not in ("tokenizer", "sequence"):
        raise PosetokError(f"--config: field 'task': bench tokenizer --train takes a tokenizer or sequence config, "
                           f"got {cfg.task!r}")
    if steps < 2 * block:
        raise PosetokError(f"--steps: {steps} leaves fewer than two blocks of {block} steps")
    cfg = copy.deepcopy(cfg)
    # one logging period (which writes every logged value, so waits once per value), at least 5 steps, at most 50
    counted = max(5, min(50, int(cfg.trainer.log_every_n_steps)))
    total = warmup + steps + 1 + counted
    with tempfile.TemporaryDirectory(prefix="posetok-bench-train-") as tmp:
        OmegaConf.update(cfg, "out", tmp)
        cfg.trainer.max_steps = total
        cfg.trainer.max_time = None
        cfg.trainer.val_every_n_steps = total + 1
        cfg.optim.vq_start_step = 0
        resolve_precision(cfg)
        clock = AlternatingClock(str(cfg.task), cfg, warmup, block, timed_until=warmup + steps + 1, counted=counted)
        t0 = time.perf_counter()
        train(cfg, callbacks=[clock])
        wall = time.perf_counter() - t0
    if len(clock.fit_blocks) < 2:
        raise PosetokError(f"--steps: too few timed blocks ({len(clock.fit_blocks)}); raise --steps")
    per_step_fit = statistics.median(clock.fit_blocks) / block
    per_step_plain = statistics.median(clock.plain_blocks) / block
    unit = "frames" if cfg.task == "sequence" else "samples"
    fit_rate, plain_rate = clock.batch_items / per_step_fit, clock.batch_items / per_step_plain
    return {
        "benchmark": "training", "task": str(cfg.task), "device": str(clock.device), "precision": clock.precision,
        "batch": int(cfg.data.batch_size), f"{unit}_per_step": clock.batch_items, "unit": unit,
        f"posetok_{unit}_per_s": round(fit_rate, 1), f"plain_{unit}_per_s": round(plain_rate, 1),
        "ratio": round(fit_rate / plain_rate, 3), "blocks": len(clock.fit_blocks), "block_steps": block,
        "warmup_steps": warmup, "num_workers": int(cfg.data.num_workers), "wall_s": round(wall, 1),
        "host_syncs_per_step": {"posetok": _per_step(clock.fit_syncs, counted),
                                "plain": _per_step(clock.plain_syncs, counted)},
        "machine": machine_info(), "peak_rss_mb": _peak_rss_mb(),
    }
