"""``posetok demo``: train a small tokenizer on synthetic people and report on held-out and real poses."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .config import load_config
from .data.coco import load_coco_keypoints
from .data.synthetic import synthetic_coco
from .io import write_json
from .perf import use_all_cores
from .tasks import load
from .tasks.tokenizer import evaluate, train

ASSETS = Path(__file__).parent / "assets"
REAL_SAMPLE = ASSETS / "real_sample" / "coco17_sports2d.json"

SUMMARY_KEYS = ("oks_ap", "ap50", "ap75", "ar", "mean_error_px", "pck_0.05", "codebook_usage", "perplexity",
                "bits_per_pose", "compression_ratio")


def _images(data: Any, folder: Path, index: np.ndarray) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for i in index:
        img = cv2.imread(str(folder / data.images[int(data.image_ids[i])]["file_name"]))
        out.append(None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return out


def run_demo(out: Path, minutes: float = 4.0, steps: int = 3000, num_train: int = 100_000) -> dict[str, Any]:
    """Run the demo into ``out``; returns the metrics written to ``out/metrics.json``."""
    from .viz import save_codebook_usage, save_error_per_joint, save_reconstruction_grid

    use_all_cores()
    t0 = time.monotonic()
    cfg = load_config(None, [
        f"out={out / 'run'}", "model.preset=pct_small", f"trainer.max_time={minutes}",
        f"trainer.max_steps={steps}", f"data.synthetic_train={num_train}", "trainer.val_every_n_steps=500",
        f"optim.vq_start_step={max(1, steps // 4)}",  # trainer.precision: auto picks bf16 where the CPU has it
    ])
    print(f"[1/3] training pct_small on {num_train} synthetic people for up to {minutes:g} min "
          f"or {steps} steps -> {cfg.out}", flush=True)
    model_path = train(cfg)
    codec = load(model_path)

    print("[2/3] evaluating on held-out synthetic people and on the bundled real sample", flush=True)
    synth_path = out / "data" / "synthetic_heldout.json"
    write_json(synth_path, synthetic_coco(2000, skeleton="coco17", seed=987_654), indent=None)
    results: dict[str, Any] = {"checkpoint": str(model_path), "train": codec.info.get("meta", {})}
    arrays = {}
    for name, path in (("synthetic_heldout", synth_path), ("real_sample", REAL_SAMPLE)):
        data = load_coco_keypoints(path, skeleton="coco17")
        results[name], arrays[name] = evaluate(codec, data)
        arrays[name]["data"] = data

    print("[3/3] writing the report", flush=True)
    real = arrays["real_sample"]
    data = real["data"]
    pick = np.linspace(0, len(data) - 1, 18).round().astype(int)
    pictures = {
        "reconstructions_real.png": save_reconstruction_grid(
            out / "reconstructions_real.png", data.keypoints[pick], real["recon"][pick], codec.skeleton,
            boxes=data.boxes[pick], images=_images(data, REAL_SAMPLE.parent / "images", pick),
            titles=[f"err {np.nanmean(real['errors'][i]):.1f} px" for i in pick]),
        "reconstructions_synthetic.png": save_reconstruction_grid(
            out / "reconstructions_synthetic.png", arrays["synthetic_heldout"]["data"].keypoints[:18],
            arrays["synthetic_heldout"]["recon"][:18], codec.skeleton,
            boxes=arrays["synthetic_heldout"]["data"].boxes[:18]),
        "codebook_usage.png": save_codebook_usage(
            out / "codebook_usage.png", arrays["synthetic_heldout"]["tokens"], codec.codebook_size,
            title="pct_small codebook on held-out synthetic poses"),
        "error_per_joint_real.png": save_error_per_joint(
            out / "error_per_joint_real.png", real["errors"], codec.skeleton),
    }
    results["wall_time_s"] = round(time.monotonic() - t0, 1)
    write_json(out / "metrics.json", results)

    print("\n{:<20}{:>12}{:>14}".format("metric", "real sample", "synthetic"))
    for k in SUMMARY_KEYS:
        r, s = results["real_sample"].get(k), results["synthetic_heldout"].get(k)
        if r is not None:
            print(f"{k:<20}{r:>12.3f}{s:>14.3f}")
    print(f"\nreport: {out.resolve()}")
    print(f"  metrics: {out / 'metrics.json'}")
    for name in pictures:
        print(f"  picture: {out / name}")
    print(f"  model:   {model_path}")
    print(json.dumps({"demo_wall_time_s": results["wall_time_s"]}))
    return results


def _val_curve(run: Path) -> tuple[list[float], list[float]]:
    """Held-out AP (percent) against training minutes, from a run's CSV log."""
    import csv

    minutes, ap = [], []
    with open(run / "csv" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            if row.get("val/AP") and row.get("val/train_minutes"):
                minutes.append(float(row["val/train_minutes"]))
                ap.append(float(row["val/AP"]))
    return minutes, ap


def run_estimator_demo(out: Path, minutes: float = 10.0, config: str | Path | None = None) -> dict[str, Any]:
    """``posetok demo estimator``: train ``configs/estimator/small_real.yaml`` (hrnet_w18_small from random
    weights) on the first 80 % of the bundled real frames for ``minutes``, then report on the held-out 20 %:
    ``metrics.json``, the held-out AP against minutes (``ap_curve.png``), overlays of held-out frames
    (``heldout_overlays.png``: the best and worst people), the per-joint error and the model."""
    from .data.people import real_sample_people
    from .tasks.estimator import load_estimator
    from .tasks.estimator import train as train_estimator
    from .tasks.estimator.evaluation import evaluate as evaluate_estimator
    from .tasks.estimator.evaluation import save_visuals
    from .viz import save_training_curve

    use_all_cores()
    t0 = time.monotonic()
    config = Path(config) if config else Path(__file__).parent.parent / "configs" / "estimator" / "small_real.yaml"
    if not config.is_file():
        from .errors import PosetokError

        raise PosetokError(f"{config}: config not found (posetok demo estimator uses configs/estimator/"
                           "small_real.yaml of a source checkout)")
    cfg = load_config(config, [f"out={out / 'run'}", f"trainer.max_time={minutes}", "trainer.logger=[tensorboard,csv]"])
    print(f"[1/2] training {cfg.model.backbone.name} on the first 80 % of the bundled real frames for up to "
          f"{minutes:g} min -> {cfg.out}", flush=True)
    model_path = train_estimator(cfg)
    est = load_estimator(model_path)
    print("[2/2] scoring the held-out 20 % and writing the report", flush=True)
    people = real_sample_people("val")
    metrics, arrays = evaluate_estimator(est, people)
    x, y = _val_curve(out / "run")
    end = est.info.get("meta", {}).get("train_time_s")
    if end is not None and (not x or end / 60 > x[-1]):  # the final model, after the last validation
        x, y = [*x, end / 60], [*y, metrics["oks_ap"]]
    pictures = save_visuals(out, est, people, arrays["preds"])
    pictures.append(save_training_curve(out / "ap_curve.png", {cfg.model.backbone.name: (x, y)},
                                        marks=(5, 10, 20), title="held-out OKS-AP, bundled real frames"))
    results = {"checkpoint": str(model_path), "train": est.info.get("meta", {}), "held_out": metrics,
               "curve": {"minutes": x, "AP": y}, "wall_time_s": round(time.monotonic() - t0, 1)}
    write_json(out / "metrics.json", results)
    print(f"\nheld-out OKS-AP {metrics['oks_ap']:.1f}, AP50 {metrics['ap50']:.1f}, AP75 {metrics['ap75']:.1f}, "
          f"mean error {metrics['mean_error_px']:.1f} px")
    print(f"report: {out.resolve()}")
    for p in pictures:
        print(f"  picture: {p}")
    return results
