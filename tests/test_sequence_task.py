"""Sequence tokenizer: Lightning training, model.ckpt save/load, the clip codec, and sequence metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from posetok.codecs.sequence import SequenceCodec, side_bits
from posetok.config import build_config
from posetok.errors import PosetokError
from posetok.metrics.sequence import compression_ratio, quantization_error, quantizer_stats, sequence_metrics
from posetok.tasks.sequence import (
    REAL_TRACK,
    evaluate_sequence,
    load_sequence_tokenizer,
    save_sequence_tokenizer,
    sequence_payload,
    train,
)

from .conftest import tiny_sequence

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(sequence_run: Path) -> Path:
    return sequence_run


@pytest.fixture(scope="module")
def codec(run: Path) -> SequenceCodec:
    return load_sequence_tokenizer(run / "model.ckpt")


@pytest.fixture(scope="module")
def real() -> tuple[np.ndarray, np.ndarray]:
    d = np.load(REAL_TRACK)
    return d["poses"], d["mask"]


def test_training_writes_run_and_error_drops(run: Path, codec: SequenceCodec):
    assert {"config.yaml", "last.ckpt", "model.ckpt"} <= {p.name for p in run.iterdir()}
    meta = codec.info["meta"]
    assert meta["global_step"] == 60
    assert meta["train_recon_last"] < 0.5 * meta["train_recon_first"]
    steps = [s for s, _ in meta["val_history"]]
    errs = [e for _, e in meta["val_history"]]
    assert steps == [30, 60] and errs[-1] < errs[0]
    assert codec.info["kind"] == "sequence" and codec.info["coords"] == "2d+conf"
    assert codec.info["format"] == "posetok.sequence_tokenizer"


def test_resume_continues_from_last_ckpt(tmp_path: Path):
    train(tiny_sequence(tmp_path, max_steps=12, val_every_n_steps=6))
    train(tiny_sequence(tmp_path, max_steps=20, val_every_n_steps=6))
    meta = load_sequence_tokenizer(tmp_path / "model.ckpt").info["meta"]
    assert meta["global_step"] == 20


def test_train_from_a_data_root(tmp_path: Path):
    from posetok.data.motion import write_motion_dataset

    root = tmp_path / "data"
    write_motion_dataset(root, 12, 3, 0, length=40, skeleton="coco17", coords="2d+conf", seed=1)
    cfg = tiny_sequence(tmp_path / "run", max_steps=6, val_every_n_steps=3)
    cfg["data"].update(root=str(root), real_sample=False)
    cfg["optim"]["vq_start_step"] = 3
    path = train(cfg)
    assert load_sequence_tokenizer(path).info["meta"]["global_step"] == 6
    (tmp_path / "empty" / "train").mkdir(parents=True)
    cfg["data"]["root"] = str(tmp_path / "empty")
    with pytest.raises(PosetokError, match="empty"):
        train(cfg)


def test_save_load_gives_identical_tokens(run: Path, codec: SequenceCodec, real, tmp_path: Path):
    poses, mask = real
    tokens = codec.encode(poses, mask)
    payload = sequence_payload(codec.model, codec.dims, "coco17", "2d+conf", codec.info["normalizer"],
                               codec.info["config"], {"note": "copy"})
    again = load_sequence_tokenizer(save_sequence_tokenizer(tmp_path / "copy.ckpt", payload))
    np.testing.assert_array_equal(again.encode(poses, mask), tokens)
    # The Lightning resume state loads as a codec too, with the same weights.
    np.testing.assert_array_equal(load_sequence_tokenizer(run / "last.ckpt").encode(poses, mask), tokens)
    # The model's own eval forward (the reference path) gives the ids of the inference encoder.
    np.testing.assert_array_equal(codec.analyse(poses, mask)["tokens"], tokens)
    assert tokens.dtype == np.int64 and tokens.min() >= 0 and tokens.max() < codec.codebook_size


def test_round_trip_on_real_track_restores_pixel_units(codec: SequenceCodec, real):
    poses, mask = real
    tokens, params = codec.encode(poses, mask, return_params=True)
    w = math.ceil((230 - 16) / 16) + 1
    assert tokens.shape == (w, 16 // 4, 5, 3)
    # Centred per frame (the configs' default): the root trajectory (W, L, 2) travels beside the tokens.
    assert codec.normalizer.center == "frame"
    assert params["root"].shape == (w, 16, 2) and params["scale"].shape == (w,)
    recon = codec.decode(tokens, params)
    assert recon.shape == (230, 17, 2) and recon.dtype == np.float32
    assert np.all(recon[~mask] == 0) and np.isfinite(recon).all()
    m = sequence_metrics(recon, poses[..., :2], mask, poses[..., 2], pck_threshold=0.1, conf_threshold=0.3)
    # In pixels of the 1768x994 video: a tiny model after 60 steps, far from exact but in the right place.
    assert 200 < m["reference_size"] < 800
    assert m["mpjpe"] < 0.3 * m["reference_size"]
    full = codec.decode(tokens, params, with_confidence=True)
    assert full.shape == poses.shape and np.all(full[mask, :, 2] == 1) and np.all(full[~mask] == 0)
    # Batched input gives the per-clip results stacked.
    bt, bp = codec.encode(np.stack([poses, poses]), np.stack([mask, mask]), return_params=True)
    np.testing.assert_array_equal(bt[1], tokens)
    np.testing.assert_allclose(codec.decode(bt, bp)[0], recon, atol=1e-3)


def test_overlapping_windows_average(codec: SequenceCodec, real):
    poses, mask = real
    overlap = SequenceCodec(codec.model, "2d+conf", stride=8, center="window")
    tokens, params = overlap.encode(poses, mask, return_params=True)
    assert tokens.shape[0] == math.ceil((230 - 16) / 8) + 1
    recon = overlap.decode(tokens, params)
    assert recon.shape == (230, 17, 2) and np.all(recon[~mask] == 0)
    # Frames 0..7 are covered by window 0 only: they are that window's own decoding, denormalised.
    assert params["root"].shape == (len(tokens), 2)
    win = overlap.decoder()(torch.from_numpy(tokens[:1])).numpy()[0] * params["scale"][0] + params["root"][0]
    np.testing.assert_allclose(recon[:8][mask[:8]], win[:8][mask[:8]], rtol=1e-5, atol=1e-3)


def test_prefix_decoding_with_fewer_quantizers(codec: SequenceCodec, real):
    poses, mask = real
    tokens, params = codec.encode(poses, mask, return_params=True)
    errs = []
    for q in (1, 2, 3):
        a = codec.decode(tokens, params, num_quantizers=q)
        b = codec.decode(tokens[..., :q], params)
        np.testing.assert_allclose(a, b, atol=1e-4)
        errs.append(sequence_metrics(a, poses[..., :2], mask)["mpjpe"])
    assert all(np.isfinite(errs))
    assert errs[0] != errs[-1]
    with pytest.raises(PosetokError, match="num_quantizers"):
        codec.decode(tokens, params, num_quantizers=4)


def test_evaluate_sequence_reports_every_metric(codec: SequenceCodec, real, tmp_path: Path):
    poses, mask = real
    (tmp_path / "test").mkdir()
    (tmp_path / "train").mkdir()  # ignored: evaluation reads test/
    np.savez(tmp_path / "train" / "x.npz", poses=poses[:20], mask=mask[:20])
    np.savez(tmp_path / "test" / "a.npz", poses=poses, mask=mask)
    np.savez(tmp_path / "test" / "b.npz", poses=poses[:50], mask=mask[:50])
    metrics, arrays = evaluate_sequence(codec, tmp_path, pck_threshold=0.1)
    assert metrics["num_sequences"] == 2 and metrics["num_frames"] == 280
    assert metrics["pck_threshold"] == 0.1 and 0.0 <= metrics["pck"] <= 1.0
    assert len(metrics["per_keypoint_error"]) == 17
    assert len(metrics["codebook_usage"]) == 3 and len(metrics["perplexity"]) == 3
    assert metrics["quantization_error"] > 0 and metrics["mpjpe_norm"] > 0
    rd = metrics["rate_distortion"]
    assert [r["num_quantizers"] for r in rd] == [1, 2, 3]
    assert rd[-1]["mpjpe"] == pytest.approx(metrics["mpjpe"])
    side = side_bits(arrays["params"])
    assert side == pytest.approx(metrics["side_bits_per_frame"] * 280)
    raw = 280 * 17 * 2 * 32
    token_bits = raw / metrics["token_compression_ratio"]
    assert metrics["compression_ratio"] == pytest.approx(raw / (token_bits + side))
    assert rd[0]["compression_ratio"] == pytest.approx(raw / (token_bits / 3 + side))
    single, _ = evaluate_sequence(codec, tmp_path / "test" / "b.npz")
    assert single["num_frames"] == 50
    assert arrays["recon"][1].shape == (50, 17, 2)


def test_short_clip_is_padded_and_cut_back(codec: SequenceCodec, real):
    poses, mask = real
    tokens, params = codec.encode(poses[:10], mask[:10], return_params=True)
    assert tokens.shape[0] == 1
    assert codec.decode(tokens, params).shape == (10, 17, 2)


def test_bad_input_names_the_field(codec: SequenceCodec, real, tmp_path: Path):
    poses, mask = real
    with pytest.raises(PosetokError, match=r"clip\.npz: field 'poses': expected D = 3"):
        codec.encode(poses[..., :2], mask, source="clip.npz")
    with pytest.raises(PosetokError, match="field 'poses': expected N = 17"):
        codec.encode(poses[:, :16], mask)
    with pytest.raises(PosetokError, match="field 'mask'"):
        codec.encode(poses, mask[:-1])
    bad = poses.copy()
    bad[int(np.flatnonzero(mask)[0]), 3, 0] = np.nan
    with pytest.raises(PosetokError, match="NaN"):
        codec.encode(bad, mask)
    bad[~mask] = np.nan  # NaN in masked-out frames is fine
    bad[int(np.flatnonzero(mask)[0]), 3, 0] = 1.0
    codec.encode(bad, mask)
    tokens, params = codec.encode(poses, mask, return_params=True)
    with pytest.raises(PosetokError, match=r"t\.npz: field 'tokens': expected integer ids"):
        codec.decode(tokens + codec.codebook_size, params, source="t.npz")
    with pytest.raises(PosetokError, match="field 'scale': missing"):
        codec.decode(tokens, {k: v for k, v in params.items() if k != "scale"})
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PosetokError, match="junk.ckpt"):
        load_sequence_tokenizer(junk)
    torch.save({"format": "posetok.tokenizer"}, tmp_path / "pct.ckpt")
    with pytest.raises(PosetokError, match="field 'format'"):
        load_sequence_tokenizer(tmp_path / "pct.ckpt")
    payload = torch.load(codec_path(codec), weights_only=True)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))
    torch.save(payload, tmp_path / "cut.ckpt")
    with pytest.raises(PosetokError, match="field 'state_dict'"):
        load_sequence_tokenizer(tmp_path / "cut.ckpt")


def codec_path(codec: SequenceCodec) -> Path:
    return Path(codec.info["config"]["out"]) / "model.ckpt"


def test_config_resolution():
    cfg = build_config("sequence", {"model": {"preset": "small", "coords": "3d", "skeleton": "h36m17"}})
    m = cfg["model"]
    assert (m["num_keypoints"], m["keypoint_dim"], m["has_confidence"], m["hidden_dim"]) == (17, 3, False, 64)
    with pytest.raises(PosetokError, match="model.preset"):
        build_config("sequence", {"model": {"preset": "huge"}})
    with pytest.raises(PosetokError, match="model.coords"):
        build_config("sequence", {"model": {"coords": "4d"}})
    with pytest.raises(PosetokError, match="model.keypoint_dim"):
        build_config("sequence", {"model": {"coords": "2d", "keypoint_dim": 3}})


# ----------------------------------------------------------------------------------------------------------
# Metrics on hand-made inputs
# ----------------------------------------------------------------------------------------------------------


def test_sequence_metrics_exact_numbers():
    # One clip, 2 frames, 2 joints, 2D. Frame 0: joint 0 off by (3, 4) (distance 5), joint 1 exact.
    # Frame 1 is masked out and holds NaN.
    target = np.array([[[0.0, 0.0], [0.0, 100.0]], [[np.nan, np.nan], [1.0, 1.0]]])
    pred = np.array([[[3.0, 4.0], [0.0, 100.0]], [[9.0, 9.0], [9.0, 9.0]]])
    mask = np.array([True, False])
    m = sequence_metrics(pred, target, mask, pck_threshold=0.04)
    assert m["mse"] == pytest.approx((9 + 16) / 4)
    assert m["mae"] == pytest.approx((3 + 4) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt(25 / 4))
    assert m["mpjpe"] == pytest.approx(2.5)
    assert m["reference_size"] == pytest.approx(100.0)  # box height of frame 0
    assert m["pck"] == pytest.approx(0.5)  # 5 > 4 px, 0 <= 4 px
    assert sequence_metrics(pred, target, mask, pck_threshold=0.05)["pck"] == pytest.approx(1.0)
    assert m["per_keypoint_error"] == [pytest.approx(5.0), pytest.approx(0.0)]
    assert m["pck_threshold"] == 0.04 and m["num_joints_counted"] == 2
    # A low confidence removes joint 1 from every statistic; the frame then has no box (one joint): no PCK.
    conf = np.array([[1.0, 0.1], [1.0, 1.0]])
    c = sequence_metrics(pred, target, mask, conf, conf_threshold=0.3)
    assert c["mpjpe"] == pytest.approx(5.0) and c["per_keypoint_error"][1] is None and math.isnan(c["pck"])


def test_sequence_metrics_torso_reference():
    from posetok.skeletons import get_skeleton

    sk = get_skeleton("coco17")
    idx = {n: i for i, n in enumerate(sk.joint_names)}
    target = np.zeros((1, 17, 2))
    for name, y in (("left_shoulder", 0.0), ("right_shoulder", 0.0), ("left_hip", 50.0), ("right_hip", 50.0)):
        target[0, idx[name]] = (0.0, y)
    pred = target.copy()
    pred[0, 0] += (0.0, 6.0)  # nose 6 px off; torso 50 px: correct at 0.2 (10 px), wrong at 0.1 (5 px)
    assert sequence_metrics(pred, target, pck_reference="torso", skeleton=sk, pck_threshold=0.2)["pck"] == 1.0
    r = sequence_metrics(pred, target, pck_reference="torso", skeleton=sk, pck_threshold=0.1)
    assert r["pck"] == pytest.approx(16 / 17) and r["reference_size"] == pytest.approx(50.0)


def test_quantizer_stats_and_compression():
    tokens = np.array([[[0, 1], [0, -1]], [[2, 1], [3, 1]]])  # (2, 2, Q=2); -1 is skipped
    s = quantizer_stats(tokens, 4)
    assert s["codebook_usage"] == [pytest.approx(0.75), pytest.approx(0.25)]
    # Quantizer 0 uses 0, 0, 2, 3: p = (1/2, 1/4, 1/4); quantizer 1 a single code.
    h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert s["perplexity"] == [pytest.approx(math.exp(h)), pytest.approx(1.0)]
    assert compression_ratio(32, 17, 2, (8, 5, 4), 256) == pytest.approx(32 * 17 * 2 * 32 / (160 * 8))
    f = np.zeros((2, 3, 4))
    q = np.ones((2, 3, 4))
    q[1] = 3.0
    assert quantization_error(f, q) == pytest.approx(5.0)
    assert quantization_error(f, q, np.array([[True] * 3, [False] * 3])) == pytest.approx(1.0)
