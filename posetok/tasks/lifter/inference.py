"""``posetok lift``: a lifter on a 2D file (:mod:`posetok.tasks.lifter.inputs`), written as one ``.npz``.

Output fields:

* ``poses3d`` ``(T, K_out, 3)`` float32: root-relative 3D in metres in the camera frame (``x`` right, ``y`` down,
  ``z`` away from the camera; the root joint, or the hips' midpoint, is 0). For a COCO file ``T`` counts people
  (one row each, in file order, with ``image_id`` and ``ann_id`` or ``score``); for a Human3.6M file the clips
  follow each other, with ``subject``, ``action``, ``camera`` per frame.
* ``mask`` ``(T,)``: False where the input frame held no pose; its 2D was interpolated from the neighbouring frames
  (:func:`~posetok.codecs.lifting.fill_missing_frames`) before lifting, so its 3D is an estimate.
* ``poses_2d`` ``(T, K_in, 3)``: the input in pixels; ``skeleton`` (output) and ``skeleton_2d`` (input) names.
* ``normalization``: ``"image"`` (the file gave the image size, also in ``image_size``) or ``"box"`` (normalised by
  the person's box: no image size was known), per track in ``normalization_per_track`` for files of several.
* ``units`` ``"m"``, ``frame`` (the coordinate frame in words), ``fps`` when the input had it, ``flip_test``.

The summary returned (and printed) adds the mean and spread of the main bone lengths (thigh, shank, upper arm,
forearm), a sanity check of the 3D on any input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...codecs.lifting import NORMALIZATIONS, LiftingCodec
from ...errors import PosetokError
from ...io import atomic_path
from ...skeletons import Skeleton
from .inputs import Track, read_tracks

FRAME = "camera frame (x right, y down, z forward), root-relative, metres"
#: Bones whose lengths the summary reports, by joint names (either side).
BONES = {"thigh": ("hip", "knee"), "shank": ("knee", ("foot", "ankle")), "upper_arm": ("shoulder", "elbow"),
         "forearm": ("elbow", "wrist")}


def bone_stats(poses3d: np.ndarray, skeleton: Skeleton, mask: np.ndarray | None = None) -> dict[str, Any]:
    """Mean, standard deviation and 5-95 % range (metres) of each bone of :data:`BONES`, both sides pooled, over
    the frames ``mask`` keeps."""
    names = skeleton.joint_names
    p = poses3d if mask is None else poses3d[np.asarray(mask, bool)]
    out: dict[str, Any] = {}
    for bone, (a, b) in BONES.items():
        lengths = []
        for side in ("left", "right"):
            ends = []
            for part in (a, b):
                options = part if isinstance(part, tuple) else (part,)
                found = [f"{side}_{o}" for o in options if f"{side}_{o}" in names]
                ends.append(names.index(found[0]) if found else None)
            if None not in ends and len(p):
                lengths.append(np.linalg.norm(p[:, ends[0]] - p[:, ends[1]], axis=-1))
        if lengths:
            v = np.concatenate(lengths)
            out[bone] = {"mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4),
                         "p5": round(float(np.percentile(v, 5)), 4), "p95": round(float(np.percentile(v, 95)), 4)}
    return out


def _lift_track(codec: LiftingCodec, t: Track, normalization: str | None, flip: bool | None,
                image_size: tuple[float, float] | None) -> tuple[np.ndarray, list[str]]:
    """``(T, K_out, 3)`` for one track and the rule used per item."""
    if not t.independent:
        size = image_size or t.image_size
        mode = normalization or ("image" if size is not None else "box")
        res = codec.lift(t.poses, size, t.mask, mode, flip)
        return res["poses3d"], [res["normalization"]]
    # separate people: each is normalised on its own and lifted as a one-frame clip
    sizes = t.image_sizes if t.image_sizes is not None else np.full((len(t.poses), 2), np.nan)
    out = np.zeros((len(t.poses), codec.skeleton_out.num_joints, 3), np.float32)
    modes = []
    for key in np.unique(np.nan_to_num(sizes, nan=-1.0), axis=0):
        sel = (np.nan_to_num(sizes, nan=-1.0) == key).all(1)
        size = image_size or (None if key[0] < 0 else (float(key[0]), float(key[1])))
        mode = normalization or ("image" if size is not None else "box")
        inputs, _ = codec.encode(t.poses[sel], size, t.mask[sel], mode, per_frame=True)
        idx = np.zeros((int(sel.sum()), codec.frames), np.int64) + np.arange(int(sel.sum()))[:, None]
        out[sel] = codec.predict(inputs[idx], flip=flip)[:, 0]
        modes.append(mode)
    return out, modes


def lift_file(codec: LiftingCodec, source: str | Path, output: str | Path, visualize: str | Path | None = None,
              flip: bool | None = None, normalization: str | None = None,
              image_size: tuple[float, float] | None = None) -> dict[str, Any]:
    """``posetok lift``: lift ``source`` and write ``output`` (``.npz``, fields in the module docstring); with
    ``visualize`` also ``lift.gif`` (2D beside 3D, rotating view) and ``frames.png`` there. Returns a summary."""
    if codec.mapping != "2d_3d":
        raise PosetokError(f"{getattr(codec, 'source', 'checkpoint')}: field 'mapping': a {codec.mapping} checkpoint "
                           "reconstructs; posetok lift needs a 2d_3d lifter")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise PosetokError(f"--normalization: expected one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
    out_path = Path(output)
    if out_path.suffix.lower() != ".npz":
        raise PosetokError(f"{output}: -o: expected a .npz file name")
    tracks = read_tracks(source, codec.skeleton_in)
    for t in tracks:
        has_size = image_size is not None or t.image_size is not None or (
            t.image_sizes is not None and np.isfinite(t.image_sizes).all())
        if normalization == "image" and not has_size:
            raise PosetokError(f"{source}: field 'image_size': missing; --normalization image needs it (or give "
                               "--image-size W H)")
    poses3d, modes = [], []
    for t in tracks:
        p, m = _lift_track(codec, t, normalization, flip, image_size)
        poses3d.append(p)
        modes.append(m)
    flat = sorted({m for ms in modes for m in ms})
    fields: dict[str, Any] = {
        "poses3d": np.concatenate(poses3d).astype(np.float32),
        "mask": np.concatenate([t.mask for t in tracks]),
        "poses_2d": np.concatenate([t.poses for t in tracks]).astype(np.float32),
        "skeleton": np.array(codec.skeleton_out.name), "skeleton_2d": np.array(codec.skeleton_in.name),
        "normalization": np.array(flat[0] if len(flat) == 1 else "mixed"),
        "units": np.array("m"), "frame": np.array(FRAME),
        "flip_test": np.array(codec.flip_test if flip is None else bool(flip)),
    }
    if len(tracks) > 1:
        fields["normalization_per_track"] = np.array([",".join(m) for m in modes])
    size = image_size or (tracks[0].image_size if len(tracks) == 1 else None)
    if size is not None:
        fields["image_size"] = np.array(size, np.float64)
    if len(tracks) == 1 and tracks[0].meta.get("fps"):
        fields["fps"] = np.float64(tracks[0].meta["fps"])
    for key in ("image_id", "ann_id", "score"):
        if all(key in t.meta for t in tracks):
            fields[key] = np.concatenate([np.asarray(t.meta[key]) for t in tracks])
    for key in ("subject", "action", "camera"):
        if all(key in t.meta for t in tracks):
            fields[key] = np.concatenate([np.full(len(t.poses), t.meta[key]) for t in tracks])
    figures: list[str] = []
    if visualize:
        figures = _figures(Path(visualize), codec, tracks[0], poses3d[0])
    with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **fields)
    summary: dict[str, Any] = {}
    if "box" in flat and not codec.box_trained:
        summary["warning"] = ("normalised by the person box, which this checkpoint never saw in training "
                              "(data.box_norm_prob 0): give the image size (--image-size W H) if it is known")
    return {**summary, "output": str(out_path), "frames": int(len(fields["poses3d"])), "tracks": len(tracks),
            "skeleton_2d": codec.skeleton_in.name, "skeleton": codec.skeleton_out.name,
            "normalization": str(fields["normalization"]), "units": "m", "frame": FRAME,
            "bones_m": bone_stats(fields["poses3d"], codec.skeleton_out, fields["mask"]),
            **({"figures": figures} if figures else {})}


def _figures(folder: Path, codec: LiftingCodec, track: Track, poses3d: np.ndarray) -> list[str]:
    from ...viz.lift import save_lift_animation, save_lift_frames

    keep = track.mask if track.mask.any() else np.ones(len(track.mask), bool)
    p2, p3 = track.poses[keep], poses3d[keep]
    title = f"{track.name}: {codec.skeleton_in.name} 2D -> {codec.skeleton_out.name} 3D"
    fps = float(track.meta.get("fps") or 25.0)
    return [str(save_lift_animation(folder / "lift.gif", p2, p3, codec.skeleton_in, codec.skeleton_out, fps=fps,
                                    title=title)),
            str(save_lift_frames(folder / "frames.png", p2, p3, codec.skeleton_in, codec.skeleton_out, title=title))]
