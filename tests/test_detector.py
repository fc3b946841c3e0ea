"""The optional person detector: a torchvision detection model from a local weight file (never a download)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posetok.errors import PosetokError
from posetok.models.detector import PersonDetector

NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    import torchvision.models.detection as detection

    torch.manual_seed(0)
    model = getattr(detection, NAME)(weights=None, weights_backbone=None)
    path = tmp_path_factory.mktemp("det") / "det.pth"
    torch.save(model.state_dict(), path)
    return path


def test_detector_returns_person_boxes_in_xywh(weights, monkeypatch):
    det = PersonDetector(NAME, weights, score_thr=0.0)
    # Random weights detect noise; give the network a known answer to check the conversion and the filtering.
    fake = {"boxes": torch.tensor([[10.0, 20.0, 50.0, 80.0], [12.0, 22.0, 52.0, 82.0], [0.0, 0.0, 5.0, 5.0]]),
            "labels": torch.tensor([1, 1, 3]), "scores": torch.tensor([0.9, 0.8, 0.95])}
    monkeypatch.setattr(det, "model", lambda images: [fake])
    boxes, scores = det(np.zeros((100, 100, 3), np.uint8))
    # the car (label 3) is dropped, the overlapping second person removed by NMS, x1y1x2y2 -> xywh
    np.testing.assert_allclose(boxes, [[10.0, 20.0, 40.0, 60.0]])
    np.testing.assert_allclose(scores, [0.9])


def test_detector_runs_on_an_image(weights):
    boxes, scores = PersonDetector(NAME, weights, score_thr=0.0)(np.full((64, 96, 3), 128, np.uint8))
    assert boxes.shape == (len(scores), 4) and boxes.dtype == np.float32
    assert (boxes[:, 2:] >= 0).all()


def test_detector_errors(weights, tmp_path):
    with pytest.raises(PosetokError, match="--detector: unknown torchvision detection model 'yolo'"):
        PersonDetector("yolo", weights)
    with pytest.raises(PosetokError, match="--detector-weights: required"):
        PersonDetector(NAME, None)
    with pytest.raises(PosetokError, match="missing.pth: detector weights not found"):
        PersonDetector(NAME, tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(PosetokError, match=f"bad.pth: not weights of {NAME}"):
        PersonDetector(NAME, bad)
