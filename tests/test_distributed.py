import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_torchrun_two_processes_keep_one_codebook(tmp_path):
    """torchrun with 2 CPU processes (gloo): DDP training, codebook EMA statistics synchronised across ranks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29517"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
         str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["backend"] == "gloo"
    assert r0["quantizer_all_reduce"] and r1["quantizer_all_reduce"]  # the VQ was built after process-group init
    assert r0["global_step"] == r1["global_step"] == 8
    # Weights are identical through DDP's gradient all-reduce; the codebook only through the quantizer's own
    # all-reduce of its EMA statistics (each rank sees different poses).
    assert r0["weights"] == r1["weights"]
    assert r0["codebook"] == r1["codebook"] and r0["codebook_abs"] == r1["codebook_abs"]
    assert r0["cluster_size"] == r1["cluster_size"]
    assert (tmp_path / "model.ckpt").is_file() and (tmp_path / "last.ckpt").is_file()
