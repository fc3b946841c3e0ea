"""The command line with lifter checkpoints: train, eval (protocols, per joint, per action), lift (a track with and
without its image size, COCO annotations and results, a Human3.6M 2D file; figures), export, info, bench lifter,
and every bad input (a one-line error naming the file and the field, exit 2, nothing written)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from posetok.cli import main

from .conftest import ROOT
from .test_h36m import Files
from .test_lifter_task import PCT_CKPT, REAL_TRACK, coco_config, lifter_config, tiny_lifter, trained

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lifter_run(tmp_path_factory) -> Path:
    return trained("lifter", tmp_path_factory, lifter_config)  # the run of test_lifter_task.py when it ran first


@pytest.fixture(scope="module")
def coco_run(tmp_path_factory) -> Path:
    return trained("coco_lifter", tmp_path_factory, coco_config)


@pytest.fixture(scope="module")
def h36m_files(tmp_path_factory) -> Files:
    return Files(tmp_path_factory.mktemp("h36m"))

COCO_ANN = ROOT / "posetok" / "assets" / "real_sample" / "coco17_sports2d.json"


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def user_error(capsys, args, *fragments) -> str:
    """Exit 2, no traceback, one error line holding every fragment."""
    code, _, err = run(capsys, *args)
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().split("\n") if line.startswith("posetok ")]
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def track(path: Path, frames: slice = slice(40, 52), **extra) -> Path:
    t = np.load(REAL_TRACK)
    np.savez(path, poses=extra.pop("poses", t["poses"][frames]), mask=t["mask"][frames], **extra)
    return path


def test_train_from_a_yaml(tmp_path, capsys):
    cfg = tiny_lifter(tmp_path / "run", max_steps=3, val_every_n_steps=3)
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text(json.dumps({"task": "lifter", **{k: v for k, v in cfg.items() if k != "out"}}))  # JSON is YAML
    code, out, err = run(capsys, "train", yaml, f"out={tmp_path / 'run'}", "model.arch=vit")
    assert code == 0, err
    assert f"model: {tmp_path / 'run' / 'model.ckpt'}" in out
    user_error(capsys, ["train", yaml, "data.actions=[Dancing]"], "field 'data.actions[0]'",
               "unknown Human3.6M action 'Dancing'")
    user_error(capsys, ["train", yaml, "model.arch=tcn"], "field 'model.arch'", "unknown value 'tcn'")


def test_eval(lifter_run, tmp_path, capsys):
    ckpt = lifter_run / "model.ckpt"
    out_json = tmp_path / "m.json"
    code, out, err = run(capsys, "eval", ckpt, "--data", "synthetic", "--procrustes", "--per-joint", "--json",
                         out_json, "--noise-px", "0")
    assert code == 0, err
    m = json.loads(out)
    assert json.loads(out_json.read_text()) == m
    assert {"mpjpe", "pa_mpjpe", "n_mpjpe", "mpjve", "per_joint"} <= set(m) and m["unit"] == "mm"
    assert m["keypoints_2d"] == "synthetic, noise 0 px" and m["pa_mpjpe"] <= m["mpjpe"]
    code, out, _ = run(capsys, "eval", ckpt, "--data", "synthetic", "--no-flip")
    assert code == 0 and json.loads(out)["flip_test"] is False and "pa_mpjpe" not in json.loads(out)
    user_error(capsys, ["eval", ckpt, "--data", "synthetic", "--per-action"], "--per-action: synthetic data has no")
    user_error(capsys, ["eval", PCT_CKPT, "--data", COCO_ANN, "--procrustes"],
               "--procrustes: does not apply to 'pct' checkpoints")


def test_lift_a_track_figures_and_output_fields(coco_run, tmp_path, capsys):
    ckpt = coco_run / "model.ckpt"
    src = track(tmp_path / "t.npz", fps=np.float64(30.0), skeleton=np.array("coco17"))
    out = tmp_path / "out" / "t3d.npz"
    code, text, err = run(capsys, "lift", ckpt, src, "-o", out, "--visualize", tmp_path / "fig")
    assert code == 0, err
    res = json.loads(text)
    assert res["normalization"] == "box" and res["frames"] == 12
    assert set(res["bones_m"]) == {"thigh", "shank", "upper_arm", "forearm"}
    assert (tmp_path / "fig" / "lift.gif").stat().st_size > 0 and (tmp_path / "fig" / "frames.png").is_file()
    with np.load(out) as f:
        assert f["poses3d"].shape == (12, 17, 3) and f["poses3d"].dtype == np.float32
        assert np.all(f["poses3d"][:, 0] == 0)
        assert (str(f["normalization"]), str(f["skeleton"]), str(f["skeleton_2d"]), str(f["units"])) == \
            ("box", "h36m17", "coco17", "m")
        assert float(f["fps"]) == 30.0 and f["mask"].shape == (12,) and f["poses_2d"].shape == (12, 17, 3)
    sized = track(tmp_path / "s.npz", image_size=np.array([1768, 994]))
    code, text, _ = run(capsys, "lift", ckpt, sized, "-o", tmp_path / "s3d.npz")
    assert code == 0 and json.loads(text)["normalization"] == "image"
    with np.load(tmp_path / "s3d.npz") as f:
        assert f["image_size"].tolist() == [1768, 994]
    code, text, _ = run(capsys, "lift", ckpt, sized, "-o", tmp_path / "b3d.npz", "--normalization", "box")
    assert code == 0 and json.loads(text)["normalization"] == "box"
    # a joint not detected may hold NaN
    t = np.load(REAL_TRACK)
    poses = t["poses"][40:52].copy()
    poses[3, 9] = [np.nan, np.nan, 0.0]
    code, _, err = run(capsys, "lift", ckpt, track(tmp_path / "n.npz", poses=poses), "-o", tmp_path / "n3d.npz")
    assert code == 0, err


def test_lift_coco_files(coco_run, tmp_path, capsys):
    ckpt = coco_run / "model.ckpt"
    code, text, err = run(capsys, "lift", ckpt, COCO_ANN, "-o", tmp_path / "ann.npz")
    assert code == 0, err
    assert json.loads(text)["normalization"] == "image"  # the images records give the size
    doc = json.loads(COCO_ANN.read_text())
    with np.load(tmp_path / "ann.npz") as f:
        assert f["poses3d"].shape == (len(doc["annotations"]), 17, 3)
        assert f["image_id"].tolist() == [a["image_id"] for a in doc["annotations"]]
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 0.9}
               for a in doc["annotations"][:5]]
    (tmp_path / "res.json").write_text(json.dumps(results))
    code, text, _ = run(capsys, "lift", ckpt, tmp_path / "res.json", "-o", tmp_path / "res.npz")
    assert code == 0 and json.loads(text)["normalization"] == "box" and json.loads(text)["frames"] == 5


def test_lift_human36m_2d(lifter_run, h36m_files, tmp_path, capsys):
    code, text, err = run(capsys, "lift", lifter_run / "model.ckpt", h36m_files.p2d, "-o", tmp_path / "h.npz")
    assert code == 0, err
    with np.load(tmp_path / "h.npz") as f:
        # 2 subjects with 3D, 4 action keys, 4 cameras, 10 frames (13 for WalkDog, whose video runs longer);
        # the 2D-only subject S2 is lifted too
        assert set(f["subject"].tolist()) == {"S1", "S9", "S2"} and str(f["normalization"]) == "image"
        assert len(f["poses3d"]) == 2 * 4 * (10 + 10 + 13 + 10) + 4 * 5


def test_export_info_bench(lifter_run, tmp_path, capsys):
    ckpt = lifter_run / "model.ckpt"
    for fmt, name in (("onnx", "l.onnx"), ("torchscript", "l.pt")):
        code, text, err = run(capsys, "export", ckpt, "--format", fmt, "-o", tmp_path / name)
        assert code == 0, err
        res = json.loads(text)
        assert res["check_passed"] and res["dynamic_frames_checked"] == [9, 4] and res["max_abs_diff"] < 1e-4
        assert (tmp_path / name).is_file()
    code, text, _ = run(capsys, "info", ckpt, "--json")
    info = json.loads(text)
    assert (info["kind"], info["mapping"], info["frames"]) == ("lifter", "2d_3d", 9) and "cpu" in info["devices"]
    assert info["parameters"] > 0 and info["GMACs_per_window"] > 0
    cfg = ROOT / "configs" / "lifter" / "small_synthetic.yaml"
    code, text, _ = run(capsys, "info", cfg, "--json")
    assert code == 0 and json.loads(text)["skeleton_in"] == "h36m17"
    code, text, err = run(capsys, "bench", "lifter", "--config", cfg, "model.dim=16", "model.depth=1",
                          "--batch", "2", "--frames", "9", "--seconds", "0.05")
    assert code == 0, err
    b = json.loads(text)
    assert b["frames"] == 9 and b["posetok_frames_per_s"] > 0 and b["ratio"] > 0


def test_bad_inputs(coco_run, lifter_run, h36m_files, tmp_path, capsys):
    ckpt = coco_run / "model.ckpt"
    out = tmp_path / "o.npz"
    # a 2D file whose joint count does not match the checkpoint's input skeleton
    t = np.load(REAL_TRACK)
    bad = track(tmp_path / "k16.npz", poses=t["poses"][40:52, :16])
    user_error(capsys, ["lift", ckpt, bad, "-o", out], str(bad), "field 'poses'",
               "expected 17 keypoints of skeleton 'coco17'", "(12, 16, 3)")
    # a file naming another skeleton: a sequence's 'skeleton', a COCO file's categories
    named = track(tmp_path / "named.npz", skeleton=np.array("h36m17"))
    user_error(capsys, ["lift", ckpt, named, "-o", out], str(named), "field 'skeleton'", "'h36m17'", "'coco17'")
    doc = json.loads(COCO_ANN.read_text())
    doc["categories"][0]["keypoints"] = list(__import__("posetok").skeletons.H36M17.joint_names)
    (tmp_path / "h36m.json").write_text(json.dumps(doc))
    user_error(capsys, ["lift", ckpt, tmp_path / "h36m.json", "-o", out], "field 'categories'", "'h36m17'")
    # NaN outside the confidence mask
    poses = t["poses"][40:52].copy()
    poses[2, 5, 0] = np.nan  # a detected joint (confidence > 0)
    nan = track(tmp_path / "nan.npz", poses=poses)
    user_error(capsys, ["lift", ckpt, nan, "-o", out], str(nan), "field 'poses'", "NaN or infinite x, y at frame 2, "
               "joint 5 ('left_shoulder')")
    # Human3.6M files without positions_3d / positions_2d, a subject missing from the camera file
    user_error(capsys, ["eval", lifter_run / "model.ckpt", "--data", h36m_files.p2d], str(h36m_files.p2d),
               "field 'positions_3d'", "missing")
    user_error(capsys, ["lift", lifter_run / "model.ckpt", h36m_files.p3d, "-o", out], str(h36m_files.p3d),
               "field 'positions_2d'", "3D only")
    folder = tmp_path / "h36m"
    folder.mkdir()
    for f in (h36m_files.p3d, h36m_files.p2d):
        (folder / f.name).write_bytes(f.read_bytes())
    cams = pickle.loads(h36m_files.pkl.read_bytes())
    pickle.dump({k: v for k, v in cams.items() if k[0] != "S9"}, open(folder / "cameras.pkl", "wb"))
    user_error(capsys, ["eval", lifter_run / "model.ckpt", "--data", folder], str(folder / "cameras.pkl"),
               "no camera for ('S9'", str(folder / "data_3d_h36m.npz"))
    # frames of different lengths between 2D and 3D: a VideoPose3D 2D file shorter than the mocap, pairs
    pos2d = pickle.loads(pickle.dumps(h36m_files.pos2d))
    pos2d["S9"]["Directions"] = [v[:7] for v in pos2d["S9"]["Directions"]]
    pickle.dump(cams, open(folder / "cameras.pkl", "wb"))
    np.savez(folder / "data_2d_h36m_gt.npz", positions_2d=pos2d, metadata=h36m_files.meta)
    user_error(capsys, ["eval", lifter_run / "model.ckpt", "--data", folder], "data_2d_h36m_gt.npz",
               "field 'positions_2d[S9][Directions][0]'", "has 7 frames, fewer than the 10 of the mocap")
    pairs = tmp_path / "pairs.npz"
    np.savez(pairs, poses_2d=np.zeros((2, 20, 17, 3)), poses_3d=np.zeros((2, 18, 17, 3)))
    user_error(capsys, ["eval", lifter_run / "model.ckpt", "--data", pairs], str(pairs), "field 'poses_3d'",
               "2D and 3D must have the same frames")
    # an unknown action name in a filter
    user_error(capsys, ["eval", lifter_run / "model.ckpt", "--data", h36m_files.p3d, "--actions", "Walking,Dancing",
                        "--json", tmp_path / "m.json"], "--actions: unknown Human3.6M action 'Dancing'")
    # a lifter command on another kind, another command on a lifter
    user_error(capsys, ["lift", PCT_CKPT, COCO_ANN, "-o", out], "field 'kind'", "this command needs a lifter")
    user_error(capsys, ["infer", ckpt, COCO_ANN], "field 'kind'", "needs an estimator")
    # nothing half-written
    assert not out.exists() and not (tmp_path / "m.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
