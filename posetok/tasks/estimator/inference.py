"""``posetok infer``: an estimator on an image, a folder of images or a video.

Images give an overlay each and one COCO results JSON (``predictions.json``; ``image_id`` is the number in the
file name when it is one, else the image's index in sorted order; ``file_name`` is added). A video gives an MP4
overlay and a sequence ``.npz`` (``poses (T, K, 3)``, ``mask (T,)``, ``image_size`` (w, h), ``fps``,
``skeleton``) that ``posetok tokenize`` and the lifter read. On a video one person is followed: each frame's box
is the extent of the previous frame's confident joints (as top-down trackers do), started from ``--bbox``, the
detection file (frame index = ``image_id``), a detector or the whole frame.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...data.detections import load_detections
from ...data.images import VideoReader, VideoWriter, is_video, list_images, read_image
from ...errors import PosetokError
from ...io import atomic_path, write_json
from ...viz.overlay import draw_pose_on_image, save_image
from .predictor import TopdownEstimator, check_boxes

#: Detection boxes ``(n, 4)`` and scores ``(n,)`` by image id (video: frame index); None without a detection file.
Dets = dict[int, tuple[np.ndarray, np.ndarray]] | None


def _image_id(path: Path, index: int) -> int:
    digits = "".join(ch for ch in path.stem if ch.isdigit())
    return int(digits) if digits and path.stem.lstrip("0123456789_-") == "" else index


def _fixed_boxes(boxes_file: str | Path | None, bbox: Any, score_thr: float) -> tuple[Dets, Any]:
    """The detection file's boxes and scores by image id (None without a file; an image it has no box for has
    no people), and ``--bbox`` as a ``(1, 4)`` array."""
    dets: Dets = None
    if boxes_file is not None:
        dets = {}
        d = load_detections(boxes_file, score_thr=score_thr)
        for i in np.unique(d.image_ids):
            dets[int(i)] = (d.boxes[d.image_ids == i], d.scores[d.image_ids == i])
    return dets, (np.asarray(bbox, np.float64)[None] if bbox is not None else None)


def _progress(done: int, total: int | None, t0: float, what: str) -> None:
    rate = done / max(time.monotonic() - t0, 1e-9)
    of = f"/{total}" if total else ""
    print(f"\r{done}{of} {what}, {rate:.1f}/s", end="", file=sys.stderr, flush=True)


def keypoint_box(pose: np.ndarray, thr: float, image_shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    """The xywh extent of the joints scored above ``thr`` (None with fewer than 3 such joints, or, given the
    frame's ``image_shape``, when the extent lies outside the frame)."""
    ok = pose[:, 2] > thr
    if ok.sum() < 3:
        return None
    xy = pose[ok, :2]
    lo, hi = xy.min(0), xy.max(0)
    box = np.array([lo[0], lo[1], max(hi[0] - lo[0], 1.0), max(hi[1] - lo[1], 1.0)], np.float64)
    if image_shape is not None:
        h, w = image_shape[:2]
        if box[0] >= w or box[1] >= h or box[0] + box[2] <= 0 or box[1] + box[3] <= 0:
            return None
    return box


def infer_images(est: TopdownEstimator, paths: list[Path], out: Path, boxes: Dets, bbox: Any, kpt_thr: float,
                 detector: Any = None, boxes_name: str = "--boxes") -> dict[str, Any]:
    """Predict every person of every image; write overlays and ``predictions.json`` under ``out``."""
    results = []
    t0 = time.monotonic()
    try:
        _infer_images(est, paths, out, boxes, bbox, kpt_thr, detector, boxes_name, results, t0)
    finally:
        print(file=sys.stderr)  # ends the progress line, before an error message too
    write_json(out / "predictions.json", results, indent=None)
    return {"images": len(paths), "people": len(results), "predictions": str(out / "predictions.json"),
            "overlays": str(out)}


def _infer_images(est: TopdownEstimator, paths: list[Path], out: Path, boxes: Dets, bbox: Any, kpt_thr: float,
                  detector: Any, boxes_name: str, results: list[dict[str, Any]], t0: float) -> None:
    for n, path in enumerate(paths):
        image = read_image(path)
        image_id = _image_id(path, n)
        if bbox is not None:
            b, s = check_boxes(bbox, image.shape, "--bbox"), np.ones(1)
        elif boxes is not None:
            b, s = boxes.get(image_id, (np.zeros((0, 4)), np.zeros(0)))
            if len(b):
                check_boxes(b, image.shape, f"{boxes_name}: image_id {image_id} ({path.name})")
        elif detector is not None:
            b, s = detector(image)
        else:
            b, s = np.array([[0.0, 0.0, image.shape[1], image.shape[0]]]), np.ones(1)
        poses = est.predict(image, b) if len(b) else np.zeros((0, est.skeleton.num_joints, 3), np.float32)
        save_image(out / f"{path.stem}.jpg", draw_pose_on_image(image, poses, est.skeleton, kpt_thr))
        for pose, score in zip(poses, s):
            results.append({"image_id": image_id, "file_name": path.name, "category_id": 1,
                            "keypoints": pose.astype(np.float64).ravel().round(3).tolist(), "score": float(score)})
        _progress(n + 1, len(paths), t0, "images")


def infer_video(est: TopdownEstimator, path: Path, out: Path, boxes: Dets, bbox: Any, kpt_thr: float,
                detector: Any = None, boxes_name: str = "--boxes") -> dict[str, Any]:
    """Follow one person through a video; write ``<stem>.mp4`` (overlay) and ``<stem>.npz`` under ``out``."""
    reader = VideoReader(path)
    poses: list[np.ndarray] = []
    mask: list[bool] = []
    t0 = time.monotonic()
    # a container that does not say its rate (fps 0) still gets a playable overlay; the .npz keeps the 0
    with VideoWriter(out / f"{path.stem}.mp4", reader.fps if reader.fps > 0 else 25.0, reader.size) as writer:
        try:
            _follow(est, reader, writer, boxes, bbox, kpt_thr, detector, boxes_name, poses, mask, t0)
        finally:
            print(file=sys.stderr)  # ends the progress line, before an error message too
    if not poses:
        raise PosetokError(f"{path}: no frame could be read")
    npz = out / f"{path.stem}.npz"
    with atomic_path(npz) as tmp:
        np.savez_compressed(tmp, poses=np.stack(poses).astype(np.float32), mask=np.array(mask),
                            image_size=np.array(reader.size, np.int64), fps=np.float64(reader.fps),
                            skeleton=np.array(est.skeleton.name))
    return {"frames": len(poses), "frames_with_pose": int(np.sum(mask)), "video": str(out / f"{path.stem}.mp4"),
            "sequence": str(npz)}


def _follow(est: TopdownEstimator, reader: VideoReader, writer: VideoWriter, boxes: Dets, bbox: Any, kpt_thr: float,
            detector: Any, boxes_name: str, poses: list[np.ndarray], mask: list[bool], t0: float) -> None:
    """The frames of ``reader``, one person followed: poses and masks appended, overlays written."""
    k = est.skeleton.num_joints
    box: np.ndarray | None = None
    for t, frame in enumerate(reader):
        if box is None:
            if bbox is not None:
                box = check_boxes(bbox, frame.shape, "--bbox")[0]
            elif boxes is not None and t in boxes and len(boxes[t][0]):
                b, s = boxes[t]
                box = check_boxes(b, frame.shape, f"{boxes_name}: image_id {t} (frame {t})")[int(np.argmax(s))]
            elif detector is not None:
                b, s = detector(frame)
                box = b[int(np.argmax(s))] if len(b) else None
            if box is None:
                box = np.array([0.0, 0.0, frame.shape[1], frame.shape[0]])
        pose = est.predict(frame, box[None])[0]
        found = (pose[:, 2] > kpt_thr).any()
        poses.append(pose if found else np.zeros((k, 3), np.float32))
        mask.append(bool(found))
        writer.write(draw_pose_on_image(frame, pose[None], est.skeleton, kpt_thr))
        box = keypoint_box(pose, kpt_thr, frame.shape)  # None: look again from the start box next frame
        _progress(t + 1, reader.num_frames or None, t0, "frames")


def infer_file(est: TopdownEstimator, source: str | Path, output: str | Path, boxes: str | Path | None = None,
               bbox: Any = None, kpt_thr: float = 0.3, flip: bool = True, box_score_thr: float = 0.3,
               detector: Any = None) -> dict[str, Any]:
    """``posetok infer``: ``source`` an image, a folder of images or a video; outputs under the folder
    ``output`` (see the module docstring). ``detector``: ``image -> (boxes (N, 4) xywh, scores (N,))``."""
    source, out = Path(source), Path(output)
    if bbox is not None and boxes is not None:
        raise PosetokError("--bbox and --boxes: give one of them")
    if not source.exists():
        raise PosetokError(f"{source}: input not found")
    dets, fixed = _fixed_boxes(boxes, bbox, box_score_thr)
    paths = list_images(source) if source.is_dir() else [source]
    out.mkdir(parents=True, exist_ok=True)
    # Everything is written to a temporary folder beside ``out`` and moved in at the end, so a bad image or
    # frame halfway leaves no partial set of outputs.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out))
    saved, est.flip_test = est.flip_test, flip
    try:
        if is_video(source):
            summary = infer_video(est, source, tmp, dets, fixed, kpt_thr, detector, str(boxes))
        else:
            summary = infer_images(est, paths, tmp, dets, fixed, kpt_thr, detector, str(boxes))
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        est.flip_test = saved
        shutil.rmtree(tmp, ignore_errors=True)
    return {k: (v.replace(str(tmp), str(out)) if isinstance(v, str) else v) for k, v in summary.items()}
