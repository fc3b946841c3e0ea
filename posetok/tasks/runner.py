"""What every task's training shares: the run folder and the Lightning Trainer around it (:func:`fit_run`), the
process layout under ``torchrun``, the learning-rate schedule, and a base Lightning module for quantizer models.

No task lives here; each task module builds its datasets and its Lightning module and hands them to
:func:`fit_run`.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf

from ..config import resolve_precision, save_config
from ..errors import PosetokError
from ..perf import keep_freed_memory, precision_reason


class ModelWriter(Protocol):
    """Writes a run's ``model.ckpt`` once training has ended; returns its path."""

    def write(self, trainer: L.Trainer, task: Any) -> Path: ...


def _not_an_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in record.getMessage()  # Lightning's tip to install its cloud logger, on every run


def prepare_run(cfg: DictConfig) -> None:
    """Process settings before a run: threads, the glibc heap, the seed, and ``trainer.precision: auto``
    resolved for this machine (printed; saved in ``config.yaml``)."""
    t = cfg.trainer
    if t.threads:
        torch.set_num_threads(int(t.threads))
    keep_freed_memory()
    # Lightning's own use of a deprecated torch API; nothing a posetok user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # Lightning logs every n-th step counted across epochs, so a small dataset (5 batches an epoch on the
    # bundled frames) is still logged; its warning that it is not would mislead.
    warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging interval")
    # posetok's datasets are random draws and a resumed run reseeds by its step (TimedTask.on_load_checkpoint), so
    # restarting the part-done epoch loses nothing.
    warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch ended")
    # Frozen parts (a frozen backbone, the tokenizer's decoder, an image guide) stay in eval mode on purpose:
    # their train() keeps them there so that batch-norm statistics do not move.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")
    lightning_info = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _not_an_advert not in lightning_info.filters:
        lightning_info.addFilter(_not_an_advert)
    if t.precision == "auto":
        chosen = resolve_precision(cfg)
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"trainer.precision: auto -> {chosen} ({precision_reason(chosen, t.accelerator)})", flush=True)
    L.seed_everything(t.seed, workers=True, verbose=False)


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


def logger_names(cfg: DictConfig) -> list[str]:
    """``trainer.logger`` as a list of names."""
    value = cfg.trainer.logger
    return [value] if isinstance(value, str) else list(value)


def _wandb_online(mode: str) -> bool:
    """``trainer.wandb.mode`` -> whether W&B logs online: ``auto`` only with credentials and the service in reach
    (one TCP connection, 3 s at most), so an offline machine records the run locally instead of hanging."""
    if mode != "auto":
        return mode == "online"
    netrc = Path.home() / ".netrc"
    has_key = bool(os.environ.get("WANDB_API_KEY")) or (netrc.is_file() and "api.wandb.ai" in netrc.read_text())
    if not has_key or os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return False
    import socket

    try:
        socket.create_connection(("api.wandb.ai", 443), timeout=3).close()
        return True
    except OSError:
        return False


class _ResumedMetricsWriter(ExperimentWriter):
    """Lightning's CSV writer, except that a resumed run continues ``metrics.csv`` instead of deleting it.

    Lightning deletes the file whenever its folder is not empty, so resuming a run lost every value logged
    before. Here the old rows stay; those at or after the first step logged now (logged after the checkpoint the
    run resumed from) are dropped, so that each step appears once.
    """

    def _check_log_dir_exists(self) -> None:  # the hook in which Lightning deleted the file: read it instead
        self._resumed_rows: list[dict[str, str]] | None = None
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                reader = csv.DictReader(f)
                self._resumed_rows = list(reader)
                self.metrics_keys = sorted(reader.fieldnames or [])

    def save(self) -> None:
        if self._resumed_rows is not None and self.metrics:
            first = min((int(m["step"]) for m in self.metrics if "step" in m), default=None)
            kept = [r for r in self._resumed_rows
                    if first is None or not r.get("step") or int(float(r["step"])) < first]
            self._resumed_rows = None
            with self._fs.open(self.metrics_file_path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)
        super().save()


class _ResumingCSVLogger(L.pytorch.loggers.CSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumedMetricsWriter(log_dir=self.log_dir)
        return self._experiment


def make_loggers(cfg: DictConfig, out: Path) -> list[Any]:
    """The Lightning loggers ``trainer.logger`` names, writing under ``out``: TensorBoard in ``tb/``, CSV in
    ``csv/metrics.csv``, W&B in ``wandb/`` (offline runs sync later with ``wandb sync out/wandb/offline-run-*``)."""
    loggers: list[Any] = []
    for name in logger_names(cfg):
        if name == "tensorboard":
            loggers.append(L.pytorch.loggers.TensorBoardLogger(out, name="tb", version=""))
        elif name == "csv":
            loggers.append(_ResumingCSVLogger(out, name="csv", version=""))
        elif name == "wandb":
            try:
                import wandb  # noqa: F401
            except ImportError:
                raise PosetokError("trainer.logger: 'wandb' needs the wandb package: pip install "
                                   "'posetok[wandb]'") from None
            w = cfg.trainer.wandb
            loggers.append(L.pytorch.loggers.WandbLogger(
                project=w.project, name=w.name or out.resolve().name, save_dir=str(out),
                offline=not _wandb_online(w.mode)))
    return loggers


def _progress_bar() -> L.Callback:
    """Lightning's default progress bar (Rich when installed, else tqdm), also showing the numbers a task keeps in
    ``progress_values``. Those are Python numbers set on logging steps (:meth:`TimedTask.show`): a value logged
    with ``prog_bar=True`` instead is turned into a number by Lightning at every later step of the epoch, and on
    a GPU each such conversion makes the host wait for the queued kernels."""
    from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
    from lightning.pytorch.utilities.imports import _RICH_AVAILABLE

    base: type = RichProgressBar if _RICH_AVAILABLE else TQDMProgressBar

    class ProgressBar(base):  # type: ignore[misc, valid-type]
        def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
            items = super().get_metrics(trainer, pl_module)
            items.update(getattr(pl_module, "progress_values", {}))
            return items

    return ProgressBar()


def fit_run(cfg: DictConfig, task: TimedTask, train_loader: Any, val_loader: Any, writer: ModelWriter,
            callbacks: list[L.Callback] | None = None) -> Path:
    """Fit ``task`` and leave ``cfg.out`` as every run does; returns the path of ``model.ckpt``.

    The folder receives ``config.yaml`` (resolved, with the precision actually used), ``last.ckpt`` (Lightning
    state, rewritten every ``trainer.val_every_n_steps`` and at the end; an existing one is resumed from),
    ``model.ckpt`` (from ``writer.write(trainer, task)``) and the logs of ``trainer.logger`` (:func:`make_loggers`).
    """
    out = Path(cfg.out)
    t = cfg.trainer
    resolve_precision(cfg)
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=out, filename="step{step}", save_top_k=0, save_last=True,
        every_n_train_steps=t.val_every_n_steps, save_on_train_epoch_end=False)
    callbacks = [checkpoint, L.pytorch.callbacks.LearningRateMonitor("step"), *(callbacks or [])]
    if t.progress_bar:
        callbacks.append(_progress_bar())
    devices, num_nodes, strategy = launcher_layout(cfg)
    trainer = L.Trainer(
        default_root_dir=out, max_steps=t.max_steps, max_epochs=-1,
        max_time={"minutes": t.max_time} if t.max_time else None,
        accelerator=t.accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
        precision=t.precision, log_every_n_steps=t.log_every_n_steps,
        val_check_interval=t.val_every_n_steps, check_val_every_n_epoch=None,
        logger=make_loggers(cfg, out),
        callbacks=callbacks, enable_progress_bar=t.progress_bar, enable_model_summary=False,
        num_sanity_val_steps=0)
    if trainer.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    last = out / "last.ckpt"
    trainer.fit(task, train_loader, val_loader, ckpt_path=str(last) if last.exists() else None)
    # Lightning's ModelCheckpoint writes last.ckpt on its step schedule; the final state is saved here too.
    trainer.save_checkpoint(last, weights_only=False)  # the full state (optimizer, loops): resumable
    if "wandb" in logger_names(cfg):
        import wandb

        wandb.finish()  # flushes the run (and its summary) to out/wandb before model.ckpt is written
    if trainer.is_global_zero:
        warning = task.end_of_run_warning()
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        writer.write(trainer, task)
    return out / "model.ckpt"


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


class TimedTask(L.LightningModule):
    """Base of every task's Lightning module: the config (saved as the hyper-parameters, so a ``last.ckpt``
    describes its run) and the training time across resumes (``train_time_s``, ``time_fraction``, stored in
    ``last.ckpt``), which time-bounded schedules follow. Subclasses build ``self.model`` in
    :meth:`configure_model` and define the steps and optimisers."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg: DictConfig = OmegaConf.create(config)
        self.model: torch.nn.Module | None = None
        self._val: list[tuple[torch.Tensor, ...]] = []
        self._time_before = 0.0  # training seconds of earlier sessions of this run (restored on resume)
        self.progress_values: dict[str, float] = {}  # shown by the progress bar (:meth:`show`)
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
        # Lightning restarts a part-done epoch on resume and restores no random state, so a resumed run seeded as
        # at its start would replay its first batches. Shifting the seed by the step resumed from draws a new
        # order (shuffle or DistributedSampler, whose seed Lightning takes from seed_everything), so each sample
        # meets other augmentation draws; this runs before the training loader's iterator exists.
        step = int(checkpoint.get("global_step", 0))
        if step:
            L.seed_everything(int(self.cfg.trainer.seed) + step, workers=True, verbose=False)

    def end_of_run_warning(self) -> str | None:
        """A line to print when training has ended in a state the user should know about; None if all is well."""
        return None

    def logging_step(self) -> bool:
        """Whether this training step's logged values reach the loggers (every ``trainer.log_every_n_steps``, as
        Lightning decides it). The training steps call ``self.log`` only then, because the values of the other
        steps are never written, yet cost: each ``self.log`` call walks Lightning's result collection (about
        1.5 ms on a CPU core, measured with cProfile under ``posetok bench tokenizer --train``: 8 ms of a 56 ms
        pct_small step for five values), Lightning turns progress-bar values into Python numbers at every step,
        and a count such as the codes a batch uses needs the host: on a GPU each makes the host wait."""
        n = max(1, int(self.trainer.log_every_n_steps))
        return (self.global_step + 1) % n == 0

    def show(self, name: str, value: torch.Tensor) -> None:
        """Log ``value`` and show it in the progress bar, from a logging step (:meth:`logging_step`): the number is
        read once here, where the loggers read it too, rather than by Lightning at every step."""
        self.log(name, value)
        self.progress_values[name] = round(float(value), 4)


class QuantizerTask(TimedTask):
    """Base of the tokenizer tasks: a network with a quantizer, trained with AdamW and :func:`warmup_cosine`.

    It adds the quantizer warm-up switch (``quantizing``: False before ``optim.vq_start_step``, when the decoder
    reads continuous features). Subclasses build ``self.model`` in :meth:`configure_model` after Lightning has
    set up the process group, so the quantizer synchronises its EMA statistics under DDP.
    """

    def end_of_run_warning(self) -> str | None:
        if self.quantizing:
            return None
        return (f"training stopped at step {self.global_step}, before optim.vq_start_step="
                f"{self.cfg.optim.vq_start_step}: the codebook was never trained; raise trainer.max_time or lower "
                "optim.vq_start_step")

    @property
    def quantizing(self) -> bool:
        """False during the quantizer warm-up (``optim.vq_start_step``), and for validation before it ends."""
        return self.global_step >= self.cfg.optim.vq_start_step

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
