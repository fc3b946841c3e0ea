import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _torchrun(tmp_path: Path, kind: str, port: int) -> tuple[dict, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(port)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
         str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path), kind],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (json.loads((tmp_path / "rank0.json").read_text()), json.loads((tmp_path / "rank1.json").read_text()))


def _assert_one_model(r0: dict, r1: dict, num_codebooks: int) -> None:
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["backend"] == "gloo"
    assert r0["quantizer_all_reduce"] and r1["quantizer_all_reduce"]  # the VQ was built after process-group init
    assert r0["global_step"] == r1["global_step"] == 8
    assert r0["num_codebooks"] == num_codebooks
    # Weights are identical through DDP's gradient all-reduce; the codebooks only through the quantizer's own
    # all-reduce of their EMA statistics (each rank sees different data).
    assert r0["weights"] == r1["weights"]
    assert r0["codebook"] == r1["codebook"] and r0["codebook_abs"] == r1["codebook_abs"]
    assert r0["cluster_size"] == r1["cluster_size"]


def test_torchrun_two_processes_keep_one_codebook(tmp_path):
    """torchrun with 2 CPU processes (gloo): DDP training, codebook EMA statistics synchronised across ranks."""
    r0, r1 = _torchrun(tmp_path, "pose", 29517)
    _assert_one_model(r0, r1, 1)
    assert (tmp_path / "model.ckpt").is_file() and (tmp_path / "last.ckpt").is_file()


def test_torchrun_sequence_tokenizer_keeps_every_quantizer_in_sync(tmp_path):
    """The sequence tokenizer's residual VQ under torchrun: all 4 codebooks identical on both ranks."""
    from posetok import load

    r0, r1 = _torchrun(tmp_path, "sequence", 29519)
    _assert_one_model(r0, r1, 4)
    assert len(set(r0["codebook"])) == 4  # four distinct codebooks, not one copied
    codec = load(tmp_path / "model.ckpt")
    assert codec.info["meta"]["global_step"] == 8 and codec.num_quantizers == 4


def test_torchrun_estimator_trains_one_model(tmp_path):
    """The estimator under torchrun (2 CPU processes, gloo): one set of weights on both ranks, a held-out
    evaluation that does not desynchronise them, and model.ckpt written once."""
    from posetok import load

    r0, r1 = _torchrun(tmp_path, "estimator", 29521)
    assert r0["world_size"] == r1["world_size"] == 2 and r0["backend"] == "gloo"
    assert r0["global_step"] == r1["global_step"] == 4
    assert r0["weights"] == r1["weights"]
    assert load(tmp_path / "model.ckpt").info["meta"]["global_step"] == 4
