import csv
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

import posetok
from posetok.data.coco import CocoKeypoints
from posetok.data.synthetic import sample_poses
from posetok.models.pct import PCTDims, PCTTokenizerModel
from posetok.skeletons import COCO17
from posetok.tasks.runner import warmup_cosine
from posetok.tasks.tokenizer import evaluate, train

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
    assert after < 0.09 * person, (after, person)  # 300 steps of pct_small: under 9 % of the box height


def test_resume_continues_from_last_ckpt(tmp_path):
    cfg = tiny_config(tmp_path, "trainer.max_steps=12", "trainer.val_every_n_steps=6", "data.synthetic_train=2000",
                      "optim.vq_start_step=4", "data.batch_size=64")
    train(cfg)
    first = torch.load(tmp_path / "model.ckpt", weights_only=True)
    assert first["meta"]["global_step"] == 12
    cfg = tiny_config(tmp_path, "trainer.max_steps=20", "trainer.val_every_n_steps=6", "data.synthetic_train=2000",
                      "optim.vq_start_step=4", "data.batch_size=64")
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


def test_schedule_follows_the_nearer_bound_steps_or_time():
    # Half the steps done but the whole time budget spent: the learning rate has reached its floor.
    assert warmup_cosine(505, 10, 1000, 0.01, time_fraction=1.0) == 0.01
    # Time is the nearer bound at 50 %: the same multiplier as half-way by steps.
    assert abs(warmup_cosine(20, 10, 1000, 0.0, time_fraction=0.5) - 0.5) < 1e-9
    assert warmup_cosine(20, 10, 1000, 0.0, time_fraction=0.0) > 0.99


def test_keep_freed_memory_on_glibc():
    import platform

    from posetok.perf import keep_freed_memory

    result = keep_freed_memory()
    assert isinstance(result, bool)
    if platform.libc_ver()[0] == "glibc":
        assert result


def test_precision_auto_is_resolved_printed_and_saved(tmp_path, capsys, monkeypatch):
    from omegaconf import OmegaConf

    from posetok import perf

    monkeypatch.setattr(perf, "cpu_supports_bf16", lambda: False)  # as on an AVX2-only CPU
    cfg = tiny_config(tmp_path, "trainer.precision=auto", "trainer.accelerator=cpu", "trainer.max_steps=2",
                      "data.synthetic_train=256", "data.batch_size=64", "optim.vq_start_step=1")
    train(cfg)
    assert "trainer.precision: auto -> 32-true (CPU without native bf16" in capsys.readouterr().out
    assert OmegaConf.load(tmp_path / "config.yaml").trainer.precision == "32-true"
    assert torch.load(tmp_path / "model.ckpt", weights_only=True)["config"]["trainer"]["precision"] == "32-true"


def test_csv_and_offline_wandb_loggers_record_the_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no credentials: mode auto must choose offline
    cfg = tiny_config(tmp_path / "run", "trainer.logger=[csv,wandb]", "trainer.wandb.project=posetok-test",
                      "trainer.max_steps=12", "trainer.log_every_n_steps=4", "trainer.val_every_n_steps=6",
                      "data.synthetic_train=1000", "data.batch_size=64", "optim.vq_start_step=4")
    train(cfg)
    out = tmp_path / "run"
    header = (out / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "train/error_px", "val/error_px"} <= set(header)
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # An offline run is one protobuf log (run-<id>.wandb) that `wandb sync` uploads later; wandb offers no reader
    # for it in Python, but its history records keep the metric names as plain strings: 12 steps logged every 4.
    # wandb's service process writes that file; on a loaded machine it may still be flushing when finish()
    # returns, so wait for it (up to 60 s) before reading.
    log_file = next(runs[0].glob("run-*.wandb"))
    deadline = time.monotonic() + 60
    while log_file.read_bytes().count(b"val/error_px") < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    log = log_file.read_bytes()
    assert log.count(b"train/error_px") >= 3 and log.count(b"val/error_px") >= 2 and b"posetok-test" in log
    assert not (out / "tb").exists()


def test_a_resumed_run_continues_its_csv_metrics(tmp_path):
    # Lightning's CSV writer deletes metrics.csv when its folder is not empty: resuming lost the first session.
    args = ("trainer.logger=csv", "trainer.log_every_n_steps=4", "trainer.val_every_n_steps=6",
            "data.synthetic_train=1000", "data.batch_size=64", "optim.vq_start_step=4")
    train(tiny_config(tmp_path, "trainer.max_steps=12", *args))
    metrics = tmp_path / "csv" / "metrics.csv"
    # a row logged after last.ckpt was written (a crash before the next checkpoint): the resumed run logs it again
    rows = list(csv.DictReader(metrics.open()))
    train_row = next(r for r in reversed(rows) if r.get("train/error_px"))
    with metrics.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, {**train_row, "step": "15", "train/error_px": "999"}])
    train(tiny_config(tmp_path, "trainer.max_steps=20", *args))
    rows = list(csv.DictReader(metrics.open()))
    val_steps = [int(r["step"]) for r in rows if r.get("val/error_px")]
    train_steps = [int(r["step"]) for r in rows if r.get("train/error_px")]
    # both sessions' validations, in order (Lightning counts the resumed session's interval from its restart)
    assert val_steps[:2] == [5, 11] and len(val_steps) == 3 and 11 < val_steps[2] < 20, val_steps
    assert train_steps == sorted(set(train_steps)) and train_steps[:3] == [3, 7, 11] and train_steps[-1] > 12
    assert all(r["train/error_px"] != "999" for r in rows)  # the stale row gave way to the resumed run's


def test_unknown_logger_is_a_one_line_error():
    import pytest

    from posetok.errors import PosetokError

    with pytest.raises(PosetokError, match=r"field 'trainer\.logger': expected one or more of tensorboard, wandb, "
                                           r"csv, got 'mlflow'"):
        tiny_config(Path("/tmp/x"), "trainer.logger=[csv,mlflow]")


def _mpii_file(path: Path, n: int) -> Path:
    """An MPII file in the HRNet/MMPose JSON form, from synthetic MPII-16 people (1-based pixel coordinates as
    MPII writes them; a person's scale is the box side / 200)."""
    import json

    p = sample_poses(n, skeleton="mpii16", seed=7)
    records = []
    for i, (kp, box) in enumerate(zip(p.keypoints, p.boxes)):
        x, y, w, h = (float(v) for v in box)
        records.append({"image": f"{i:09d}.jpg", "joints": [[float(a) + 1, float(b) + 1] for a, b, _ in kp],
                        "joints_vis": [int(v > 0) for v in kp[:, 2]], "center": [x + w / 2 + 1, y + h / 2 + 1],
                        "scale": max(w, h) / 200})
    path.write_text(json.dumps(records))
    return path


def test_tokenizer_trains_on_an_mpii_file(tmp_path, capsys):
    from posetok.cli import main
    from posetok.tasks.tokenizer import load_poses

    ann = _mpii_file(tmp_path / "mpii.json", 200)
    kp, boxes = load_poses(str(ann), posetok.skeletons.MPII16, 0, 0)
    assert kp.shape == (200, 16, 3) and boxes.shape == (200, 4)
    assert np.allclose(boxes[:, 2], boxes[:, 3])  # MPII's box: the square of side scale * 200
    ckpt = train(tiny_config(tmp_path / "run", "model.skeleton=mpii16", f"data.train={ann}", f"data.val={ann}",
                             "data.batch_size=64", "trainer.max_steps=4", "optim.vq_start_step=2",
                             "trainer.val_every_n_steps=4"))
    assert posetok.load(ckpt).skeleton.name == "mpii16"
    code = main(["train", str(Path(posetok.__file__).parents[1] / "configs/tokenizer/pct_small_coco17.yaml"),
                 f"data.train={ann}", f"out={tmp_path / 'bad'}"])
    err = capsys.readouterr().err
    assert code == 2 and "field 'joints'" in err and "model.skeleton is 'coco17' (use mpii16)" in err


class _BatchDigests(L.Callback):
    """Records a digest of every training batch a run sees."""

    def __init__(self) -> None:
        self.digests: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.digests.append(round(sum(float(v.double().sum()) for v in batch.values()), 6))


def test_a_resumed_run_draws_new_batches_instead_of_replaying_its_first(tmp_path):
    # Lightning restarts a part-done epoch on resume and does not restore the random state, so without a fresh
    # seed the resumed steps would see the first steps' samples (order and augmentation) again.
    args = ("trainer.val_every_n_steps=6", "data.synthetic_train=2000", "optim.vq_start_step=4", "data.batch_size=64")
    first, second = _BatchDigests(), _BatchDigests()
    train(tiny_config(tmp_path, "trainer.max_steps=6", *args), callbacks=[first])
    train(tiny_config(tmp_path, "trainer.max_steps=12", *args), callbacks=[second])
    assert len(first.digests) == len(second.digests) == 6
    assert not set(first.digests) & set(second.digests)
    # A fresh run with the same seed still sees the same batches: the seed is shifted by the resumed step only.
    again = _BatchDigests()
    train(tiny_config(tmp_path / "again", "trainer.max_steps=6", *args), callbacks=[again])
    assert again.digests == first.digests
