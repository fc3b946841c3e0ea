"""The command line with sequence tokenizer checkpoints: train, eval, tokenize, detokenize, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posetok import load
from posetok.cli import main
from posetok.tasks.sequence import REAL_TRACK

from .conftest import ROOT
from .test_bad_input import assert_user_error

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def real() -> tuple[np.ndarray, np.ndarray]:
    d = np.load(REAL_TRACK)
    return d["poses"], d["mask"]


def _npz(path: Path, **arrays) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def test_train_from_a_sequence_config(tmp_path: Path, capsys):
    from posetok.data.motion import write_motion_dataset

    data = tmp_path / "data"
    write_motion_dataset(data, 6, 2, 0, length=40, skeleton="coco17", coords="2d+conf", seed=3)
    tiny = ["model.hidden_dim=16", "model.num_layers=3", "model.joint_dim=4", "model.token_dim=16",
            "model.codebook_size=16", "model.sequence_length=16", "model.temporal_kernel=3", "model.kmeans_iters=1",
            "data.batch_size=4", "data.real_sample=false", "optim.vq_start_step=2", "trainer.max_steps=4",
            "trainer.val_every_n_steps=2", "trainer.progress_bar=false", "trainer.threads=1", "trainer.max_time=null"]
    code = main(["train", str(ROOT / "configs/sequence/small.yaml"), f"data.root={data}", f"out={tmp_path / 'run'}",
                 *tiny])
    assert code == 0
    assert f"model: {tmp_path / 'run' / 'model.ckpt'}" in capsys.readouterr().out
    codec = load(tmp_path / "run" / "model.ckpt")
    assert type(codec).__name__ == "SequenceCodec" and codec.info["meta"]["global_step"] == 4
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "task: sequence" in saved and "center: frame" in saved


def test_eval_json_and_figures(sequence_ckpt: Path, tmp_path: Path, capsys):
    out_json, figs = tmp_path / "m.json", tmp_path / "figs"
    code = main(["eval", str(sequence_ckpt), "--data", str(REAL_TRACK), "--json", str(out_json), "--visualize",
                 str(figs), "--pck-threshold", "0.1"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads(out_json.read_text())
    assert printed == metrics
    for key in ("mse", "mae", "rmse", "mpjpe", "pck", "quantization_error", "compression_ratio"):
        assert np.isfinite(metrics[key]) and metrics[key] > 0, key
    assert metrics["pck_threshold"] == 0.1 and metrics["num_frames"] == 230
    assert len(metrics["codebook_usage"]) == 3 and len(metrics["perplexity"]) == 3
    assert len(metrics["per_keypoint_error"]) == 17
    assert [r["num_quantizers"] for r in metrics["rate_distortion"]] == [1, 2, 3]
    names = {Path(p).name for p in metrics["figures"]}
    assert names == {"reconstruction.gif", "error_per_keypoint.png", "codebook_usage.png", "rate_distortion.png"}
    from PIL import Image

    with Image.open(figs / "reconstruction.gif") as gif:
        assert gif.n_frames == 230
    for name in names - {"reconstruction.gif"}:
        assert (figs / name).stat().st_size > 5000


def test_tokenize_detokenize_round_trip(sequence_ckpt: Path, tmp_path: Path, real, capsys):
    poses, mask = real
    tok, rec = tmp_path / "tok.npz", tmp_path / "rec.npz"
    assert main(["tokenize", str(sequence_ckpt), str(REAL_TRACK), "-o", str(tok)]) == 0
    assert main(["detokenize", str(sequence_ckpt), str(tok), "-o", str(rec)]) == 0
    assert "230 frames -> 15 windows" in capsys.readouterr().out
    codec = load(sequence_ckpt)
    tokens, params = codec.encode(poses, mask, return_params=True)
    stored = np.load(tok)
    np.testing.assert_array_equal(stored["tokens"].astype(np.int64), tokens)
    assert str(stored["kind"]) == "sequence" and stored["root"].shape == (15, 16, 2)
    back = np.load(rec)
    # Same D as the input file (x, y and a confidence of 1 in valid frames), same mask, codec.decode's numbers.
    assert back["poses"].shape == poses.shape and np.array_equal(back["mask"], mask)
    np.testing.assert_allclose(back["poses"][..., :2], codec.decode(tokens, params), atol=1e-3)
    # The decoded file is a valid sequence file again, and a prefix of the quantizers decodes too.
    assert main(["tokenize", str(sequence_ckpt), str(rec), "-o", str(tmp_path / "again.npz")]) == 0
    coarse = tmp_path / "coarse.npz"
    assert main(["detokenize", str(sequence_ckpt), str(tok), "-o", str(coarse), "--num-quantizers", "1"]) == 0
    np.testing.assert_allclose(np.load(coarse)["poses"][..., :2], codec.decode(tokens, params, 1), atol=1e-3)


# -- bad input: a one-line error naming the file and the field, exit 2, nothing written ----------------------


@pytest.fixture
def out(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d / "tokens.npz"


def test_file_without_poses(capsys, tmp_path, sequence_ckpt, out, real):
    f = _npz(tmp_path / "x.npz", keypoints=real[0])
    assert_user_error(capsys, ["tokenize", sequence_ckpt, f, "-o", out], "x.npz", "field 'poses'", "missing",
                      output=out)


@pytest.mark.parametrize("shape", [(30, 17), (2, 30, 17, 3)])
def test_wrong_rank(capsys, tmp_path, sequence_ckpt, out, shape):
    f = _npz(tmp_path / "rank.npz", poses=np.zeros(shape, np.float32))
    assert_user_error(capsys, ["tokenize", sequence_ckpt, f, "-o", out], "rank.npz", "field 'poses'",
                      "expected rank 3 (T, N, D)", output=out)


def test_channels_do_not_match_checkpoint(capsys, tmp_path, sequence_ckpt, out, real):
    f = _npz(tmp_path / "xy.npz", poses=real[0][..., :2], mask=real[1])
    assert_user_error(capsys, ["tokenize", sequence_ckpt, f, "-o", out], "xy.npz", "field 'poses'",
                      "expected D = 3", output=out)


def test_joint_count_does_not_match_skeleton(capsys, tmp_path, sequence_ckpt, out, real):
    f = _npz(tmp_path / "mpii.npz", poses=real[0][:, :16], mask=real[1])
    assert_user_error(capsys, ["tokenize", sequence_ckpt, f, "-o", out], "mpii.npz", "field 'poses'",
                      "expected N = 17 keypoints of skeleton 'coco17'", output=out)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_values_in_valid_frames(capsys, tmp_path, sequence_ckpt, out, real, value):
    poses = real[0].copy()
    poses[40, 5, 0] = value
    f = _npz(tmp_path / "nan.npz", poses=poses, mask=real[1])
    assert_user_error(capsys, ["tokenize", sequence_ckpt, f, "-o", out], "nan.npz", "field 'poses'",
                      "NaN or infinite", "frame 40, joint 5", output=out)


def test_non_finite_values_outside_the_mask_are_fine(tmp_path, sequence_ckpt, out, real):
    poses, mask = real[0].copy(), real[1].copy()
    mask[40] = False
    poses[40] = np.nan
    f = _npz(tmp_path / "masked.npz", poses=poses, mask=mask)
    assert main(["tokenize", str(sequence_ckpt), str(f), "-o", str(out)]) == 0 and out.exists()


def test_mask_of_the_wrong_length(capsys, tmp_path, sequence_ckpt, out, real):
    f = _npz(tmp_path / "mask.npz", poses=real[0], mask=real[1][:-3])
    assert_user_error(capsys, ["tokenize", sequence_ckpt, f, "-o", out], "mask.npz", "field 'mask'",
                      "expected shape (230,)", output=out)


def test_eval_on_an_empty_directory(capsys, tmp_path, sequence_ckpt):
    (tmp_path / "empty").mkdir()
    res = tmp_path / "res" / "m.json"
    assert_user_error(capsys, ["eval", sequence_ckpt, "--data", tmp_path / "empty", "--json", res], "empty",
                      "no .npz pose sequence files", output=None)
    assert not res.exists()


def test_detokenize_checks_the_token_file(capsys, tmp_path, sequence_ckpt, tiny_ckpt, real):
    tok, rec = tmp_path / "tok.npz", tmp_path / "o" / "rec.npz"
    rec.parent.mkdir()
    assert main(["tokenize", str(sequence_ckpt), str(REAL_TRACK), "-o", str(tok)]) == 0
    capsys.readouterr()
    data = dict(np.load(tok))
    bad = _npz(tmp_path / "bad.npz", **{**data, "codebook_size": np.array(64)})
    assert_user_error(capsys, ["detokenize", sequence_ckpt, bad, "-o", rec], "bad.npz", "field 'codebook_size'",
                      output=rec)
    short = _npz(tmp_path / "short.npz", **{**data, "mask": data["mask"][:10]})
    assert_user_error(capsys, ["detokenize", sequence_ckpt, short, "-o", rec], "short.npz", "field 'mask'",
                      output=rec)
    # Sequence tokens given to a pose tokenizer, and the other way round.
    assert_user_error(capsys, ["detokenize", tiny_ckpt, tok, "-o", rec], "tok.npz", "field 'kind'", output=rec)
    pose_tokens = tmp_path / "pose_tokens.npz"
    assert main(["tokenize", str(tiny_ckpt), str(ROOT / "posetok/assets/real_sample/coco17_sports2d.json"), "-o",
                 str(pose_tokens)]) == 0
    capsys.readouterr()
    assert_user_error(capsys, ["detokenize", sequence_ckpt, pose_tokens, "-o", rec], "pose_tokens.npz",
                      "field 'kind'", output=rec)
