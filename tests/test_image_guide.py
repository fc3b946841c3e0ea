"""Image-guided PCT tokenizers (the official ``guide_ratio``): the nearest-cell lookup, training from crops with a
frozen heatmap-trained backbone, the codec API and ``posetok eval`` / ``tokenize`` with images, the exact fast
path and export, the checks on the guide checkpoint, and a PCT classifier trained on a guided tokenizer's ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import posetok
from posetok.data.coco import load_coco_keypoints
from posetok.data.images import read_image
from posetok.data.people import coco_people
from posetok.data.real_sample import real_sample_paths
from posetok.data.topdown import imagenet_normalize_torch
from posetok.errors import PosetokError
from posetok.models.pct_guide import joint_features

from .conftest import tiny_config
from .test_estimator_task import train_tiny
from .test_pct_estimator import PCT_YAML, run

pytestmark = pytest.mark.usefixtures("one_thread")

GUIDED = ["model.input_size=[64,64]", "model.codebook.size=64", "data.batch_size=16", "trainer.max_steps=30",
          "trainer.val_every_n_steps=15", "optim.vq_start_step=10", "optim.warmup_steps=5", "model.guide_ratio=0.5"]


@pytest.fixture(scope="module")
def heatmap64(tmp_path_factory) -> Path:
    """A heatmap estimator (hrnet_w18_small, 64 x 64, padding 1.25) trained 2 steps: the guide backbone."""
    return train_tiny(tmp_path_factory.mktemp("hm64") / "run", max_steps=2)


@pytest.fixture(scope="module")
def guided(tmp_path_factory, heatmap64) -> Path:
    """A guided pct_small (ratio 0.5) trained 30 steps on crops of the bundled frames; returns the run folder."""
    from posetok.tasks.tokenizer import train

    out = tmp_path_factory.mktemp("guided")
    train(tiny_config(out, *GUIDED, f"model.guide_backbone={heatmap64}"))
    return out


def _people(n: int | None = None):
    ann, images = real_sample_paths()
    data = load_coco_keypoints(ann, skeleton="coco17")
    paths = coco_people(data, images).image_paths
    n = len(data) if n is None else n
    return data, [read_image(p) for p in paths[:n]], n


def test_joint_features_take_the_official_nearest_cell():
    """Cell ``int(x / stride + 0.5)`` of the input-pixel coordinate ``x = (u + 0.5) * W``, clamped to the map."""
    h, w = 4, 2  # a 64 x 128 (w x h) crop at stride 32
    fmap = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w).repeat(1, 3, 1, 1)
    fmap[:, 1] *= 10  # channels stay aligned
    xy = torch.tensor([[0.0, 0.0], [15.9, 16.1], [16.0, 47.9], [63.0, 127.0], [-40.0, 500.0]])
    coords = (xy / torch.tensor([64.0, 128.0]) - 0.5)[None]
    got = joint_features(fmap, coords, (64, 128))
    cells = [(0, 0), (0, 1), (1, 1), (1, 3), (0, 3)]  # (ix, iy)
    want = torch.tensor([iy * w + ix for ix, iy in cells], dtype=torch.float32)
    assert got.shape == (1, 5, 3)
    torch.testing.assert_close(got[0, :, 0], want)
    torch.testing.assert_close(got[0, :, 1], 10 * want)


def test_guided_tokenizer_holds_the_frozen_guide_and_splits_the_width(guided, heatmap64):
    codec = posetok.load(guided / "model.ckpt")
    assert codec.guided and codec.model.dims.guide.backbone == "hrnet_w18_small"
    hidden = codec.model.dims.encoder.hidden_dim
    assert codec.model.start_embed.out_features == hidden // 2
    assert codec.model.guide_embed.out_features == hidden // 2 and codec.model.guide_embed.in_features == 128
    # the guide is the estimator's backbone, untouched by 30 training steps (batch-norm statistics included)
    source = torch.load(heatmap64, map_location="cpu", weights_only=True)["state_dict"]
    got = torch.load(guided / "model.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    keys = [k for k in got if k.startswith("guide.backbone.")]
    assert len(keys) > 100
    for k in keys:
        torch.testing.assert_close(got[k], source["backbone." + k.removeprefix("guide.backbone.")], msg=k)
    assert all(not p.requires_grad for p in codec.model.guide.parameters())


def test_guided_codec_needs_images_and_its_fast_path_is_the_training_forward(guided):
    codec = posetok.load(guided / "model.ckpt")
    data, pictures, n = _people(24)
    kp, boxes = data.keypoints[:n], data.boxes[:n]
    with pytest.raises(PosetokError, match="image-guided.*images="):
        codec.encode(kp, boxes)
    with pytest.raises(PosetokError, match="expected one image or 24"):
        codec.encode(kp, boxes, images=pictures[:3])
    tokens = codec.encode(kp, boxes, images=pictures)
    crops = codec.cut_crops(pictures, boxes)
    assert crops.shape == (24, 64, 64, 3) and crops.dtype == np.uint8
    np.testing.assert_array_equal(codec.encode(kp, boxes, crops=crops), tokens)
    coords, visible = codec.targets(kp, boxes)
    model = codec.model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(coords), torch.from_numpy(visible),
                    images=imagenet_normalize_torch(torch.from_numpy(crops)))["tokens"].numpy()
    np.testing.assert_array_equal(tokens, ref)
    # the appearance matters: the same poses on other crops get other tokens
    assert (codec.encode(kp, boxes, crops=crops[::-1].copy()) != tokens).any()
    recon = codec.reconstruct(kp, boxes, images=pictures)
    assert recon.shape == (24, 17, 2) and np.isfinite(recon).all()


def test_eval_and_tokenize_take_the_image_folder(guided, tmp_path, capsys):
    ann, images = real_sample_paths()
    ckpt = guided / "model.ckpt"
    code, out, err = run(capsys, "eval", ckpt, "--data", ann, "--images", images, "--json", tmp_path / "m.json")
    assert code == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["num_people"] == 221 and 0.0 <= metrics["oks_ap"] <= 1.0 and metrics["mean_error_px"] > 0
    code, _, err = run(capsys, "eval", ckpt, "--data", ann)
    assert code == 2 and "Traceback" not in err and "--images: this tokenizer is image-guided" in err, err
    code, out, err = run(capsys, "tokenize", ckpt, ann, "--images", images, "-o", tmp_path / "t.npz")
    assert code == 0, err
    assert np.load(tmp_path / "t.npz")["tokens"].shape == (221, 34)
    code, _, err = run(capsys, "tokenize", ckpt, ann, "-o", tmp_path / "u.npz")
    assert code == 2 and "--images" in err and not (tmp_path / "u.npz").exists()


def test_unguided_tokenizer_refuses_images(tiny_ckpt, capsys):
    ann, images = real_sample_paths()
    code, _, err = run(capsys, "eval", tiny_ckpt, "--data", ann, "--images", images)
    assert code == 2 and "--images: applies to image-guided tokenizers" in err, err


def test_guided_export_takes_the_crops_and_gives_the_same_tokens(guided, tmp_path):
    from posetok.export import export_tokenizer

    result = export_tokenizer(guided / "model.ckpt", "onnx", tmp_path / "g.onnx", check_batch=5)
    assert result["inputs"] == ["coords", "visible", "images"]
    assert result["tokens_equal"] and result["decoder_max_abs_diff"] < 1e-4


def test_lightning_last_ckpt_of_a_guided_run_loads_without_the_guide_file(guided):
    codec = posetok.load(guided / "last.ckpt")
    assert codec.guided and codec.model.dims.guide.channels == 128
    data, pictures, n = _people(8)
    ref = posetok.load(guided / "model.ckpt")
    np.testing.assert_array_equal(codec.encode(data.keypoints[:n], data.boxes[:n], images=pictures),
                                  ref.encode(data.keypoints[:n], data.boxes[:n], images=pictures))


def test_bad_guide_is_a_one_line_error(tmp_path, heatmap64, tiny_ckpt, capsys):
    from posetok.tasks.tokenizer import train

    cases = [
        ([f"model.guide_backbone={heatmap64}", "model.input_size=[96,96]"], "field 'crop.input_size'"),
        ([f"model.guide_backbone={heatmap64}", "model.padding=1.12"], "field 'crop.padding'"),
        ([f"model.guide_backbone={tiny_ckpt}"], "field 'format'"),
        ([f"model.guide_backbone={tmp_path / 'none.ckpt'}"], "checkpoint not found"),
        (["model.guide_backbone=null"], "field 'model.guide_backbone'"),
        ([f"model.guide_backbone={heatmap64}", "model.guide_ratio=0"], "field 'model.guide_ratio'"),
    ]
    for i, (extra, message) in enumerate(cases):
        with pytest.raises(PosetokError, match=message.replace("(", r"\(")) as e:
            train(tiny_config(tmp_path / str(i), *GUIDED, *extra))
        assert "\n" not in str(e.value)
        assert not (tmp_path / str(i) / "model.ckpt").exists()


def test_pct_classifier_trains_on_a_guided_tokenizers_ids(guided, tmp_path, capsys):
    """The ids need the crops: the training step computes them from the batch's crops, the same ids the
    tokenizer's codec gives for those crops."""
    cfg = tmp_path / "pct.yaml"
    cfg.write_text(PCT_YAML)
    code, out, err = run(capsys, "train", cfg, f"out={tmp_path / 'run'}", f"model.tokenizer={guided / 'model.ckpt'}",
                         "trainer.max_steps=2", "trainer.val_every_n_steps=2")
    assert code == 0, err
    metrics = (tmp_path / "run" / "csv").rglob("metrics.csv")
    text = next(metrics).read_text()
    assert "train/token_ce" in text and "val/token_top1" in text

    from posetok.config import load_config
    from posetok.tasks.estimator.pct import load_tokenizer, pct_codec

    tok = load_tokenizer(guided / "model.ckpt")
    est_cfg = load_config(str(cfg), [f"model.tokenizer={guided / 'model.ckpt'}"])
    codec = pct_codec(est_cfg, tok)
    assert codec.needs_crops
    data, pictures, n = _people(6)
    ref = posetok.load(guided / "model.ckpt")
    crops = ref.cut_crops(pictures, data.boxes[:n])
    coords, visible = ref.targets(data.keypoints[:n], data.boxes[:n])
    targets = codec.encode(np.concatenate([codec.crop_to_input(coords), visible[..., None].astype(np.float32)], -1))
    assert "tokens" not in targets
    ids = codec.tokens_for(torch.from_numpy(targets["coords"]), torch.from_numpy(targets["target_weights"] > 0),
                           imagenet_normalize_torch(torch.from_numpy(crops)))
    np.testing.assert_array_equal(ids.numpy(), ref.encode(data.keypoints[:n], data.boxes[:n], crops=crops))


def test_info_counts_the_guide_apart(guided, capsys):
    from posetok.models.backbones import build_backbone

    code, out, err = run(capsys, "info", guided / "model.ckpt", "--json")
    assert code == 0, err
    info = json.loads(out)
    guide = sum(p.numel() for p in build_backbone("hrnet_w18_small", lowest_only=True).parameters())
    assert info["guide_backbone"] == "hrnet_w18_small" and info["guide_ratio"] == 0.5
    assert info["guide_parameters"] == guide
    total = sum(p.numel() for p in posetok.load(guided / "model.ckpt").model.parameters())
    assert info["parameters"] == total - guide
    code, out, err = run(capsys, "info", guided / "config.yaml", "--json")
    assert code == 0, err
    assert json.loads(out)["guide_parameters"] == guide and json.loads(out)["parameters"] == total - guide


def test_guided_ids_ignore_the_training_autocast(guided):
    """Under bf16 autocast (precision: auto on this CPU) the target ids are still the float32 ones."""
    from posetok.config import load_config
    from posetok.tasks.estimator.pct import load_tokenizer, pct_codec

    from .conftest import ROOT

    cfg = load_config(ROOT / "configs/pct/pct_small_real.yaml", ["model.input_size=[64,64]",
                                                                  f"model.tokenizer={guided / 'model.ckpt'}"])
    codec = pct_codec(cfg, load_tokenizer(guided / "model.ckpt"))
    ref = posetok.load(guided / "model.ckpt")
    data, pictures, n = _people(16)
    crops = ref.cut_crops(pictures, data.boxes[:n])
    coords, visible = (torch.from_numpy(a) for a in ref.targets(data.keypoints[:n], data.boxes[:n]))
    images = imagenet_normalize_torch(torch.from_numpy(crops))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ids = codec.tokens_for(coords, visible, images)
    np.testing.assert_array_equal(ids.numpy(), ref.encode(data.keypoints[:n], data.boxes[:n], crops=crops))


def test_bench_estimator_on_a_guided_tokenizer(guided, heatmap64, tmp_path, capsys):
    """Both loops compute the guided ids on each step (the frozen guide is work any loop does)."""
    cfg = tmp_path / "pct.yaml"
    cfg.write_text(PCT_YAML)
    code, out, err = run(capsys, "bench", "estimator", "--config", cfg, "--seconds", 0.2, "--batch", 2,
                         "--train-batch", 4, "--workers", 0, f"model.tokenizer={guided / 'model.ckpt'}",
                         f"model.backbone.weights={heatmap64}", "model.backbone.frozen=true")
    assert code == 0, err
    training = json.loads(out)["training"]
    assert training["posetok_synthetic_images_per_s"] > 0 and training["plain_synthetic_images_per_s"] > 0
