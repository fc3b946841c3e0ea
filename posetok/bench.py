"""Speed benchmarks. Figures come from here (``posetok bench ...``), never from timed tests."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .errors import PosetokError
from .models.pct import PRESETS, PCTTokenizerModel
from .perf import keep_freed_memory, use_all_cores
from .skeletons import get_skeleton


def _rate(fn: Callable[[], Any], items: int, seconds: float, warmup: int = 2) -> tuple[float, int]:
    """Items per second of ``fn`` over about ``seconds`` of repeated calls (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and calls >= 3:
            return items * calls / elapsed, calls


def _latency_ms(fn: Callable[[], Any], seconds: float) -> dict[str, float]:
    for _ in range(5):
        fn()
    times: list[float] = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(times) < 20:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"median": statistics.median(times), "p90": times[int(0.9 * (len(times) - 1))], "calls": len(times)}


def _cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    return {"cpu": _cpu_name(), "cores": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def random_poses(n: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised crop coordinates ``(n, k, 2)`` in [-0.4, 0.4] and a visibility mask with ~10 % hidden."""
    g = torch.Generator().manual_seed(seed)
    coords = (torch.rand(n, k, 2, generator=g) - 0.5) * 0.8
    visible = torch.rand(n, k, generator=g) > 0.1
    return coords, visible


def bench_tokenizer(preset: str = "pct_base", batch: int = 512, seconds: float = 10.0, train_batch: int = 256,
                    skeleton: str = "coco17") -> dict[str, Any]:
    """Encode+decode throughput at ``batch``, batch-1 latency and training samples/s, fp32, all cores.

    The weights are random but the codebook is k-means-initialised on encoder features, as after the first
    training step: speed does not depend on the values. Both the fast inference path (what ``encode`` and
    ``decode`` use) and the reference path (the training-time forward in eval mode) are timed.
    """
    if preset not in PRESETS:
        raise PosetokError(f"--preset: unknown preset '{preset}' (known: {', '.join(PRESETS)})")
    use_all_cores()
    heap_kept = keep_freed_memory()
    k = get_skeleton(skeleton).num_joints
    torch.manual_seed(0)
    model = PCTTokenizerModel(k, PRESETS[preset])
    coords, visible = random_poses(max(batch, train_batch), k)
    model.train()
    with torch.no_grad():
        model(coords[:train_batch], visible[:train_batch])  # k-means init of the codebook
    model.eval()
    enc, dec = model.inference_encoder(), model.inference_decoder()
    c, v = coords[:batch], visible[:batch]
    with torch.inference_mode():
        fast, _ = _rate(lambda: dec(enc(c, v)), batch, seconds)
        ref, _ = _rate(lambda: model.decode_codes(model.quantizer(model.encode_features(c, v))[0]), batch, seconds)
        enc_only, _ = _rate(lambda: enc(c, v), batch, seconds / 2)
        tokens = enc(c, v)
        dec_only, _ = _rate(lambda: dec(tokens), batch, seconds / 2)
        lat = _latency_ms(lambda: dec(enc(c[:1], v[:1])), seconds / 2)
        same = bool(torch.equal(enc(c, v), model(c, v)["tokens"]))

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tc, tv = coords[:train_batch], visible[:train_batch]

    def step() -> None:
        out = model(tc, tv)
        loss = torch.nn.functional.smooth_l1_loss(out["recon"], tc) + out["commit_loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    train_rate, _ = _rate(step, train_batch, seconds, warmup=1)
    params = sum(p.numel() for p in model.parameters())
    return {
        "benchmark": "tokenizer", "preset": preset, "skeleton": skeleton, "precision": "fp32",
        "batch": batch, "encode_decode_poses_per_s": round(fast, 1),
        "reference_encode_decode_poses_per_s": round(ref, 1), "speedup_vs_reference": round(fast / ref, 2),
        "encode_poses_per_s": round(enc_only, 1), "decode_poses_per_s": round(dec_only, 1),
        "batch1_latency_ms": {k2: round(v2, 3) if isinstance(v2, float) else v2 for k2, v2 in lat.items()},
        "train_batch": train_batch, "train_samples_per_s": round(train_rate, 1),
        "fast_tokens_equal_reference": same, "parameters": params,
        "machine": machine_info(), "glibc_keeps_freed_memory": heap_kept,
        "numpy": np.__version__,
    }
