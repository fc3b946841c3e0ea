"""The tasks, one module each: its datasets, Lightning module, ``train`` and ``evaluate``, its checkpoint kind
and its commands on files (``evaluate_file``; ``tokenize_file`` and ``detokenize_file`` for tokenizers,
``infer_file`` for estimators, ``lift_file`` for lifters).

* :mod:`~posetok.tasks.tokenizer`: ``task: tokenizer``, the PCT pose tokenizer (checkpoint kind ``pct``);
* :mod:`~posetok.tasks.sequence`: ``task: sequence``, the pose sequence tokenizer (kind ``sequence``);
* :mod:`~posetok.tasks.estimator`: ``task: estimator``, top-down 2D estimation from images (kinds ``heatmap`` and
  ``pct_estimator``, the PCT token classifier);
* :mod:`~posetok.tasks.lifter`: ``task: lifter``, 2D-to-3D lifting and masked pose modelling (kind ``lifter``);
* :mod:`~posetok.tasks.runner`: what their training shares (run folder, Trainer, schedule).

Importing this package imports every task module; each registers its checkpoint kind with
:mod:`posetok.checkpoint`. Task modules never import each other (``lint-imports`` checks it).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from omegaconf import DictConfig

from .. import checkpoint
from . import estimator, lifter, sequence, tokenizer

#: Config ``task`` -> its module.
TASKS: dict[str, ModuleType] = {tokenizer.TASK: tokenizer, sequence.TASK: sequence, estimator.TASK: estimator,
                                lifter.TASK: lifter}


def train(cfg: DictConfig, callbacks: list | None = None) -> Path:
    """Train the task ``cfg.task`` names (a config from :func:`posetok.config.load_config`); returns
    ``model.ckpt``."""
    return TASKS[cfg.task].train(cfg, callbacks)


def load(path: str | Path, batch_size: int | None = None) -> Any:
    """Load a checkpoint of any task and return its codec, ready to use (:func:`posetok.load`)."""
    return checkpoint.load(path, batch_size)


def load_with_task(path: str | Path, batch_size: int | None = None) -> tuple[Any, ModuleType]:
    """:func:`load`, and the module of the task whose checkpoint it is (for its commands on files)."""
    kind, codec = checkpoint.load_as(path, batch_size)
    return codec, TASKS[kind.task]
