"""Task ``sequence``: the pose sequence tokenizer (:class:`~posetok.models.sequence.SequenceTokenizerModel`). Its
datasets, Lightning module, training, evaluation, checkpoint kind and the commands on files.

Config: :class:`posetok.config.SequenceConfig` (``task: sequence``; ``model`` holds the preset, skeleton, coords,
root-centring and every model size, ``data`` a folder of ``.npz`` sequences or synthetic motion plus the bundled
real track, ``loss`` the weights of the reconstruction, velocity, bone and commitment terms).

Every window is normalised on its own by :class:`~posetok.data.sequences.SequenceNormalizer` (root-centred per
frame or per window, scaled by the torso size); the model sees and reconstructs normalised coordinates, and
:class:`~posetok.codecs.sequence.SequenceCodec` undoes the normalisation with the parameters it keeps beside the
tokens, so users see their own units.

``model.ckpt`` of kind ``sequence`` (:mod:`posetok.checkpoint` envelope)::

    format: "posetok.sequence_tokenizer"   format_version: 1   kind: "sequence"
    skeleton, coords, num_joints, dims (SequenceDims as a dict)
    normalizer: {min_conf, window_stride, center}
    state_dict, config (resolved training config), meta {global_step, train_time_s, posetok_version, ...}
"""

from __future__ import annotations

import collections
import copy
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from .. import checkpoint
from ..codecs.sequence import SequenceCodec, side_bits
from ..config import build_config, sequence_dims
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
from ..metrics import tokens as token_metrics
from ..metrics.sequence import quantizer_stats
from ..models.sequence import SequenceDims, SequenceTokenizerModel, sequence_losses
from ..skeletons import Skeleton, get_skeleton
from .runner import QuantizerTask, fit_run, prepare_run

TASK = "sequence"
REAL_TRACK = Path(__file__).resolve().parents[1] / "assets" / "real_sample" / "sequence_sports2d.npz"


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
# Lightning module
# ----------------------------------------------------------------------------------------------------------


class SequenceTokenizerTask(QuantizerTask):
    """Trains :class:`SequenceTokenizerModel` with :func:`sequence_losses` on valid frames and confident joints.

    From :class:`~posetok.tasks.runner.QuantizerTask`: the time tracking across resumes, the quantizer warm-up
    switch (``quantizing``: the model runs with ``quantize=False`` before ``optim.vq_start_step``) and the AdamW +
    :func:`~posetok.tasks.runner.warmup_cosine` optimiser. The network is built in :meth:`configure_model` so
    that the quantizer syncs under DDP.

    Validation logs ``val/mpjpe_norm`` (mean joint error in normalised units: torso sizes) and, once quantizing,
    ``val/code_usage_q{i}`` and ``val/perplexity_q{i}`` per quantizer.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        config = OmegaConf.to_container(build_config(TASK, config))  # type: ignore[assignment]
        super().__init__(config)
        self.skeleton: Skeleton = get_skeleton(self.cfg.model.skeleton)
        self.dims = sequence_dims(config)
        self.model: SequenceTokenizerModel | None = None  # type: ignore[assignment]
        # recon loss of the first and the last 5 training steps of this session (detached tensors)
        self.train_history: list[torch.Tensor] = []
        self.train_last: collections.deque[torch.Tensor] = collections.deque(maxlen=5)
        self.val_history: list[tuple[int, float]] = []

    def configure_model(self) -> None:
        if self.model is None:
            self.model = SequenceTokenizerModel(copy.deepcopy(self.dims), self.skeleton)

    @property
    def quantizing(self) -> bool:
        """rvq: False before ``optim.vq_start_step`` (the warm-up that lets k-means initialise the codebooks on
        trained features). rfsq and rlfq always: they have no codebook to initialise."""
        return self.dims.quantizer != "rvq" or super().quantizing

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
        recon = out["recon"].detach()
        if len(self.train_history) < 5:  # tensors, made numbers at the end: a float() here would wait for a GPU
            self.train_history.append(recon)
        self.train_last.append(recon)
        if not self.logging_step():  # what the loggers receive; see TimedTask.logging_step for why not every step
            return out["total"]
        bs = batch["poses"].shape[0]
        self.log_dict({f"train/{k}": out[k].detach() for k in ("total", "recon", "velocity", "bone", "commit")},
                      batch_size=bs)
        w = out["weight"].float()
        mpjpe = (out["err"] * w).sum() / w.sum().clamp(min=1.0)  # 0 without a valid joint, with no host wait
        self.show("train/mpjpe_norm", mpjpe)
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
# Checkpoint kind
# ----------------------------------------------------------------------------------------------------------


def _build(path: Path, payload: dict[str, Any], batch_size: int | None) -> SequenceCodec:
    if payload["coords"] not in COORDS:
        raise field_error(path, "coords", f"unknown coords {payload['coords']!r}")
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
        raise checkpoint.state_dict_error(path, e) from None
    model.eval()
    norm = payload["normalizer"]
    if norm.get("center", "window") not in CENTERS:
        raise field_error(path, "normalizer.center", f"unknown center {norm.get('center')!r}")
    return SequenceCodec(model, payload["coords"], min_conf=norm.get("min_conf", 0.3),
                         stride=norm.get("window_stride"), batch_size=batch_size or 64,
                         center=norm.get("center", "window"))


def _from_lightning(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    cfg = checkpoint.lightning_config(path, obj)
    if cfg["model"].get("kind") != "sequence":
        raise PosetokError(f"{path}: field 'hyper_parameters.config': not a posetok sequence training checkpoint")
    cfg = OmegaConf.to_container(build_config(TASK, cfg, str(path)))  # type: ignore[assignment]
    m = cfg["model"]
    dims = sequence_dims(cfg)
    return {"format": KIND.format, "format_version": KIND.format_version, "kind": "sequence",
            "skeleton": m["skeleton"], "coords": m["coords"], "num_joints": dims.num_keypoints,
            "dims": dims.to_dict(),
            "normalizer": {"min_conf": float(cfg["data"]["min_conf"]), "window_stride": None,
                           "center": m["center"]},
            "state_dict": checkpoint.lightning_weights(obj), "config": cfg,
            "meta": {"global_step": obj.get("global_step")}}


KIND = checkpoint.register(checkpoint.CheckpointKind(
    name="sequence", task=TASK, format="posetok.sequence_tokenizer", format_version=1,
    fields=("skeleton", "coords", "dims", "normalizer"), build=_build, from_lightning=_from_lightning))


def sequence_payload(model: SequenceTokenizerModel, dims: SequenceDims, skeleton: str, coords: str,
                     normalizer: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                     meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``model.ckpt`` dict of a sequence tokenizer (layout in the module docstring).

    ``normalizer``: ``min_conf`` (default 0.3), ``window_stride`` (default ``None``: the window length,
    no overlap) and ``center`` (default ``"window"``) that :class:`SequenceCodec` uses.
    """
    norm = {"min_conf": 0.3, "window_stride": None, "center": "window", **(normalizer or {})}
    return checkpoint.envelope(
        KIND, model.state_dict(), config, meta, skeleton=skeleton, coords=coords, num_joints=dims.num_keypoints,
        dims=dims.to_dict(),
        normalizer={"min_conf": float(norm["min_conf"]), "center": str(norm["center"]),
                    "window_stride": None if norm["window_stride"] is None else int(norm["window_stride"])})


def save_sequence_tokenizer(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a payload atomically (temporary file, then rename), as every posetok checkpoint is written."""
    return checkpoint.save(path, payload)


def load_sequence_tokenizer(path: str | Path, batch_size: int = 64) -> SequenceCodec:
    """Load a sequence tokenizer checkpoint (``model.ckpt`` or a run's ``last.ckpt``) as a :class:`SequenceCodec`."""
    return checkpoint.load_as(path, batch_size, kind=KIND.name)[1]


# ----------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------


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
        ``token_compression_ratio`` (tokens alone), ``bits_per_frame`` (token bits, ``log2`` of the effective
        codebook size each), ``side_bits_per_frame``, ``rate_distortion`` (``mpjpe``, ``bits_per_frame`` and
        ``compression_ratio`` for ``q = 1..Q``), ``quantizer``,
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
                   "bits_per_frame": token_metrics.bits_per_frame(len(valid_tokens), total_frames, q,
                                                                  codec.codebook_size),
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
        # Tokens alone, log2 of the effective codebook size each (prod(levels) for rfsq, 2^bits for rlfq).
        "bits_per_frame": token_metrics.bits_per_frame(len(valid_tokens), max(total_frames, 1), q_used,
                                                       codec.codebook_size),
        "side_bits_per_frame": side / max(total_frames, 1),
        "rate_distortion": rd,
        "num_quantizers": q_used,
        "codebook_size": codec.codebook_size,
        "quantizer": codec.model.quantizer_kind,
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
# Training
# ----------------------------------------------------------------------------------------------------------


class _WriteSequenceModel:
    """Writes ``model.ckpt`` at the end of training."""

    def __init__(self, out: Path, cfg: dict[str, Any]) -> None:
        self.out = out
        self.cfg = cfg

    def write(self, trainer: L.Trainer, task: SequenceTokenizerTask) -> Path:
        m = self.cfg["model"]
        first, last = ([float(v) for v in h] for h in (task.train_history, task.train_last))
        meta = {"global_step": trainer.global_step, "train_time_s": round(task.train_time_s(), 1),
                "val_history": [list(v) for v in task.val_history],
                "train_recon_first": float(np.mean(first)) if first else None,
                "train_recon_last": float(np.mean(last)) if last else None}
        payload = sequence_payload(task.model, task.dims, m["skeleton"], m["coords"],  # type: ignore[arg-type]
                                   {"min_conf": self.cfg["data"]["min_conf"], "window_stride": None,
                                    "center": m["center"]}, self.cfg, meta)
        return save_sequence_tokenizer(self.out / "model.ckpt", payload)


def train(config: DictConfig | dict[str, Any], callbacks: list[L.Callback] | None = None) -> Path:
    """Train a sequence tokenizer as ``config`` says (a config of ``task: sequence``, or a partial dict of one);
    returns ``out/model.ckpt``.

    ``out`` receives ``config.yaml`` (resolved), ``last.ckpt`` (Lightning resume state, every
    ``trainer.val_every_n_steps`` steps and at the end), ``model.ckpt`` (atomic) and TensorBoard logs under
    ``tb/``; a run with an existing ``last.ckpt`` resumes from it.
    """
    cfg = build_config(TASK, config)
    prepare_run(cfg)
    d = cfg.data
    train_ds, val_ds = build_datasets(cfg)
    if len(train_ds) < d.batch_size:
        raise PosetokError(f"{d.root or 'synthetic data'}: field 'poses': {len(train_ds)} training windows, "
                           f"fewer than one batch of data.batch_size={d.batch_size}")
    train_loader = DataLoader(train_ds, batch_size=d.batch_size, shuffle=True, drop_last=True,
                              num_workers=d.num_workers, collate_fn=_collate, persistent_workers=d.num_workers > 0)
    val_loader = DataLoader(val_ds, batch_size=256, shuffle=False, collate_fn=_collate)
    plain: dict[str, Any] = OmegaConf.to_container(cfg)  # type: ignore[assignment]
    task = SequenceTokenizerTask(plain)
    return fit_run(cfg, task, train_loader, val_loader, _WriteSequenceModel(Path(cfg.out), plain), callbacks)


# ----------------------------------------------------------------------------------------------------------
# Commands on files (posetok eval / tokenize / detokenize)
# ----------------------------------------------------------------------------------------------------------


def evaluate_file(codec: SequenceCodec, data: str | Path, visualize: str | Path | None = None,
                  pck_threshold: float | None = None, num_quantizers: int | None = None,
                  animation: str | None = None) -> dict[str, Any]:
    """``posetok eval``: :func:`evaluate_sequence` on a ``.npz`` or a folder; with ``visualize``, also the
    figures of :func:`save_sequence_figures` (their paths under ``figures``)."""
    metrics, arrays = evaluate_sequence(codec, data, pck_threshold=0.05 if pck_threshold is None else pck_threshold,
                                        num_quantizers=num_quantizers)
    if visualize:
        metrics["figures"] = [str(p) for p in save_sequence_figures(Path(visualize), codec, metrics, arrays,
                                                                    animation=animation or "gif")]
    return metrics


def tokenize_file(codec: SequenceCodec, source: str | Path, output: str | Path) -> str:
    """``posetok tokenize``: a sequence ``.npz`` -> a token ``.npz`` with the decode parameters; returns the line
    to print."""
    from ..data.tokens import save_sequence_tokens

    seq = load_sequence(source, codec.skeleton, codec.dims.keypoint_dim)
    tokens, params = codec.encode(seq.poses, seq.mask, return_params=True, source=str(source))
    save_sequence_tokens(output, tokens, params, codec.skeleton.name, codec.coords, codec.codebook_size,
                         codec.num_quantizers, codec.length, source=str(source))
    return (f"{seq.num_frames} frames -> {tokens.shape[0]} windows of {tokens.shape[1:]} tokens "
            f"({codec.codebook_size} codes): {output}")


def detokenize_file(codec: SequenceCodec, source: str | Path, output: str | Path,
                    num_quantizers: int | None = None) -> str:
    """``posetok detokenize``: a token ``.npz`` -> a sequence ``.npz`` in the input's units and channels;
    returns the line to print."""
    from ..data.sequences import save_sequence
    from ..data.tokens import load_sequence_tokens

    tokens, params = load_sequence_tokens(source, codec.skeleton.name, codec.coords, codec.codebook_size,
                                          codec.num_quantizers)
    poses = codec.decode(tokens, params, num_quantizers=num_quantizers, with_confidence=True, source=str(source))
    save_sequence(output, poses, params["mask"])
    return f"{len(poses)} frames decoded ({poses.shape[1]} keypoints, D = {poses.shape[2]}): {output}"
