"""The ``posetok`` command line. Each command parses its arguments and calls the library; nothing more."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import PosetokError

EXIT_USER_ERROR = 2


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .tasks import train

    cfg = load_config(args.config, args.overrides)
    path = train(cfg)
    print(f"model: {path}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .io import write_json
    from .tasks import load_with_task

    codec, task = load_with_task(args.checkpoint)
    metrics = task.evaluate_file(codec, args.data, visualize=args.visualize, pck_threshold=args.pck_threshold,
                                 num_quantizers=args.num_quantizers, animation=args.animation)
    metrics = {"checkpoint": str(args.checkpoint), "data": str(args.data), **metrics}
    if args.json:
        write_json(args.json, metrics)
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_tokenize(args: argparse.Namespace) -> int:
    from .tasks import load_with_task

    codec, task = load_with_task(args.checkpoint)
    print(task.tokenize_file(codec, args.annotations, args.output))
    return 0


def _cmd_detokenize(args: argparse.Namespace) -> int:
    from .tasks import load_with_task

    codec, task = load_with_task(args.checkpoint)
    print(task.detokenize_file(codec, args.tokens, args.output, num_quantizers=args.num_quantizers))
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from .data.synthetic import sample_poses, synthetic_coco
    from .io import atomic_path, write_json

    if args.num <= 0:
        raise PosetokError(f"--num: must be positive, got {args.num}")
    doc = synthetic_coco(args.num, skeleton=args.skeleton, seed=args.seed,
                         image_size=(args.width, args.height))
    write_json(args.output, doc, indent=None)
    if args.joints3d:
        poses = sample_poses(args.num, skeleton=args.skeleton, seed=args.seed,
                             image_size=(args.width, args.height), return_3d=True)
        with atomic_path(args.joints3d) as tmp:
            np.savez_compressed(tmp, joints3d=poses.joints3d, keypoints=poses.keypoints, boxes=poses.boxes)
    print(f"{args.num} synthetic {args.skeleton} people: {args.output}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), minutes=args.minutes, steps=args.steps, num_train=args.num_train)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_tokenizer

    result = export_tokenizer(args.checkpoint, args.format, args.output)
    print(json.dumps(result, indent=2))
    if not result["tokens_match"]:
        print(f"posetok export: error: {result['encoder']}: field 'tokens': {result['token_mismatches']} tokens "
              "differ from PyTorch", file=sys.stderr)
        return 1
    if not result["tokens_equal"]:
        print(f"posetok export: note: {result['encoder']}: {result['rounding_tie_positions']} token positions "
              "differ from PyTorch only where two codes are equally near within float32 rounding", file=sys.stderr)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .io import write_json

    if args.target == "sequence":
        from .bench import bench_sequence_config
        from .config import load_config

        cfg = load_config(args.config, args.overrides)
        if cfg.get("task") != "sequence":
            raise PosetokError(f"{args.config}: field 'task': expected 'sequence' for bench sequence, "
                               f"got {cfg.get('task')!r}")
        result = bench_sequence_config(cfg, batch=args.batch, seconds=args.seconds, frames=args.frames,
                                       onnx=not args.no_onnx, train_batch=args.train_batch, profile=args.profile)
    else:
        from .bench import bench_tokenizer

        result = bench_tokenizer(args.preset, batch=args.batch, seconds=args.seconds, train_batch=args.train_batch,
                                 skeleton=args.skeleton)
    if args.json:
        write_json(args.json, result)
    print(json.dumps(result, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="posetok", description="Human pose as discrete tokens.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("train", help="train a tokenizer from a config")
    s.add_argument("config", help="YAML config (see configs/)")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. out=runs/x")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("eval", help="reconstruct poses or pose sequences with a tokenizer and score them")
    s.add_argument("checkpoint", help="model.ckpt (or a run's last.ckpt), pose or sequence tokenizer")
    s.add_argument("--data", required=True,
                   help="pose tokenizer: COCO keypoint JSON; sequence tokenizer: a .npz sequence or a folder of "
                        "them (its test/ subfolder when there is one)")
    s.add_argument("--json", help="also write the metrics to this JSON file")
    s.add_argument("--visualize", metavar="DIR",
                   help="write figures here: reconstructions, per-keypoint error, codebook usage (PNG); for "
                        "sequences also a side-by-side animation and the rate-distortion curve")
    s.add_argument("--animation", choices=("gif", "mp4"), help="sequences: animation format (default gif)")
    s.add_argument("--pck-threshold", type=float,
                   help="PCK threshold as a fraction of the person's box size (default 0.05)")
    s.add_argument("--num-quantizers", type=int, help="sequences: decode from the first q quantizers only")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("tokenize", help="COCO keypoint file or pose sequence (.npz) -> tokens (.npz)")
    s.add_argument("checkpoint")
    s.add_argument("annotations", metavar="INPUT",
                   help="pose tokenizer: COCO keypoint JSON; sequence tokenizer: a .npz with poses (T, N, D)")
    s.add_argument("-o", "--output", required=True, help="output .npz")
    s.set_defaults(func=_cmd_tokenize)

    s = sub.add_parser("detokenize", help="tokens (.npz) -> poses (COCO results JSON, or a sequence .npz)")
    s.add_argument("checkpoint")
    s.add_argument("tokens", help=".npz written by posetok tokenize")
    s.add_argument("-o", "--output", required=True,
                   help="pose tokenizer: JSON in the COCO results format; sequence tokenizer: .npz with poses "
                        "(T, N, D) and mask (T,)")
    s.add_argument("--num-quantizers", type=int, help="sequences: decode from the first q quantizers only")
    s.set_defaults(func=_cmd_detokenize)

    s = sub.add_parser("synth", help="write synthetic people as a COCO keypoint file")
    s.add_argument("--num", type=int, default=1000)
    s.add_argument("--skeleton", default="coco17")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--width", type=int, default=640)
    s.add_argument("--height", type=int, default=480)
    s.add_argument("--joints3d", metavar="NPZ", help="also write the 3D joints (camera frame, metres)")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("demo", help="train pct_small on synthetic poses and report on held-out and real poses")
    s.add_argument("--out", default="report", help="report folder")
    s.add_argument("--minutes", type=float, default=4.0, help="training time bound")
    s.add_argument("--steps", type=int, default=3000, help="training step bound (quantizing from a quarter)")
    s.add_argument("--num-train", type=int, default=100_000, help="synthetic training poses")
    s.set_defaults(func=_cmd_demo)

    s = sub.add_parser("export", help="export encoder and decoder to ONNX or TorchScript, then check them")
    s.add_argument("checkpoint")
    s.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    s.add_argument("-o", "--output", required=True,
                   help="FILE.onnx / FILE.pt: writes FILE.encoder.<ext> and FILE.decoder.<ext>")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("bench", help="speed benchmarks (JSON out)")
    bsub = s.add_subparsers(dest="target", required=True, metavar="TARGET")
    b = bsub.add_parser("tokenizer", help="encode+decode poses/s, batch-1 latency, training samples/s")
    b.add_argument("--preset", default="pct_base")
    b.add_argument("--skeleton", default="coco17")
    b.add_argument("--batch", type=int, default=512)
    b.add_argument("--train-batch", type=int, default=256)
    b.add_argument("--seconds", type=float, default=10.0, help="time spent on each measurement")
    b.add_argument("--json", help="also write the result here")
    b.set_defaults(func=_cmd_bench)
    b = bsub.add_parser("sequence", help="sequence tokenizer: encoder and decoder frames/s, eager PyTorch against "
                                         "the exported ONNX graphs under onnxruntime")
    b.add_argument("--config", required=True, help="a sequence config, e.g. configs/sequence/default.yaml")
    b.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. model.hidden_dim=128")
    b.add_argument("--batch", type=int, default=32, help="windows per call")
    b.add_argument("--frames", type=int, help="frames per window (default: the config's sequence_length)")
    b.add_argument("--seconds", type=float, default=10.0, help="time spent on each measurement")
    b.add_argument("--no-onnx", action="store_true", help="eager PyTorch only")
    b.add_argument("--train-batch", type=int, default=4, help="windows per training step (0: no training)")
    b.add_argument("--profile", action="store_true", help="also report where one encoder call spends its time, per "
                                                           "op, in eager PyTorch and in onnxruntime")
    b.add_argument("--json", help="also write the result here")
    b.set_defaults(func=_cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .perf import keep_freed_memory

    keep_freed_memory()
    try:
        return args.func(args)
    except PosetokError as e:
        print(f"posetok {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"posetok {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
