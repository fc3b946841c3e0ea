"""Shared fixtures: a tiny tokenizer config and one trained checkpoint for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from posetok.config import load_config

ROOT = Path(__file__).resolve().parents[1]
REAL_SAMPLE = ROOT / "posetok" / "assets" / "real_sample" / "coco17_sports2d.json"

# pct_small, trained briefly: small enough for seconds per test, big enough to learn in 300 steps.
TINY = [
    "model.preset=pct_small", "model.codebook.kmeans_iters=3",
    "data.batch_size=128", "data.synthetic_train=4000", "data.synthetic_val=256",
    "optim.vq_start_step=150", "trainer.precision=32-true",
    "trainer.progress_bar=false", "trainer.log_every_n_steps=10",
]


def tiny_config(out: Path, *extra: str):
    return load_config(None, [f"out={out}", *TINY, *extra])


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """pct_small trained for 300 steps on synthetic people (150 before quantizing); returns the run folder."""
    from posetok.tasks.runner import train

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("run")
    train(tiny_config(out, "trainer.max_steps=300", "trainer.val_every_n_steps=150", "optim.warmup_steps=20"))
    return out


@pytest.fixture(scope="session")
def tiny_ckpt(trained_run: Path) -> Path:
    return trained_run / "model.ckpt"
