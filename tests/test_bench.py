"""The sequence tokenizer benchmark runs and reports what it should. Speed figures come from ``posetok bench``;
nothing here asserts a timing."""

import pytest
import torch

from posetok.bench import bench_sequence, bench_sequence_config
from posetok.errors import PosetokError
from posetok.models.sequence import preset_dims

TINY = dict(hidden_dim=16, num_layers=3, joint_dim=4, token_dim=16, num_quantizers=3, codebook_size=32,
            sequence_length=16, kmeans_iters=2, temporal_kernel=5)


@pytest.fixture(autouse=True)
def restore_threads():
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


def test_bench_sequence_eager_and_onnx():
    r = bench_sequence(preset_dims("small", {**TINY, "skeleton": "coco17"}), batch=8, seconds=0.05, threads=1,
                       train_batch=12, profile=True)
    assert r["benchmark"] == "sequence_tokenizer" and r["skeleton"] == "coco17" and r["coords"] == "2d+conf"
    assert (r["batch"], r["frames"], r["frames_per_call"], r["token_grid"]) == (8, 16, 128, [4, 5, 3])
    for key in ("eager_encoder_frames_per_s", "eager_decoder_frames_per_s", "onnx_encoder_frames_per_s",
                "onnx_decoder_frames_per_s", "onnx_vs_eager_encoder", "onnx_vs_eager_decoder"):
        assert r[key] > 0, key
    assert r["tokens_equal"] is True and r["token_mismatches"] == 0 and r["decoder_max_abs_diff"] < 1e-4
    assert min(r["codes_used"]) > 8  # k-means codebooks: the tokens spread over many codes
    assert all(c >= 3 for c in r["calls"].values()) and set(r["calls"]) == {
        "eager_encoder", "onnx_encoder", "eager_decoder", "onnx_decoder"}
    assert r["machine"]["torch_threads"] == 1 and r["threads"] == 1 and r["parameters"] > 0
    # Training ran on more windows than inference (12 > 8) for at least 3 timed steps.
    assert r["train_batch"] == 12 and r["train_frames_per_s"] > 0 and r["train_steps"] >= 3
    assert r["train_frames_per_s_bf16"] > 0
    assert r["train_bf16_speedup"] == pytest.approx(r["train_frames_per_s_bf16"] / r["train_frames_per_s"], abs=0.01)
    rss = r["peak_rss_mb"]
    assert set(rss) == {"inference", "training"} and 0 < rss["inference"] <= rss["training"]
    # Per-op time of one encoder call in each runtime: the listed ops and the rest add up to the total.
    ops = r["encoder_op_seconds"]
    assert set(ops) == {"eager", "onnx"} and "Conv" in ops["onnx"]
    assert any("conv" in name for name in ops["eager"])
    for per_op in ops.values():
        assert per_op["total"] > 0 and len(per_op) <= 8
        assert sum(v for k, v in per_op.items() if k != "total") == pytest.approx(per_op["total"], abs=0.01)


def test_bench_sequence_config_eager_only_and_bad_frames():
    cfg = {"model": {"preset": "small", "skeleton": "mpii16", "coords": "2d", **TINY}}
    r = bench_sequence_config(cfg, batch=4, seconds=0.05, frames=32, onnx=False, threads=1, train_batch=0)
    assert r["preset"] == "small" and r["skeleton"] == "mpii16" and r["coords"] == "2d"
    assert r["dims"]["num_keypoints"] == 16 and r["token_grid"] == [8, 5, 3] and r["frames_per_call"] == 128
    assert r["train_frames_per_s"] is None and r["train_bf16_speedup"] is None
    assert r["onnx_encoder_frames_per_s"] is None and r["tokens_equal"] is None
    assert r["train_frames_per_s"] is None and set(r["peak_rss_mb"]) == {"inference"}
    assert "encoder_op_seconds" not in r
    with pytest.raises(PosetokError, match="--train-batch: expected 0 .no training. or more windows, got -1"):
        bench_sequence(preset_dims("small", TINY), onnx=False, threads=1, train_batch=-1)
    with pytest.raises(PosetokError, match="--frames: 18 is not a positive multiple of temporal_downsample=4"):
        bench_sequence(preset_dims("small", TINY), frames=18, onnx=False, threads=1)
    with pytest.raises(PosetokError, match="unknown sequence preset 'huge'"):
        bench_sequence("huge")


def test_bench_sequence_command(tmp_path, capsys):
    import json

    from posetok.cli import main

    from .conftest import ROOT

    out = tmp_path / "bench.json"
    tiny = [f"model.{k}={v}" for k, v in TINY.items()]
    code = main(["bench", "sequence", "--config", str(ROOT / "configs/sequence/small.yaml"), *tiny, "--batch", "4",
                 "--seconds", "0.05", "--train-batch", "2", "--json", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["preset"] == "small" and printed["batch"] == 4 and printed["token_grid"] == [4, 5, 3]
    assert printed["tokens_equal"] is True and printed["onnx_vs_eager_encoder"] > 0
    assert printed["train_batch"] == 2 and printed["train_frames_per_s"] > 0
    # A pose tokenizer config is not a sequence benchmark.
    assert main(["bench", "sequence", "--config", str(ROOT / "configs/tokenizer/pct_small_coco17.yaml")]) == 2
    assert "field 'task': expected 'sequence'" in capsys.readouterr().err
