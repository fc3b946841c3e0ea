"""The lifter task through its Python API: masked 2D pretraining then fine-tuning (the pretrained encoder really
loaded, and refused when it does not fit), resuming, the protocols on known predictions, Human3.6M files of both
forms with per-action tables and action filters, ``posetok.load(...).lift``, single-frame and 2D-only / 3D-only
runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import posetok
from posetok import checkpoint
from posetok.config import build_config
from posetok.errors import PosetokError
from posetok.models.lifter import LifterDims, build_lifter
from posetok.tasks.lifter import evaluate_file, lifter_payload, load_pretrained, train
from posetok.tasks.lifter.data import REAL_TRACK
from posetok.tasks.lifter.evaluation import eval_set, evaluate

from .conftest import ROOT
from .test_h36m import Files

pytestmark = pytest.mark.usefixtures("one_thread")

PCT_CKPT = ROOT / "tests" / "fixtures" / "checkpoints" / "pct_v0.1.0.ckpt"
_RUNS: dict[str, Path] = {}


def tiny_lifter(out: Path, model: dict | None = None, data: dict | None = None, pretrain: dict | None = None,
                mask: dict | None = None, **trainer) -> dict:
    """A lifter of a few thousand parameters on a few synthetic clips: a couple of seconds on one thread."""
    return {"out": str(out), "model": {"dim": 16, "depth": 1, "heads": 2, "frames": 9, **(model or {})},
            "pretrain": pretrain or {}, "mask": mask or {},
            "data": {"synthetic_train": 24, "synthetic_val": 4, "synthetic_test": 4, "synthetic_length": 18,
                     "batch_size": 16, "val_batch_size": 16, **(data or {})},
            "optim": {"warmup_steps": 2, "lr": 2e-3},
            "trainer": {"max_steps": 12, "val_every_n_steps": 6, "progress_bar": False, "threads": 1, "logger": "csv",
                        "precision": "32-true", **trainer}}


def trained(name: str, factory: pytest.TempPathFactory, config) -> Path:
    """Train once per session (shared with test_lifter_cli.py); returns the run folder."""
    if name not in _RUNS:
        out = factory.mktemp(name)
        train(config(out))
        _RUNS[name] = out
    return _RUNS[name]


def lifter_config(out: Path) -> dict:
    """H36M-17 2D -> H36M-17 3D, masked 2D pretraining (8 steps) then fine-tuning (12 steps)."""
    return tiny_lifter(out, pretrain={"enabled": True, "max_steps": 8})


def coco_config(out: Path) -> dict:
    """COCO-17 2D -> H36M-17 3D (the in-the-wild layout), no pretraining; the supervised variant that lifts masked,
    noisy 2D."""
    return tiny_lifter(out, {"skeleton_in": "coco17"}, mask={"joint_ratio": 0.05, "frame_ratio": 0.1,
                                                             "noise_std": 0.002})


@pytest.fixture(scope="module")
def lifter_run(tmp_path_factory) -> Path:
    return trained("lifter", tmp_path_factory, lifter_config)


@pytest.fixture(scope="module")
def coco_run(tmp_path_factory) -> Path:
    return trained("coco_lifter", tmp_path_factory, coco_config)


@pytest.fixture(scope="module")
def h36m_files(tmp_path_factory) -> Files:
    """A tiny Human3.6M in both file forms (tests/test_h36m.py): S1 and S9, Directions and WalkDog with a
    sub-action each, 4 cameras, 10 frames (MMPose: every 2nd)."""
    return Files(tmp_path_factory.mktemp("h36m"))


def test_pretraining_then_fine_tuning(lifter_run):
    pre = checkpoint.read_checkpoint(lifter_run / "pretrain" / "model.ckpt")
    assert pre["kind"] == "lifter" and pre["mapping"] == "2d_2d" and pre["dims"]["out_channels"] == 2
    fine = checkpoint.read_checkpoint(lifter_run / "model.ckpt")
    assert fine["mapping"] == "2d_3d" and (fine["skeleton_in"], fine["skeleton_out"]) == ("h36m17", "h36m17")
    assert fine["meta"]["pretrained_from"] == str(lifter_run / "pretrain" / "model.ckpt")
    assert fine["meta"]["monitor"] == "val/mpjpe" and fine["meta"]["best_step"] in (6, 12)
    best = min(v for _, v in fine["meta"]["val_history"])
    assert fine["meta"]["best_val"] == pytest.approx(best)
    assert (lifter_run / "config.yaml").is_file() and (lifter_run / "pretrain" / "last.ckpt").is_file()
    # the encoder of the pretraining is what a fresh network receives; its head stays its own
    model = build_lifter(LifterDims.from_dict(fine["dims"]))
    head = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("head.")}
    load_pretrained(model, lifter_run / "pretrain" / "model.ckpt", model.dims)
    state = model.state_dict()
    for k, v in pre["state_dict"].items():
        if not k.startswith("head."):
            assert torch.equal(state[k], v), k
    assert all(torch.equal(state[k], v) for k, v in head.items())


def test_pretrained_checkpoints_that_do_not_fit_are_refused(lifter_run, coco_run, tmp_path):
    dims = LifterDims.from_dict(checkpoint.read_checkpoint(lifter_run / "model.ckpt")["dims"])
    model = build_lifter(dims)
    with pytest.raises(PosetokError, match=r"model.ckpt: field 'skeleton_in': 'coco17', this run's model has 'h36m17'"):
        load_pretrained(model, coco_run / "model.ckpt", dims)
    with pytest.raises(PosetokError, match=r"pct_v0.1.0.ckpt: field 'format': expected 'posetok.lifter'"):
        load_pretrained(model, PCT_CKPT, dims)
    with pytest.raises(PosetokError, match="checkpoint not found"):
        load_pretrained(model, tmp_path / "none.ckpt", dims)
    cfg = build_config("lifter", tiny_lifter(tmp_path, {"mapping": "3d_3d"}))
    three = build_lifter(LifterDims(**{**dims.to_dict(), "has_conf": False}))
    path = checkpoint.save(tmp_path / "3d.ckpt", lifter_payload(three.state_dict(), cfg))
    with pytest.raises(PosetokError, match=r"3d.ckpt: field 'mapping': a '3d_3d' checkpoint"):
        load_pretrained(model, path, dims)
    wider = LifterDims(**{**dims.to_dict(), "dim": 32})
    with pytest.raises(PosetokError, match=r"field 'dims.dim': 16, this run's model has 32"):
        load_pretrained(build_lifter(wider), lifter_run / "model.ckpt", wider)
    with pytest.raises(PosetokError, match=r"none.ckpt: checkpoint not found"):
        train(tiny_lifter(tmp_path / "run", {"pretrained": str(tmp_path / "none.ckpt")}))


def test_resume_continues_the_run(tmp_path):
    out = tmp_path / "run"
    train(tiny_lifter(out, max_steps=6, val_every_n_steps=3))
    first = checkpoint.read_checkpoint(out / "model.ckpt")["meta"]
    train(tiny_lifter(out, max_steps=9, val_every_n_steps=3))
    meta = checkpoint.read_checkpoint(out / "model.ckpt")["meta"]
    assert (first["global_step"], meta["global_step"]) == (6, 9)
    assert [s for s, _ in meta["val_history"]] == [3, 6, 9]  # the history survived the resume


def test_protocols_on_known_predictions(lifter_run, monkeypatch):
    codec = posetok.load(lifter_run / "model.ckpt")
    es = eval_set(codec, "synthetic")
    assert es.form == "synthetic" and len(es.clips) == 4 and all(len(c) == 18 for c in es.clips)
    angle = 0.3
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    answers = iter([c.poses_3d @ rot.T * 1.2 for c in es.clips[:2]] + [c.poses_3d + [0.01, 0, 0] for c in es.clips[2:]])
    monkeypatch.setattr(codec, "predict_clip", lambda inputs, flip=None: next(answers))
    metrics, arrays = evaluate(codec, es, procrustes=True, per_joint=True)
    gt = np.concatenate([c.poses_3d for c in es.clips]).astype(np.float64) * 1000
    pred = np.concatenate(arrays["pred"]).astype(np.float64) * 1000
    expected = np.linalg.norm(pred - gt, axis=-1).mean()
    assert metrics["mpjpe"] == pytest.approx(expected)
    # half the frames are rotated and scaled copies (PA error 0), half are shifted by 10 mm (PA removes the shift)
    assert metrics["pa_mpjpe"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["per_joint"]["root"] == pytest.approx(5.0)  # 0 for the first half, 10 mm for the second
    assert metrics["mpjve"] < metrics["mpjpe"] and metrics["num_frames"] == 72
    assert set(metrics["per_joint"]) == set(codec.skeleton_out.joint_names)
    with pytest.raises(PosetokError, match="--per-action: synthetic data has no action names"):
        evaluate(codec, es, per_action_table=True)


def test_h36m_files_of_both_forms(lifter_run, h36m_files):
    codec = posetok.load(lifter_run / "model.ckpt")
    vp3d = evaluate_file(codec, h36m_files.p3d.parent, procrustes=True, per_action=True)
    assert vp3d["data_form"] == "mmpose"  # the folder holds h36m_test.npz: MMPose's form is taken
    vp3d = evaluate_file(codec, h36m_files.p3d, procrustes=True, per_action=True)
    assert vp3d["data_form"] == "videopose3d" and vp3d["keypoints_2d"] == str(h36m_files.p2d)
    assert vp3d["num_clips"] == 16 and vp3d["num_frames"] == 160  # S9: 4 action keys x 4 cameras x 10 frames
    acts = vp3d["per_action"]
    assert set(acts) == {"Directions", "WalkDog", "average"}
    assert acts["average"] == pytest.approx((acts["Directions"] + acts["WalkDog"]) / 2)
    assert set(vp3d["per_action_pa"]) == set(acts)
    mm = evaluate_file(codec, h36m_files.test, per_action=True)
    assert mm["data_form"] == "mmpose" and mm["num_frames"] == 16 * 5 and "pa_mpjpe" not in mm
    walk = evaluate_file(codec, h36m_files.p3d, actions=["WalkingDog"], per_action=True)  # MMPose's spelling
    assert set(walk["per_action"]) == {"WalkDog", "average"} and walk["num_clips"] == 8
    with pytest.raises(PosetokError, match="--actions: unknown Human3.6M action 'Dancing'"):
        evaluate_file(codec, h36m_files.p3d, actions=["Dancing"])
    with pytest.raises(PosetokError, match="no clip of the test subjects S9, S11 and actions Walking"):
        evaluate_file(codec, h36m_files.p3d, actions=["Walking"])


def test_load_and_lift(coco_run):
    codec = posetok.load(coco_run / "model.ckpt")
    assert (codec.skeleton_in.name, codec.skeleton_out.name, codec.frames) == ("coco17", "h36m17", 9)
    track = np.load(REAL_TRACK)
    poses, mask = track["poses"][40:70], track["mask"][40:70]
    out = codec.lift(poses, mask=mask)
    assert out["normalization"] == "box" and out["poses3d"].shape == (30, 17, 3)
    assert np.all(out["poses3d"][:, 0] == 0) and np.isfinite(out["poses3d"]).all()
    sized = codec.lift(poses, image_size=(1768, 994), mask=mask)
    assert sized["normalization"] == "image" and not np.allclose(sized["poses3d"], out["poses3d"])
    assert np.allclose(codec.lift(poses, (1768, 994), mask, "box")["poses3d"], out["poses3d"])


def test_single_frame_and_masked_modelling_runs(tmp_path, h36m_files):
    # SimpleBaseline, one frame: motion frames and single synthetic people
    out = train(tiny_lifter(tmp_path / "sb", {"arch": "simplebaseline", "frames": 1, "hidden": 32},
                            {"synthetic_people": 64}, max_steps=4, val_every_n_steps=4))
    codec = posetok.load(out)
    m = evaluate_file(codec, "synthetic", noise_px=0.0, drop_prob=0.0)
    assert m["window"] == 1 and math.isfinite(m["mpjpe"])
    # the transformer lifting VideoPose3D's files (2D file, 3D file, MMPose's cameras for the extrinsics)
    h = {"h36m_3d": str(h36m_files.p3d), "h36m_2d": str(h36m_files.p2d), "cameras": str(h36m_files.pkl),
         "train_subjects": ["S1"], "test_subjects": ["S9"], "batch_size": 4, "val_batch_size": 4}
    codec = posetok.load(train(tiny_lifter(tmp_path / "vp3d", {"frames": 3}, h, max_steps=3, val_every_n_steps=3)))
    assert codec.info["config"]["data"]["h36m_3d"] == str(h36m_files.p3d)
    # SimpleBaseline pretrained by masked 2D modelling on a COCO keypoint file (separate people, one frame each)
    coco = ROOT / "posetok" / "assets" / "real_sample" / "coco17_sports2d.json"
    cfg = tiny_lifter(tmp_path / "sb2d", {"arch": "simplebaseline", "frames": 1, "hidden": 32, "skeleton_in": "coco17",
                                          "mapping": "2d_2d"}, {"pretrain_2d": [str(coco)]},
                      mask={"joint_ratio": 0.2}, max_steps=3, val_every_n_steps=3)
    assert checkpoint.read_checkpoint(train(cfg))["mapping"] == "2d_2d"
    # ViT, masked 3D modelling on the MMPose training file
    cfg = tiny_lifter(tmp_path / "vit3d", {"arch": "vit", "mapping": "3d_3d", "frames": 3},
                      {"h36m_train": str(h36m_files.train), "h36m_test": str(h36m_files.test),
                       "batch_size": 4, "val_batch_size": 4},
                      max_steps=4, val_every_n_steps=4)
    cfg["mask"] = {"joint_ratio": 0.2, "frame_ratio": 0.1}
    codec = posetok.load(train(cfg))
    assert codec.mapping == "3d_3d" and codec.skeleton_out.name == "h36m17"
    m = evaluate_file(codec, h36m_files.test)
    assert m["unit"] == "mm" and m["recon_error_masked"] > 0 and m["num_clips"] == 16
    # masked 2D modelling on 2D-only sources: the bundled track and a folder of sequences
    folder = tmp_path / "seqs"
    folder.mkdir()
    t = np.load(REAL_TRACK)
    np.savez(folder / "a.npz", poses=t["poses"][:60], mask=t["mask"][:60], image_size=np.array([1768, 994]))
    cfg = tiny_lifter(tmp_path / "pre2d", {"skeleton_in": "coco17", "mapping": "2d_2d"},
                      {"pretrain_2d": [str(folder)], "real_sample": True, "real_sample_repeat": 1},
                      max_steps=4, val_every_n_steps=4)
    cfg["mask"] = {"joint_ratio": 0.2, "frame_ratio": 0.2, "noise_std": 0.002}
    codec = posetok.load(train(cfg))
    assert codec.mapping == "2d_2d" and codec.model.dims.out_channels == 2
    m = evaluate_file(codec, "synthetic")
    assert m["unit"] == "px" and m["recon_error"] > 0
    cfg["data"]["pretrain_2d"] = [str(coco)]
    with pytest.raises(PosetokError, match="separate people .* cannot train a lifter of model.frames=9"):
        train(cfg)
