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


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is many times faster than two. Modules of such
    tests use it (``pytestmark = pytest.mark.usefixtures("one_thread")``); the thread count is restored after."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def tiny_config(out: Path, *extra: str):
    return load_config(None, [f"out={out}", *TINY, *extra])


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """pct_small trained for 300 steps on synthetic people (150 before quantizing); returns the run folder."""
    from posetok.tasks.tokenizer import train

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("run")
    train(tiny_config(out, "trainer.max_steps=300", "trainer.val_every_n_steps=150", "optim.warmup_steps=20"))
    return out


@pytest.fixture(scope="session")
def tiny_ckpt(trained_run: Path) -> Path:
    return trained_run / "model.ckpt"


def tiny_sequence(out: Path, **trainer) -> dict:
    """The small sequence preset shrunk to train in a few seconds on one CPU thread (a config dict)."""
    return {
        "out": str(out),
        "model": {"preset": "small", "hidden_dim": 32, "num_layers": 3, "joint_dim": 8, "token_dim": 32,
                  "num_quantizers": 3, "codebook_size": 32, "sequence_length": 16, "kmeans_iters": 2,
                  "temporal_kernel": 5},
        "data": {"synthetic_train": 48, "synthetic_val": 8, "synthetic_length": 48, "batch_size": 16,
                 "real_sample": True, "real_sample_repeat": 2},
        "optim": {"warmup_steps": 5, "vq_start_step": 25, "lr": 3e-3},
        "trainer": {"max_steps": 60, "val_every_n_steps": 30, "progress_bar": False, "log_every_n_steps": 10,
                    "threads": 1, **trainer},
    }


@pytest.fixture(scope="session")
def sequence_run(tmp_path_factory) -> Path:
    """A tiny sequence tokenizer (COCO-17, x, y, conf; centred per frame) trained for 60 steps (quantizing from
    25) on synthetic motion and the bundled real track; returns the run folder."""
    from posetok.tasks.sequence import train

    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("seqrun")
    train(tiny_sequence(out))
    torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="session")
def sequence_ckpt(sequence_run: Path) -> Path:
    return sequence_run / "model.ckpt"
