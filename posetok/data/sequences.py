"""Pose sequence files as users have them: reading, windowing and normalisation.

File format
-----------
One ``.npz`` archive per sequence (a track of one person):

* ``poses``: float ``(T, N, D)``: ``T`` frames, ``N`` keypoints in the order of a :class:`~posetok.skeletons.Skeleton`,
  ``D`` channels. The caller says what the channels are (``coords``): ``"2d"`` = ``x, y`` (D = 2), ``"2d+conf"`` =
  ``x, y, confidence`` (D = 3), ``"3d"`` = ``x, y, z`` (D = 3). Units are the file's own (pixels, metres): nothing
  here depends on them.
* ``mask`` (optional): bool-like ``(T,)``, True where the frame holds a pose (a tracker may lose the person).
  Missing means every frame is valid. Values in masked-out frames are ignored and may be NaN; they are zero-filled.

A dataset root holds ``train/``, ``val/`` and ``test/`` folders of such files (:func:`list_sequences`); a single
``.npz`` path is accepted too. Other fields in an archive are ignored.

Normalisation rule (:class:`SequenceNormalizer`)
------------------------------------------------
Every window of frames is scaled as a whole and root-centred either as a whole or frame by frame (``center``):

* **root point** of a frame: the skeleton's root joint, which is ``pelvis`` or ``root`` where the layout has one
  (MPII, Human3.6M), else the midpoint of ``left_hip`` and ``right_hip`` (COCO, COCO-WholeBody). With a confidence
  channel only joints with confidence ``>= min_conf`` count.
* ``center="frame"`` (the configs' default): **root** ``(L, C)`` per window, the root point of every frame, so the
  tokens hold the articulation and the root trajectory travels beside them, exactly, as a decode parameter. Frames
  without a valid, confident root take the root linearly interpolated from the nearest frames that have one (held
  constant past the first and last), and the window centre below when no frame has one. A person crossing the
  image (a sprinter moves ~1500 px in a second of video) is then as easy to code as one standing still.
* ``center="window"``: **root** ``(C,)`` per window, the mean root point over valid frames, so motion inside the
  window (travel, a jump) is part of what the tokens code. When no valid frame has a confident root, the mean of
  all confident joints is used, and 0 when there is none.
* **scale** (one number per window): the median over valid frames of the torso size, the distance between the
  shoulder centre (midpoint of ``left_shoulder``/``right_shoulder``) and the hip centre (the hips' midpoint, or
  the root joint); frames where any of these joints is not confident are skipped. The median ignores frames where
  a joint detector briefly fails. A layout without shoulders and hips uses the centroids of its ``upper_body`` and
  ``lower_body`` joints instead. When no frame gives a torso (or it is degenerate), the scale is the RMS distance
  of the confident joints from the root, and 1 when even that is 0.
* ``normed = (xyz - root) / scale`` on the coordinate channels, on every frame (also padded and masked-out ones,
  so :meth:`SequenceNormalizer.denormalize` inverts it exactly); a confidence channel passes through untouched.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import PosetokError, field_error
from ..io import atomic_path
from ..skeletons import Skeleton, get_skeleton
from .archives import read_npz

#: Channels per keypoint of each ``coords`` value.
COORDS: dict[str, int] = {"2d": 2, "2d+conf": 3, "3d": 3}
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Root-centring modes of :class:`SequenceNormalizer`.
CENTERS: tuple[str, ...] = ("window", "frame")


def coords_dims(coords: str) -> int:
    """``D`` of a ``coords`` name (``"2d"`` -> 2, ``"2d+conf"`` -> 3, ``"3d"`` -> 3)."""
    try:
        return COORDS[coords]
    except KeyError:
        raise PosetokError(f"unknown coords '{coords}'; choose one of {', '.join(COORDS)}") from None


def _skeleton(skeleton: Skeleton | str) -> Skeleton:
    return skeleton if isinstance(skeleton, Skeleton) else get_skeleton(skeleton)


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------


@dataclass
class PoseSequence:
    """One validated track.

    Attributes:
        path: the file it was read from.
        poses: ``(T, N, D)`` float32, zero in masked-out frames, finite everywhere.
        mask: ``(T,)`` bool, True where the frame holds a pose.
    """

    path: str
    poses: np.ndarray
    mask: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + (",)" if a.ndim == 1 else ")")


def _frames(k: int) -> str:
    return f"{k} frame" if k == 1 else f"{k} frames"


def _bool_mask(path: object, raw: np.ndarray, num_frames: int) -> np.ndarray:
    if raw.ndim != 1 or raw.shape[0] != num_frames:
        raise field_error(path, "mask", f"expected shape ({num_frames},) to match {num_frames} frames of 'poses', "
                                        f"got shape {_shape(raw)}")
    if raw.dtype == bool:
        return raw.copy()
    # 0/1 integers or floats are common (MATLAB, pandas exports); anything else is a mistake.
    if raw.dtype.kind in "iuf":
        with np.errstate(invalid="ignore"):
            ok = np.isin(raw, (0, 1))
        if ok.all():
            return raw.astype(bool)
        bad = raw[~ok][0].item()
        raise field_error(path, "mask", f"expected bool values (or 0/1), got {bad!r} at frame "
                                        f"{int(np.flatnonzero(~ok)[0])}")
    raise field_error(path, "mask", f"expected bool values (or 0/1), got dtype {raw.dtype}")


def load_sequence(path: str | os.PathLike, skeleton: Skeleton | str, dims: int) -> PoseSequence:
    """Read and validate one ``.npz`` pose sequence.

    Args:
        path: the archive.
        skeleton: the layout the keypoint axis must follow (``N = skeleton.num_joints``).
        dims: the expected ``D`` (see :data:`COORDS`).

    Returns:
        A :class:`PoseSequence` with float32 poses, masked-out frames zero-filled.

    Raises:
        PosetokError: one line naming the file and the field: not a readable npz, missing ``poses``, wrong rank,
            ``D`` or ``N``, non-numeric values, NaN or infinite values in valid frames, a ``mask`` of the wrong
            length or not bool-like.
    """
    sk = _skeleton(skeleton)
    raw = read_npz(path, ("poses", "mask"), required=("poses",))
    poses, raw_mask = raw["poses"], raw.get("mask")

    if poses.dtype.kind not in "iuf":
        raise field_error(path, "poses", f"expected a numeric array, got dtype {poses.dtype}")
    if poses.ndim != 3:
        raise field_error(path, "poses", f"expected rank 3 (T, N, D), got shape {_shape(poses)}")
    t, n, d = poses.shape
    if t == 0:
        raise field_error(path, "poses", f"has no frames, got shape {_shape(poses)}")
    if d != dims:
        raise field_error(path, "poses", f"expected D = {dims} channels per keypoint, got shape {_shape(poses)}")
    if n != sk.num_joints:
        raise field_error(path, "poses", f"expected N = {sk.num_joints} keypoints of skeleton '{sk.name}', "
                                         f"got shape {_shape(poses)}")
    mask = np.ones(t, dtype=bool) if raw_mask is None else _bool_mask(path, raw_mask, t)

    poses = poses.astype(np.float32)
    # Overflow to inf in the float32 cast counts as a bad value too.
    finite = np.isfinite(poses).all(axis=(1, 2))
    bad = mask & ~finite
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        joint = int(np.flatnonzero(~np.isfinite(poses[frame]).all(axis=1))[0])
        raise field_error(path, "poses", f"NaN or infinite values in valid frames ({_frames(int(bad.sum()))}), "
                                         f"first at frame {frame}, joint {joint} ('{sk.joint_names[joint]}'); "
                                         f"set 'mask' False for frames without a pose")
    poses[~mask] = 0.0
    return PoseSequence(str(path), poses, mask)


def save_sequence(path: str | os.PathLike, poses: np.ndarray, mask: np.ndarray | None = None,
                  **extra: np.ndarray) -> Path:
    """Write one sequence file in the format :func:`load_sequence` reads (``poses``, ``mask`` and any ``extra``
    fields), atomically."""
    fields = {"poses": np.asarray(poses), **({} if mask is None else {"mask": np.asarray(mask, dtype=bool)}), **extra}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez appends .npz to a bare name
        np.savez_compressed(f, **fields)
    return Path(path)


def list_sequences(root_or_file: str | os.PathLike, split: str | None = None) -> list[Path]:
    """The ``.npz`` files of a dataset, sorted.

    Args:
        root_or_file: a single ``.npz`` file, or a folder.
        split: with a folder, read ``root/split`` (e.g. ``"train"``); ``None`` reads the folder itself. Files are
            found recursively (one subfolder per subject or camera is common). Ignored for a single file.

    Raises:
        PosetokError: the path does not exist, is not an ``.npz`` file, the split folder is missing, or no
            ``.npz`` file is found.
    """
    root = Path(root_or_file)
    if root.is_file():
        if root.suffix.lower() != ".npz":
            raise PosetokError(f"{root}: not a pose sequence file; expected a .npz archive or a folder of them")
        return [root]
    if not root.is_dir():
        raise PosetokError(f"{root}: no such file or folder")
    folder = root
    if split is not None:
        folder = root / split
        if not folder.is_dir():
            present = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise PosetokError(f"{root}: split '{split}' not found: no folder {folder} (subfolders: {present})")
    files = sorted(p for p in folder.rglob("*.npz") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise PosetokError(f"{folder}: empty: no .npz pose sequence files")
    return files


# ----------------------------------------------------------------------------------------------------------
# Windows
# ----------------------------------------------------------------------------------------------------------


def _check_window(length: int, stride: int) -> tuple[int, int]:
    if int(length) < 1:
        raise PosetokError(f"window length must be >= 1 frame, got {length}")
    if int(stride) < 1:
        raise PosetokError(f"window stride must be >= 1 frame, got {stride}")
    if int(stride) > int(length):
        # Windows further apart than their length would skip the frames between them.
        raise PosetokError(f"window stride ({stride}) must be <= window length ({length}) so every frame is covered")
    return int(length), int(stride)


def window_starts(num_frames: int, length: int, stride: int) -> np.ndarray:
    """``(W,)`` int64 first frames of the windows of a ``num_frames`` clip.

    Starts are ``0, stride, 2 * stride, ...``; when these leave frames uncovered at the end, one more window ends
    exactly at the last frame (so it may overlap its neighbour by more than ``length - stride``). A clip of at most
    ``length`` frames gives the single start 0. ``W = 1`` if ``T <= length`` else ``ceil((T - length) / stride) + 1``.

    Raises:
        PosetokError: ``length < 1``, ``stride < 1`` or ``stride > length`` (which would skip frames).
    """
    length, stride = _check_window(length, stride)
    last = max(int(num_frames) - length, 0)
    starts = np.arange(0, last + 1, stride, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, np.int64(last))
    return starts


def _cut(poses: np.ndarray, mask: np.ndarray, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``start .. start + length`` of a clip; past its end, the last frame repeated with mask False."""
    win = poses[start:start + length]
    m = mask[start:start + length]
    pad = length - len(win)
    if pad:
        # Edge replication keeps padded frames plausible poses, so models never see a jump to zeros.
        win = np.concatenate([win, np.repeat(win[-1:], pad, axis=0)], axis=0)
        m = np.concatenate([m, np.zeros(pad, dtype=bool)])
    return win, m


def sliding_windows(seq: PoseSequence, length: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a sequence into fixed-length windows that together cover every frame.

    Returns:
        ``windows`` ``(W, length, N, D)`` float32, ``masks`` ``(W, length)`` bool (the file's mask; False on padding),
        ``starts`` ``(W,)`` int64 (see :func:`window_starts`). A clip shorter than ``length`` gives one window padded
        at the end with copies of its last frame.
    """
    starts = window_starts(seq.num_frames, length, stride)
    cuts = [_cut(seq.poses, seq.mask, int(s), int(length)) for s in starts]
    windows = np.stack([c[0] for c in cuts]).astype(np.float32, copy=False)
    masks = np.stack([c[1] for c in cuts])
    return windows, masks, starts


# ----------------------------------------------------------------------------------------------------------
# Normalisation
# ----------------------------------------------------------------------------------------------------------


def _find(names: tuple[str, ...], *candidates: str) -> list[int]:
    return [names.index(c) for c in candidates if c in names]


class SequenceNormalizer:
    """Root-centring and torso scaling per window, with an exact inverse (rule in the module docstring).

    Args:
        skeleton: layout of the keypoint axis; its joint names define root and torso.
        coords: ``"2d"``, ``"2d+conf"`` or ``"3d"``.
        min_conf: with ``"2d+conf"``, joints below this confidence do not count for root and scale.
        center: ``"window"`` (one root per window) or ``"frame"`` (one root per frame).
    """

    def __init__(self, skeleton: Skeleton | str, coords: str = "2d", min_conf: float = 0.3,
                 center: str = "window") -> None:
        if center not in CENTERS:
            raise PosetokError(f"unknown center '{center}'; choose one of {', '.join(CENTERS)}")
        self.center = center
        self.skeleton = _skeleton(skeleton)
        self.coords = coords
        self.dims = coords_dims(coords)
        self.spatial = 2 if coords.startswith("2d") else 3
        self.has_conf = coords == "2d+conf"
        self.min_conf = float(min_conf)
        names = self.skeleton.joint_names
        hips = _find(names, "left_hip", "right_hip")
        shoulders = _find(names, "left_shoulder", "right_shoulder")
        root = _find(names, "pelvis", "root")
        #: joints averaged for the root point
        self.root_joints: list[int] = root[:1] if root else (hips if len(hips) == 2 else [])
        lower = hips if len(hips) == 2 else root[:1]
        if len(shoulders) == 2 and lower:
            self.torso_top, self.torso_bottom = shoulders, lower
        else:
            # No named shoulders/hips: the upper and lower body's centroids stand in for them.
            self.torso_top, self.torso_bottom = list(self.skeleton.upper_body), list(self.skeleton.lower_body)
        if not self.root_joints:
            self.root_joints = self.torso_bottom or list(range(self.skeleton.num_joints))

    def _weights(self, windows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``(W, L, N)`` bool: joint counts for root and scale (valid frame, confident)."""
        ok = np.broadcast_to(masks[..., None], windows.shape[:3]).copy()
        if self.has_conf:
            ok &= windows[..., 2] >= self.min_conf
        return ok

    def params(self, windows: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
        """``root`` ``(W, C)`` (``center="window"``) or ``(W, L, C)`` (``"frame"``) and ``scale`` ``(W,)``,
        float64, of windows ``(W, L, N, D)`` with masks ``(W, L)``; ``C`` = 2 for 2D, 3 for 3D."""
        x = np.asarray(windows, dtype=np.float64)
        masks = np.asarray(masks, dtype=bool)
        xyz = x[..., : self.spatial]
        ok = self._weights(x, masks)

        def centre(joints: list[int]) -> tuple[np.ndarray, np.ndarray]:
            """Per frame mean of ``joints`` ``(W, L, C)`` and whether all of them count ``(W, L)``."""
            return xyz[:, :, joints].mean(axis=2), ok[:, :, joints].all(axis=2)

        root_pt, root_ok = centre(self.root_joints)
        n_root = root_ok.sum(axis=1)
        root = (root_pt * root_ok[..., None]).sum(axis=1) / np.maximum(n_root, 1)[:, None]
        # Fallback: the centroid of every confident joint in valid frames, then the origin.
        n_any = ok.sum(axis=(1, 2))
        any_mean = (xyz * ok[..., None]).sum(axis=(1, 2)) / np.maximum(n_any, 1)[:, None]
        root = np.where((n_root > 0)[:, None], root, np.where((n_any > 0)[:, None], any_mean, 0.0))

        top, top_ok = centre(self.torso_top)
        bottom, bottom_ok = centre(self.torso_bottom)
        torso = np.linalg.norm(top - bottom, axis=-1)
        torso_ok = top_ok & bottom_ok & np.isfinite(torso)
        scale = np.ones(len(x))
        for w in range(len(x)):
            sizes = torso[w][torso_ok[w]]
            s = float(np.median(sizes)) if sizes.size else 0.0
            if not s > 1e-8:
                d2 = np.sum((xyz[w] - root[w]) ** 2, axis=-1)[ok[w]]
                s = float(np.sqrt(d2.mean())) if d2.size else 0.0
            scale[w] = s if s > 1e-8 else 1.0
        if self.center == "frame":
            root = _per_frame_root(root_pt, root_ok, root)
        return {"root": root, "scale": scale}

    def normalize(self, windows: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Centre and scale windows.

        Args:
            windows: ``(W, L, N, D)`` (or one window ``(L, N, D)``), in the file's units.
            masks: ``(W, L)`` (or ``(L,)``) bool, valid frames.

        Returns:
            ``normed`` of the same shape (float32, or float64 for float64 input) and ``params``: ``root``
            ``(W, C)`` and ``scale`` ``(W,)`` float64 (``(C,)`` and ``()`` for one window), what
            :meth:`denormalize` needs.
        """
        windows = np.asarray(windows)
        single = windows.ndim == 3
        if single:
            windows, masks = windows[None], np.asarray(masks)[None]
        if windows.ndim != 4 or windows.shape[-1] != self.dims:
            raise PosetokError(f"normalize: expected windows (W, L, N, {self.dims}) for coords '{self.coords}', "
                               f"got shape {windows.shape}")
        p = self.params(windows, masks)
        out = np.array(windows, dtype=np.float64)
        c = self.spatial
        out[..., :c] = (out[..., :c] - _root_axes(p["root"], 1)) / p["scale"][:, None, None, None]
        dtype = np.float64 if windows.dtype == np.float64 else np.float32
        out = out.astype(dtype)
        if single:
            return out[0], {"root": p["root"][0], "scale": p["scale"][0]}
        return out, p

    def denormalize(self, normed: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`normalize`: ``normed`` ``(W, L, N, D)`` (or ``(L, N, D)``) back to the file's units.

        ``params`` may be numpy arrays or tensors (e.g. a collated batch of :class:`WindowDataset` items).
        """
        root = np.asarray(_numpy(params["root"]), dtype=np.float64)
        scale = np.asarray(_numpy(params["scale"]), dtype=np.float64)
        x = np.array(_numpy(normed), dtype=np.float64)
        lead = x.ndim - 3  # number of window axes before (L, N, D)
        s = scale.reshape(scale.shape + (1, 1, 1))
        x[..., : self.spatial] = x[..., : self.spatial] * s + _root_axes(root, lead)
        dtype = np.float64 if np.asarray(_numpy(normed)).dtype == np.float64 else np.float32
        return x.astype(dtype)


def _root_axes(root: np.ndarray, lead: int) -> np.ndarray:
    """A window root ``(*lead, C)`` or a frame root ``(*lead, L, C)`` shaped to broadcast over
    ``(*lead, L, N, C)``."""
    if root.ndim == lead + 1:
        return root.reshape(root.shape[:lead] + (1, 1) + root.shape[lead:])
    return root[..., None, :]


def _per_frame_root(points: np.ndarray, ok: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """``(W, L, C)`` root per frame: ``points`` where ``ok``, linear interpolation between such frames (held
    past the ends) elsewhere, ``fallback`` ``(W, C)`` in windows without any."""
    out = np.repeat(fallback[:, None], points.shape[1], axis=1)
    t = np.arange(points.shape[1])
    for w in range(len(points)):
        have = np.flatnonzero(ok[w])
        if have.size:
            for c in range(points.shape[2]):
                out[w, :, c] = np.interp(t, have, points[w, have, c])
    return out


def _numpy(x: object) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# ----------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------


class WindowDataset(torch.utils.data.Dataset):
    """Normalised fixed-length windows over many sequence files.

    The index holds one ``(file, start)`` per window of :func:`window_starts`. Every file is read and validated
    when the dataset is built (so a bad file fails at once, naming itself); the validated arrays are kept in an
    LRU cache of ``cache_files`` files (all of them by default).

    Each item is a dict:

    * ``poses``: ``(length, N, D)`` float32, normalised by :class:`SequenceNormalizer` (confidence channel as read);
      zero in frames where ``mask`` is False (their values carry no information).
    * ``mask``: ``(length,)`` bool, valid frames (False on padding).
    * ``conf``: ``(length, N)`` float32 loss weights: the confidence channel for ``"2d+conf"``, else ones; zero
      where ``mask`` is False.
    * ``root`` ``(C,)`` (``(length, C)`` with ``center="frame"``) and ``scale`` ``()`` float64: the
      normalisation parameters
      (:meth:`SequenceNormalizer.denormalize` accepts them, batched or not).
    * ``file`` (index into :attr:`files`) and ``start`` (first frame), both int.

    Args:
        source: a dataset root, a single ``.npz``, or a list of files.
        skeleton: layout of the files.
        coords: ``"2d"``, ``"2d+conf"`` or ``"3d"``.
        length: frames per window.
        stride: frames between window starts, default ``length`` (no overlap).
        split: folder under ``source`` (``train``, ``val``, ``test``), or None.
        min_conf, center: see :class:`SequenceNormalizer`.
        cache_files: how many files to keep in memory (None: all).
    """

    def __init__(
        self,
        source: str | os.PathLike | Sequence[str | os.PathLike],
        skeleton: Skeleton | str,
        coords: str,
        length: int,
        stride: int | None = None,
        split: str | None = None,
        min_conf: float = 0.3,
        cache_files: int | None = None,
        center: str = "window",
    ) -> None:
        self.skeleton = _skeleton(skeleton)
        self.coords = coords
        self.dims = coords_dims(coords)
        self.length, self.stride = _check_window(length, length if stride is None else stride)
        if isinstance(source, (str, os.PathLike)):
            self.files = list_sequences(source, split)
        else:
            self.files = [Path(p) for p in source]
            if not self.files:
                raise PosetokError("WindowDataset: no sequence files given")
        self.normalizer = SequenceNormalizer(self.skeleton, coords, min_conf, center)
        self.cache_files = cache_files
        self._cache: OrderedDict[int, PoseSequence] = OrderedDict()
        index = []
        for i in range(len(self.files)):
            seq = self._sequence(i)
            index += [(i, int(s)) for s in window_starts(seq.num_frames, self.length, self.stride)]
        self.index = np.array(index, dtype=np.int64).reshape(-1, 2)

    def _sequence(self, i: int) -> PoseSequence:
        seq = self._cache.get(i)
        if seq is None:
            seq = load_sequence(self.files[i], self.skeleton, self.dims)
            self._cache[i] = seq
            if self.cache_files is not None:
                while len(self._cache) > max(int(self.cache_files), 1):
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(i)
        return seq

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor | int]:
        f, start = (int(v) for v in self.index[item])
        seq = self._sequence(f)
        win, mask = _cut(seq.poses, seq.mask, start, self.length)
        normed, params = self.normalizer.normalize(win, mask)
        normed[~mask] = 0.0
        conf = normed[..., 2].copy() if self.normalizer.has_conf else np.ones(normed.shape[:2], dtype=np.float32)
        conf[~mask] = 0.0
        return {
            "poses": torch.from_numpy(np.ascontiguousarray(normed, dtype=np.float32)),
            "mask": torch.from_numpy(mask.copy()),
            "conf": torch.from_numpy(conf.astype(np.float32)),
            "root": torch.from_numpy(params["root"]),
            "scale": torch.tensor(params["scale"], dtype=torch.float64),
            "file": f,
            "start": start,
        }
