import numpy as np
import torch

import posetok
from posetok.data.coco import CocoKeypoints
from posetok.data.synthetic import sample_poses
from posetok.models.pct import PCTDims, PCTTokenizerModel
from posetok.skeletons import COCO17
from posetok.tasks.runner import evaluate, train
from posetok.tasks.tokenizer import warmup_cosine

from .conftest import tiny_config


def _heldout(n=300) -> CocoKeypoints:
    p = sample_poses(n, skeleton="coco17", seed=4242)
    return CocoKeypoints(path="<memory>", skeleton=COCO17, keypoints=p.keypoints, boxes=p.boxes,
                         areas=p.boxes[:, 2] * p.boxes[:, 3], image_ids=np.arange(n), ann_ids=np.arange(n), images={})


def test_training_drops_reconstruction_error_below_bound(tiny_ckpt):
    trained = posetok.load(tiny_ckpt)
    data = _heldout()
    after = evaluate(trained, data)[0]["mean_error_px"]
    # The same network before training (k-means-initialised codebook, random weights).
    untrained = posetok.load(tiny_ckpt)
    torch.manual_seed(0)
    fresh = PCTTokenizerModel(17, PCTDims.from_dict(untrained.info["dims"]))
    fresh.train()
    coords, visible = untrained.targets(data.keypoints, data.boxes)
    with torch.no_grad():
        fresh(torch.from_numpy(coords), torch.from_numpy(visible))
    untrained.model = fresh.eval()
    before = evaluate(untrained, data)[0]["mean_error_px"]
    person = float(np.median(data.boxes[:, 3]))
    assert after < 0.5 * before
    assert after < 0.08 * person, (after, person)  # 150 steps of a tiny model: under 8 % of the box height


def test_resume_continues_from_last_ckpt(tmp_path):
    cfg = tiny_config(tmp_path, "trainer.max_steps=12", "trainer.val_every_n_steps=6", "data.synthetic_train=2000")
    train(cfg)
    first = torch.load(tmp_path / "model.ckpt", weights_only=True)
    assert first["meta"]["global_step"] == 12
    cfg = tiny_config(tmp_path, "trainer.max_steps=20", "trainer.val_every_n_steps=6", "data.synthetic_train=2000")
    train(cfg)
    second = torch.load(tmp_path / "model.ckpt", weights_only=True)
    assert second["meta"]["global_step"] == 20  # 8 more steps, not 20 from scratch
    assert second["meta"]["train_time_s"] >= first["meta"]["train_time_s"]


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 10, 100, 0.01) == 0.01
    assert abs(warmup_cosine(10, 10, 100, 0.01) - 1.0) < 1e-9
    assert abs(warmup_cosine(55, 10, 100, 0.0) - 0.5) < 1e-9
    assert abs(warmup_cosine(100, 10, 100, 0.01) - 0.01) < 1e-9
    assert warmup_cosine(5, 10, 100, 0.0) == 0.5
