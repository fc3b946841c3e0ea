"""Training and using the pose sequence tokenizer (:class:`~posetok.models.sequence.SequenceTokenizerModel`).

Config (a plain dict; :func:`resolve_sequence_config` fills what is missing from :data:`DEFAULTS` and the preset)::

    task: sequence          out: runs/sequence
    model:   kind: sequence, preset: small|default|large, skeleton: coco17, coords: "2d"|"2d+conf"|"3d",
             center: frame|window (root-centring, see posetok.data.sequences),
             any SequenceDims field (null: the preset's value; num_keypoints, keypoint_dim and has_confidence
             follow from skeleton and coords)
    data:    root (a folder with train/ and val/ of .npz sequences; null: synthetic motion), synthetic_train,
             synthetic_val, synthetic_length, real_sample (add the bundled real track to the training set),
             real_sample_repeat, stride (training window stride; null: sequence_length // 2), min_conf,
             batch_size, num_workers, seed
    loss:    recon, velocity, bone, commit (weights), kind (l1|smooth_l1), beta, conf_threshold
    optim:   lr, weight_decay, betas, warmup_steps, min_lr_ratio, vq_start_step
    trainer: as the pose tokenizer's (max_steps, max_time in minutes, val_every_n_steps, ...)

Every window is normalised on its own by :class:`~posetok.data.sequences.SequenceNormalizer` (root-centred per
frame or per window, scaled by the torso size); the model sees and reconstructs normalised coordinates, and
:class:`SequenceCodec` undoes the normalisation with the parameters it keeps beside the tokens, so users see their
own units.

``model.ckpt`` (a ``torch.save`` dict, loadable with ``weights_only=True``)::

    format: "posetok.sequence_tokenizer"   format_version: 1   kind: "sequence"
    skeleton, coords, num_joints, dims (SequenceDims as a dict)
    normalizer: {min_conf, window_stride, center}
    state_dict, config (resolved training config), meta {global_step, train_time_s, posetok_version, ...}
"""

from __future__ import annotations

import copy
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import OmegaConf
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from ..data.sequences import (
    CENTERS,
    COORDS,
    PoseSequence,
    SequenceNormalizer,
    WindowDataset,
    coords_dims,
    load_sequence,
    sliding_windows,
)
from ..errors import PosetokError, field_error
from ..metrics.sequence import quantizer_stats
from ..models.sequence import PRESETS, SequenceDims, SequenceTokenizerModel, preset_dims, sequence_losses
from ..skeletons import Skeleton, get_skeleton
from .tokenizer import TokenizerTask, warmup_cosine

FORMAT = "posetok.sequence_tokenizer"
FORMAT_VERSION = 1
REAL_TRACK = Path(__file__).resolve().parents[1] / "assets" / "real_sample" / "sequence_sports2d.npz"
_DIMS_FIELDS = tuple(f.name for f in fields(SequenceDims))
_DERIVED = ("num_keypoints", "keypoint_dim", "has_confidence", "skeleton")

DEFAULTS: dict[str, Any] = {
    "task": "sequence",
    "out": "runs/sequence",
    "model": {"kind": "sequence", "preset": "small", "skeleton": "coco17", "coords": "2d+conf", "center": "frame",
              **{k: None for k in _DIMS_FIELDS if k != "skeleton"}},
    "data": {"root": None, "synthetic_train": 512, "synthetic_val": 64, "synthetic_length": 128,
             "real_sample": False, "real_sample_repeat": 8, "stride": None, "min_conf": 0.3,
             "batch_size": 32, "num_workers": 0, "seed": 0},
    "loss": {"recon": 1.0, "velocity": 0.1, "bone": 0.1, "commit": 1.0, "kind": "l1", "beta": 0.05,
             "conf_threshold": 0.0},
    "optim": {"lr": 2e-3, "weight_decay": 0.01, "betas": [0.9, 0.99], "warmup_steps": 100, "min_lr_ratio": 0.01,
              "vq_start_step": 300},
    "trainer": {"max_steps": 3000, "max_time": None, "accelerator": "auto", "devices": "auto", "num_nodes": 1,
                "strategy": "auto", "precision": "32-true", "log_every_n_steps": 25, "val_every_n_steps": 500,
                "seed": 0, "progress_bar": True, "threads": None},
}


# ----------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------


def resolve_sequence_config(config: dict[str, Any] | Any, source: str = "config") -> dict[str, Any]:
    """``config`` merged over :data:`DEFAULTS`, the model's empty sizes filled from its preset; a plain dict.

    Raises:
        PosetokError: unknown preset, coords or skeleton, or model sizes that contradict skeleton and coords.
    """
    if not isinstance(config, dict):
        config = OmegaConf.to_container(config, resolve=True)
    cfg = OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.create(config)),
                                 resolve=True)
    m = cfg["model"]  # type: ignore[index]
    if m["preset"] not in PRESETS:
        raise PosetokError(f"{source}: field 'model.preset': unknown preset '{m['preset']}' "
                           f"(known: {', '.join(PRESETS)})")
    if m["coords"] not in COORDS:
        raise PosetokError(f"{source}: field 'model.coords': unknown coords '{m['coords']}' "
                           f"(known: {', '.join(COORDS)})")
    if m["center"] not in CENTERS:
        raise PosetokError(f"{source}: field 'model.center': unknown center '{m['center']}' "
                           f"(known: {', '.join(CENTERS)})")
    try:
        sk = get_skeleton(m["skeleton"])
    except (KeyError, PosetokError) as e:
        raise PosetokError(f"{source}: field 'model.skeleton': {e}") from None
    derived = {"num_keypoints": sk.num_joints, "keypoint_dim": coords_dims(m["coords"]),
               "has_confidence": m["coords"] == "2d+conf"}
    for key, value in derived.items():
        if m.get(key) is not None and m[key] != value:
            raise PosetokError(f"{source}: field 'model.{key}': {m[key]} contradicts skeleton '{sk.name}' and "
                               f"coords '{m['coords']}' ({value})")
    overrides = {k: m.get(k) for k in _DIMS_FIELDS if k not in _DERIVED}
    dims = preset_dims(m["preset"], {**overrides, **derived, "skeleton": sk.name})
    try:
        dims.validate()
    except ValueError as e:
        raise PosetokError(f"{source}: field 'model': {e}") from None
    m.update(dims.to_dict())
    if cfg["data"]["batch_size"] <= 0:  # type: ignore[index]
        raise PosetokError(f"{source}: field 'data.batch_size': must be positive")
    return cfg  # type: ignore[return-value]


def dims_from_config(config: dict[str, Any]) -> SequenceDims:
    """The :class:`SequenceDims` of a resolved config's ``model`` section."""
    return SequenceDims.from_dict({k: config["model"][k] for k in _DIMS_FIELDS})


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------


class ArrayWindows(Dataset):
    """Normalised windows held in memory (synthetic clips, the bundled real track); items as
    :class:`~posetok.data.sequences.WindowDataset` gives (``poses``, ``mask``, ``conf``)."""

    def __init__(self, sequences: list[PoseSequence], skeleton: Skeleton, coords: str, length: int, stride: int,
                 min_conf: float = 0.3, repeat: int = 1, center: str = "window") -> None:
        norm = SequenceNormalizer(skeleton, coords, min_conf, center)
        wins, masks = [], []
        for seq in sequences:
            w, m, _ = sliding_windows(seq, length, stride)
            wins.append(w)
            masks.append(m)
        windows = np.concatenate(wins) if wins else np.zeros((0, length, skeleton.num_joints, coords_dims(coords)))
        mask = np.concatenate(masks) if masks else np.zeros((0, length), dtype=bool)
        normed, _ = norm.normalize(windows, mask) if len(windows) else (windows, None)
        normed = np.asarray(normed, dtype=np.float32).copy()
        normed[~mask] = 0.0
        conf = normed[..., 2].copy() if norm.has_conf else np.ones(normed.shape[:3], dtype=np.float32)
        conf[~mask] = 0.0
        reps = max(int(repeat), 1)
        self.poses = torch.from_numpy(np.tile(normed, (reps, 1, 1, 1)))
        self.mask = torch.from_numpy(np.tile(mask, (reps, 1)))
        self.conf = torch.from_numpy(np.tile(conf, (reps, 1, 1)).astype(np.float32))

    def __len__(self) -> int:
        return len(self.poses)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"poses": self.poses[i], "mask": self.mask[i], "conf": self.conf[i]}


def _collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in ("poses", "mask", "conf")}


def synthetic_sequences(num: int, length: int, skeleton: str, coords: str, seed: int) -> list[PoseSequence]:
    """``num`` synthetic clips of :func:`~posetok.data.motion.sample_motion` as :class:`PoseSequence` objects."""
    from ..data.motion import sample_motion

    if num <= 0:
        return []
    poses, mask, _ = sample_motion(num, length, skeleton=skeleton, coords=coords, seed=seed)
    return [PoseSequence(f"synthetic:{i}", poses[i], mask[i]) for i in range(num)]


def real_track(skeleton: Skeleton, coords: str) -> PoseSequence:
    """The bundled real track (COCO-17, ``x, y, conf`` pixels) in the given coords (``"2d"`` drops confidence)."""
    if skeleton.name != "coco17" or coords == "3d":
        raise PosetokError(f"{REAL_TRACK}: field 'poses': the bundled real track is COCO-17 2D; it cannot train "
                           f"skeleton '{skeleton.name}' with coords '{coords}' (set data.real_sample=false)")
    seq = load_sequence(REAL_TRACK, skeleton, 3)
    if coords == "2d":
        seq = PoseSequence(seq.path, np.ascontiguousarray(seq.poses[..., :2]), seq.mask)
    return seq


def build_datasets(cfg: dict[str, Any]) -> tuple[Dataset, Dataset]:
    """Training and validation windows of a resolved config."""
    m, d = cfg["model"], cfg["data"]
    sk = get_skeleton(m["skeleton"])
    length = int(m["sequence_length"])
    stride = int(d["stride"] or max(length // 2, 1))
    center = m["center"]
    if d["root"]:
        root = Path(d["root"])
        train: Dataset = WindowDataset(root, sk, m["coords"], length, stride, split="train", min_conf=d["min_conf"],
                                       center=center)
        val: Dataset = WindowDataset(root, sk, m["coords"], length, length, split="val", min_conf=d["min_conf"],
                                     center=center)
    else:
        seqs = synthetic_sequences(d["synthetic_train"], d["synthetic_length"], sk.name, m["coords"], d["seed"])
        train = ArrayWindows(seqs, sk, m["coords"], length, stride, d["min_conf"], center=center)
        vseqs = synthetic_sequences(d["synthetic_val"], d["synthetic_length"], sk.name, m["coords"],
                                    d["seed"] + 1_000_003)
        val = ArrayWindows(vseqs, sk, m["coords"], length, length, d["min_conf"], center=center)
    if d["real_sample"]:
        extra = ArrayWindows([real_track(sk, m["coords"])], sk, m["coords"], length, stride, d["min_conf"],
                             repeat=d["real_sample_repeat"], center=center)
        train = ConcatDataset([train, extra])
    return train, val


# ----------------------------------------------------------------------------------------------------------
# Lightning task
# ----------------------------------------------------------------------------------------------------------


class SequenceTokenizerTask(TokenizerTask):
    """Trains :class:`SequenceTokenizerModel` with :func:`sequence_losses` on valid frames and confident joints.

    Shares with :class:`~posetok.tasks.tokenizer.TokenizerTask` (it subclasses it) the time tracking across
    resumes (``train_time_s``, ``time_fraction``), the quantizer warm-up switch (``quantizing``: the model runs
    with ``quantize=False`` before ``optim.vq_start_step``) and the AdamW + :func:`warmup_cosine` optimiser. The
    network is built in :meth:`configure_model` so that the quantizer syncs under DDP.

    Validation logs ``val/mpjpe_norm`` (mean joint error in normalised units: torso sizes) and, once quantizing,
    ``val/code_usage_q{i}`` and ``val/perplexity_q{i}`` per quantizer.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        config = resolve_sequence_config(config)
        super().__init__(config)
        self.dims = dims_from_config(config)
        self.model: SequenceTokenizerModel | None = None  # type: ignore[assignment]
        self.train_history: list[float] = []  # recon loss per training step of this session
        self.val_history: list[tuple[int, float]] = []

    def configure_model(self) -> None:
        if self.model is None:
            self.model = SequenceTokenizerModel(copy.deepcopy(self.dims), self.skeleton)

    def _losses(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:  # type: ignore[override]
        assert self.model is not None
        poses, mask, conf = batch["poses"], batch["mask"], batch["conf"]
        out = self.model(poses, mask, quantize=self.quantizing)
        coords, _ = self.model.split_confidence(poses)
        lc = self.cfg.loss
        losses = sequence_losses(
            out["recon"], coords, mask, conf, self.skeleton,
            {k: float(lc[k]) for k in ("recon", "velocity", "bone", "commit")}, out["commit_loss"],
            kind=lc.kind, beta=float(lc.beta), conf_threshold=float(lc.conf_threshold))
        weight = mask[:, :, None] & (conf > float(lc.conf_threshold))
        err = (out["recon"].detach() - coords).norm(dim=-1)
        return {**losses, "weight": weight, "err": err, "tokens": out["tokens"]}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self._losses(batch)
        bs = batch["poses"].shape[0]
        self.log_dict({f"train/{k}": out[k].detach() for k in ("total", "recon", "velocity", "bone", "commit")},
                      batch_size=bs)
        mpjpe = out["err"][out["weight"]].mean() if out["weight"].any() else out["err"].new_zeros(())
        self.log("train/mpjpe_norm", mpjpe, prog_bar=True, batch_size=bs)
        self.train_history.append(float(out["recon"].detach()))
        return out["total"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self._losses(batch)
        self._val.append((out["err"][out["weight"]], out["tokens"]))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        errs, tokens = zip(*self._val)
        self._val.clear()
        err = torch.cat(errs).mean()
        self.log("val/mpjpe_norm", err, prog_bar=True, sync_dist=True)
        self.val_history.append((int(self.global_step), float(err)))
        if self.quantizing:
            v = self.dims.codebook_size
            tok = torch.cat([t.reshape(-1, t.shape[-1]) for t in tokens]).cpu().numpy()
            stats = quantizer_stats(tok, v)
            logs = {}
            for q, (u, p) in enumerate(zip(stats["codebook_usage"], stats["perplexity"])):
                if np.isfinite(u):
                    logs[f"val/code_usage_q{q}"] = u
                    logs[f"val/perplexity_q{q}"] = p
            if logs:
                self.log_dict(logs, sync_dist=True)


# ----------------------------------------------------------------------------------------------------------
# Checkpoint
# ----------------------------------------------------------------------------------------------------------


def sequence_payload(model: SequenceTokenizerModel, dims: SequenceDims, skeleton: str, coords: str,
                     normalizer: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                     meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``model.ckpt`` dict of a sequence tokenizer (layout in the module docstring).

    ``normalizer``: ``min_conf`` (default 0.3), ``window_stride`` (default ``None``: the window length,
    no overlap) and ``center`` (default ``"window"``) that :class:`SequenceCodec` uses.
    """
    from .. import __version__

    norm = {"min_conf": 0.3, "window_stride": None, "center": "window", **(normalizer or {})}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "sequence",
        "skeleton": skeleton,
        "coords": coords,
        "num_joints": dims.num_keypoints,
        "dims": dims.to_dict(),
        "normalizer": {"min_conf": float(norm["min_conf"]), "center": str(norm["center"]),
                       "window_stride": None if norm["window_stride"] is None else int(norm["window_stride"])},
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "config": config or {},
        "meta": {"posetok_version": __version__, **(meta or {})},
    }


def save_sequence_tokenizer(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a payload atomically (temporary file, then rename), as every posetok checkpoint is written."""
    from ..checkpoint import save_tokenizer

    return save_tokenizer(path, payload)


def _from_lightning(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    cfg = (obj.get("hyper_parameters") or {}).get("config")
    if not isinstance(cfg, dict) or (cfg.get("model") or {}).get("kind") != "sequence":
        raise PosetokError(f"{path}: field 'hyper_parameters.config': not a posetok sequence training checkpoint")
    cfg = resolve_sequence_config(cfg, str(path))
    state = {k[len("model."):]: v for k, v in obj["state_dict"].items() if k.startswith("model.")}
    m = cfg["model"]
    dims = dims_from_config(cfg)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "sequence", "skeleton": m["skeleton"],
               "coords": m["coords"], "num_joints": dims.num_keypoints, "dims": dims.to_dict(),
               "normalizer": {"min_conf": float(cfg["data"]["min_conf"]), "window_stride": None,
                              "center": m["center"]},
               "state_dict": state, "config": cfg, "meta": {"global_step": obj.get("global_step")}}
    return payload


def read_sequence_payload(path: str | Path, obj: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read and check a sequence tokenizer checkpoint (``model.ckpt`` or a Lightning ``last.ckpt``); ``obj``:
    the file's dict, if already read."""
    from ..checkpoint import read_checkpoint

    path = Path(path)
    obj = read_checkpoint(path) if obj is None else obj
    if "pytorch-lightning_version" in obj:
        obj = _from_lightning(path, obj)
    if obj.get("format") != FORMAT:
        raise field_error(path, "format", f"expected '{FORMAT}', got {obj.get('format')!r}")
    if obj.get("format_version", 0) > FORMAT_VERSION:
        raise field_error(path, "format_version", f"{obj['format_version']} is newer than this posetok reads "
                                                  f"({FORMAT_VERSION}); upgrade posetok")
    for key in ("skeleton", "coords", "dims", "normalizer", "state_dict"):
        if key not in obj:
            raise field_error(path, key, "missing")
    if obj["coords"] not in COORDS:
        raise field_error(path, "coords", f"unknown coords {obj['coords']!r}")
    return obj


def load_sequence_tokenizer(path: str | Path, batch_size: int = 64, obj: dict[str, Any] | None = None
                            ) -> SequenceCodec:
    """Load a sequence tokenizer checkpoint as a :class:`SequenceCodec`; ``obj``: the file's dict, if read."""
    payload = read_sequence_payload(path, obj)
    try:
        skeleton = get_skeleton(payload["skeleton"])
    except (KeyError, PosetokError) as e:
        raise field_error(path, "skeleton", str(e)) from None
    try:
        dims = SequenceDims.from_dict(payload["dims"])
        model = SequenceTokenizerModel(dims, skeleton)
    except (TypeError, ValueError) as e:
        raise field_error(path, "dims", str(e).splitlines()[0][:160]) from None
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, KeyError) as e:
        reason = str(e).splitlines()[0][:160]
        raise field_error(path, "state_dict", f"does not fit the model it describes ({reason})") from None
    model.eval()
    norm = payload["normalizer"]
    if norm.get("center", "window") not in CENTERS:
        raise field_error(path, "normalizer.center", f"unknown center {norm.get('center')!r}")
    codec = SequenceCodec(model, payload["coords"], min_conf=norm.get("min_conf", 0.3),
                          stride=norm.get("window_stride"), batch_size=batch_size,
                          center=norm.get("center", "window"))
    codec.info = {k: v for k, v in payload.items() if k != "state_dict"}
    return codec


# ----------------------------------------------------------------------------------------------------------
# Codec
# ----------------------------------------------------------------------------------------------------------


class SequenceCodec:
    """Whole clips in the user's units <-> token grids.

    A clip ``(T, N, D)`` is cut into windows of ``sequence_length`` frames (:func:`sliding_windows`, ``stride``
    frames apart, the last one ending at the last frame, a short clip padded), each window normalised on its own
    (:class:`SequenceNormalizer`) and encoded to ``(T', G, Q)`` tokens. :meth:`decode` decodes every window,
    undoes its normalisation and stitches the windows back, averaging frames that several windows cover.

    >>> codec = load_sequence_tokenizer("runs/seq/model.ckpt")
    >>> tokens, params = codec.encode(poses, mask, return_params=True)   # (W, T', G, Q), dict
    >>> recon = codec.decode(tokens, params)                              # (T, N, Dc) in the file's units

    Attributes:
        model, skeleton, coords, dims, normalizer, length (window frames), stride, info (the checkpoint's
        fields besides the weights, when loaded from a file).
    """

    def __init__(self, model: SequenceTokenizerModel, coords: str, min_conf: float = 0.3, stride: int | None = None,
                 batch_size: int = 64, center: str = "window") -> None:
        self.model = model.eval()
        self.dims = model.dims
        self.skeleton = model.skeleton
        self.coords = coords
        if coords_dims(coords) != self.dims.keypoint_dim or (coords == "2d+conf") != self.dims.has_confidence:
            raise PosetokError(f"coords '{coords}' does not fit the model's input: {self.dims.keypoint_dim} "
                               f"channels, {'with' if self.dims.has_confidence else 'without'} a confidence")
        self.normalizer = SequenceNormalizer(self.skeleton, coords, min_conf, center)
        self.length = int(self.dims.sequence_length)
        self.stride = int(stride) if stride else self.length
        self.batch_size = int(batch_size)
        self.encoder = model.inference_encoder()
        self._decoders: dict[int, torch.nn.Module] = {}
        self.info: dict[str, Any] = {}

    @property
    def num_quantizers(self) -> int:
        return self.model.num_quantizers

    @property
    def codebook_size(self) -> int:
        return self.model.codebook_size

    def decoder(self, num_quantizers: int | None = None) -> torch.nn.Module:
        q = int(num_quantizers or self.num_quantizers)
        if q not in self._decoders:
            self._decoders[q] = self.model.inference_decoder(q)
        return self._decoders[q]

    # -- input checks -------------------------------------------------------------------------------------

    def _check(self, poses: Any, mask: Any, source: str) -> tuple[np.ndarray, np.ndarray, bool]:
        x = np.asarray(poses.detach().cpu().numpy() if isinstance(poses, torch.Tensor) else poses)
        single = x.ndim == 3
        if x.ndim not in (3, 4):
            raise field_error(source, "poses", f"expected rank 3 (T, N, D) or 4 (B, T, N, D), got shape {x.shape}")
        if single:
            x = x[None]
        b, t, n, d = x.shape
        if t == 0:
            raise field_error(source, "poses", f"has no frames, got shape {x.shape}")
        if d != self.dims.keypoint_dim:
            raise field_error(source, "poses", f"expected D = {self.dims.keypoint_dim} channels per keypoint "
                                                f"(coords '{self.coords}') for this checkpoint, got shape {x.shape}")
        if n != self.skeleton.num_joints:
            raise field_error(source, "poses", f"expected N = {self.skeleton.num_joints} keypoints of skeleton "
                                                f"'{self.skeleton.name}', got shape {x.shape}")
        if mask is None:
            m = np.ones((b, t), dtype=bool)
        else:
            m = np.asarray(mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else mask).astype(bool)
            if single:
                m = m[None]
            if m.shape != (b, t):
                want = (t,) if single else (b, t)
                raise field_error(source, "mask", f"expected shape {want} to match 'poses', got "
                                                  f"{m.shape[1:] if single else m.shape}")
        x = x.astype(np.float32)
        bad = m & ~np.isfinite(x).all(axis=(2, 3))
        if bad.any():
            raise field_error(source, "poses", f"NaN or infinite values in valid frames ({int(bad.sum())} frames)")
        x = np.where(m[..., None, None], x, 0.0).astype(np.float32)
        return x, m, single

    # -- encode / decode ----------------------------------------------------------------------------------

    @torch.no_grad()
    def _encode_windows(self, windows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(windows), self.batch_size):
            p = torch.from_numpy(np.ascontiguousarray(windows[i:i + self.batch_size], dtype=np.float32))
            mk = torch.from_numpy(np.ascontiguousarray(masks[i:i + self.batch_size]))
            out.append(self.encoder(p, mk).cpu().numpy())
        return np.concatenate(out)

    def encode(self, poses: Any, mask: Any = None, return_params: bool = False, source: str = "input"
               ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
        """Poses ``(T, N, D)`` or ``(B, T, N, D)`` in the file's units -> tokens ``(W, T', G, Q)`` or
        ``(B, W, T', G, Q)`` int64 (``-1`` for windows without a valid frame).

        With ``return_params``, also the dict :meth:`decode` needs: ``root`` ``(W, C)`` (``(W, L, C)``, the
        root trajectory, when the codec centres per frame), ``scale`` ``(W,)``,
        ``starts`` ``(W,)``, ``mask`` ``(T,)`` (with a batch axis in front for batched input) and
        ``num_frames``. ``source`` names the input in error messages (a file path).
        """
        x, m, single = self._check(poses, mask, source)
        toks, roots, scales, starts = [], [], [], None
        for clip, cm in zip(x, m):
            windows, wmask, starts = sliding_windows(PoseSequence(source, clip, cm), self.length, self.stride)
            normed, params = self.normalizer.normalize(windows, wmask)
            normed[~wmask] = 0.0
            toks.append(self._encode_windows(normed, wmask))
            roots.append(params["root"])
            scales.append(params["scale"])
        tokens = np.stack(toks)
        params = {"root": np.stack(roots), "scale": np.stack(scales), "starts": starts, "mask": m,
                  "num_frames": np.int64(x.shape[1])}
        if single:
            tokens = tokens[0]
            params.update(root=params["root"][0], scale=params["scale"][0], mask=m[0])
        return (tokens, params) if return_params else tokens

    @torch.no_grad()
    def decode(self, tokens: Any, params: dict[str, Any], num_quantizers: int | None = None,
               with_confidence: bool = False, source: str = "tokens") -> np.ndarray:
        """Tokens of :meth:`encode` and its ``params`` -> poses ``(T, N, Dc)`` (or ``(B, T, N, Dc)``) float32 in
        the original units; frames outside ``params["mask"]`` are 0.

        Args:
            num_quantizers: decode from the first ``q`` quantizers only (a prefix of the residual code); tokens
                with fewer than ``Q`` columns are taken as such a prefix.
            with_confidence: for ``"2d+conf"`` checkpoints, append a confidence channel (1 in valid frames) so
                the output has the file format's ``D`` channels.
            source: names the tokens in error messages (a file path).
        """
        tok = np.asarray(tokens.detach().cpu().numpy() if isinstance(tokens, torch.Tensor) else tokens)
        single = tok.ndim == 4
        if tok.ndim not in (4, 5):
            raise field_error(source, "tokens", f"expected (W, T', G, Q) or (B, W, T', G, Q), got {tok.shape}")
        if tok.dtype.kind not in "iu" or (tok.size and (tok.min() < -1 or tok.max() >= self.codebook_size)):
            span = f", range [{tok.min()}, {tok.max()}]" if tok.size else ""
            raise field_error(source, "tokens", f"expected integer ids in [-1, {self.codebook_size}), got dtype "
                                                f"{tok.dtype}{span}")
        for key in ("root", "scale", "starts", "mask", "num_frames"):
            if key not in params:
                raise field_error(source, key, "missing; keep the params that encode(return_params=True) gave")
        root, scale = np.asarray(params["root"]), np.asarray(params["scale"])
        starts = np.asarray(params["starts"], dtype=np.int64)
        t = int(params["num_frames"])
        mask = np.asarray(params["mask"], dtype=bool)
        if single:
            tok, root, scale, mask = tok[None], root[None], scale[None], mask[None]
        g, qn = self.model.num_groups, self.num_quantizers
        if tok.shape[1] != len(starts) or tok.shape[3] != g or not 1 <= tok.shape[4] <= qn:
            raise field_error(source, "tokens", f"expected {len(starts)} windows of (T', {g}, <= {qn}) tokens, "
                                                  f"got {tok.shape[1:]}")
        q = int(num_quantizers or tok.shape[4])
        if not 1 <= q <= qn:
            raise PosetokError(f"num_quantizers must be in 1..{qn}, got {q}")
        tok = tok[..., :q]
        if q < qn:
            tok = np.concatenate([tok, np.full(tok.shape[:-1] + (qn - q,), -1, dtype=tok.dtype)], -1)
        dec = self.decoder(q)
        dc = self.dims.coord_dim
        out = np.zeros((len(tok), t, self.skeleton.num_joints, dc), dtype=np.float64)
        for c in range(len(tok)):
            flat = torch.from_numpy(tok[c].astype(np.int64))
            recon = torch.cat([dec(flat[i:i + self.batch_size]) for i in range(0, len(flat), self.batch_size)])
            # The decoder gives the coordinate channels only, which is what denormalize scales and moves.
            win = self.normalizer.denormalize(recon.cpu().numpy().astype(np.float64),
                                              {"root": root[c], "scale": scale[c]})
            acc = np.zeros_like(out[c])
            cnt = np.zeros(t)
            for w, s in enumerate(starts):
                e = min(int(s) + self.length, t)
                acc[s:e] += win[w, : e - s]
                cnt[s:e] += 1
            out[c] = acc / np.maximum(cnt, 1)[:, None, None]
        out[~mask] = 0.0
        if with_confidence and self.dims.has_confidence:
            out = np.concatenate([out, mask[..., None, None].repeat(out.shape[2], 2).astype(np.float64)], -1)
        out = out.astype(np.float32)
        return out[0] if single else out

    @torch.no_grad()
    def analyse(self, poses: Any, mask: Any = None, source: str = "input") -> dict[str, np.ndarray]:
        """The model's eval forward on the windows of one clip ``(T, N, D)``, for evaluation.

        Returns ``features`` and ``quantized`` ``(W, T', G, Dt)``, ``tokens`` ``(W, T', G, Q)`` (the model's
        reference path), ``token_mask`` ``(W, T')``, normalised ``target`` and ``recon`` ``(W, L, N, Dc)`` and
        the windows' ``mask`` ``(W, L)``.
        """
        x, m, _ = self._check(poses, mask, source)
        windows, wmask, _ = sliding_windows(PoseSequence(source, x[0], m[0]), self.length, self.stride)
        normed, _ = self.normalizer.normalize(windows, wmask)
        normed[~wmask] = 0.0
        p, mk = torch.from_numpy(np.ascontiguousarray(normed, dtype=np.float32)), torch.from_numpy(wmask)
        out = self.model(p, mk)
        coords, _ = self.model.split_confidence(p)
        return {"tokens": out["tokens"].numpy(), "features": out["features"].numpy(),
                "quantized": out["quantized"].numpy(),
                "token_mask": out["token_mask"].numpy(), "target": coords.numpy(), "recon": out["recon"].numpy(),
                "mask": wmask}


# ----------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------


def side_bits(params: list[dict[str, Any]]) -> float:
    """Bits that decoding needs beside the tokens of clips encoded with ``params``
    (:meth:`SequenceCodec.encode`): ``root`` and ``scale`` as float32 and the frame ``mask`` at 1 bit per frame
    (window starts follow from the clip length)."""
    return float(sum((np.size(p["root"]) + np.size(p["scale"])) * 32 + np.size(p["mask"]) for p in params))


def evaluate_sequence(codec: SequenceCodec, source: str | Path, split: str | None = "auto",
                      pck_threshold: float = 0.05, conf_threshold: float = 0.0,
                      num_quantizers: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tokenize and reconstruct every sequence of ``source`` (a ``.npz`` or a folder) and score it.

    Args:
        split: with a folder, the subfolder to read; ``"auto"`` reads ``test/`` when there is one, else the
            folder itself (recursively); None the folder itself.
        pck_threshold: of the person's box height per frame (:func:`~posetok.metrics.sequence.sequence_metrics`).
        conf_threshold: with ``"2d+conf"``, joints at or below this confidence are not scored.
        num_quantizers: decode from a prefix of the quantizers (None: all).

    Returns:
        ``metrics``: the :func:`sequence_metrics` keys in the files' units (``mse``, ``mae``, ``rmse``, ``mpjpe``,
        ``pck``, ``pck_threshold``, ``reference_size`` = mean box height, ``per_keypoint_error``) plus
        ``mpjpe_norm`` (normalised units), ``codebook_usage`` and ``perplexity`` (lists, one per quantizer),
        ``quantization_error``, ``compression_ratio`` (tokens plus the decode parameters, :func:`side_bits`),
        ``token_compression_ratio`` (tokens alone), ``side_bits_per_frame``, ``rate_distortion`` (``mpjpe`` and
        ``compression_ratio`` for ``q = 1..Q``),
        ``num_sequences``, ``num_frames``, ``frames_per_s``; and ``arrays`` per file: ``tokens``, ``recon``,
        ``poses``, ``mask``, ``files``.
    """
    from ..data.sequences import list_sequences
    from ..metrics.sequence import compression_ratio, quantization_error, sequence_metrics

    src = Path(source)
    if split == "auto":
        split = "test" if src.is_dir() and (src / "test").is_dir() else None
    files = list_sequences(src, split)
    dc, n = codec.dims.coord_dim, codec.skeleton.num_joints
    arrays: dict[str, list[Any]] = {"files": [], "tokens": [], "recon": [], "poses": [], "mask": [], "params": []}
    qerr_num = qerr_den = 0.0
    norm_err: list[np.ndarray] = []
    seconds = 0.0
    for f in files:
        seq = load_sequence(f, codec.skeleton, codec.dims.keypoint_dim)
        t0 = time.perf_counter()
        tokens, params = codec.encode(seq.poses, seq.mask, return_params=True, source=str(f))
        recon = codec.decode(tokens, params, num_quantizers)
        seconds += time.perf_counter() - t0
        a = codec.analyse(seq.poses, seq.mask, source=str(f))
        tm = np.broadcast_to(a["token_mask"][:, :, None], a["features"].shape[:3])
        if tm.any():
            qe = quantization_error(a["features"], a["quantized"], tm)
            qerr_num += qe * tm.sum()
            qerr_den += tm.sum()
        d = np.linalg.norm(a["recon"] - a["target"], axis=-1)
        norm_err.append(d[a["mask"]].ravel())
        for k, v in (("files", str(f)), ("tokens", tokens), ("recon", recon), ("poses", seq.poses),
                     ("mask", seq.mask), ("params", params)):
            arrays[k].append(v)
    poses = np.concatenate(arrays["poses"])
    mask = np.concatenate(arrays["mask"])
    target = poses[..., :dc]
    conf = poses[..., -1] if codec.dims.has_confidence else None

    def score(recon: np.ndarray) -> dict[str, Any]:
        return sequence_metrics(recon, target, mask, conf, pck_threshold, conf_threshold)

    metrics: dict[str, Any] = score(np.concatenate(arrays["recon"]))
    valid_tokens = np.concatenate([t.reshape(-1, t.shape[-1]) for t in arrays["tokens"]])
    stats = quantizer_stats(valid_tokens, codec.codebook_size)
    total_frames = int(sum(len(p) for p in arrays["poses"]))
    q_used = int(num_quantizers or codec.num_quantizers)
    side = side_bits(arrays["params"])
    rd = []
    for q in range(1, codec.num_quantizers + 1):
        rq = np.concatenate([codec.decode(t, p, q) for t, p in zip(arrays["tokens"], arrays["params"])])
        rd.append({"num_quantizers": q, "mpjpe": score(rq)["mpjpe"],
                   "compression_ratio": compression_ratio(total_frames, n, dc, (len(valid_tokens), q),
                                                          codec.codebook_size, side)})
    metrics.update({
        "mpjpe_norm": float(np.concatenate(norm_err).mean()) if norm_err else float("nan"),
        "codebook_usage": stats["codebook_usage"],
        "perplexity": stats["perplexity"],
        "quantization_error": qerr_num / qerr_den if qerr_den else float("nan"),
        "compression_ratio": compression_ratio(total_frames, n, dc, (len(valid_tokens), q_used),
                                               codec.codebook_size, side),
        "token_compression_ratio": compression_ratio(total_frames, n, dc, (len(valid_tokens), q_used),
                                                     codec.codebook_size),
        "side_bits_per_frame": side / max(total_frames, 1),
        "rate_distortion": rd,
        "num_quantizers": q_used,
        "codebook_size": codec.codebook_size,
        "num_sequences": len(files),
        "num_frames": total_frames,
        "frames_per_s": total_frames / max(seconds, 1e-9),
    })
    return metrics, arrays


def save_sequence_figures(out: str | Path, codec: SequenceCodec, metrics: dict[str, Any], arrays: dict[str, Any],
                          animation: str = "gif", max_frames: int = 300) -> list[Path]:
    """The figures of ``posetok eval --visualize`` for a sequence tokenizer, from :func:`evaluate_sequence`'s
    output, written to ``out``:

    * ``reconstruction.gif`` (or ``.mp4``): the first sequence, original and reconstruction side by side;
    * ``error_per_keypoint.png``: mean error per keypoint over all valid frames, in the files' units;
    * ``codebook_usage.png``: code counts per quantizer, with usage and perplexity;
    * ``rate_distortion.png``: mean joint error against the number of quantizers decoded, with the
      compression ratio of each, and 3% of the mean box height as a reference line.
    """
    from ..viz import (
        save_codebook_usage_per_quantizer,
        save_error_per_joint,
        save_rate_distortion,
        save_sequence_animation,
    )

    out = Path(out)
    dc = codec.dims.coord_dim
    first = arrays["poses"][0]
    paths = [save_sequence_animation(out / f"reconstruction.{animation}", first[..., :dc], arrays["recon"][0],
                                     codec.skeleton, mask=arrays["mask"][0], max_frames=max_frames,
                                     title=Path(arrays["files"][0]).name)]
    errors = np.concatenate([np.linalg.norm(r - p[..., :dc], axis=-1)[m]
                             for r, p, m in zip(arrays["recon"], arrays["poses"], arrays["mask"])])
    if codec.dims.has_confidence:
        conf = np.concatenate([p[..., -1][m] for p, m in zip(arrays["poses"], arrays["mask"])])
        errors = np.where(conf > 0, errors, np.nan)  # joints the file marks as not detected are not scored
    paths.append(save_error_per_joint(out / "error_per_keypoint.png", errors, codec.skeleton))
    tokens = np.concatenate([t.reshape(-1, t.shape[-1]) for t in arrays["tokens"]])
    paths.append(save_codebook_usage_per_quantizer(out / "codebook_usage.png", tokens[(tokens >= 0).all(1)],
                                                   codec.codebook_size))
    paths.append(save_rate_distortion(out / "rate_distortion.png", metrics["rate_distortion"],
                                      reference=0.03 * metrics["reference_size"],
                                      reference_label="3% of the box height"))
    return paths


# ----------------------------------------------------------------------------------------------------------
# Training run
# ----------------------------------------------------------------------------------------------------------


class _WriteSequenceModel(L.Callback):
    """Writes ``model.ckpt`` at the end of training."""

    def __init__(self, out: Path, cfg: dict[str, Any]) -> None:
        self.out = out
        self.cfg = cfg

    def write(self, trainer: L.Trainer, task: SequenceTokenizerTask) -> Path:
        m = self.cfg["model"]
        hist = task.train_history
        meta = {"global_step": trainer.global_step, "train_time_s": round(task.train_time_s(), 1),
                "val_history": [list(v) for v in task.val_history],
                "train_recon_first": float(np.mean(hist[:5])) if hist else None,
                "train_recon_last": float(np.mean(hist[-5:])) if hist else None}
        payload = sequence_payload(task.model, task.dims, m["skeleton"], m["coords"],  # type: ignore[arg-type]
                                   {"min_conf": self.cfg["data"]["min_conf"], "window_stride": None,
                                    "center": m["center"]}, self.cfg, meta)
        return save_sequence_tokenizer(self.out / "model.ckpt", payload)


def train_sequence(config: dict[str, Any] | Any, callbacks: list[L.Callback] | None = None) -> Path:
    """Train a sequence tokenizer as ``config`` says (see the module docstring); returns ``out/model.ckpt``.

    Same behaviour as :func:`posetok.tasks.runner.train`: ``out/config.yaml`` (resolved), ``out/last.ckpt``
    (Lightning resume state, every ``trainer.val_every_n_steps`` steps and at the end), ``out/model.ckpt``
    (atomic) and TensorBoard logs under ``out/tb``; a run with an existing ``last.ckpt`` resumes from it.
    """
    from ..perf import keep_freed_memory

    cfg = resolve_sequence_config(config)
    t = cfg["trainer"]
    if t["threads"]:
        torch.set_num_threads(int(t["threads"]))
    keep_freed_memory()
    out = Path(cfg["out"])
    L.seed_everything(t["seed"], workers=True, verbose=False)
    d = cfg["data"]
    train_ds, val_ds = build_datasets(cfg)
    if len(train_ds) < d["batch_size"]:
        raise PosetokError(f"{d['root'] or 'synthetic data'}: field 'poses': {len(train_ds)} training windows, "
                           f"fewer than one batch of data.batch_size={d['batch_size']}")
    train_loader = DataLoader(train_ds, batch_size=d["batch_size"], shuffle=True, drop_last=True,
                              num_workers=d["num_workers"], collate_fn=_collate,
                              persistent_workers=d["num_workers"] > 0)
    val_loader = DataLoader(val_ds, batch_size=256, shuffle=False, collate_fn=_collate)

    from .runner import fit_run

    task = SequenceTokenizerTask(cfg)
    return fit_run(OmegaConf.create(cfg), task, train_loader, val_loader, _WriteSequenceModel(out, cfg), callbacks)


__all__ = [
    "DEFAULTS", "FORMAT", "REAL_TRACK", "SequenceCodec", "SequenceTokenizerTask", "build_datasets",
    "dims_from_config", "evaluate_sequence", "load_sequence_tokenizer", "read_sequence_payload",
    "resolve_sequence_config", "save_sequence_figures", "save_sequence_tokenizer", "sequence_payload", "side_bits",
    "train_sequence", "warmup_cosine",
]
