"""The PCT token classifier through the command line, as a heatmap estimator is used: train (on the bundled real
frames, targets from a tiny tokenizer trained here at the classifier's 64 x 64 input), eval, infer, export,
bench estimator and ``posetok.load``; the checkpoint is self-contained (the tokenizer file is gone by then); a
frozen backbone from a heatmap estimator's checkpoint; a mismatched tokenizer is a one-line error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import posetok
from posetok.cli import main
from posetok.data.images import read_image

from .conftest import tiny_config
from .test_estimator_task import SAMPLE_ANN, SAMPLE_IMAGES, train_tiny

pytestmark = pytest.mark.usefixtures("one_thread")

PCT_YAML = """task: estimator
model:
  input_size: [64, 64]
  backbone: {name: hrnet_w18_small}
  head: {kind: pct}
  pct: {conv_channels: 32, hidden_dim: 16, token_inter_dim: 16, hidden_inter_dim: 32, num_blocks: 1}
data:
  batch_size: 8
  val_batch_size: 32
  num_workers: 0
optim: {name: adamw, lr: 1.0e-3, warmup_steps: 2, schedule: cosine, layer_decay: 0.9}
trainer:
  max_epochs: null
  max_steps: 4
  val_every_n_steps: 2
  progress_bar: false
  precision: 32-true
  logger: csv
  threads: 1
  log_every_n_steps: 1
"""


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tokenizer64(tmp_path_factory) -> Path:
    """pct_small with a 128-code book, trained 150 steps on synthetic people at the classifier's 64 x 64 input
    (the crop frame depends on the aspect ratio only, but the two must agree by contract)."""
    from posetok.tasks.tokenizer import train

    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("tok64")
    train(tiny_config(out, "trainer.max_steps=150", "trainer.val_every_n_steps=150", "optim.warmup_steps=20",
                      "optim.vq_start_step=75", "model.input_size=[64,64]", "model.codebook.size=128",
                      "data.synthetic_train=2000", "data.synthetic_val=64"))
    torch.set_num_threads(threads)
    return out / "model.ckpt"


@pytest.fixture(scope="module")
def pct_run(tmp_path_factory, tokenizer64) -> Path:
    """A pct estimator trained 4 steps through ``posetok train``; the tokenizer copy it trained with is deleted
    afterwards, so everything after training runs from the estimator's checkpoint alone."""
    root = tmp_path_factory.mktemp("pct_run")
    tok = root / "tokenizer.ckpt"
    shutil.copy(tokenizer64, tok)
    cfg = root / "pct.yaml"
    cfg.write_text(PCT_YAML)
    code = main(["train", str(cfg), f"out={root / 'run'}", f"model.tokenizer={tok}"])
    assert code == 0
    tok.unlink()
    return root / "run"


def test_train_writes_a_self_contained_pct_checkpoint(pct_run):
    payload = torch.load(pct_run / "model.ckpt", map_location="cpu", weights_only=True)
    assert payload["kind"] == "pct_estimator" and payload["format"] == "posetok.pct_estimator"
    assert payload["codec"]["type"] == "pct" and payload["codec"]["codebook_size"] == 128
    assert payload["dims"]["head"] == "pct" and payload["dims"]["tokenizer"]["num_tokens"] == 34
    assert payload["state_dict"]["decoder.codebook"].shape == (128, 128)  # the tokenizer's codes travel along
    assert not Path(payload["tokenizer"]["path"]).exists()
    cfg = (pct_run / "config.yaml").read_text()
    assert "decoder:" in cfg and "kind: pct_estimator" in cfg
    metrics = (pct_run / "csv" / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    for key in ("train/token_ce", "train/joint", "train/top1", "train/top5", "val/AP", "val/token_top1",
                "val/token_top5"):
        assert key in header, (key, header)


def test_load_predict_and_flip(pct_run):
    est = posetok.load(pct_run / "model.ckpt")
    assert type(est.model).__name__ == "TopdownPCTModel" and est.codec.type == "pct"
    image = read_image(next(SAMPLE_IMAGES.glob("*.jpg")))
    boxes = np.array([[5.0, 20.0, 80.0, 200.0], [10.0, 40.0, 60.0, 180.0]])  # the frames are 94 x 256
    poses = est.predict(image, boxes)
    assert poses.shape == (2, 17, 3) and np.isfinite(poses).all()
    assert (poses[..., 2] == poses[:, :1, 2]).all()  # the person's score on every joint
    # the flip test averages the joints of both passes (mirrored back) and their scores
    crops = est.crops(image, est.matrices(*est.crop_frames(boxes)))
    est.flip_test = False
    a = est.forward_crops(crops)
    b = est.forward_crops(crops[:, :, ::-1].copy())
    est.flip_test = True
    merged = est.forward_crops(crops)
    back = est.codec.flip_back(b["coords"], est.skeleton.flip_index)
    np.testing.assert_allclose(merged["coords"], 0.5 * (a["coords"] + back), atol=1e-5)
    np.testing.assert_allclose(merged["score_logit"], 0.5 * (a["logits"].max(-1).mean(-1)
                                                            + b["logits"].max(-1).mean(-1)), rtol=1e-5)
    # the run's Lightning last.ckpt converts without the tokenizer file
    last = posetok.load(pct_run / "last.ckpt")
    assert last.info["kind"] == "pct_estimator"
    torch.testing.assert_close(last.model.head.classifier.weight, est.model.head.classifier.weight)


def test_eval_infer_export(pct_run, tmp_path, capsys):
    ckpt = pct_run / "model.ckpt"
    code, out, err = run(capsys, "eval", ckpt, "--data", SAMPLE_ANN, "--images", SAMPLE_IMAGES)
    assert code == 0, err
    metrics = json.loads(out)
    assert 0.0 <= metrics["oks_ap"] <= 1.0 and metrics["num_results"] > 0
    image = next(SAMPLE_IMAGES.glob("*.jpg"))
    code, out, err = run(capsys, "infer", ckpt, image, "-o", tmp_path / "infer", "--bbox", 5, 20, 80, 200)
    assert code == 0, err
    preds = json.loads((tmp_path / "infer" / "predictions.json").read_text())
    assert preds
    for fmt, name in (("onnx", "pct.onnx"), ("torchscript", "pct.pt")):
        code, out, err = run(capsys, "export", ckpt, "--format", fmt, "-o", tmp_path / name)
        assert code == 0, err
        result = json.loads(out)
        assert result["check_passed"] and result["outputs"] == ["logits", "keypoints", "scores"], result
        assert result["keypoints_max_abs_diff_px"] < 0.01


def test_bench_estimator_runs_a_pct_config(pct_run, tokenizer64, capsys):
    """The run's config: its tokenizer file is gone, which bench names (its training step needs the targets)."""
    args = ("bench", "estimator", "--config", pct_run / "config.yaml", "--seconds", 0.2, "--batch", 2,
            "--train-batch", 4, "--workers", 0)
    code, out, err = run(capsys, *args)
    assert code == 2 and "tokenizer.ckpt: checkpoint not found" in err, err
    code, out, err = run(capsys, *args, f"model.tokenizer={tokenizer64}")
    assert code == 0, err
    result = json.loads(out)
    assert result["config"]["head"] == "pct" and result["training"]["posetok_synthetic_images_per_s"] > 0


def test_frozen_backbone_from_a_heatmap_estimator(tmp_path, tokenizer64, capsys):
    """The official recipe: the backbone of a heatmap-trained estimator (``model.backbone.weights`` = its
    model.ckpt), frozen; only the classifier head trains."""
    heatmap = train_tiny(tmp_path / "heatmap", max_steps=2)
    cfg = tmp_path / "pct.yaml"
    cfg.write_text(PCT_YAML)
    code, _, err = run(capsys, "train", cfg, f"out={tmp_path / 'frozen'}", f"model.tokenizer={tokenizer64}",
                       f"model.backbone.weights={heatmap}", "model.backbone.frozen=true", "trainer.max_steps=2")
    assert code == 0, err
    source = torch.load(heatmap, map_location="cpu", weights_only=True)["state_dict"]
    got = torch.load(tmp_path / "frozen" / "model.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    shared = [k for k in source if k.startswith("backbone.") and k in got]
    assert len(shared) > 100
    # the classifier's backbone (the stride-32 branch alone) is wholly inside the heatmap network: nothing untrained
    assert [k for k in got if k.startswith("backbone.") and k not in source] == []
    for k in shared:  # batch-norm statistics included: a frozen backbone runs in eval mode
        torch.testing.assert_close(got[k], source[k], msg=k)


def test_backbone_handed_over_is_checked(tmp_path, tokenizer64, capsys):
    """model.backbone.weights from an earlier stage: an estimator of the same skeleton and crop frame; frozen, it
    must hold every backbone weight. Each violation is a one-line error naming the file and the field."""
    heatmap = train_tiny(tmp_path / "heatmap", max_steps=1)
    cfg = tmp_path / "pct.yaml"
    cfg.write_text(PCT_YAML)
    obj = torch.load(heatmap, map_location="cpu", weights_only=True)
    obj["crop"]["input_size"] = [96, 96]
    torch.save(obj, tmp_path / "other_frame.ckpt")
    partial = {k: v for k, v in obj["state_dict"].items() if k.startswith("backbone.conv1")}
    torch.save(partial, tmp_path / "partial.pth")
    cases = [(tmp_path / "other_frame.ckpt", [], "field 'crop'"),
             (tokenizer64, [], "field 'format'"),
             (tmp_path / "partial.pth", ["model.backbone.frozen=true"], "field 'state_dict': model.backbone.frozen")]
    for i, (weights, extra, message) in enumerate(cases):
        code, _, err = run(capsys, "train", cfg, f"out={tmp_path / str(i)}", f"model.tokenizer={tokenizer64}",
                           f"model.backbone.weights={weights}", *extra)
        assert code == 2 and "Traceback" not in err and str(weights) in err and message in err, err
        assert not (tmp_path / str(i) / "model.ckpt").exists()


def test_mismatched_or_missing_tokenizer_is_a_one_line_error(tmp_path, tokenizer64, capsys):
    cfg = tmp_path / "pct.yaml"
    cfg.write_text(PCT_YAML)
    code, _, err = run(capsys, "train", cfg, f"out={tmp_path / 'a'}", f"model.tokenizer={tokenizer64}",
                       "model.input_size=[96,96]")
    assert code == 2 and "Traceback" not in err
    assert str(tokenizer64) in err and "field 'codec.input_size'" in err and "[64, 64]" in err, err
    code, _, err = run(capsys, "train", cfg, f"out={tmp_path / 'b'}", f"model.tokenizer={tokenizer64}",
                       "model.padding=1.12")
    assert code == 2 and "field 'codec.padding'" in err, err
    code, _, err = run(capsys, "train", cfg, f"out={tmp_path / 'c'}")
    assert code == 2 and "field 'model.tokenizer'" in err, err
    code, _, err = run(capsys, "train", cfg, f"out={tmp_path / 'd'}", f"model.tokenizer={tmp_path / 'none.ckpt'}")
    assert code == 2 and "checkpoint not found" in err, err
    assert not (tmp_path / "a" / "model.ckpt").exists()


def test_shipped_pct_configs_chain():
    """The small recipe's tokenizer config frames crops as its classifier does; the base recipe is the official
    one (frozen SwinV2-B, AdamW 8e-4, wd 0.05, layer decay 0.9, cosine with 500 warm-up steps, 210 epochs)."""
    from posetok.config import load_config

    from .conftest import ROOT

    tok = load_config(ROOT / "configs/pct/pct_small_tokenizer_128.yaml")
    small = load_config(ROOT / "configs/pct/pct_small_real.yaml")
    assert small.model.kind == "pct_estimator" and small.model.codec.type == "pct"
    assert list(tok.model.input_size) == list(small.model.input_size) and tok.model.padding == small.model.padding
    assert small.model.tokenizer == f"{tok.out}/model.ckpt"
    # the small recipe is the official chain: its backbone is the small heatmap run's, frozen
    small_hm = load_config(ROOT / "configs/pct/pct_small_heatmap_real.yaml")
    assert small.model.backbone.weights == f"{small_hm.out}/model.ckpt" and small.model.backbone.frozen
    assert list(small_hm.model.input_size) == list(small.model.input_size)
    assert small_hm.model.padding == small.model.padding
    base = load_config(ROOT / "configs/pct/pct_base_classifier_coco_256x256.yaml")
    o = base.optim
    assert (base.model.backbone.name, base.model.backbone.frozen, list(base.model.input_size)) == \
        ("swinv2_base", True, [256, 256])
    assert (o.name, o.lr, o.weight_decay, o.layer_decay, o.schedule, o.warmup_steps) == \
        ("adamw", 8e-4, 0.05, 0.9, "cosine", 500)
    assert base.trainer.max_epochs == 210 and base.data.batch_size == 32
    hmp = load_config(ROOT / "configs/pct/swin_b_heatmap_coco_256x256.yaml")
    assert base.model.backbone.weights == f"{hmp.out}/model.ckpt"
    # image-guided tokenizers read the heatmap run that also gives the classifier its backbone, in its crop frame
    for guided, heatmap, classifier in (("pct_base_tokenizer_imgguide_coco", hmp, base),
                                        ("pct_small_tokenizer_imgguide_real",
                                         load_config(ROOT / "configs/pct/pct_small_heatmap_real.yaml"), small)):
        g = load_config(ROOT / f"configs/pct/{guided}.yaml")
        assert g.model.guide_ratio == 0.5 and g.model.guide_backbone == f"{heatmap.out}/model.ckpt"
        assert list(g.model.input_size) == list(heatmap.model.input_size) == list(classifier.model.input_size)
        assert g.model.padding == heatmap.model.padding == classifier.model.padding
    assert load_config(ROOT / "configs/pct/pct_base_tokenizer_imgguide_coco.yaml").data.train_images
    # the official chain: guided tokenizers, grid dropout (p 0.5, units of 10-40 px) on the classifier's crops
    for name in ("coco", "mpii"):
        clf = load_config(ROOT / f"configs/pct/pct_base_classifier_{name}_256x256.yaml")
        tok = load_config(ROOT / f"configs/pct/pct_base_tokenizer_imgguide_{name}.yaml")
        assert clf.model.tokenizer == f"{tok.out}/model.ckpt" and tok.model.guide_ratio == 0.5
        assert (clf.data.augment.grid_dropout, list(clf.data.augment.grid_unit)) == (0.5, [10, 40])
        assert tok.data.augment.grid_dropout == 0.5 and tok.model.skeleton == clf.model.skeleton
        assert tok.model.guide_backbone == clf.model.backbone.weights
        hmp = load_config(ROOT / f"configs/pct/swin_b_heatmap_{name}_256x256.yaml")
        assert hmp.data.augment.grid_dropout == 0.5 and f"{hmp.out}/model.ckpt" == clf.model.backbone.weights
