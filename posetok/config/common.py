"""Config sections shared by every task: the trainer, W&B and the optimiser defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class WandbConfig:
    """Weights & Biases (``trainer.logger`` with ``wandb``; needs the ``wandb`` extra)."""

    project: str = "posetok"
    name: str | None = None  # run name; None: the name of the run folder
    mode: str = "auto"  # auto: online when an API key is set and the service answers, else offline; online; offline


@dataclass
class TrainerConfig:
    max_steps: int = 2000
    max_time: float | None = None  # minutes
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    # auto: bf16-mixed on GPUs and on CPUs with native bf16 (AVX512-BF16, AMX), else 32-true (resolve_precision)
    precision: str = "auto"
    log_every_n_steps: int = 25
    val_every_n_steps: int = 500
    seed: int = 0
    progress_bar: bool = True
    threads: int | None = None  # torch intra-op threads; None: all cores
    logger: Any = "tensorboard"  # tensorboard, wandb, csv, or a list of them
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class OptimConfig:
    lr: float = 1e-2
    weight_decay: float = 0.15
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 100
    min_lr_ratio: float = 1e-3
    # Steps during which the decoder reads continuous encoder features; the first quantized step then
    # k-means-initialises the codebook on trained features instead of random ones.
    vq_start_step: int = 500

