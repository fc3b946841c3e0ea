"""The estimator task through its Python API: training and resuming a tiny run, ``posetok.load`` and ``predict``,
the flip test, evaluation with a perfect predictor (AP 100, boxes annotated or detected), rescoring and OKS-NMS,
and following a person through a video."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import posetok
from posetok.data.images import read_image
from posetok.data.people import load_people, real_sample_people
from posetok.data.real_sample import REAL_SAMPLE_DIR
from posetok.data.topdown import transform_keypoints
from posetok.errors import PosetokError
from posetok.metrics.coco import coco_keypoint_eval
from posetok.tasks.estimator import TopdownEstimator, evaluate_file, infer_file
from posetok.tasks.estimator.evaluation import coco_results, evaluate

pytestmark = pytest.mark.usefixtures("one_thread")

SAMPLE_ANN = REAL_SAMPLE_DIR / "coco17_sports2d.json"
SAMPLE_IMAGES = REAL_SAMPLE_DIR / "images"


# ----------------------------------------------------------------------------------------------------------
# Helpers shared with test_estimator_cli.py
# ----------------------------------------------------------------------------------------------------------


def tiny_config(out: Path, **trainer) -> dict:
    """hrnet_w18_small at 64 x 64 (HRNet needs multiples of 32) on the bundled real frames: a second a run."""
    return {"out": str(out), "model": {"input_size": [64, 64], "backbone": {"name": "hrnet_w18_small"}},
            "data": {"batch_size": 8, "num_workers": 0},
            "trainer": {"max_epochs": None, "max_steps": 4, "val_every_n_steps": 2, "progress_bar": False,
                        "precision": "32-true", "logger": "csv", "threads": 1, **trainer}}


def train_tiny(out: Path, **trainer) -> Path:
    from posetok.tasks.estimator import train

    return train(tiny_config(out, **trainer))


def write_coco(folder: Path, num_images: int = 4, start: int = 0) -> tuple[Path, Path]:
    """A COCO keypoint file of ``num_images`` bundled frames and a copy of their images: ``(ann, images)``.

    The sample's pseudo-labels put a few joints outside their crop; those are marked unlabelled (v = 0), as a
    COCO annotation would have them, so a perfect predictor (which can only place joints inside its crop) is
    exact on every labelled joint."""
    doc = json.loads(SAMPLE_ANN.read_text())
    images = doc["images"][start:start + num_images]
    ids = {im["id"] for im in images}
    sizes = {im["id"]: (im["width"], im["height"]) for im in images}
    anns = []
    for a in doc["annotations"]:
        if a["image_id"] not in ids:
            continue
        w, h = sizes[a["image_id"]]
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        out = (kp[:, 0] < 0) | (kp[:, 1] < 0) | (kp[:, 0] >= w) | (kp[:, 1] >= h)
        kp[out] = 0.0
        anns.append({**a, "keypoints": kp.ravel().tolist(), "num_keypoints": int((kp[:, 2] > 0).sum())})
    folder.mkdir(parents=True, exist_ok=True)
    img_dir = folder / "images"
    img_dir.mkdir(exist_ok=True)
    for im in images:
        shutil.copy(SAMPLE_IMAGES / im["file_name"], img_dir / im["file_name"])
    ann = folder / "ann.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": doc["categories"]}))
    return ann, img_dir


def write_detections(path: Path, ann: Path, shift: float = 2.0) -> Path:
    """The HRNet/MMPose ``bbox_file`` form: every annotated box, moved by ``shift`` px, with a score."""
    doc = json.loads(ann.read_text())
    dets = [{"image_id": a["image_id"], "category_id": 1, "score": 0.9 - 0.01 * i,
             "bbox": [a["bbox"][0] + shift, a["bbox"][1] + shift, a["bbox"][2] - shift, a["bbox"][3] - shift]}
            for i, a in enumerate(doc["annotations"])]
    path.write_text(json.dumps(dets))
    return path


def write_video(path: Path, frames: int = 6, size: tuple[int, int] = (320, 256)) -> tuple[Path, tuple]:
    """A short MP4: one bundled crop pasted into a larger grey frame, moving 4 px right per frame. Returns the
    path and the person's box in the first frame."""
    crop = read_image(SAMPLE_IMAGES / "Sports2D__Demo__demo__0005.jpg")
    h, w = crop.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for t in range(frames):
        frame = np.full((size[1], size[0], 3), 90, np.uint8)
        x = 20 + 4 * t
        frame[:h, x:x + w] = crop
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path, (20.0, 0.0, float(w), float(h))


class Oracle(torch.nn.Module):
    """A stand-in network that answers with given maps, in order, whatever its input (no flip test)."""

    def __init__(self, maps: np.ndarray) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # TopdownEstimator.device reads a parameter
        self.maps = torch.from_numpy(maps)
        self.served = 0

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.maps[self.served:self.served + len(x)]
        assert len(out) == len(x), "asked for more crops than prepared"
        self.served += len(x)
        return {"heatmaps": out}


def oracle_estimator(est: TopdownEstimator, boxes: np.ndarray, keypoints: np.ndarray) -> TopdownEstimator:
    """``est`` with its network replaced by the codec's targets of ``keypoints`` (image pixels) in the crops of
    ``boxes``: a perfect predictor for exactly those people, in that order."""
    centers, sizes = est.crop_frames(boxes)
    in_crop = transform_keypoints(keypoints.astype(np.float32), est.matrices(centers, sizes))
    perfect = copy.copy(est)
    perfect.model = Oracle(est.codec.encode(in_crop)["heatmaps"])
    perfect.flip_test = False
    return perfect


# ----------------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread) -> Path:
    """A tiny estimator trained for 4 steps with ``trainer.precision: auto``; returns the run folder."""
    out = tmp_path_factory.mktemp("estimator_run")
    assert train_tiny(out, precision="auto") == out / "model.ckpt"
    return out


@pytest.fixture(scope="module")
def est(run) -> TopdownEstimator:
    return posetok.load(run / "model.ckpt")


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> tuple[Path, Path]:
    return write_coco(tmp_path_factory.mktemp("coco"), num_images=6)


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------


def test_train_writes_run_with_resolved_precision(run):
    from posetok.perf import default_precision

    assert {"model.ckpt", "last.ckpt", "config.yaml"} <= {p.name for p in run.iterdir()}
    saved = (run / "config.yaml").read_text()
    assert "task: estimator" in saved
    chosen = default_precision("auto")
    assert chosen != "auto" and f"precision: {chosen}" in saved and "precision: auto" not in saved
    info = posetok.load(run / "model.ckpt").info
    assert info["kind"] == "heatmap" and info["format"] == "posetok.estimator"
    assert info["meta"]["global_step"] == 4 and info["config"]["trainer"]["precision"] == chosen
    assert info["crop"] == {"input_size": [64, 64], "padding": 1.25}
    assert info["codec"]["heatmap_size"] == [16, 16]
    # the held-out AP of the bundled frames was logged at both validations
    rows = (run / "csv" / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["epoch", "step", "val/AP"] and len(rows) == 3


def test_resume_continues_the_step_count(run, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(run, out)
    before = torch.load(out / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    assert before == 4
    train_tiny(out, max_steps=6)
    meta = posetok.load(out / "model.ckpt").info["meta"]
    assert meta["global_step"] == 6
    assert torch.load(out / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 6
    first = posetok.load(run / "model.ckpt").info["meta"]["train_time_s"]
    assert meta["train_time_s"] >= first  # the training time adds up across sessions


# ----------------------------------------------------------------------------------------------------------
# Prediction
# ----------------------------------------------------------------------------------------------------------


def test_predict_shapes_frames_and_types(est, run):
    assert isinstance(est, TopdownEstimator) and est.input_size == (64, 64)
    image = read_image(SAMPLE_IMAGES / "Sports2D__Demo__demo__0005.jpg")  # 143 x 256
    boxes = np.array([[10.0, 20.0, 100.0, 200.0], [40.0, 0.0, 60.0, 120.0]])
    poses = est.predict(image, boxes)
    assert isinstance(poses, np.ndarray) and poses.dtype == np.float32 and poses.shape == (2, 17, 3)
    assert np.isfinite(poses).all()
    # Joints lie in their box's crop (the box padded by 1.25 to the input's square aspect ratio), give or take the
    # two heatmap cells DARK's bounded Newton step may move them past the peak, even on the near-flat maps of 4
    # training steps (MMPose's unbounded step could throw them anywhere).
    for pose, (x, y, w, h) in zip(poses, boxes):
        half, cell = 1.25 * max(w, h) / 2, 1.25 * max(w, h) / est.codec.heatmap_size[0]
        assert np.all(np.abs(pose[:, 0] - (x + w / 2)) <= half + 2 * cell + 1e-3)
        assert np.all(np.abs(pose[:, 1] - (y + h / 2)) <= half + 2 * cell + 1e-3)
    # boxes=None is one person filling the image; a list and a single box work too
    whole = est.predict(image)
    np.testing.assert_array_equal(whole, est.predict(image, [[0, 0, image.shape[1], image.shape[0]]]))
    assert whole.shape == (1, 17, 3)
    single = est.predict(image, boxes[1])  # a batch of one: the same up to float rounding
    assert single.shape == (1, 17, 3)
    np.testing.assert_allclose(single[..., 2], poses[1:, :, 2], rtol=1e-3)
    assert np.median(np.abs(single[..., :2] - poses[1:, :, :2])) < 0.01
    # the run's Lightning state loads as the same estimator
    np.testing.assert_allclose(posetok.load(run / "last.ckpt").predict(image, boxes), poses, atol=1e-5)
    with pytest.raises(PosetokError, match="RGB uint8"):
        est.predict(image.astype(np.float32), boxes)


def test_predict_returns_image_pixels(est):
    """A network that knows the answer: ``predict`` gives back the keypoints in image pixels, through the crop
    warp, the codec and the inverse warp."""
    image = read_image(SAMPLE_IMAGES / "Sports2D__Demo__demo__0007.jpg")
    boxes = np.array([[5.0, 10.0, 90.0, 200.0], [30.0, 60.0, 50.0, 80.0]])
    rng = np.random.default_rng(0)
    keypoints = np.concatenate([np.stack([boxes[:, None, 0] + rng.uniform(0.1, 0.9, (2, 17)) * boxes[:, None, 2],
                                          boxes[:, None, 1] + rng.uniform(0.1, 0.9, (2, 17)) * boxes[:, None, 3]],
                                         -1), np.full((2, 17, 1), 2.0)], -1)
    poses = oracle_estimator(est, boxes, keypoints).predict(image, boxes)
    assert poses.shape == (2, 17, 3) and poses.dtype == np.float32
    # DARK on exact Gaussians is exact up to the blur's border effects: within a tenth of a heatmap cell
    cell = 1.25 * boxes[:, 2:].max(1) / est.codec.heatmap_size[0]
    err = np.linalg.norm(poses[..., :2] - keypoints[..., :2], axis=-1)
    assert (err <= 0.15 * cell[:, None]).all() and np.median(err / cell[:, None]) < 0.02
    assert poses[..., 2].min() > 0.9  # the peaks of exact Gaussians


def test_flip_test_changes_the_predictions(est):
    image = read_image(SAMPLE_IMAGES / "Sports2D__Demo__demo__0006.jpg")
    est.flip_test = True
    flipped = est.predict(image)
    est.flip_test = False
    plain = est.predict(image)
    est.flip_test = True
    assert flipped.shape == plain.shape == (1, 17, 3)
    assert not np.allclose(flipped, plain)


# ----------------------------------------------------------------------------------------------------------
# Evaluation with a perfect predictor
# ----------------------------------------------------------------------------------------------------------


def test_perfect_predictor_scores_ap_100_on_annotated_boxes(est, coco):
    ann, images = coco
    people = load_people(ann, images, "coco17")
    perfect = oracle_estimator(est, people.boxes, people.keypoints)
    metrics = evaluate_file(perfect, ann, images, flip=False)
    assert metrics["oks_ap"] == pytest.approx(100.0) and metrics["ap50"] == pytest.approx(100.0)
    assert metrics["ar"] == pytest.approx(100.0)
    assert metrics["num_people"] == metrics["num_results"] == 6 and metrics["box_source"] == "annotations"
    assert metrics["mean_error_px"] < 1.0  # DARK decoding of exact Gaussians: sub-pixel


def test_perfect_predictor_scores_ap_100_on_detected_boxes(est, coco, tmp_path):
    ann, images = coco
    dets = write_detections(tmp_path / "dets.json", ann)
    gt = load_people(ann, images, "coco17")
    people = load_people(ann, images, "coco17", boxes=dets)
    assert people.detected and len(people) == 6
    by_image = {int(i): kp for i, kp in zip(gt.image_ids, gt.keypoints)}
    keypoints = np.stack([by_image[int(i)] for i in people.image_ids])
    perfect = oracle_estimator(est, people.boxes, keypoints)
    metrics = evaluate_file(perfect, ann, images, boxes=dets, flip=False)
    assert metrics["oks_ap"] == pytest.approx(100.0) and metrics["box_source"] == "detections"
    assert "mean_error_px" not in metrics  # detected people have no ground truth of their own


def test_held_out_real_frames_are_scored_against_themselves(est):
    """The held-out part of the bundled sample is scored against its own 44 people, not the 221 of the file
    (a perfect predictor would otherwise get a recall of 44/221)."""
    people = real_sample_people("val")
    assert len(people) == 44
    perfect = oracle_estimator(est, people.boxes, people.keypoints)
    metrics, arrays = evaluate(perfect, people)
    assert metrics["oks_ap"] == pytest.approx(100.0) and metrics["ar"] == pytest.approx(100.0)
    assert arrays["preds"].shape == (44, 17, 3)


def test_coco_results_perfect_and_oks_nms(coco):
    ann, images = coco
    people = load_people(ann, images, "coco17")
    n = len(people)
    preds = people.keypoints.astype(np.float32).copy()
    preds[..., 2] = 1.0
    areas = people.coco.areas
    results = coco_results(people, preds, areas)
    assert len(results) == n and {r["image_id"] for r in results} == set(people.image_ids.tolist())
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 and r["score"] == 1.0 for r in results)
    assert coco_keypoint_eval(ann, results)["oks_ap"] == pytest.approx(100.0)

    # Every person twice: the copy 1 px off with a lower box score. OKS-NMS drops the copies; without NMS they
    # stay as false positives.
    from dataclasses import replace

    doubled = replace(people, image_paths=people.image_paths * 2,
                      keypoints=np.concatenate([people.keypoints] * 2),
                      boxes=np.concatenate([people.boxes] * 2),
                      box_scores=np.concatenate([people.box_scores, np.full(n, 0.5, np.float32)]),
                      image_ids=np.concatenate([people.image_ids] * 2))
    shifted = preds.copy()
    shifted[..., :2] += 1.0
    both = np.concatenate([preds, shifted])
    kept = coco_results(doubled, both, np.concatenate([areas, areas]), nms="oks")
    assert len(kept) == n and all(r["score"] == 1.0 for r in kept)
    assert np.allclose(np.array([r["keypoints"] for r in kept]).reshape(n, 17, 3)[..., :2], preds[..., :2],
                       atol=1e-3)
    everyone = coco_results(doubled, both, np.concatenate([areas, areas]), nms="none")
    assert len(everyone) == 2 * n and sorted(r["score"] for r in everyone)[:n] == [0.5] * n


# ----------------------------------------------------------------------------------------------------------
# Video
# ----------------------------------------------------------------------------------------------------------


class Corner(torch.nn.Module):
    """Every joint at the crop's top-left heatmap cell, confidently."""

    def __init__(self, num_joints: int, heatmap_size: tuple[int, int]) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.shape = (num_joints, heatmap_size[1], heatmap_size[0])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = torch.zeros(len(x), *self.shape)
        maps[:, :, 0, 0] = 1.0
        return {"heatmaps": maps}


def test_video_follows_a_person_whose_joints_leave_the_frame(est, tmp_path):
    """Joints predicted outside the frame give a tracking box outside it: the next frame starts again from the
    first box instead of failing on it."""
    video, _ = write_video(tmp_path / "clip.mp4")
    corner = copy.copy(est)
    corner.model = Corner(17, est.codec.heatmap_size)
    summary = infer_file(corner, video, tmp_path / "out", bbox=[0, 0, 40, 40])
    assert summary["frames"] == 6 and summary["frames_with_pose"] == 6
    with np.load(tmp_path / "out" / "clip.npz") as f:
        poses = f["poses"]
    assert poses.shape == (6, 17, 3) and (poses[..., :2] < 0).all()  # the crop's corner is off the image


def test_synthetic_people_are_mixed_into_training():
    """``data.synthetic``: rendered people join the real frames at ``synthetic_share`` of each batch; an epoch
    still shows each real frame once on average, and the rendered crops carry heatmap targets."""
    from posetok.codecs.heatmap import build_heatmap_codec
    from posetok.data.people import real_sample_people
    from posetok.tasks.estimator.samples import synthetic_crops, train_loader

    people = real_sample_people("train")
    codec = build_heatmap_codec({"type": "msra", "input_size": [64, 64], "heatmap_size": [16, 16], "sigma": 2.0})
    synth = synthetic_crops(people, 50, (128, 128), (64, 64), 1.25, codec.udp, None, seed=0)
    loader = train_loader(people, codec, (64, 64), 1.25, None, 8, 0, 0, synth, synthetic_share=0.6)
    assert len(loader.sampler) == round(len(people) / 0.4)
    drawn = np.array(list(loader.sampler))
    share = (drawn >= len(people)).mean()
    assert 0.5 < share < 0.7
    sample = loader.dataset[len(people)]  # the first synthetic person
    assert sample["image"].shape == (64, 64, 3) and sample["image"].dtype == np.uint8
    assert sample["heatmaps"].shape == (17, 16, 16) and sample["target_weights"].sum() > 8


def test_training_with_synthetic_people(tmp_path):
    from posetok.tasks.estimator import train

    cfg = tiny_config(tmp_path / "run", max_steps=2)
    cfg["data"].update({"synthetic": 40, "synthetic_share": 0.5, "synthetic_size": [96, 96]})
    path = train(cfg)
    assert posetok.load(path).info["config"]["data"]["synthetic"] == 40


def test_backbone_weights_file_starts_training(tmp_path):
    """``model.backbone.weights=PATH``: a local timm state dict initialises the backbone (here with lr 0, so the
    trained checkpoint still holds exactly those weights); a missing file is a one-line error naming it."""
    from posetok.errors import PosetokError
    from posetok.models.backbones import build_backbone
    from posetok.tasks.estimator import train

    torch.manual_seed(123)
    source = build_backbone("hrnet_w18_small", highest_only=True)
    path = tmp_path / "imagenet.pth"
    torch.save(source.state_dict(), path)
    cfg = tiny_config(tmp_path / "run", max_steps=1)
    cfg["model"]["backbone"]["weights"] = str(path)
    cfg["optim"] = {"lr": 0.0, "warmup_steps": 0}
    state = posetok.load(train(cfg)).model.backbone.state_dict()
    for k, v in source.state_dict().items():
        if k.endswith("weight") and "bn" not in k and v.ndim == 4:
            torch.testing.assert_close(state[k], v)
    cfg["out"] = str(tmp_path / "run2")
    cfg["model"]["backbone"]["weights"] = str(tmp_path / "missing.pth")
    with pytest.raises(PosetokError, match="missing.pth"):
        train(cfg)
