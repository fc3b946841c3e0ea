"""The ``posetok`` command line. Each command parses its arguments and calls the library; nothing more."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def _task_command(task: Any, name: str, checkpoint: str) -> Any:
    """The task's function behind a command, or a one-line error when its checkpoint kind has none."""
    fn = getattr(task, name, None)
    if fn is None:
        kind = task.KIND.name
        needs = {"infer_file": "an estimator", "lift_file": "a lifter"}.get(name, "a pose or sequence tokenizer")
        raise PosetokError(f"{checkpoint}: field 'kind': a '{kind}' checkpoint; this command needs {needs}")
    return fn


def _given(fn: Any, kind: str, **options: Any) -> dict[str, Any]:
    """The options given on the command line (not None), refused by name when ``fn`` does not take them."""
    accepted = inspect.signature(fn).parameters
    given = {k: v for k, v in options.items() if v is not None}
    for key in given:
        if key not in accepted:
            raise PosetokError(f"--{key.replace('_', '-')}: does not apply to '{kind}' checkpoints")
    return given


def _cmd_eval(args: argparse.Namespace) -> int:
    from .io import write_json
    from .tasks import load_with_task

    codec, task = load_with_task(args.checkpoint)
    fn = _task_command(task, "evaluate_file", args.checkpoint)
    options = _given(fn, task.KIND.name, visualize=args.visualize, pck_threshold=args.pck_threshold,
                     num_quantizers=args.num_quantizers, animation=args.animation, images=args.images,
                     boxes=args.boxes, flip=False if args.no_flip else None, box_score_thr=args.box_score_thr,
                     head_boxes=args.head_boxes, procrustes=args.procrustes or None,
                     per_joint=args.per_joint or None, per_action=args.per_action or None,
                     actions=_actions(args.actions), noise_px=args.noise_px, drop_prob=args.drop_prob,
                     occlusion=tuple(args.occlusion) if args.occlusion else None)
    metrics = fn(codec, args.data, **options)
    metrics = {"checkpoint": str(args.checkpoint), "data": str(args.data), **metrics}
    if args.json:
        write_json(args.json, metrics)
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import run_compare

    result = run_compare(args.checkpoints, args.data, args.json, args.plot)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_tokenize(args: argparse.Namespace) -> int:
    from .tasks import load_with_task

    codec, task = load_with_task(args.checkpoint)
    fn = _task_command(task, "tokenize_file", args.checkpoint)
    print(fn(codec, args.annotations, args.output, **_given(fn, task.KIND.name, images=args.images)))
    return 0


def _cmd_detokenize(args: argparse.Namespace) -> int:
    from .tasks import load_with_task

    codec, task = load_with_task(args.checkpoint)
    fn = _task_command(task, "detokenize_file", args.checkpoint)
    print(fn(codec, args.tokens, args.output, num_quantizers=args.num_quantizers))
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from .tasks import load_with_task

    est, task = load_with_task(args.checkpoint)
    fn = _task_command(task, "infer_file", args.checkpoint)
    detector = None
    if args.detector:
        from .models.detector import PersonDetector

        detector = PersonDetector(args.detector, args.detector_weights, score_thr=args.box_score_thr)
    elif args.detector_weights:
        raise PosetokError("--detector-weights: give --detector NAME too")
    result = fn(est, args.input, args.output, boxes=args.boxes, bbox=args.bbox, kpt_thr=args.kpt_thr,
                flip=not args.no_flip, box_score_thr=args.box_score_thr, detector=detector)
    print(json.dumps(result, indent=2))
    return 0


def _actions(value: str | None) -> list[str] | None:
    """``--actions Walking,Eating`` -> a list (checked by the lifter)."""
    return None if value is None else [a.strip() for a in value.split(",") if a.strip()]


def _cmd_lift(args: argparse.Namespace) -> int:
    from .tasks import load_with_task

    codec, task = load_with_task(args.checkpoint)
    fn = _task_command(task, "lift_file", args.checkpoint)
    result = fn(codec, args.input, args.output, visualize=args.visualize, flip=False if args.no_flip else None,
                normalization=args.normalization, image_size=tuple(args.image_size) if args.image_size else None)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .info import model_info

    result = model_info(args.source, args.overrides)
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .io import write_json
    from .tasks.estimator import score_file

    metrics = score_file(args.predictions, args.data, nms=args.nms, score_mode=args.score_mode,
                         nms_thr=args.nms_thr, keypoint_thr=args.keypoint_thr)
    if args.json:
        write_json(args.json, metrics)
    print(json.dumps(metrics, indent=2))
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .tasks.estimator import convert_mmpose

    result = convert_mmpose(args.checkpoint, args.config, args.output)
    print(json.dumps(result, indent=2))
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

    if args.what == "estimator":
        from .demo import run_estimator_demo

        run_estimator_demo(Path(args.out or "report_estimator"), minutes=args.minutes or 10.0)
        return 0
    run_demo(Path(args.out or "report"), minutes=args.minutes or 4.0, steps=args.steps, num_train=args.num_train)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_tokenizer

    result = export_tokenizer(args.checkpoint, args.format, args.output)
    print(json.dumps(result, indent=2))
    if "check_passed" in result:  # an estimator: one graph, keypoints compared
        if not result["check_passed"]:
            print(f"posetok export: error: {result['model']}: field 'keypoints': "
                  f"{result['mismatched_joints'] - result['rounding_tie_joints']} joints differ from PyTorch",
                  file=sys.stderr)
            return 1
        return 0
    if not result["tokens_match"]:
        print(f"posetok export: error: {result['encoder']}: field 'tokens': {result['token_mismatches']} tokens "
              "differ from PyTorch", file=sys.stderr)
        return 1
    if not result["tokens_equal"]:
        print(f"posetok export: note: {result['encoder']}: {result['rounding_tie_positions']} token positions "
              "differ from PyTorch only where two codes are equally near within float32 rounding", file=sys.stderr)
    return 0


def _bench_config(args: argparse.Namespace) -> Any:
    """The config of ``bench TARGET --config CFG``, checked to be of that task."""
    from .config import load_config

    cfg = load_config(args.config, args.overrides)
    if cfg.get("task") != args.target:
        raise PosetokError(f"{args.config}: field 'task': expected {args.target!r} for bench {args.target}, "
                           f"got {cfg.get('task')!r}")
    return cfg


def _cmd_bench(args: argparse.Namespace) -> int:
    from .io import write_json

    if args.target == "estimator":
        from .bench.estimator import bench_estimator

        result = bench_estimator(_bench_config(args), batch=args.batch, train_batch=args.train_batch,
                                 seconds=args.seconds, device=args.device, workers=args.workers,
                                 precision=args.precision)
    elif args.target == "lifter":
        from .bench.lifter import bench_lifter

        result = bench_lifter(_bench_config(args), batch=args.batch, frames=args.frames, seconds=args.seconds,
                              flip=args.flip)
    elif args.target == "sequence":
        from .bench import bench_sequence_config

        result = bench_sequence_config(_bench_config(args), batch=args.batch, seconds=args.seconds,
                                       frames=args.frames, onnx=not args.no_onnx, train_batch=args.train_batch,
                                       profile=args.profile)
    elif args.train:
        from .bench.training import bench_training
        from .config import load_config

        cfg = load_config(args.config or "configs/tokenizer/pct_base_coco17.yaml", args.overrides)
        result = bench_training(cfg, steps=args.steps, warmup=args.warmup, block=args.block)
    else:
        if args.config or args.overrides:
            raise PosetokError("--config: applies with --train (the training benchmark) only")
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

    s = sub.add_parser("train", help="train a tokenizer or an estimator from a config")
    s.add_argument("config", help="YAML config (see configs/)")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. out=runs/x")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("eval", help="score a checkpoint: tokenizers reconstruct poses or sequences, estimators "
                                     "predict people in images (COCO keypoint AP)")
    s.add_argument("checkpoint", help="model.ckpt (or a run's last.ckpt) of any task")
    s.add_argument("--data", required=True,
                   help="pose tokenizer or estimator: COCO keypoint JSON; sequence tokenizer: a .npz sequence or a "
                        "folder of them (its test/ subfolder when there is one)")
    s.add_argument("--images", help="estimators and image-guided pose tokenizers: the image folder of --data")
    s.add_argument("--boxes", help="estimators: person detections ([{image_id, category_id, bbox, score}]) to crop "
                                   "instead of the annotated boxes")
    s.add_argument("--box-score-thr", type=float, help="estimators: drop detections scored below this (default 0)")
    s.add_argument("--no-flip", action="store_true", help="estimators and lifters: no flip test")
    s.add_argument("--occlusion", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="estimators: a grey block over each crop covering MIN-MAX of its area (e.g. 0.2 0.4)")
    s.add_argument("--head-boxes", help="estimators on MPII: head boxes for PCKh (gt_valid.mat, or .npy / JSON of "
                                        "x1, y1, x2, y2 per person)")
    s.add_argument("--procrustes", action="store_true",
                   help="lifters: also PA-MPJPE (protocol 2: Procrustes alignment with scale, float64)")
    s.add_argument("--per-joint", action="store_true", help="lifters: MPJPE of every joint")
    s.add_argument("--per-action", action="store_true",
                   help="lifters on Human3.6M: MPJPE per action (sub-actions merged) and the mean of the action means")
    s.add_argument("--actions", help="lifters on Human3.6M: keep these actions, comma-separated (e.g. Walking,Eating)")
    s.add_argument("--noise-px", type=float, help="lifters with --data synthetic: 2D noise in pixels (0: exact 2D)")
    s.add_argument("--drop-prob", type=float, help="lifters with --data synthetic: share of joints missed")
    s.add_argument("--json", help="also write the metrics to this JSON file")
    s.add_argument("--visualize", metavar="DIR",
                   help="write figures here: reconstructions (estimators: the best and worst people), per-keypoint "
                        "error, codebook usage (PNG); for sequences also a side-by-side animation and the "
                        "rate-distortion curve")
    s.add_argument("--animation", choices=("gif", "mp4"), help="sequences: animation format (default gif)")
    s.add_argument("--pck-threshold", type=float,
                   help="tokenizers: PCK threshold as a fraction of the person's box size (default 0.05)")
    s.add_argument("--num-quantizers", type=int, help="sequences: decode from the first q quantizers only")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("compare", help="evaluate several tokenizer checkpoints on the same data: error against "
                                        "bits per pose (or per frame), JSON and a plot")
    s.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help="model.ckpt files, all pose (PCT) or all sequence tokenizers")
    s.add_argument("--data", required=True,
                   help="pose tokenizers: COCO keypoint JSON; sequence tokenizers: a .npz sequence or a folder")
    s.add_argument("--json", help="also write the records (one per checkpoint, one per quantizer prefix for "
                                  "sequence tokenizers) to this JSON file")
    s.add_argument("--plot", metavar="OUT.png", help="draw error against bits to this PNG")
    s.set_defaults(func=_cmd_compare)

    s = sub.add_parser("infer", help="estimate poses on an image, a folder of images or a video")
    s.add_argument("checkpoint", help="an estimator's model.ckpt")
    s.add_argument("input", help="an image, a folder of images or a video")
    s.add_argument("-o", "--output", default="infer_out",
                   help="output folder: overlays and predictions.json (images), an MP4 and a sequence .npz (video)")
    s.add_argument("--boxes", help="person detections [{image_id, category_id, bbox, score}] (video: image_id is "
                                   "the frame index)")
    s.add_argument("--bbox", type=float, nargs=4, metavar=("X", "Y", "W", "H"), help="one person box")
    s.add_argument("--detector", help="a torchvision detection model, e.g. fasterrcnn_resnet50_fpn")
    s.add_argument("--detector-weights", help="local weight file of --detector")
    s.add_argument("--box-score-thr", type=float, default=0.3, help="person box score threshold (default 0.3)")
    s.add_argument("--kpt-thr", type=float, default=0.3, help="joints scored below this are not drawn")
    s.add_argument("--no-flip", action="store_true", help="no flip test")
    s.set_defaults(func=_cmd_infer)

    s = sub.add_parser("lift", help="lift 2D keypoints to root-relative 3D (a lifter checkpoint)")
    s.add_argument("checkpoint", help="a lifter's model.ckpt")
    s.add_argument("input", help="a COCO keypoint or results JSON, a sequence .npz (as posetok infer writes for a "
                                 "video) or a Human3.6M 2D file")
    s.add_argument("-o", "--output", required=True, help="the .npz to write: poses3d (T, K, 3), metres, camera frame")
    s.add_argument("--visualize", metavar="DIR", help="write lift.gif (2D beside 3D, rotating) and frames.png here")
    s.add_argument("--normalization", choices=("image", "box"),
                   help="2D normalisation (default: by the image size when the file has it, else by the person box)")
    s.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"), help="the images' size, when the file "
                                                                                 "does not say it")
    s.add_argument("--no-flip", action="store_true", help="no flip test")
    s.set_defaults(func=_cmd_lift)

    s = sub.add_parser("info", help="a model's kind, skeleton, input size, parameters and GMACs")
    s.add_argument("source", metavar="CONFIG_OR_CKPT", help="a YAML config or a model.ckpt")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("score", help="score a COCO keypoint results file against annotations")
    s.add_argument("predictions", help="COCO keypoint results JSON ([{image_id, category_id, keypoints, score}])")
    s.add_argument("--data", required=True, help="the COCO keypoint annotations")
    s.add_argument("--nms", choices=("oks", "soft-oks", "none"), default="oks")
    s.add_argument("--nms-thr", type=float, help="OKS threshold of oks NMS, the Gaussian's threshold of soft-oks "
                                                      "(default 0.9, as MMPose)")
    s.add_argument("--score-mode", choices=("bbox", "keypoint", "bbox_keypoint"), default="bbox_keypoint")
    s.add_argument("--keypoint-thr", type=float, default=0.2, help="keypoint scores above this enter rescoring")
    s.add_argument("--json", help="also write the metrics to this JSON file")
    s.set_defaults(func=_cmd_score)

    s = sub.add_parser("convert", help="turn another tool's checkpoint into a posetok model.ckpt")
    csub = s.add_subparsers(dest="source", required=True, metavar="SOURCE")
    c = csub.add_parser("mmpose", help="an MMPose 1.x top-down heatmap checkpoint (HRNet or HRFormer)")
    c.add_argument("checkpoint", help="the MMPose .pth")
    c.add_argument("--config", required=True, help="a posetok estimator config describing the same network")
    c.add_argument("-o", "--output", required=True, help="the posetok model.ckpt to write")
    c.set_defaults(func=_cmd_convert)

    s = sub.add_parser("tokenize", help="COCO keypoint file or pose sequence (.npz) -> tokens (.npz)")
    s.add_argument("checkpoint")
    s.add_argument("annotations", metavar="INPUT",
                   help="pose tokenizer: COCO keypoint JSON; sequence tokenizer: a .npz with poses (T, N, D)")
    s.add_argument("-o", "--output", required=True, help="output .npz")
    s.add_argument("--images", help="image-guided pose tokenizers: the image folder of INPUT")
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

    s = sub.add_parser("demo", help="tokenizer (default): train pct_small on synthetic poses and report on held-out "
                                     "and real poses; estimator: train on the bundled real frames, report on the "
                                     "held-out ones")
    s.add_argument("what", nargs="?", choices=("tokenizer", "estimator"), default="tokenizer")
    s.add_argument("--out", help="report folder (default report/, or report_estimator/)")
    s.add_argument("--minutes", type=float, help="training time bound (default 4, estimator 10)")
    s.add_argument("--steps", type=int, default=3000, help="tokenizer: training step bound (quantizing from a quarter)")
    s.add_argument("--num-train", type=int, default=100_000, help="tokenizer: synthetic training poses")
    s.set_defaults(func=_cmd_demo)

    s = sub.add_parser("export", help="export a model (tokenizers: encoder and decoder; estimators: network and "
                                      "decoding) to ONNX or TorchScript, then check it against PyTorch")
    s.add_argument("checkpoint")
    s.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    s.add_argument("-o", "--output", required=True,
                   help="FILE.onnx / FILE.pt: tokenizers write FILE.encoder.<ext> and FILE.decoder.<ext>, "
                        "estimators FILE.<ext>")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("bench", help="speed benchmarks (JSON out)")
    bsub = s.add_subparsers(dest="target", required=True, metavar="TARGET")
    b = bsub.add_parser("tokenizer", help="encode+decode poses/s, batch-1 latency, training samples/s")
    b.add_argument("--preset", default="pct_base")
    b.add_argument("--skeleton", default="coco17")
    b.add_argument("--batch", type=int, default=512)
    b.add_argument("--train-batch", type=int, default=256)
    b.add_argument("--seconds", type=float, default=10.0, help="time spent on each measurement")
    b.add_argument("--train", action="store_true",
                   help="training samples/s of posetok train with --config beside a plain loop of the same model")
    b.add_argument("--config", default=None, help="with --train: a tokenizer or sequence config "
                                                  "(default configs/tokenizer/pct_base_coco17.yaml)")
    b.add_argument("overrides", nargs="*", metavar="key=value", help="with --train: config overrides")
    b.add_argument("--steps", type=int, default=200, help="with --train: timed steps of each side")
    b.add_argument("--warmup", type=int, default=20, help="with --train: untimed first steps")
    b.add_argument("--block", type=int, default=10, help="with --train: steps per alternating block")
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
    b = bsub.add_parser("estimator", help="top-down estimator: inference crops/s and training images/s beside a "
                                          "plain PyTorch loop, the image pipeline's samples/s, peak memory")
    b.add_argument("--config", required=True, help="an estimator config, e.g. configs/estimator/small_real.yaml")
    b.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    b.add_argument("--batch", type=int, default=32, help="crops per inference call")
    b.add_argument("--train-batch", type=int, default=16, help="images per training step")
    b.add_argument("--workers", type=int, help="DataLoader workers of the real pipeline (default: the config's)")
    b.add_argument("--device", default="auto", help="auto, cpu or cuda")
    b.add_argument("--precision", choices=("32", "bf16"), default="32", help="fp32, or bf16 autocast")
    b.add_argument("--seconds", type=float, default=10.0, help="time spent on each measurement")
    b.add_argument("--json", help="also write the result here")
    b.set_defaults(func=_cmd_bench)
    b = bsub.add_parser("lifter", help="lifter: frames/s of posetok's lift path (CPU fp32) against a plain forward "
                                       "of the same network")
    b.add_argument("--config", required=True, help="a lifter config, e.g. configs/lifter/transformer_h36m_243.yaml")
    b.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    b.add_argument("--batch", type=int, default=8, help="windows per call")
    b.add_argument("--frames", type=int, help="frames per window (default: the config's model.frames)")
    b.add_argument("--flip", action="store_true", help="also time the flip test (two passes)")
    b.add_argument("--seconds", type=float, default=10.0, help="time spent on each measurement")
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
