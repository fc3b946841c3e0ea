"""``posetok bench lifter``: the lifter's inference speed, posetok's path beside a plain PyTorch forward of the same
network timed in the same process (CPU, fp32)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..codecs.lifting import LiftingCodec
from ..config import lifter_dims_dict
from ..data.lifting_pairs import synthetic_pairs
from ..models.complexity import count_parameters
from ..models.lifter import LifterDims, build_lifter
from ..perf import keep_freed_memory, use_all_cores
from . import _interleaved_rates, _peak_rss_mb, machine_info


def bench_lifter(cfg: Any, batch: int = 8, frames: int | None = None, seconds: float = 10.0, flip: bool = False
                 ) -> dict[str, Any]:
    """Frames/s of the lifter ``cfg`` describes (random weights; speed does not depend on them), CPU fp32.

    * ``posetok``: what ``posetok lift`` and ``posetok eval`` run for ``batch`` clips of ``frames`` frames: each
      clip's pixels normalised (:meth:`LiftingCodec.encode`), then :meth:`LiftingCodec.predict` (numpy in, tensors,
      the network under ``no_grad``, numpy out), without the flip test (with ``flip``: also with it, two passes);
    * ``plain``: ``model(x)`` under ``inference_mode`` on the same windows, already encoded, as a tensor.

    The two are timed in alternation (median call time), so the ratio holds on a loaded machine.
    """
    use_all_cores()
    keep_freed_memory()
    torch.manual_seed(0)
    d = lifter_dims_dict(cfg)
    if frames:
        d["frames"] = max(int(frames), d["frames"]) if d["frames"] > 1 else d["frames"]
    dims = LifterDims.from_dict(d)
    t = int(frames or dims.frames)
    model = build_lifter(dims).eval()
    codec = LiftingCodec(model, cfg.model.mapping, flip_test=False, batch_size=batch, device="cpu")
    size = (int(cfg.data.image_size[0]), int(cfg.data.image_size[1]))
    pairs = synthetic_pairs(batch, dims.skeleton_in, dims.skeleton_out, seed=0, frames=t, image_size=size)
    clips = pairs["poses_2d"]
    x = torch.from_numpy(np.stack([codec.encode(c, size)[0] for c in clips]))

    def posetok_path(with_flip: bool = False) -> None:
        inputs = np.stack([codec.encode(c, size)[0] for c in clips])
        codec.predict(inputs, flip=with_flip)

    def plain() -> None:
        with torch.inference_mode():
            model(x)

    fns = {"posetok": posetok_path, "plain": plain}
    if flip:
        fns["posetok_flip"] = lambda: posetok_path(True)
    rates = {k: r for k, (r, _) in _interleaved_rates(fns, batch * t, seconds).items()}
    result: dict[str, Any] = {
        "config": {"arch": dims.arch, "dim": dims.dim, "depth": dims.depth, "heads": dims.heads,
                   "skeleton_in": dims.skeleton_in, "skeleton_out": dims.skeleton_out},
        "parameters": count_parameters(model), "batch": batch, "frames": t, "device": "cpu", "precision": "fp32",
        "posetok_frames_per_s": rates["posetok"], "plain_frames_per_s": rates["plain"],
        "ratio": rates["posetok"] / rates["plain"],
        "machine": machine_info(), "peak_rss_mb": _peak_rss_mb(),
    }
    if flip:
        result["posetok_flip_frames_per_s"] = rates["posetok_flip"]
    return result
