"""``posetok bench tokenizer --train``: posetok's training loop beside a plain loop, and the host-sync counter that
says where a step would wait for a GPU. Nothing here asserts a timing (figures come from ``posetok bench``)."""

from __future__ import annotations

import pytest
import torch

from posetok.bench.training import HostSyncCounter, bench_training
from posetok.cli import main
from posetok.config import build_config, load_config
from posetok.errors import PosetokError

from .conftest import ROOT, TINY, tiny_sequence

pytestmark = pytest.mark.usefixtures("one_thread")


def _sites(counter: HostSyncCounter) -> dict[str, int]:
    """``{what: count}`` of the waits recorded on lines of this file."""
    here: dict[str, int] = {}
    for key, n in counter.where.items():
        what, _, site = key.partition(" at ")
        if "test_bench_training.py:" in site:
            here[what] = here.get(what, 0) + n
    return here


def _outside_the_library(per_step: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in per_step.items() if not k.split(" at ")[-1].startswith("vector_quantize_pytorch/")}


def test_host_sync_counter_finds_the_waits_and_their_lines():
    x = torch.randn(16)
    with HostSyncCounter() as c:
        x.sum().item()
        if (x > 0).any():
            pass
        x[x > 0]
        x.unique()
        x.cpu()
        x.to("cpu")  # already on the CPU: on a CPU run this cannot be told from a move to the training device
        float(x.max())
        y = x * 2 + 1  # no wait
        y.to(torch.float64)
    assert _sites(c) == {"item": 1, "__bool__": 1, "boolean-mask indexing": 1, "unique": 1, "copy to the CPU": 1,
                         "__float__": 1}
    line = next(k for k in c.where if k.startswith("unique"))
    assert "test_bench_training.py:" in line

    # an optimiser's step counters are CPU tensors on every device: not a wait for the GPU
    p = torch.nn.Parameter(torch.randn(3))
    p.grad = torch.ones(3)
    opt = torch.optim.AdamW([p])
    with HostSyncCounter() as c:
        opt.step()
    assert c.where == {}


def _tiny_tokenizer(tmp_path):
    # no logging step among the counted ones: those wait once per logged value, every log_every_n_steps
    return load_config(None, [f"out={tmp_path / 'unused'}", *TINY, "data.synthetic_train=1000",
                              "data.synthetic_val=64", "data.batch_size=64", "trainer.log_every_n_steps=1000"])


def test_training_bench_tokenizer(tmp_path):
    cfg = _tiny_tokenizer(tmp_path)
    r = bench_training(cfg, steps=20, warmup=4, block=5)
    assert r["task"] == "tokenizer" and r["unit"] == "samples" and r["samples_per_step"] == 64
    assert r["blocks"] >= 3 and r["posetok_samples_per_s"] > 0 and r["plain_samples_per_s"] > 0
    assert r["ratio"] == pytest.approx(r["posetok_samples_per_s"] / r["plain_samples_per_s"], rel=1e-2)
    assert r["precision"] == "32-true" and r["device"] == "cpu"
    syncs = r["host_syncs_per_step"]
    # Outside the logging steps neither posetok nor Lightning makes the host wait: what is left is the quantizer
    # library's own checks, which the plain loop makes too
    assert _outside_the_library(syncs["posetok"]) == {}, syncs
    assert set(syncs["posetok"]) <= set(syncs["plain"]), syncs
    assert not (tmp_path / "unused").exists()  # the run lived in a temporary folder


def test_training_bench_sequence(tmp_path):
    cfg = build_config("sequence", tiny_sequence(tmp_path / "unused", log_every_n_steps=1000))
    r = bench_training(cfg, steps=10, warmup=3, block=5)
    assert r["task"] == "sequence" and r["unit"] == "frames"
    assert r["frames_per_step"] == 16 * 16  # 16 windows of 16 frames
    # the library's dead-code re-seeding waits in some steps and not others: compare what is not the library's
    assert _outside_the_library(r["host_syncs_per_step"]["posetok"]) == {}, r["host_syncs_per_step"]


def test_training_bench_errors(tmp_path, capsys):
    lifter = build_config("lifter", {"out": str(tmp_path)})
    with pytest.raises(PosetokError, match="tokenizer or sequence config, got 'lifter'"):
        bench_training(lifter)
    with pytest.raises(PosetokError, match="--steps: 8 leaves fewer than two blocks of 5 steps"):
        bench_training(_tiny_tokenizer(tmp_path), steps=8, block=5)
    code = main(["bench", "tokenizer", "--config", str(ROOT / "configs/tokenizer/pct_small_coco17.yaml")])
    assert code == 2 and "--config: applies with --train" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["estimator", "lifter", "sequence"])
def test_bench_refuses_a_config_of_another_task(target, capsys):
    cfg = ROOT / "configs/tokenizer/pct_small_coco17.yaml"
    assert main(["bench", target, "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}: field 'task': expected '{target}' for bench {target}, got 'tokenizer'" in err
    assert "Traceback" not in err
