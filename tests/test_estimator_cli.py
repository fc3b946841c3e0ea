"""The command line with estimator checkpoints: eval, infer (image, folder, video), export, info, score, convert
mmpose, bench estimator, and every bad input (a one-line error naming the file and the field, exit 2, no output)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import posetok
from posetok.cli import main
from posetok.data.images import read_image

from .conftest import ROOT
from .test_estimator_task import SAMPLE_IMAGES, train_tiny, write_coco, write_detections, write_video

pytestmark = pytest.mark.usefixtures("one_thread")

PCT_CKPT = ROOT / "tests" / "fixtures" / "checkpoints" / "pct_v0.1.0.ckpt"
METRICS = ("oks_ap", "ap50", "ap75", "ap_m", "ap_l", "ar", "ar50", "ar75", "ar_m", "ar_l")
TINY_YAML = """task: estimator
model:
  input_size: [64, 64]
  backbone: {name: hrnet_w18_small}
data:
  batch_size: 8
  num_workers: 0
"""


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def user_error(capsys, args, *fragments) -> str:
    """Run the CLI; assert exit 2, no traceback, and one error line holding every fragment (progress lines of
    the items done before it may precede it on stderr); returns that line."""
    code, _, err = run(capsys, *args)
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().split("\n") if line.strip()]
    errors = [line for line in lines if line.startswith("posetok ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    for f in fragments:
        assert f in errors[0], (f, errors[0])
    return errors[0]


def assert_no_outputs(folder: Path) -> None:
    """Nothing half-written: the output folder is absent or empty (no predictions, overlays or temp folders)."""
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, one_thread) -> Path:
    return train_tiny(tmp_path_factory.mktemp("estimator_cli_run"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Four bundled frames as a COCO file with its image folder, and a detection file of them."""
    folder = tmp_path_factory.mktemp("estimator_data")
    ann, images = write_coco(folder, num_images=4)
    return ann, images, write_detections(folder / "dets.json", ann)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, tuple]:
    return write_video(tmp_path_factory.mktemp("estimator_video") / "clip.mp4")


# ----------------------------------------------------------------------------------------------------------
# eval
# ----------------------------------------------------------------------------------------------------------


def test_eval_annotated_boxes_json_and_figures(ckpt, data, tmp_path, capsys):
    ann, images, _ = data
    code, out, _ = run(capsys, "eval", ckpt, "--data", ann, "--images", images, "--json", tmp_path / "m.json",
                       "--visualize", tmp_path / "viz")
    assert code == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert json.loads(out) == metrics
    for key in METRICS:
        assert 0.0 <= metrics[key] <= 100.0 or np.isnan(metrics[key]), key
    assert metrics["checkpoint"] == str(ckpt) and metrics["data"] == str(ann)
    assert metrics["num_people"] == metrics["num_results"] == 4
    assert metrics["box_source"] == "annotations" and metrics["flip_test"] is True
    assert np.isfinite(metrics["mean_error_px"]) and metrics["mean_error_px"] > 0
    assert {p.name for p in (tmp_path / "viz").iterdir()} == {"best_worst.png", "error_per_joint.png"}
    for name in ("best_worst.png", "error_per_joint.png"):
        figure = cv2.imread(str(tmp_path / "viz" / name))
        assert figure is not None and figure.shape[0] > 100 and figure.shape[1] > 100

    # without the flip test the predictions, hence the error, change
    code, out, _ = run(capsys, "eval", ckpt, "--data", ann, "--images", images, "--no-flip")
    assert code == 0
    plain = json.loads(out)
    assert plain["flip_test"] is False and plain["mean_error_px"] != metrics["mean_error_px"]

    # a grey block over 20-40 % of every crop changes the predictions; seeded, so twice the same
    code, out, _ = run(capsys, "eval", ckpt, "--data", ann, "--images", images, "--occlusion", "0.2", "0.4")
    occluded = json.loads(out)
    assert code == 0 and occluded["occlusion"] == {"area": [0.2, 0.4], "fill": 128, "seed": 0}
    assert occluded["mean_error_px"] != metrics["mean_error_px"]
    code, out, _ = run(capsys, "eval", ckpt, "--data", ann, "--images", images, "--occlusion", "0.2", "0.4")
    assert json.loads(out)["mean_error_px"] == occluded["mean_error_px"]


def test_eval_detection_boxes(ckpt, data, tmp_path, capsys):
    ann, images, dets = data
    code, out, _ = run(capsys, "eval", ckpt, "--data", ann, "--images", images, "--boxes", dets, "--no-flip",
                       "--json", tmp_path / "m.json")
    assert code == 0
    metrics = json.loads(out)
    assert metrics == json.loads((tmp_path / "m.json").read_text())
    assert metrics["box_source"] == "detections" and metrics["flip_test"] is False
    assert metrics["num_people"] == 4 and set(METRICS) <= set(metrics)
    assert "mean_error_px" not in metrics
    # --box-score-thr drops detections: the file's scores are 0.9, 0.89, 0.88, 0.87
    code, out, _ = run(capsys, "eval", ckpt, "--data", ann, "--images", images, "--boxes", dets, "--no-flip",
                       "--box-score-thr", 0.885)
    assert code == 0 and json.loads(out)["num_people"] == 2


# ----------------------------------------------------------------------------------------------------------
# infer
# ----------------------------------------------------------------------------------------------------------


def test_infer_one_image(ckpt, data, tmp_path, capsys):
    _, images, _ = data
    image = sorted(images.iterdir())[1]
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "infer", ckpt, image, "-o", out)
    assert code == 0
    summary = json.loads(stdout)
    assert summary == {"images": 1, "people": 1, "predictions": str(out / "predictions.json"),
                       "overlays": str(out)}
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{image.stem}.jpg", "predictions.json"])
    overlay = read_image(out / f"{image.stem}.jpg")
    assert overlay.shape == read_image(image).shape
    (pred,) = json.loads((out / "predictions.json").read_text())
    assert pred["file_name"] == image.name and pred["image_id"] == 0 and pred["category_id"] == 1
    assert len(pred["keypoints"]) == 51 and pred["score"] == 1.0
    # the whole image is the box: the same as predicting in Python
    est = posetok.load(ckpt)
    expected = est.predict(read_image(image))[0]
    np.testing.assert_allclose(np.reshape(pred["keypoints"], (17, 3)), expected, atol=1e-3)


def test_infer_folder_with_bbox_and_with_detections(ckpt, data, tmp_path, capsys):
    _, images, _ = data
    names = sorted(p.name for p in images.iterdir())
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "infer", ckpt, images, "-o", out, "--bbox", 10, 20, 40, 100, "--no-flip")
    assert code == 0
    assert json.loads(stdout)["images"] == 4 and json.loads(stdout)["people"] == 4
    preds = json.loads((out / "predictions.json").read_text())
    assert [p["file_name"] for p in preds] == names and [p["image_id"] for p in preds] == [0, 1, 2, 3]
    assert {p.name for p in out.iterdir()} == {"predictions.json", *names}  # overlays are .jpg
    est = posetok.load(ckpt)
    est.flip_test = False
    expected = est.predict(read_image(images / names[2]), [10, 20, 40, 100])[0]
    np.testing.assert_allclose(np.reshape(preds[2]["keypoints"], (17, 3)), expected, atol=1e-3)

    # A detection file (image_id = index in sorted order): two people in image 0, one in image 2, none in the
    # others; each result carries its detection's score.
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([
        {"image_id": 0, "category_id": 1, "bbox": [0, 0, 60, 200], "score": 0.8},
        {"image_id": 0, "category_id": 1, "bbox": [5, 60, 50, 150], "score": 0.6},
        {"image_id": 2, "category_id": 1, "bbox": [10, 10, 80, 220], "score": 0.95},
        {"image_id": 2, "category_id": 1, "bbox": [10, 10, 80, 220], "score": 0.1},  # below --box-score-thr
        {"image_id": 3, "category_id": 2, "bbox": [10, 10, 80, 220], "score": 0.99},  # not a person
    ]))
    out2 = tmp_path / "out2"
    code, stdout, _ = run(capsys, "infer", ckpt, images, "-o", out2, "--boxes", dets)
    assert code == 0 and json.loads(stdout)["people"] == 3
    preds = json.loads((out2 / "predictions.json").read_text())
    assert [p["image_id"] for p in preds] == [0, 0, 2]
    assert [p["score"] for p in preds] == pytest.approx([0.8, 0.6, 0.95])
    assert len(list(out2.glob("*.jpg"))) == 4  # an overlay for every image, with or without people
    # a detection file with no person above the threshold: no people (not one whole-image box per image)
    code, stdout, _ = run(capsys, "infer", ckpt, images, "-o", tmp_path / "out3", "--boxes", dets,
                          "--box-score-thr", 0.999)
    assert code == 0 and json.loads(stdout)["people"] == 0
    assert json.loads((tmp_path / "out3" / "predictions.json").read_text()) == []


def test_infer_video(ckpt, video, tmp_path, capsys):
    path, box = video
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "infer", ckpt, path, "-o", out, "--bbox", *box, "--kpt-thr", 0.0)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["frames"] == 6 and summary["frames_with_pose"] == 6
    assert summary == {"frames": 6, "frames_with_pose": 6, "video": str(out / "clip.mp4"),
                       "sequence": str(out / "clip.npz")}
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "clip.npz"]
    cap = cv2.VideoCapture(str(out / "clip.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (320, 256)
    cap.release()
    with np.load(out / "clip.npz") as f:
        assert set(f.files) == {"poses", "mask", "image_size", "fps", "skeleton"}
        assert f["poses"].shape == (6, 17, 3) and f["poses"].dtype == np.float32
        assert f["mask"].shape == (6,) and f["mask"].dtype == bool and f["mask"].all()
        assert f["image_size"].tolist() == [320, 256] and float(f["fps"]) == pytest.approx(10.0)
        assert str(f["skeleton"]) == "coco17"
        first = f["poses"][0]
    # the first frame is predicted in the --bbox box
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok
    est = posetok.load(ckpt)
    expected = est.predict(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), box)[0]
    np.testing.assert_allclose(first, expected, atol=1e-3)
    # the sequence tokenizer reads it as a COCO-17 x, y, confidence track
    from posetok.data.sequences import load_sequence

    seq = load_sequence(out / "clip.npz", "coco17", 3)
    assert seq.poses.shape == (6, 17, 3) and seq.mask.all()

    # A detection file (image_id = frame index) starts the track at the best-scored box of frame 0
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 0, "bbox": [200, 100, 60, 100], "score": 0.4},
                                {"image_id": 0, "bbox": list(box), "score": 0.9}]))
    code, _, _ = run(capsys, "infer", ckpt, path, "-o", tmp_path / "out_dets", "--boxes", dets, "--kpt-thr", 0.0)
    assert code == 0
    with np.load(tmp_path / "out_dets" / "clip.npz") as f:
        np.testing.assert_allclose(f["poses"][0], first, atol=1e-4)

    # Without --kpt-thr 0 the untrained network's joints (scores ~0.01) count as not found: masked frames
    code, stdout, _ = run(capsys, "infer", ckpt, path, "-o", tmp_path / "out2")
    assert code == 0 and json.loads(stdout)["frames_with_pose"] == 0
    with np.load(tmp_path / "out2" / "clip.npz") as f:
        assert not f["mask"].any() and not f["poses"].any()


# ----------------------------------------------------------------------------------------------------------
# export, info, score, convert, bench
# ----------------------------------------------------------------------------------------------------------


def _crops(est) -> np.ndarray:
    image = read_image(SAMPLE_IMAGES / "Sports2D__Demo__demo__0009.jpg")
    boxes = np.array([[0.0, 0.0, image.shape[1], image.shape[0]], [20.0, 40.0, 80.0, 150.0]])
    return est.crops(image, est.matrices(*est.crop_frames(boxes)))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export(ckpt, tmp_path, capsys, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    target = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
    code, stdout, _ = run(capsys, "export", ckpt, "--format", fmt, "-o", target)
    assert code == 0, stdout
    result = json.loads(stdout)
    assert result["check_passed"] is True and result["model"] == str(target) and target.is_file()
    assert result["inputs"] == ["crops"] and result["outputs"] == ["heatmaps", "keypoints", "scores"]
    assert result["input_size"] == [64, 64] and result["heatmaps_max_abs_diff"] < 1e-4

    # The exported graph on two crops (a batch size other than the traced one) against PyTorch.
    est = posetok.load(ckpt)
    est.flip_test = False
    crops = _crops(est)
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float().contiguous()
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        maps, kp, scores = session.run(None, {"crops": x.numpy()})
    else:
        with torch.no_grad():
            maps, kp, scores = (t.numpy() for t in torch.jit.load(str(target))(x))
    ref_maps = est.forward_crops(crops)["heatmaps"]
    ref_kp, ref_scores = est.predict_crops(crops)
    assert maps.shape == ref_maps.shape == (2, 17, 16, 16) and kp.shape == (2, 17, 2) and scores.shape == (2, 17)
    np.testing.assert_allclose(maps, ref_maps, atol=1e-5)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    # keypoints: equal where DARK's Newton step stays in the peak's cell; on near-flat maps of an untrained
    # network it can overshoot by cells, where float rounding of the maps moves it measurably
    peak = np.stack([ref_maps.reshape(2, 17, -1).argmax(-1) % 16, ref_maps.reshape(2, 17, -1).argmax(-1) // 16], -1)
    stable = np.abs(ref_kp / est.codec.scale - peak).max(-1) <= 1.0
    assert stable.sum() >= 10
    np.testing.assert_allclose(kp[stable], ref_kp[stable], atol=0.01)


def test_info_config_and_checkpoint(ckpt, capsys):
    code, out, _ = run(capsys, "info", ROOT / "configs" / "estimator" / "hrnet_w32_coco_256x192.yaml", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["task"] == "estimator" and info["kind"] == "heatmap" and info["backbone"] == "hrnet_w32"
    assert info["input_size"] == [192, 256] and info["num_joints"] == 17
    assert info["parameters_M"] == pytest.approx(28.5, abs=0.1)  # HRNet-W32 256x192: 28.5 M, 7.1 GFLOPs (MACs)
    assert info["GMACs"] == pytest.approx(7.6, abs=0.1) and info["GFLOPs"] == pytest.approx(2 * info["GMACs"])
    assert info["codec"]["heatmap_size"] == [48, 64]

    code, out, _ = run(capsys, "info", ckpt, "--json")
    assert code == 0
    info = json.loads(out)
    est = posetok.load(ckpt)
    assert info["source"] == str(ckpt) and info["backbone"] == "hrnet_w18_small" and info["input_size"] == [64, 64]
    assert info["parameters"] == sum(p.numel() for p in est.model.parameters())
    code, out, _ = run(capsys, "info", ckpt)  # plain text
    assert code == 0 and "backbone: hrnet_w18_small" in out.splitlines()


def test_score_perfect_predictions_and_nms(data, tmp_path, capsys):
    ann, _, _ = data
    doc = json.loads(ann.read_text())
    perfect = [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
                "keypoints": [v if i % 3 != 2 else 1.0 for i, v in enumerate(a["keypoints"])]}
               for a in doc["annotations"]]
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(perfect))
    code, out, _ = run(capsys, "score", preds, "--data", ann, "--json", tmp_path / "s.json")
    assert code == 0
    metrics = json.loads(out)
    assert metrics == json.loads((tmp_path / "s.json").read_text())
    assert metrics["oks_ap"] == pytest.approx(100.0) and metrics["ar"] == pytest.approx(100.0)
    assert metrics["num_predictions"] == metrics["num_after_nms"] == 4 and metrics["nms"] == "oks"

    # Every person twice, the copy 1 px off and scored lower: OKS-NMS keeps one of each, --nms none all.
    copies = [{**p, "score": 0.5, "keypoints": [v + 1.0 if i % 3 != 2 else v for i, v in enumerate(p["keypoints"])]}
              for p in perfect]
    preds.write_text(json.dumps(perfect + copies))
    code, out, _ = run(capsys, "score", preds, "--data", ann)
    assert code == 0 and json.loads(out)["num_after_nms"] == 4 and json.loads(out)["oks_ap"] == pytest.approx(100)
    code, out, _ = run(capsys, "score", preds, "--data", ann, "--nms", "none")
    assert code == 0 and json.loads(out)["num_after_nms"] == 8 and json.loads(out)["nms"] == "none"


def test_convert_mmpose_checkpoint(ckpt, tmp_path, capsys):
    est = posetok.load(ckpt)
    # MMPose 1.x keys: backbone.* (HRNet with the last stage-4 module fusing into branch 0 only, as posetok's
    # pose backbone) and head.final_layer.*, plus the data preprocessor's buffers nothing receives.
    state = {k: v.clone() for k, v in est.model.state_dict().items()}
    assert "head.final_layer.weight" in state and "backbone.stage2.0.fuse_layers.1.0.0.0.weight" in state
    state["data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    source = tmp_path / "hrnet_mmpose.pth"
    torch.save({"state_dict": state, "meta": {"mmpose_version": "1.3.2"}}, source)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_YAML)
    out = tmp_path / "converted.ckpt"
    code, stdout, _ = run(capsys, "convert", "mmpose", source, "--config", cfg, "-o", out)
    assert code == 0
    result = json.loads(stdout)
    assert result == {"output": str(out), "placed": len(state) - 1, "unplaced": ["data_preprocessor.mean"]}
    converted = posetok.load(out)
    assert converted.info["meta"]["converted_from"] == str(source)
    image = read_image(SAMPLE_IMAGES / "Sports2D__Demo__demo__0011.jpg")
    boxes = [[0, 0, image.shape[1], image.shape[0]], [10, 30, 60, 120]]
    est.flip_test = converted.flip_test = True
    np.testing.assert_array_equal(converted.predict(image, boxes), est.predict(image, boxes))

    # A config of another network: every missing weight refused, nothing written
    cfg.write_text(TINY_YAML.replace("hrnet_w18_small", "hrnet_w18_small_v2"))
    bad = tmp_path / "bad.ckpt"
    user_error(capsys, ["convert", "mmpose", source, "--config", cfg, "-o", bad], "hrnet_mmpose.pth",
               "field 'state_dict'", "hrnet_w18_small_v2", "check --config")
    assert not bad.exists()


def test_bench_estimator(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_YAML)
    # The bench takes every core this thread may run on: one here, as for every test on this shared machine
    # (two threads on two busy cores wait on each other for seconds per step).
    threads, cores = torch.get_num_threads(), os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        code, out, _ = run(capsys, "bench", "estimator", "--config", cfg, "--seconds", 0.2, "--batch", 2,
                           "--train-batch", 8, "--workers", 0, "--json", tmp_path / "b.json")
    finally:
        os.sched_setaffinity(0, cores)
        torch.set_num_threads(threads)
    assert code == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert json.loads(out) == result
    assert result["config"] == {"backbone": "hrnet_w18_small", "head": "heatmap", "codec": "msra",
                                "input_size": [64, 64]}
    assert result["device"] in ("cpu", "cuda") and result["precision"] == "32"
    assert result["machine"]["torch_threads"] == 1
    inf, train, pipe = result["inference"], result["training"], result["pipeline"]
    assert inf["batch"] == 2 and train["batch"] == 8 and train["workers"] == pipe["workers"] == 0
    for value in (inf["posetok_crops_per_s"], inf["plain_crops_per_s"], inf["ratio"],
                  train["posetok_synthetic_images_per_s"], train["plain_synthetic_images_per_s"],
                  train["ratio_synthetic"], train["real_pipeline_images_per_s"], train["real_over_synthetic"],
                  pipe["samples_per_s_one_worker"], pipe["loader_samples_per_s"], result["peak_rss_mb"]):
        assert np.isfinite(value) and value > 0
    assert inf["ratio"] == pytest.approx(inf["posetok_crops_per_s"] / inf["plain_crops_per_s"])
    # a config of another task is refused
    user_error(capsys, ["bench", "estimator", "--config", ROOT / "configs" / "sequence" / "small.yaml"],
               "small.yaml", "field 'task'", "expected 'estimator'")


# ----------------------------------------------------------------------------------------------------------
# Bad input: one line naming the file and the field, exit 2, nothing half-written
# ----------------------------------------------------------------------------------------------------------


def _copy_images(images: Path, dest: Path) -> Path:
    shutil.copytree(images, dest)
    return dest


def test_missing_image_file(ckpt, data, tmp_path, capsys):
    ann, images, _ = data
    doc = json.loads(ann.read_text())
    doc["images"][1]["file_name"] = "gone.jpg"
    bad = tmp_path / "ann.json"
    bad.write_text(json.dumps(doc))
    user_error(capsys, ["eval", ckpt, "--data", bad, "--images", images, "--json", tmp_path / "m.json"],
               str(images / "gone.jpg"), "image file not found")
    assert not (tmp_path / "m.json").exists()


def test_image_that_is_not_an_image(ckpt, data, tmp_path, capsys):
    ann, images, _ = data
    copy = _copy_images(images, tmp_path / "images")
    victim = sorted(copy.iterdir())[0]
    victim.write_text("this is not a JPEG")
    user_error(capsys, ["eval", ckpt, "--data", ann, "--images", copy], victim.name, "not an image")
    user_error(capsys, ["infer", ckpt, victim, "-o", tmp_path / "out"], victim.name, "not an image")
    assert_no_outputs(tmp_path / "out")


def test_truncated_jpeg_in_a_folder(ckpt, data, tmp_path, capsys):
    _, images, _ = data
    copy = _copy_images(images, tmp_path / "images")
    last = sorted(copy.iterdir())[-1]
    last.write_bytes(last.read_bytes()[:-400])
    out = tmp_path / "out"
    line = user_error(capsys, ["infer", ckpt, copy, "-o", out], last.name, "truncated JPEG")
    assert line.startswith("posetok infer: error: ")
    assert_no_outputs(out)  # the three good images' overlays were not left behind


def test_video_that_cannot_be_opened(ckpt, tmp_path, capsys):
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    out = tmp_path / "out"
    user_error(capsys, ["infer", ckpt, fake, "-o", out], "clip.mp4", "cannot open as a video")
    assert_no_outputs(out)


@pytest.mark.parametrize("bbox,message", [((500, 10, 50, 50), "lies outside the 143x256 image"),
                                          ((10, 10, 0, 50), "zero or negative size")])
def test_bad_bbox(ckpt, tmp_path, capsys, bbox, message):
    out = tmp_path / "out"
    image = SAMPLE_IMAGES / "Sports2D__Demo__demo__0005.jpg"  # 143 x 256
    user_error(capsys, ["infer", ckpt, image, "-o", out, "--bbox", *bbox], "--bbox", message)
    assert_no_outputs(out)


def test_detection_box_outside_the_image(ckpt, data, tmp_path, capsys):
    _, images, _ = data
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "bbox": [900, 900, 30, 30], "score": 0.9}]))
    out = tmp_path / "out"
    name = sorted(images.iterdir())[1].name
    user_error(capsys, ["infer", ckpt, images, "-o", out, "--boxes", dets], "dets.json", "image_id 1", name,
               "lies outside")
    assert_no_outputs(out)


@pytest.mark.parametrize("change,fragments", [
    (lambda d: d[1].pop("bbox"), ("field '[1].bbox'", "missing")),
    (lambda d: d[1].pop("image_id"), ("field '[1].image_id'", "missing")),
    (lambda d: d[2].update(image_id=123456), ("field '[2].image_id'", "image 123456 is not in the annotation")),
])
def test_bad_detection_file(ckpt, data, tmp_path, capsys, change, fragments):
    ann, images, dets = data
    doc = json.loads(dets.read_text())
    change(doc)
    bad = tmp_path / "bad_dets.json"
    bad.write_text(json.dumps(doc))
    user_error(capsys, ["eval", ckpt, "--data", ann, "--images", images, "--boxes", bad, "--json",
                        tmp_path / "m.json"], "bad_dets.json", *fragments)
    assert not (tmp_path / "m.json").exists()
    if "123456" not in fragments[1]:  # infer reads the same file (its ids are frame or image indices)
        user_error(capsys, ["infer", ckpt, images, "-o", tmp_path / "out", "--boxes", bad], "bad_dets.json",
                   *fragments)
        assert_no_outputs(tmp_path / "out")


def test_folder_without_images(ckpt, tmp_path, capsys):
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "notes.txt").write_text("no images here")
    (folder / ".hidden.jpg").write_bytes(b"")
    user_error(capsys, ["infer", ckpt, folder, "-o", tmp_path / "out"], "nothing", "no image in this folder")
    assert_no_outputs(tmp_path / "out")


def test_tokenizer_checkpoint_given_to_infer(data, tmp_path, capsys):
    _, images, _ = data
    user_error(capsys, ["infer", PCT_CKPT, images, "-o", tmp_path / "out"], "pct_v0.1.0.ckpt", "field 'kind'",
               "'pct' checkpoint", "needs an estimator")
    assert_no_outputs(tmp_path / "out")


def test_eval_without_images(ckpt, data, capsys):
    ann, _, _ = data
    user_error(capsys, ["eval", ckpt, "--data", ann], "--images", "required for an estimator")


@pytest.mark.parametrize("flag,value", [("--num-quantizers", 2), ("--pck-threshold", 0.1), ("--animation", "gif")])
def test_tokenizer_flags_refused(ckpt, data, capsys, flag, value):
    ann, images, _ = data
    user_error(capsys, ["eval", ckpt, "--data", ann, "--images", images, flag, value], flag,
               "does not apply to 'heatmap' checkpoints")


def test_estimator_flags_refused_for_a_tokenizer(data, capsys):
    ann, images, _ = data
    user_error(capsys, ["eval", PCT_CKPT, "--data", ann, "--images", images], "--images",
               "applies to image-guided tokenizers and estimators")


# ----------------------------------------------------------------------------------------------------------
# MPII: PCKh with head boxes
# ----------------------------------------------------------------------------------------------------------


def write_mpii(folder: Path, num: int = 3) -> tuple[Path, Path, Path]:
    """``num`` bundled frames as an MPII JSON (HRNet form: 1-based joints, center, scale), their image folder and
    a JSON of head boxes; the joints are a fixed pose placed in each image."""
    images = folder / "images"
    images.mkdir()
    records, heads = [], []
    for i, src in enumerate(sorted(SAMPLE_IMAGES.iterdir())[:num]):
        shutil.copy(src, images / src.name)
        h, w = cv2.imread(str(src)).shape[:2]
        xs = np.linspace(0.3, 0.7, 16) * w
        ys = np.linspace(0.1, 0.9, 16) * h
        records.append({"image": src.name, "joints": [[float(x) + 1, float(y) + 1] for x, y in zip(xs, ys)],
                        "joints_vis": [1] * 16, "center": [w / 2 + 1, h / 2 + 1], "scale": h / 200 / 1.25})
        heads.append([w * 0.4, 0.0, w * 0.6, h * 0.1 + i])
    ann = folder / "valid.json"
    ann.write_text(json.dumps(records))
    head = folder / "heads.json"
    head.write_text(json.dumps(heads))
    return ann, images, head


def test_eval_mpii_reports_pckh_per_joint(capsys, tmp_path, mpii_ckpt):
    ann, images, head = write_mpii(tmp_path)
    code, out, err = run(capsys, "eval", mpii_ckpt, "--data", ann, "--images", images, "--head-boxes", head)
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["num_people"] == 3
    pckh = metrics["pckh"]
    assert {"head_top", "Head", "Shoulder", "Wrist", "Ankle", "Mean", "Mean@0.1"} <= set(pckh)
    assert 0.0 <= metrics["PCKh@0.1"] <= metrics["PCKh@0.5"] <= 100.0
    assert metrics["PCKh@0.5"] == pckh["Mean"]


def test_eval_mpii_without_head_boxes_is_refused(capsys, tmp_path, mpii_ckpt):
    ann, images, _ = write_mpii(tmp_path)
    user_error(capsys, ["eval", mpii_ckpt, "--data", ann, "--images", images], str(ann), "--head-boxes")


def test_head_boxes_of_the_wrong_count_are_refused(capsys, tmp_path, mpii_ckpt):
    ann, images, head = write_mpii(tmp_path)
    head.write_text(json.dumps([[0, 0, 10, 10]]))
    user_error(capsys, ["eval", mpii_ckpt, "--data", ann, "--images", images, "--head-boxes", head], str(head),
               "1 head boxes for 3 people")


@pytest.fixture(scope="module")
def mpii_ckpt(tmp_path_factory, one_thread) -> Path:
    """A tiny MPII-16 estimator (random weights are enough to exercise PCKh)."""
    from posetok.config import build_config
    from posetok.tasks.estimator import estimator_payload
    from posetok.tasks.estimator.module import estimator_dims

    cfg = build_config("estimator", {"model": {"skeleton": "mpii16", "input_size": [64, 64],
                                               "backbone": {"name": "hrnet_w18_small"}}})
    from posetok import checkpoint
    from posetok.models.estimator import build_estimator

    torch.manual_seed(0)
    model = build_estimator(estimator_dims(cfg))
    return checkpoint.save(tmp_path_factory.mktemp("mpii") / "model.ckpt", estimator_payload(model, cfg))


def test_demo_estimator_writes_its_report(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "estimator", "--minutes", "0.03", "--out", tmp_path / "rep")
    assert code == 0, err
    rep = tmp_path / "rep"
    for name in ("metrics.json", "ap_curve.png", "best_worst.png", "error_per_joint.png", "run/model.ckpt"):
        assert (rep / name).is_file(), name
    metrics = json.loads((rep / "metrics.json").read_text())
    assert metrics["held_out"]["num_people"] == 44
    assert len(metrics["curve"]["minutes"]) == len(metrics["curve"]["AP"]) >= 1
    assert "held-out OKS-AP" in out


def test_eval_coco_wholebody_133_joints(capsys, tmp_path):
    """A COCO-WholeBody file (body ``keypoints`` plus ``foot_kpts``, ``face_kpts``, ``lefthand_kpts``,
    ``righthand_kpts``) is read as 133 joints and scored with the WholeBody sigmas."""
    from posetok import checkpoint
    from posetok.config import build_config
    from posetok.models.estimator import build_estimator
    from posetok.tasks.estimator import estimator_payload
    from posetok.tasks.estimator.module import estimator_dims

    ann, images = write_coco(tmp_path / "data", num_images=3)
    doc = json.loads(ann.read_text())
    for a in doc["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        ankles = kp[15:17]
        a["foot_kpts"] = np.concatenate([ankles + [0, 3, 0], ankles + [2, 4, 0], ankles + [-2, 4, 0]]).ravel().tolist()
        a["face_kpts"] = [0.0] * 68 * 3
        a["lefthand_kpts"] = np.tile(kp[9], 21).tolist()
        a["righthand_kpts"] = np.tile(kp[10], 21).tolist()
    wb = tmp_path / "wholebody.json"
    wb.write_text(json.dumps(doc))
    cfg = build_config("estimator", {"model": {"skeleton": "wholebody133", "input_size": [64, 64],
                                               "backbone": {"name": "hrnet_w18_small"}}})
    torch.manual_seed(0)
    ckpt = checkpoint.save(tmp_path / "wb.ckpt", estimator_payload(build_estimator(estimator_dims(cfg)), cfg))
    code, out, err = run(capsys, "eval", ckpt, "--data", wb, "--images", images, "--no-flip")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["num_people"] == 3 and 0.0 <= metrics["oks_ap"] <= 100.0
    # a body (COCO-17) checkpoint reads the same file's body joints
    code, out, err = run(capsys, "eval", train_tiny_ckpt(tmp_path), "--data", wb, "--images", images)
    assert code == 0, err
    assert json.loads(out)["num_people"] == 3


def train_tiny_ckpt(tmp_path: Path) -> Path:
    from .test_estimator_task import train_tiny

    return train_tiny(tmp_path / "tiny17", max_steps=1)
