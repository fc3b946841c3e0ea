"""Speed benchmarks. Figures come from here (``posetok bench ...``), never from timed tests."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..data.sequences import SequenceNormalizer
from ..errors import PosetokError
from ..models.pct import PRESETS, PCTTokenizerModel
from ..models.sequence import PRESETS as SEQUENCE_PRESETS
from ..models.sequence import SequenceDims, SequenceTokenizerModel, preset_dims, sequence_losses
from ..perf import cpu_supports_bf16, keep_freed_memory, use_all_cores
from ..skeletons import get_skeleton, skeleton_for_joints


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
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_native_bf16": cpu_supports_bf16(),
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
    if train_batch < 0:
        raise PosetokError(f"--train-batch: expected 0 (no training) or more poses, got {train_batch}")
    coords, visible = random_poses(max(batch, train_batch, 1), k)
    model.train()
    init = train_batch or batch
    with torch.no_grad():
        model(coords[:init], visible[:init])  # k-means init of the codebook
    model.eval()
    enc, dec = model.inference_encoder(), model.inference_decoder()
    c, v = coords[:batch], visible[:batch]
    with torch.inference_mode():
        fast, _ = _rate(lambda: dec(enc(c, v)), batch, seconds)
        ref, _ = _rate(lambda: model.decode_codes(model.quantizer(model.encode_features(c, v))[0]), batch, seconds)
        enc_only, _ = _rate(lambda: enc(c, v), batch, seconds / 2)
        tokens = enc(c, v)
        rechecked = enc.rechecked / max(tokens.numel(), 1)
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

    train = _train_rates(step, train_batch, seconds) if train_batch else {"fp32": None, "bf16": None,
                                                                          "bf16_speedup": None}
    params = sum(p.numel() for p in model.parameters())
    return {
        "benchmark": "tokenizer", "preset": preset, "skeleton": skeleton, "precision": "fp32",
        "batch": batch, "encode_decode_poses_per_s": round(fast, 1),
        "reference_encode_decode_poses_per_s": round(ref, 1), "speedup_vs_reference": round(fast / ref, 2),
        "encode_poses_per_s": round(enc_only, 1), "decode_poses_per_s": round(dec_only, 1),
        "batch1_latency_ms": {k2: round(v2, 3) if isinstance(v2, float) else v2 for k2, v2 in lat.items()},
        "train_batch": train_batch, "train_samples_per_s": train["fp32"],
        "train_samples_per_s_bf16": train["bf16"], "train_bf16_speedup": train["bf16_speedup"],
        "fast_tokens_equal_reference": same, "rechecked_share": round(rechecked, 4), "parameters": params,
        "machine": machine_info(), "glibc_keeps_freed_memory": heap_kept,
        "numpy": np.__version__,
    }


def init_sequence_codebooks(model: SequenceTokenizerModel, poses: torch.Tensor, mask: torch.Tensor) -> list[int]:
    """Fill an untrained sequence model's codebooks by the quantizer's own k-means on eval-mode encoder features.

    The model goes to eval mode first: batch norm with its running statistics, as inference runs it (k-means on
    train-mode features, normalised by batch statistics, gives codes far from the eval-mode features, which then
    all fall on a handful of codes). The residual quantizer k-means-initialises each codebook on the residual
    that reaches it, as the first training step would; eval mode skips the EMA update. Returns the number of
    distinct codes each quantizer assigns to these inputs (realistic tokens use many).
    """
    model.eval()
    with torch.no_grad():
        feats = model.encoder(poses, mask)  # (B, T', G, Dt)
        b, tp, g, dt = feats.shape
        token_mask = model.encoder.token_mask(mask)[:, :, None].expand(b, tp, g).reshape(b, tp * g)
        _, ids, _ = model.quantizer(feats.reshape(b, tp * g, dt), mask=token_mask)
    ids = ids[token_mask]
    return [int(ids[:, q].unique().numel()) for q in range(ids.shape[-1])]


def _sequence_coords(dims: SequenceDims) -> str:
    if dims.has_confidence:
        return "2d+conf"
    return "2d" if dims.keypoint_dim == 2 else "3d"


def _ort_session(model: str | bytes, threads: int, profile_prefix: str | None = None) -> Any:
    """An onnxruntime CPU session as a deployment would open it: all graph optimisations, ``threads`` intra-op
    threads, sequential execution. ``model``: a path or the serialised graph; ``profile_prefix``: write
    onnxruntime's per-node profile there."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _top_ops(seconds: dict[str, float], keep: int = 6) -> dict[str, float]:
    """The ``keep`` costliest ops, the rest summed as ``other``, and ``total``; seconds rounded to ms."""
    ranked = sorted(seconds.items(), key=lambda kv: -kv[1])
    out = {name: round(t, 3) for name, t in ranked[:keep]}
    out["other"] = round(sum(t for _, t in ranked[keep:]), 3)
    out["total"] = round(sum(seconds.values()), 3)
    return out


def eager_op_seconds(fn: Callable[[], Any], calls: int = 3) -> dict[str, float]:
    """Self CPU seconds per aten op of one call of ``fn``, the mean of ``calls`` calls (``torch.profiler``),
    costliest first."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    return _top_ops({e.key: e.self_cpu_time_total / 1e6 / calls for e in prof.key_averages()})


def onnx_op_seconds(model: bytes, threads: int, feed: dict[str, np.ndarray], calls: int = 3) -> dict[str, float]:
    """Kernel seconds per onnxruntime op type of one call, the mean of ``calls`` calls after one that grows the
    arena, costliest first, from onnxruntime's own profiler on a session opened as :func:`_ort_session` opens
    it."""
    import json

    with tempfile.TemporaryDirectory(prefix="posetok-profile-") as tmp:
        session = _ort_session(model, threads, os.path.join(tmp, "ort"))
        for _ in range(calls + 1):
            session.run(None, feed)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    first = min((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    seconds: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] > first["ts"] + first["dur"]:
            op = e["args"]["op_name"]
            seconds[op] = seconds.get(op, 0.0) + e["dur"] / 1e6 / calls
    return _top_ops(seconds)


def _interleaved_rates(fns: dict[str, Callable[[], Any]], items: int, seconds: float, warmup: int = 1
                       ) -> dict[str, tuple[float, int]]:
    """Items per second of each function, timed in alternation: one call of each per round, for about
    ``seconds`` per function and at least 3 rounds; the rate is ``items`` over the median call time.

    Alternating the contenders, rather than timing one and then the other, exposes both to the same load on a
    shared machine, and the median ignores calls that another process slowed down: the ratio of two rates is
    what this is for.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    t_end = time.perf_counter() + seconds * len(fns)
    while time.perf_counter() < t_end or len(times[next(iter(fns))]) < 3:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (items / statistics.median(ts), len(ts)) for name, ts in times.items()}


def _peak_rss_mb() -> float:
    """The process's peak resident memory so far (``ru_maxrss``, KiB on Linux) in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _train_rates(step: Callable[[], Any], items: int, seconds: float) -> dict[str, Any]:
    """Items/s of a training ``step`` in fp32 and under bf16 autocast (what ``trainer.precision: bf16-mixed``
    runs: bf16 matrix products, fp32 weights and optimiser), timed one after the other in this process, and their
    ratio: the measurement behind ``trainer.precision: auto`` (:func:`posetok.config.resolve_precision`)."""
    fp32, steps = _rate(step, items, seconds, warmup=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16, _ = _rate(step, items, seconds, warmup=1)
    return {"fp32": round(fp32, 1), "bf16": round(bf16, 1), "bf16_speedup": round(bf16 / fp32, 2), "steps": steps}


def _sequence_train_rate(model: SequenceTokenizerModel, poses: torch.Tensor, mask: torch.Tensor, seconds: float
                         ) -> dict[str, Any]:
    """Training frames/s of ``model`` on these windows: forward with the quantizer (EMA codebook updates and
    quantizer dropout included), :func:`sequence_losses` with the default weights, backward and an AdamW step,
    as :class:`~posetok.tasks.sequence.SequenceTokenizerTask` runs one. Leaves the model in training mode."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    coords, conf = model.split_confidence(poses)

    def step() -> None:
        out = model(poses, mask)
        loss = sequence_losses(out["recon"], coords, mask, conf, model.skeleton, commit_loss=out["commit_loss"])
        opt.zero_grad(set_to_none=True)
        loss["total"].backward()
        opt.step()

    return _train_rates(step, poses.shape[0] * poses.shape[1], seconds)


def bench_sequence(dims: SequenceDims | str = "default", skeleton: str | None = None, batch: int = 32,
                   seconds: float = 10.0, frames: int | None = None, onnx: bool = True, threads: int | None = None,
                   train_batch: int = 4, profile: bool = False) -> dict[str, Any]:
    """Sequence tokenizer encoder and decoder throughput in frames/s: PyTorch eager and onnxruntime, fp32, CPU;
    and eager training frames/s.

    ``dims``: a :class:`SequenceDims` or a preset name (:data:`posetok.models.sequence.PRESETS`; with
    ``skeleton`` its keypoint count follows the skeleton). The inputs are ``batch`` windows of ``frames``
    frames (default ``dims.sequence_length``) of synthetic motion normalised as :class:`SequenceCodec` does; a
    call codes ``batch * frames`` frames. The weights are random, the codebooks k-means-initialised on these
    windows' eval-mode encoder features (:func:`init_sequence_codebooks`): speed does not depend on the values,
    and the tokens spread over many codes as a trained model's do (``codes_used``).

    Eager runs the inference modules :class:`SequenceCodec` uses under ``torch.inference_mode`` with ``threads``
    intra-op threads (default: all cores) and glibc keeping freed memory (:func:`keep_freed_memory`, as
    :func:`bench_tokenizer`); onnxruntime runs the graphs :func:`posetok.export.export_tokenizer` writes
    (CPUExecutionProvider, ``ORT_ENABLE_ALL``, as many intra-op threads). Eager and onnxruntime calls alternate
    and each rate is ``frames_per_call`` over the median call time (:func:`_interleaved_rates`), so the
    ``onnx_vs_eager_*`` ratios hold up on a shared machine. ``onnx=False`` times eager only.

    Training runs last, on ``train_batch`` of the windows (0 skips it): :func:`_sequence_train_rate`.
    ``peak_rss_mb`` is the process's peak resident memory after each stage (``ru_maxrss``). ``profile=True``
    adds ``encoder_op_seconds``: where an encoder call spends its time, per op, in eager PyTorch
    (:func:`eager_op_seconds`) and in onnxruntime (:func:`onnx_op_seconds`), the mean of 3 calls each.
    """
    from ..export import export_sequence_onnx, rounding_ties, sequence_inputs

    if isinstance(dims, str) and dims not in SEQUENCE_PRESETS:
        raise PosetokError(f"--preset: unknown sequence preset '{dims}' (known: {', '.join(SEQUENCE_PRESETS)})")
    try:
        if isinstance(dims, str):  # the preset, its keypoint count following the skeleton
            sk = get_skeleton(skeleton) if skeleton else None
            dims = preset_dims(dims, {"num_keypoints": sk.num_joints, "skeleton": sk.name} if sk else None)
        name = skeleton or dims.skeleton
        sk = get_skeleton(name) if name else skeleton_for_joints(dims.num_keypoints)
        model = SequenceTokenizerModel(dims, sk)
    except (KeyError, ValueError, PosetokError) as e:
        raise PosetokError(f"bench sequence: {str(e).strip(chr(39))}") from None
    frames = dims.sequence_length if frames is None else int(frames)
    if frames <= 0 or frames % dims.temporal_downsample:
        raise PosetokError(f"--frames: {frames} is not a positive multiple of temporal_downsample="
                           f"{dims.temporal_downsample}")
    if train_batch < 0:
        raise PosetokError(f"--train-batch: expected 0 (no training) or more windows, got {train_batch}")
    threads = use_all_cores() if threads is None else int(threads)
    torch.set_num_threads(threads)
    heap_kept = keep_freed_memory()
    torch.manual_seed(0)
    coords = _sequence_coords(dims)
    normalizer = SequenceNormalizer(sk, coords, 0.3, "frame")
    all_poses, all_mask = sequence_inputs(sk, coords, normalizer, max(batch, train_batch), frames, seed=0)
    poses, mask = all_poses[:batch], all_mask[:batch]
    t0 = time.perf_counter()
    codes_used = init_sequence_codebooks(model, poses, mask)
    init_s = time.perf_counter() - t0
    enc, dec = model.inference_encoder(), model.inference_decoder()
    items = batch * frames
    with torch.inference_mode():
        tokens = enc(poses, mask)
        ref_poses = dec(tokens)
    result: dict[str, Any] = {
        "benchmark": "sequence_tokenizer", "skeleton": sk.name, "coords": coords, "precision": "fp32",
        "batch": batch, "frames": frames, "frames_per_call": items, "threads": threads,
        "token_grid": list(model.token_grid_shape(frames)), "dims": dims.to_dict(),
        "eager_encoder_frames_per_s": None, "eager_decoder_frames_per_s": None,
        "onnx_encoder_frames_per_s": None, "onnx_decoder_frames_per_s": None,
        "onnx_vs_eager_encoder": None, "onnx_vs_eager_decoder": None,
        "tokens_equal": None, "token_mismatches": None, "mismatched_positions": None, "rounding_tie_positions": None,
        "decoder_max_abs_diff": None, "train_batch": train_batch, "train_frames_per_s": None, "train_steps": None,
        "train_frames_per_s_bf16": None, "train_bf16_speedup": None,
        "codes_used": codes_used, "codebook_init": "k-means on eval-mode encoder features of the benchmark windows",
        "codebook_init_s": round(init_s, 2), "parameters": sum(p.numel() for p in model.parameters()),
    }
    enc_fns: dict[str, Callable[[], Any]] = {"eager": lambda: enc(poses, mask)}
    dec_fns: dict[str, Callable[[], Any]] = {"eager": lambda: dec(tokens)}
    if onnx:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory(prefix="posetok-bench-") as tmp:
            enc_path, dec_path = os.path.join(tmp, "encoder.onnx"), os.path.join(tmp, "decoder.onnx")
            export_sequence_onnx(enc, dec, poses[:4], mask[:4], enc_path, dec_path)
            with open(enc_path, "rb") as f:
                enc_graph = f.read()
            s_enc, s_dec = _ort_session(enc_graph, threads), _ort_session(dec_path, threads)
        feed_enc = {"poses": poses.numpy(), "mask": mask.numpy()}
        feed_dec = {"tokens": tokens.numpy()}
        onnx_tokens = s_enc.run(None, feed_enc)[0]
        onnx_poses = s_dec.run(None, feed_dec)[0]
        ref = tokens.numpy()
        same_shape = onnx_tokens.shape == ref.shape
        positions, ties = (rounding_ties(enc, poses, mask, tokens, torch.from_numpy(onnx_tokens)) if same_shape
                           else (int(np.prod(ref.shape[:3])), 0))
        result.update({
            "tokens_equal": bool(same_shape and (onnx_tokens == ref).all()),
            "token_mismatches": int((onnx_tokens != ref).sum()) if same_shape else int(ref.size),
            "mismatched_positions": positions, "rounding_tie_positions": ties,
            "decoder_max_abs_diff": float(np.abs(onnx_poses - ref_poses.numpy()).max()),
            "onnxruntime": ort.__version__,
        })
        enc_fns["onnx"] = lambda: s_enc.run(None, feed_enc)
        dec_fns["onnx"] = lambda: s_dec.run(None, feed_dec)
    with torch.inference_mode():
        enc_rates = _interleaved_rates(enc_fns, items, seconds)
        dec_rates = _interleaved_rates(dec_fns, items, seconds)
    for part, rates in (("encoder", enc_rates), ("decoder", dec_rates)):
        for backend, (rate, _) in rates.items():
            result[f"{backend}_{part}_frames_per_s"] = round(rate, 1)
        if "onnx" in rates:
            result[f"onnx_vs_eager_{part}"] = round(rates["onnx"][0] / rates["eager"][0], 2)
    result["calls"] = {f"{b}_{part}": c for part, rates in (("encoder", enc_rates), ("decoder", dec_rates))
                       for b, (_, c) in rates.items()}
    if profile:
        with torch.inference_mode():
            ops = {"eager": eager_op_seconds(lambda: enc(poses, mask))}
        if onnx:
            del s_enc, enc_fns["onnx"]  # its arena is freed before the profiling session grows its own
            ops["onnx"] = onnx_op_seconds(enc_graph, threads, feed_enc)
        result["encoder_op_seconds"] = ops
    peak_rss = {"inference": _peak_rss_mb()}
    if train_batch:
        train = _sequence_train_rate(model, all_poses[:train_batch], all_mask[:train_batch], seconds)
        result.update({"train_frames_per_s": train["fp32"], "train_steps": train["steps"],
                       "train_frames_per_s_bf16": train["bf16"], "train_bf16_speedup": train["bf16_speedup"]})
        peak_rss["training"] = _peak_rss_mb()
    result.update({"peak_rss_mb": peak_rss, "machine": machine_info(), "glibc_keeps_freed_memory": heap_kept,
                   "numpy": np.__version__})
    return result


def bench_sequence_config(config: Any, batch: int = 32, seconds: float = 10.0, frames: int | None = None,
                          onnx: bool = True, threads: int | None = None, train_batch: int = 4, profile: bool = False
                          ) -> dict[str, Any]:
    """:func:`bench_sequence` with the model sizes and skeleton of a ``task: sequence`` config (a dict or the
    DictConfig :func:`posetok.config.load_config` returns; resolved here if it is not yet)."""
    from ..config import build_config, sequence_dims

    cfg = build_config("sequence", config)
    dims = sequence_dims(cfg)
    result = bench_sequence(dims, skeleton=cfg["model"]["skeleton"], batch=batch, seconds=seconds, frames=frames,
                            onnx=onnx, threads=threads, train_batch=train_batch, profile=profile)
    return {"preset": cfg["model"]["preset"], **result}
