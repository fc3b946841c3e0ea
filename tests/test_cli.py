import json
import subprocess
import sys

import numpy as np
import pytest

from posetok.cli import main
from posetok.data.coco import load_coco_keypoints

from .conftest import REAL_SAMPLE, TINY


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_synth_writes_coco_file(tmp_path, capsys):
    out = tmp_path / "synth.json"
    code, stdout, _ = run(capsys, "synth", "--num", 50, "--skeleton", "coco17", "-o", out,
                          "--joints3d", tmp_path / "j3d.npz")
    assert code == 0 and "50 synthetic coco17 people" in stdout
    data = load_coco_keypoints(out)
    assert len(data) == 50 and data.keypoints.shape == (50, 17, 3)
    j3d = np.load(tmp_path / "j3d.npz")
    assert j3d["joints3d"].shape == (50, 17, 3)


def test_train_eval_tokenize_detokenize(tmp_path, capsys, tiny_ckpt):
    code, stdout, _ = run(capsys, "eval", tiny_ckpt, "--data", REAL_SAMPLE, "--json", tmp_path / "m.json",
                          "--visualize", tmp_path / "viz")
    assert code == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    for key in ("oks_ap", "ap50", "ap75", "ar", "mean_error_px", "pck_0.05", "codebook_usage", "perplexity",
                "bits_per_pose", "compression_ratio"):
        assert key in metrics
    assert metrics["num_people"] == 221
    assert metrics["bits_per_pose"] == 34 * 9  # 34 tokens of a 512-entry codebook
    assert metrics["compression_ratio"] == pytest.approx(17 * 2 * 32 / 306)
    assert 0 < metrics["codebook_usage"] <= 1 and 1 <= metrics["perplexity"] <= 512
    assert json.loads(stdout)["oks_ap"] == metrics["oks_ap"]
    assert {p.name for p in (tmp_path / "viz").iterdir()} == {
        "reconstructions.png", "codebook_usage.png", "error_per_joint.png"}

    tokens = tmp_path / "tokens.npz"
    code, stdout, _ = run(capsys, "tokenize", tiny_ckpt, REAL_SAMPLE, "-o", tokens)
    assert code == 0 and "221 people -> 34 tokens" in stdout
    with np.load(tokens) as f:
        assert f["tokens"].shape == (221, 34) and f["tokens"].dtype == np.uint16
    poses = tmp_path / "poses.json"
    code, _, _ = run(capsys, "detokenize", tiny_ckpt, tokens, "-o", poses)
    assert code == 0
    results = json.loads(poses.read_text())
    assert len(results) == 221 and len(results[0]["keypoints"]) == 51
    # Decoded poses equal a direct reconstruction.
    import posetok

    data = load_coco_keypoints(REAL_SAMPLE)
    recon = posetok.load(tiny_ckpt).reconstruct(data.keypoints, data.boxes)
    got = np.array([r["keypoints"] for r in results]).reshape(221, 17, 3)[..., :2]
    np.testing.assert_allclose(got, recon, atol=1e-3)


def test_train_command_writes_run(tmp_path, capsys):
    code, stdout, _ = run(capsys, "train", "configs/tokenizer/pct_small_coco17.yaml", f"out={tmp_path}",
                          *TINY, "trainer.max_steps=5", "trainer.val_every_n_steps=5",
                          "data.synthetic_train=1000")
    assert code == 0 and f"model: {tmp_path / 'model.ckpt'}" in stdout
    assert (tmp_path / "config.yaml").read_text().count("hidden_dim: 64") == 1


def test_bench_tokenizer_json(tmp_path, capsys):
    code, stdout, _ = run(capsys, "bench", "tokenizer", "--preset", "pct_small", "--batch", 64,
                          "--train-batch", 32, "--seconds", 0.2, "--json", tmp_path / "b.json")
    assert code == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["encode_decode_poses_per_s"] > 0 and result["train_samples_per_s"] > 0
    assert result["fast_tokens_equal_reference"] is True
    assert result["batch1_latency_ms"]["median"] > 0
    assert result["machine"]["cores"] >= 1 and isinstance(result["machine"]["cpu_capability"], str)
    assert result["train_samples_per_s_bf16"] > 0 and result["train_bf16_speedup"] > 0


def test_demo_writes_report(tmp_path, capsys):
    code, stdout, _ = run(capsys, "demo", "--out", tmp_path, "--minutes", 0.2, "--steps", 15,
                          "--num-train", 2000)
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["real_sample"]["num_people"] == 221
    assert metrics["synthetic_heldout"]["num_people"] > 1000
    for name in ("reconstructions_real.png", "reconstructions_synthetic.png", "codebook_usage.png",
                 "error_per_joint_real.png"):
        assert (tmp_path / name).stat().st_size > 10_000
        assert str(tmp_path / name) in stdout


def test_console_script_error_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "posetok", "eval", str(tmp_path / "missing.ckpt"),
                           "--data", str(REAL_SAMPLE)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"posetok eval: error: {tmp_path / 'missing.ckpt'}: "
                                                "checkpoint not found"]
    assert "Traceback" not in proc.stderr


def test_commands_find_the_task_by_checkpoint_kind(tmp_path, capsys, tiny_ckpt):
    # --pck-threshold reaches the pose tokenizer's evaluation; sequence-only flags are refused in one line.
    code, stdout, _ = run(capsys, "eval", tiny_ckpt, "--data", REAL_SAMPLE, "--pck-threshold", 0.1)
    assert code == 0 and "pck_0.1" in json.loads(stdout)
    for flag, value in (("--num-quantizers", 2), ("--animation", "mp4")):
        code, stdout, err = run(capsys, "eval", tiny_ckpt, "--data", REAL_SAMPLE, flag, value)
        assert code == 2 and stdout == ""
        assert err == f"posetok eval: error: {flag}: applies to sequence tokenizers only; this checkpoint is a " \
                      "pose (PCT) tokenizer\n"
