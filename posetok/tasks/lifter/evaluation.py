"""``posetok eval`` of a lifter: the Human3.6M protocols on Human3.6M files, on held-out synthetic clips, or on a file
of 2D-3D pairs, and the figures of ``--visualize``.

``--data`` takes:

* ``synthetic``: ``data.synthetic_test`` clips of the checkpoint's synthetic setting, drawn with a seed no training
  or validation used (unseen people, motions and cameras);
* a Human3.6M folder or file: MMPose's ``h36m_test.npz`` (``cameras.pkl`` beside it is used when present), or
  VideoPose3D's ``data_3d_h36m.npz`` with ``cameras.pkl`` beside it (the extrinsics) and, when present beside it,
  the 2D file the checkpoint was trained with (else ``data_2d_h36m_gt.npz``, else the 2D projected through the
  cameras); the test subjects S9 and S11;
* a ``.npz`` of pairs: ``poses_2d`` ``(N, T, K_in, 2|3)`` pixels, ``poses_3d`` ``(N, T, K_out, 3)`` metres (camera
  frame; made root-relative here), optionally ``image_size`` ``(w, h)`` and ``action`` ``(N,)``.

Metrics in mm over every frame (all root-relative): ``mpjpe`` (protocol 1), ``n_mpjpe`` (protocol 3), ``mpjve``
(velocity, per clip), with ``procrustes`` ``pa_mpjpe`` (protocol 2, float64 on the CPU), ``per_joint`` and
``per_action`` (frames weighted within an action, ``average`` = the mean of the action means).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from ...codecs.lifting import LiftingCodec, denormalize_2d, normalize_2d
from ...config import build_config
from ...data.archives import npz_fields, read_npz
from ...data.h36m import TEST_SUBJECTS, load_mmpose_cameras, load_mmpose_h36m, load_videopose3d
from ...errors import PosetokError, field_error
from ...metrics.mpjpe import frame_errors, mpjve, per_action
from ...models.lifter import root_joints
from ...skeletons import get_skeleton
from .data import TEST_SEED, Clip, synthetic_clips
from .inputs import check_actions
from .module import apply_masks


@dataclass
class EvalSet:
    """Clips with 2D (pixels) and 3D ground truth, and where they came from."""

    clips: list[Clip]
    form: str  # synthetic | mmpose | videopose3d | pairs
    keypoints_2d: str
    has_actions: bool


def checkpoint_config(codec: LiftingCodec) -> Any:
    """The resolved training config the checkpoint keeps (defaults where it keeps none)."""
    cfg = codec.info.get("config") or {}
    return build_config("lifter", OmegaConf.create(cfg) if cfg else {"model": {
        "skeleton_in": codec.skeleton_in.name, "skeleton_out": codec.skeleton_out.name, "frames": codec.frames}})


def _from_h36m(clips: Any, actions: list[str] | None, source: str, form: str, two_d: str) -> EvalSet:
    clips = clips.filter(subjects=list(TEST_SUBJECTS), actions=actions)
    if not len(clips):
        raise PosetokError(f"{source}: no clip of the test subjects {', '.join(TEST_SUBJECTS)}"
                           + (f" and actions {', '.join(actions)}" if actions else ""))
    out = [Clip(c.poses_2d, c.poses_3d, c.image_size, action=c.action_name, subject=c.subject,
                name=f"{c.subject} {c.action} {c.camera_id}") for c in clips]
    return EvalSet(out, form, two_d, True)


def _videopose3d(path: Path, cfg: Any, actions: list[str] | None) -> EvalSet:
    folder = path.parent
    cams = folder / "cameras.pkl"
    if not cams.is_file():
        raise field_error(path, "cameras", f"the camera-frame 3D needs each subject's extrinsics: put MMPose's "
                                           f"cameras.pkl beside it ({cams} not found)")
    two_d = None
    for name in ([Path(cfg.data.h36m_2d).name] if cfg.data.h36m_2d else []) + ["data_2d_h36m_gt.npz"]:
        if (folder / name).is_file():
            two_d = folder / name
            break
    cameras = load_mmpose_cameras(cams)
    try:
        clips = load_videopose3d(path, two_d, cameras=cameras)
    except PosetokError as e:
        if str(e).startswith("cameras:"):
            raise PosetokError(f"{cams}: {str(e)[len('cameras: '):]}; needed by {path}") from None
        raise
    return _from_h36m(clips, actions, str(path), "videopose3d", str(two_d) if two_d else "projected")


def _pairs(path: Path, cfg: Any) -> EvalSet:
    f = read_npz(path, ("poses_2d", "poses_3d", "image_size", "action"))
    p2, p3 = f["poses_2d"], f["poses_3d"]
    size = tuple(float(v) for v in f["image_size"].ravel()) if "image_size" in f else None
    acts = [str(a) for a in f["action"].ravel()] if "action" in f else None
    if p2.ndim == 3:
        p2, p3 = p2[None], p3[None]
    k_in, k_out = cfg.model.skeleton_in, cfg.model.skeleton_out
    if p2.ndim != 4 or p2.shape[-1] not in (2, 3):
        raise field_error(path, "poses_2d", f"expected (N, T, K, 2 or 3), got shape {p2.shape}")
    if p3.ndim != 4 or p3.shape[-1] != 3:
        raise field_error(path, "poses_3d", f"expected (N, T, K, 3), got shape {p3.shape}")
    if p2.shape[:2] != p3.shape[:2]:
        raise field_error(path, "poses_3d", f"{p3.shape[0]} clips of {p3.shape[1]} frames, 'poses_2d' has "
                                            f"{p2.shape[0]} of {p2.shape[1]}: 2D and 3D must have the same frames")
    for fld, arr, name in (("poses_2d", p2, k_in), ("poses_3d", p3, k_out)):
        if arr.shape[2] != get_skeleton(name).num_joints:
            raise field_error(path, fld, f"{arr.shape[2]} joints; the checkpoint's skeleton is '{name}' "
                                         f"({get_skeleton(name).num_joints})")
    if not np.isfinite(p3).all():
        raise field_error(path, "poses_3d", "NaN or infinite values")
    roots = list(root_joints(get_skeleton(k_out)))
    p3 = p3 - p3[:, :, roots].mean(2, keepdims=True)
    if p2.shape[-1] == 2:
        p2 = np.concatenate([p2, np.isfinite(p2).all(-1, keepdims=True).astype(p2.dtype)], axis=-1)
    if acts is not None and len(acts) != len(p2):
        raise field_error(path, "action", f"{len(acts)} names for {len(p2)} clips")
    clips = [Clip(p2[i].astype(np.float64), p3[i].astype(np.float32), size, action=acts[i] if acts else "",
                  name=f"{path.name}[{i}]") for i in range(len(p2))]
    return EvalSet(clips, "pairs", str(path), acts is not None)


def eval_set(codec: LiftingCodec, data: str | Path, actions: list[str] | None = None,
             noise_px: float | None = None, drop_prob: float | None = None) -> EvalSet:
    """The clips ``--data`` names (module docstring), filtered by Human3.6M ``actions``."""
    cfg = checkpoint_config(codec)
    acts = check_actions(actions)
    if str(data) == "synthetic":
        if acts:
            raise PosetokError("--actions: synthetic data has no Human3.6M actions")
        clips = synthetic_clips(cfg.model, cfg.data, cfg.data.synthetic_test, cfg.data.seed + TEST_SEED,
                                noise_px=noise_px, drop_prob=drop_prob)
        noise = cfg.data.noise_px if noise_px is None else noise_px
        return EvalSet(clips, "synthetic", f"synthetic, noise {noise:g} px", False)
    if noise_px is not None or drop_prob is not None:
        raise PosetokError("--noise-px/--drop-prob: apply to --data synthetic only")
    path = Path(data)
    if path.is_dir():
        if (path / "h36m_test.npz").is_file():
            path = path / "h36m_test.npz"
        elif (path / "data_3d_h36m.npz").is_file():
            path = path / "data_3d_h36m.npz"
        else:
            raise PosetokError(f"{data}: no Human3.6M files (h36m_test.npz, or data_3d_h36m.npz with cameras.pkl)")
    fields = set(npz_fields(path))
    if "positions_3d" in fields:
        return _videopose3d(path, cfg, acts)
    if "imgname" in fields:
        cams = path.parent / "cameras.pkl"
        clips = load_mmpose_h36m(path, cams if cams.is_file() else None)
        return _from_h36m(clips, acts, str(path), "mmpose", str(path))
    if "poses_2d" in fields and "poses_3d" in fields:
        if acts:
            es = _pairs(path, cfg)
            return replace(es, clips=[c for c in es.clips if c.action.split(" ")[0] in acts])
        return _pairs(path, cfg)
    if "positions_2d" in fields:
        raise field_error(path, "positions_3d", "missing: this is a 2D file; evaluation needs the 3D ground truth "
                                                "(data_3d_h36m.npz, with this file beside it)")
    raise field_error(path, "positions_3d", f"missing; expected a Human3.6M file (positions_3d, or imgname + S) or "
                                            f"2D-3D pairs (poses_2d, poses_3d); the archive has {sorted(fields)}")


def evaluate(codec: LiftingCodec, es: EvalSet, flip: bool | None = None, procrustes: bool = False,
             per_joint: bool = False, per_action_table: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lift every clip of ``es`` (its image size: the image rule) and score it (module docstring).

    Returns the metrics (mm) and the arrays per clip: ``pred``, ``gt`` (metres), ``poses_2d``, ``names``.
    """
    if codec.mapping != "2d_3d":
        return evaluate_reconstruction(codec, es)
    if per_action_table and not es.has_actions:
        raise PosetokError(f"--per-action: {es.form} data has no action names")
    preds, gts, frame_actions = [], [], []
    t0 = time.perf_counter()
    for c in es.clips:
        inputs, _ = codec.encode(c.poses_2d, c.image_size, per_frame=c.independent)
        preds.append(codec.predict_clip(inputs, flip=flip))
        gts.append(c.poses_3d)
        frame_actions += [c.action] * len(c)
    seconds = time.perf_counter() - t0
    pred = np.concatenate(preds).astype(np.float64) * 1000.0
    gt = np.concatenate(gts).astype(np.float64) * 1000.0
    err = frame_errors(pred, gt)
    vel = [mpjve(p * 1000.0, g * 1000.0, axis=0) for p, g in zip(preds, gts) if len(p) > 1]
    frames_vel = [len(p) - 1 for p in preds if len(p) > 1]
    metrics: dict[str, Any] = {
        "unit": "mm", "mpjpe": float(err.mean()), "n_mpjpe": float(frame_errors(pred, gt, "n").mean()),
        "mpjve": float(np.average(vel, weights=frames_vel)) if vel else float("nan"),
    }
    pa = frame_errors(pred, gt, "pa") if procrustes else None
    if pa is not None:
        metrics["pa_mpjpe"] = float(pa.mean())
    if per_joint:
        names = codec.skeleton_out.joint_names
        dist = np.linalg.norm(pred - gt, axis=-1)
        metrics["per_joint"] = {n: float(v) for n, v in zip(names, dist.mean(0))}
    if per_action_table:
        metrics["per_action"] = per_action(err, np.array(frame_actions))
        if pa is not None:
            metrics["per_action_pa"] = per_action(pa, np.array(frame_actions))
    total = len(pred)
    metrics.update({"num_clips": len(es.clips), "num_frames": total, "frames_per_s": total / max(seconds, 1e-9),
                    "flip_test": codec.flip_test if flip is None else bool(flip), "data_form": es.form,
                    "keypoints_2d": es.keypoints_2d, "window": codec.frames, "device": str(codec.device)})
    arrays = {"pred": preds, "gt": gts, "poses_2d": [c.poses_2d for c in es.clips], "names": [c.name for c in es.clips]}
    return metrics, arrays


def evaluate_reconstruction(codec: LiftingCodec, es: EvalSet, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """A masked-modelling checkpoint (``2d_2d`` / ``3d_3d``): its training masks (seeded) on every clip, the
    error of the reconstruction on all visible joints and on the masked ones (pixels for 2D, mm for 3D)."""
    cfg = checkpoint_config(codec)
    mk = cfg.mask
    gen = torch.Generator().manual_seed(seed)
    all_err, masked_err = [], []
    for c in es.clips:
        if codec.mapping == "2d_2d":
            x, params = normalize_2d(c.poses_2d, "image" if c.image_size else "box", c.image_size,
                                     per_frame=c.independent)
            vis = x[..., 2] > 0
        else:
            x, vis = c.poses_3d.astype(np.float32), np.ones(c.poses_3d.shape[:2], bool)
        xt, vt = torch.from_numpy(x)[None], torch.from_numpy(vis)[None]
        xm, vm, masked = apply_masks(xt, vt, mk.joint_ratio, mk.frame_ratio, mk.noise_std, gen,
                                     coords=2 if codec.mapping == "2d_2d" else 3)
        out = codec.predict_clip(xm[0].numpy(), visible=None if codec.mapping == "2d_2d" else vm[0].numpy(),
                                 flip=False)
        if codec.mapping == "2d_2d":
            d = np.linalg.norm(denormalize_2d(out, params)[..., :2] - c.poses_2d[..., :2], axis=-1)
        else:
            d = np.linalg.norm(out - c.poses_3d, axis=-1) * 1000.0
        all_err.append(d[vis])
        masked_err.append(d[masked[0].numpy()])
    unit = "px" if codec.mapping == "2d_2d" else "mm"
    a, m = np.concatenate(all_err), np.concatenate(masked_err)
    return ({"unit": unit, "mapping": codec.mapping, "recon_error": float(a.mean()),
             "recon_error_masked": float(m.mean()) if m.size else float("nan"), "num_clips": len(es.clips),
             "mask": {"joint_ratio": mk.joint_ratio, "frame_ratio": mk.frame_ratio, "noise_std": mk.noise_std},
             "data_form": es.form}, {})


def save_eval_figures(out: str | Path, codec: LiftingCodec, es: EvalSet, arrays: dict[str, Any],
                      max_frames: int = 120) -> list[str]:
    """``--visualize``: the first clip lifted (2D beside the 3D output and the truth, rotating: ``lift.gif``; a strip
    of frames: ``frames.png``) and the mean error per joint over all frames (``error_per_joint.png``)."""
    from ...viz import save_error_per_joint
    from ...viz.lift import save_lift_animation, save_lift_frames

    out = Path(out)
    if not arrays.get("pred"):
        return []
    i = 0
    c = es.clips[i]
    title = f"{c.name}: {codec.skeleton_in.name} 2D -> {codec.skeleton_out.name} 3D"
    paths = [save_lift_animation(out / "lift.gif", c.poses_2d, arrays["pred"][i], codec.skeleton_in,
                                 codec.skeleton_out, gt_3d=c.poses_3d, max_frames=max_frames, title=title),
             save_lift_frames(out / "frames.png", c.poses_2d, arrays["pred"][i], codec.skeleton_in, codec.skeleton_out,
                              gt_3d=c.poses_3d, title=title)]
    errors = np.concatenate([np.linalg.norm(p - g, axis=-1) for p, g in zip(arrays["pred"], arrays["gt"])]) * 1000
    paths.append(save_error_per_joint(out / "error_per_joint.png", errors, codec.skeleton_out, unit="mm"))
    return [str(p) for p in paths]
