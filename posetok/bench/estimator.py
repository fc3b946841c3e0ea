"""``posetok bench estimator``: a top-down estimator's inference and training speed, each beside a plain PyTorch
baseline timed in the same process, and the throughput of the image pipeline alone."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..perf import keep_freed_memory, use_all_cores
from . import _interleaved_rates, _peak_rss_mb, _rate, machine_info


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _pipeline_rate(dataset: Any, seconds: float) -> float:
    """Samples/s of the dataset alone (read, augment, warp, encode targets) in this process: one worker's rate."""
    n, t0 = 0, time.perf_counter()
    order = np.random.default_rng(0).permutation(len(dataset))
    while time.perf_counter() - t0 < seconds or n < 8:
        dataset[int(order[n % len(order)])]
        n += 1
    return n / (time.perf_counter() - t0)


def _loader_rate(loader: Any, batches: int) -> tuple[float, list[dict[str, torch.Tensor]]]:
    """Samples/s of a DataLoader over ``batches`` batches (after its first), and those batches."""
    it = iter(loader)
    kept = [next(it)]
    t0 = time.perf_counter()
    for _ in range(batches):
        kept.append(next(it))
    return batches * len(kept[0]["image"]) / (time.perf_counter() - t0), kept


def bench_estimator(cfg: Any, batch: int = 32, train_batch: int = 16, seconds: float = 10.0,
                    device: str = "auto", workers: int | None = None, precision: str = "32") -> dict[str, Any]:
    """Speed of the estimator ``cfg`` describes (random weights; speed does not depend on them).

    * inference: crops/s of :meth:`TopdownEstimator.forward_crops` (uint8 crops in, ImageNet normalisation,
      outputs back as numpy; no flip) against a plain ``model(x)`` on a float tensor already on the device, at
      ``batch``, interleaved in the same process;
    * training: images/s of posetok's training step (the task's losses, backward, optimiser step) on synthetic
      tensors, against a plain loop (MSE on heatmaps, same optimiser; the PCT classifier: cross-entropy on the
      token ids), and of the same step fed by the real data pipeline (``data.num_workers`` workers, or
      ``workers``; PCT targets come from its tokenizer, ``model.tokenizer``);
    * the pipeline alone: samples/s of one worker (read, augment, warp, encode targets);
    * peak memory: the process's RSS, and on a GPU the CUDA allocator's peak.
    """
    from ..tasks.estimator import TopdownEstimator
    from ..tasks.estimator.module import EstimatorTask, config_dict
    from ..tasks.estimator.samples import train_loader

    use_all_cores()
    keep_freed_memory()
    dev = _device(device)
    torch.manual_seed(0)
    task = EstimatorTask(config_dict(cfg))
    task.configure_model()
    model = task.model.to(dev)
    task.to(dev)
    m = cfg.model
    w, h = int(m.input_size[0]), int(m.input_size[1])
    est = TopdownEstimator(model, task.codec, task.skeleton, (w, h), m.padding, flip_test=False, batch_size=batch)
    crops = torch.randint(0, 256, (batch, h, w, 3), dtype=torch.uint8).numpy()
    x = torch.randn(batch, 3, h, w, device=dev)
    autocast = (torch.autocast(dev.type, dtype=torch.bfloat16) if precision == "bf16"
                else torch.autocast(dev.type, enabled=False))

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    model.eval()
    with torch.inference_mode(), autocast:
        rates = {k: r for k, (r, _) in _interleaved_rates(
            {"posetok": lambda: est.forward_crops(crops), "plain": lambda: (model(x), sync())}, batch, seconds
        ).items()}
    inference = {"batch": batch, "posetok_crops_per_s": rates["posetok"], "plain_crops_per_s": rates["plain"],
                 "ratio": rates["posetok"] / rates["plain"]}

    # Training: real batches from the pipeline (also the targets of the synthetic step).
    from ..tasks.estimator import augmentation, people_for  # the run's own data choices

    people = people_for(cfg, "train")
    n_workers = cfg.data.num_workers if workers is None else workers
    loader = train_loader(people, task.codec, (w, h), m.padding, augmentation(cfg), train_batch, n_workers, 0)
    pipe_rate = _pipeline_rate(loader.dataset, max(2.0, seconds / 2))
    loader_rate, batches = _loader_rate(loader, 4)
    fixed = {k: v.to(dev) for k, v in batches[0].items()}
    guided = m.head.kind == "pct" and "tokens" not in fixed

    def plain_targets() -> torch.Tensor:
        # an image-guided tokenizer's ids need its frozen guide on each batch: work any loop does, posetok's too
        if not guided:
            return fixed["tokens"]
        return task.codec.tokens_for(fixed["coords"], fixed["target_weights"] > 0, images_f)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    images_f = torch.randn(train_batch, 3, h, w, device=dev)

    def posetok_step(batch_: dict[str, torch.Tensor]) -> None:
        with autocast:
            loss = task._losses(batch_)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()

    pct = m.head.kind == "pct"

    def plain_step() -> None:
        with autocast:
            if pct:
                logits = model(images_f)["logits"]
                loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), plain_targets().flatten())
            else:
                out = model(images_f)["heatmaps"]
                loss = torch.nn.functional.mse_loss(out.float(), fixed["heatmaps"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()

    train_rates = {k: r for k, (r, _) in _interleaved_rates(
        {"posetok": lambda: posetok_step(fixed), "plain": plain_step}, train_batch, seconds).items()}
    def batches_forever() -> Any:
        while True:  # epochs of the small bundled sample run out within a measurement
            yield from loader

    it = batches_forever()

    def real_step() -> None:
        posetok_step({k: v.to(dev, non_blocking=True) for k, v in next(it).items()})

    real_rate, _ = _rate(real_step, train_batch, seconds, warmup=1)
    result: dict[str, Any] = {
        "config": {"backbone": m.backbone.name, "head": m.head.kind, "codec": m.codec.type, "input_size": [w, h]},
        "device": str(dev), "precision": precision, "machine": machine_info(), "inference": inference,
        "training": {"batch": train_batch, "posetok_synthetic_images_per_s": train_rates["posetok"],
                     "plain_synthetic_images_per_s": train_rates["plain"],
                     "ratio_synthetic": train_rates["posetok"] / train_rates["plain"],
                     "real_pipeline_images_per_s": real_rate, "real_over_synthetic": real_rate / train_rates["posetok"],
                     "workers": n_workers},
        "pipeline": {"samples_per_s_one_worker": pipe_rate, "loader_samples_per_s": loader_rate,
                     "workers": n_workers},
        "peak_rss_mb": _peak_rss_mb(),
    }
    if dev.type == "cuda":
        result["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result
