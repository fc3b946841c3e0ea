"""``posetok compare``: several tokenizer checkpoints on the same data, JSON records and a plot of error against
bits, and one-line errors for mixed kinds and bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from posetok import checkpoint
from posetok.cli import main
from posetok.compare import compare_checkpoints
from posetok.models.pct import PCTTokenizerModel, preset_dims
from posetok.models.sequence import SequenceTokenizerModel
from posetok.models.sequence import preset_dims as seq_preset_dims

from .conftest import REAL_SAMPLE, ROOT

pytestmark = pytest.mark.usefixtures("one_thread")

REAL_TRACK = ROOT / "posetok" / "assets" / "real_sample" / "sequence_sports2d.npz"


def pct_ckpt(path, kind: str, **codebook):
    from posetok.tasks.tokenizer import tokenizer_payload

    torch.manual_seed(0)
    dims = preset_dims("pct_small", {
        "encoder": {"num_blocks": 1, "hidden_dim": 32, "hidden_inter_dim": 32, "token_inter_dim": 16},
        "decoder": {"hidden_dim": 16, "hidden_inter_dim": 16, "token_inter_dim": 16},
        "codebook": {"num_tokens": 8, "token_dim": 16, "quantizer": kind, **codebook}})
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(path, tokenizer_payload(PCTTokenizerModel(17, dims).eval(), "coco17", [256, 256], 1.25))
    return path


def seq_ckpt(path, kind: str, **extra):
    from posetok.tasks.sequence import save_sequence_tokenizer, sequence_payload

    torch.manual_seed(0)
    dims = seq_preset_dims("small", {"hidden_dim": 32, "num_layers": 3, "joint_dim": 8, "token_dim": 32,
                                     "num_quantizers": 2, "sequence_length": 16, "temporal_kernel": 5,
                                     "quantizer": kind, **extra})
    path.parent.mkdir(parents=True, exist_ok=True)
    model = SequenceTokenizerModel(dims).eval()
    save_sequence_tokenizer(path, sequence_payload(model, dims, "coco17", "2d+conf", {"center": "frame"}))
    return path


@pytest.fixture(scope="module")
def pose_ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("pose")
    return [pct_ckpt(d / "vq64" / "model.ckpt", "vq", size=64, kmeans_init=False),
            pct_ckpt(d / "fsq60" / "model.ckpt", "fsq", levels=[5, 4, 3], size=60),
            pct_ckpt(d / "lfq256" / "model.ckpt", "lfq", size=256)]


@pytest.fixture(scope="module")
def seq_ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("seq")
    return [seq_ckpt(d / "rvq" / "model.ckpt", "rvq", codebook_size=32, kmeans_init=False),
            seq_ckpt(d / "rfsq" / "model.ckpt", "rfsq", levels=[4, 3, 3], codebook_size=36)]


def test_compare_pose_tokenizers_json_and_plot(pose_ckpts, tmp_path, capsys):
    out, png = tmp_path / "cmp.json", tmp_path / "cmp.png"
    args = ["compare", *map(str, pose_ckpts), "--data", str(REAL_SAMPLE), "--json", str(out), "--plot", str(png)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["kind"] == "pct" and result["rate"] == "bits_per_pose" and result["error"] == "mean_error_px"
    recs = result["records"]
    assert [r["label"] for r in recs] == ["vq64", "fsq60", "lfq256"]
    assert [r["quantizer"] for r in recs] == ["vq", "fsq", "lfq"]
    assert [r["bits_per_pose"] for r in recs] == pytest.approx([8 * 6, 8 * math.log2(60), 8 * 8])
    for r in recs:  # eval's metrics, as posetok eval reports them
        assert {"mean_error_px", "oks_ap", "pck_0.05", "codebook_usage", "perplexity", "num_people"} <= set(r)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_compare_matches_eval(pose_ckpts):
    import posetok
    from posetok.tasks.tokenizer import evaluate_file

    rec = compare_checkpoints(pose_ckpts[1:2], REAL_SAMPLE)["records"][0]
    metrics = evaluate_file(posetok.load(pose_ckpts[1]), REAL_SAMPLE)
    assert rec["mean_error_px"] == pytest.approx(metrics["mean_error_px"])
    assert rec["bits_per_pose"] == metrics["bits_per_pose"]


def test_compare_sequence_tokenizers_one_record_per_prefix(seq_ckpts, tmp_path):
    png = tmp_path / "seq.png"
    assert main(["compare", *map(str, seq_ckpts), "--data", str(REAL_TRACK), "--plot", str(png)]) == 0
    result = compare_checkpoints(seq_ckpts, REAL_TRACK)
    assert result["kind"] == "sequence" and result["rate"] == "bits_per_frame" and result["error"] == "mpjpe"
    recs = result["records"]
    assert [(r["label"], r["num_quantizers"]) for r in recs] == [("rvq", 1), ("rvq", 2), ("rfsq", 1), ("rfsq", 2)]
    for a, b, v in ((recs[0], recs[1], 32), (recs[2], recs[3], 36)):
        assert b["bits_per_frame"] == pytest.approx(2 * a["bits_per_frame"])
        assert a["codebook_size"] == v
        assert {"mpjpe", "pck", "mse", "max_quantizers"} <= set(a)
        assert "mpjpe_norm" not in a and "mpjpe_norm" in b  # eval computes it through all Q quantizers
    # the same token grid for both: bits per frame scale with log2 V alone
    assert recs[2]["bits_per_frame"] / recs[0]["bits_per_frame"] == pytest.approx(math.log2(36) / 5)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_compare_refuses_mixed_kinds(pose_ckpts, seq_ckpts, capsys):
    assert main(["compare", str(pose_ckpts[0]), str(seq_ckpts[0]), "--data", str(REAL_SAMPLE)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(seq_ckpts[0]) in err and "field 'kind'" in err


@pytest.mark.parametrize("case", ["missing_ckpt", "missing_data", "plot_suffix"])
def test_compare_bad_input_is_one_line_exit_2(case, pose_ckpts, tmp_path, capsys):
    ckpt, data, extra = str(pose_ckpts[0]), str(REAL_SAMPLE), []
    if case == "missing_ckpt":
        ckpt = str(tmp_path / "nope.ckpt")
    elif case == "missing_data":
        data = str(tmp_path / "nope.json")
    else:
        extra = ["--plot", str(tmp_path / "x.jpg")]
    assert main(["compare", ckpt, "--data", data, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("posetok compare: error: ") and "\n" not in err
    assert case == "missing_ckpt" or "field '" in err  # a missing checkpoint: "PATH: checkpoint not found"
    assert {"missing_ckpt": "nope.ckpt", "missing_data": "nope.json", "plot_suffix": "x.jpg"}[case] in err
