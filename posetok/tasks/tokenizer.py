"""Task ``tokenizer``: the PCT pose tokenizer. Its datasets, Lightning module, training, evaluation, checkpoint
kind and the commands on files.

``model.ckpt`` of kind ``pct`` (:mod:`posetok.checkpoint` envelope)::

    format: "posetok.tokenizer"   format_version: 1   kind: "pct"
    skeleton: "coco17"   num_joints: 17
    dims: {encoder: {...}, decoder: {...}, codebook: {..., quantizer: vq | fsq | lfq, levels}}  (no quantizer: vq)
          guide: {ratio, backbone, channels, input_size}  (image guidance; ratio 0 or absent: none)
    codec: {input_size: [w, h], padding: 1.25}
    state_dict, config (resolved training config), meta {global_step, train_time_s, posetok_version}

A Lightning ``last.ckpt`` of a tokenizer run loads too: its hyper-parameters hold the config.

An image-guided tokenizer (``model.guide_ratio > 0``) holds its frozen guide backbone in ``state_dict``
(``guide.backbone.*``, copied from the estimator checkpoint of ``model.guide_backbone`` at the start of training),
so its file is self-contained; it trains on crops (:class:`GuidedCrops`) and encodes with them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from .. import checkpoint
from ..codecs.crop import box_to_center_scale, to_crop
from ..codecs.pct import PCTCodec
from ..config import build_config
from ..data.coco import CocoKeypoints, load_coco_keypoints
from ..data.json_fields import read_json_file
from ..data.mpii import load_mpii_json
from ..data.people import People, coco_people, load_people, real_sample_people
from ..data.topdown import TopdownAugment, TopdownDataset, imagenet_normalize_torch, topdown_collate
from ..data.transforms import KeypointAugment
from ..errors import PosetokError
from ..metrics import tokens as token_metrics
from ..metrics.coco import coco_keypoint_eval, keypoint_gt
from ..metrics.pck import bbox_size, keypoint_errors, pck
from ..models.pct import PCTDims, PCTTokenizerModel
from ..models.pct_guide import GuideDims, ImageGuide
from ..skeletons import Skeleton, get_skeleton
from .runner import QuantizerTask, fit_run, prepare_run

TASK = "tokenizer"

# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------


class CropTargets(Dataset):
    """Poses in image pixels -> (augmented) normalised crop coordinates for the tokenizer.

    Fetching is batched (``__getitems__``): the DataLoader hands over a whole batch of indices and the
    augmentation and normalisation run vectorised over it, which matters on a 2-core machine.

    Args:
        keypoints: ``(N, K, 3)`` pixels + visibility.
        boxes: ``(N, 4)`` xywh person boxes.
        aspect_ratio, padding: the crop frame (see :mod:`posetok.codecs.crop`).
        augment: random flips, rotations, scales, shifts and half-body boxes, or None.
        seed: seed of the augmentation stream (offset by the rank under DDP).
    """

    def __init__(self, keypoints: np.ndarray, boxes: np.ndarray, aspect_ratio: float, padding: float,
                 augment: KeypointAugment | None = None, seed: int = 0) -> None:
        self.keypoints = np.ascontiguousarray(keypoints, dtype=np.float32)
        self.boxes = np.ascontiguousarray(boxes, dtype=np.float32)
        self.aspect_ratio = aspect_ratio
        self.padding = padding
        self.augment = augment
        self.seed = seed
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.keypoints)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        if self._rng is None:
            info = torch.utils.data.get_worker_info()
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            self._rng = np.random.default_rng([self.seed, rank, info.id if info else 0])
        idx = np.asarray(indices)
        kp, bx = self.keypoints[idx], self.boxes[idx]
        if self.augment is not None:
            kp, bx = self.augment(kp, bx, self._rng)
        center, size = box_to_center_scale(bx, self.aspect_ratio, self.padding)
        visible = kp[..., 2] > 0
        coords = np.where(visible[..., None], to_crop(kp[..., :2], center, size), 0.0).astype(np.float32)
        return {"coords": torch.from_numpy(coords), "visible": torch.from_numpy(visible)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


def _keep_batch(batch: Any) -> Any:
    return batch


def make_loader(dataset: CropTargets, batch_size: int, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """A DataLoader that fetches whole batches through :meth:`CropTargets.__getitems__`."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      collate_fn=_keep_batch, drop_last=shuffle, persistent_workers=num_workers > 0)


def load_poses(path: str | None, skeleton: Skeleton, synthetic: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``(N, K, 3)`` and boxes ``(N, 4)`` from a COCO keypoint file (a JSON object), an MPII file in the
    HRNet/MMPose form (a JSON list; its box: the square of side ``scale * 200`` on ``center``), or ``synthetic``
    synthetic people."""
    if path:
        if isinstance(read_json_file(path), list):
            if skeleton.name != "mpii16":
                raise PosetokError(f"{path}: field 'joints': an MPII file holds the 16 MPII joints; this tokenizer's "
                                   f"model.skeleton is '{skeleton.name}' (use mpii16)")
            mpii = load_mpii_json(path)
            return mpii.keypoints, mpii.boxes
        data = load_coco_keypoints(path, skeleton=skeleton.name)
        return data.keypoints, data.boxes
    from ..data.synthetic import sample_poses

    poses = sample_poses(synthetic, skeleton=skeleton.name, seed=seed)
    return poses.keypoints, poses.boxes


class GuidedCrops(Dataset):
    """Person crops for an image-guided tokenizer: a :class:`~posetok.data.topdown.TopdownDataset` sample ->
    ``image`` ``(h, w, 3)`` uint8 crop, ``coords`` ``(K, 2)`` float32 normalised crop coordinates (classic frame:
    ``u = x_in / w - 0.5``, the frame of :class:`CropTargets`) and ``visible`` ``(K,)`` bool (``v > 0``)."""

    def __init__(self, crops: TopdownDataset) -> None:
        self.crops = crops
        self.span = np.asarray(crops.input_size, np.float32)

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        sample = self.crops[index]
        kp = sample["keypoints"]
        visible = kp[:, 2] > 0
        coords = np.where(visible[:, None], kp[:, :2] / self.span - 0.5, 0.0).astype(np.float32)
        return {"image": sample["image"], "coords": coords, "visible": visible}


def _guided_people(cfg: DictConfig, part: str) -> People:
    """The people of ``data.train`` / ``data.val`` with their images, or of the bundled real frames."""
    d = cfg.data
    if not d.train:
        return real_sample_people(part, split=d.real_split)
    ann, images = (d.train, d.train_images) if part == "train" else (d.val, d.val_images)
    if not ann:
        raise PosetokError("data.val: an image-guided tokenizer trained on data.train needs a held-out annotation "
                           "file with its images (data.val, data.val_images)")
    if not images:
        raise PosetokError(f"data.{part}_images: an image-guided tokenizer trains on crops: give the image folder "
                           f"of {ann}")
    return load_people(ann, images, cfg.model.skeleton)


def build_guided_loaders(cfg: DictConfig) -> tuple[DataLoader, DataLoader]:
    """Loaders of crops (:class:`GuidedCrops`) for an image-guided tokenizer: MMPose's top-down augmentation
    (the ``data.augment`` values; ``rot_deg`` as the rotation factor) for training, plain crops for validation."""
    m, d = cfg.model, cfg.data
    skeleton = get_skeleton(m.skeleton)
    size = (int(m.input_size[0]), int(m.input_size[1]))
    a = d.augment
    augment = TopdownAugment.for_skeleton(
        skeleton, size[0] / size[1], flip_prob=a.flip_prob, half_body_prob=a.half_body_prob,
        shift_factor=a.shift_factor, shift_prob=a.shift_prob, scale_range=tuple(a.scale_range),
        rot_factor=a.rot_deg, rot_prob=a.rot_prob, grid_dropout_prob=a.grid_dropout) if a.enabled else None
    loaders = []
    for part in ("train", "val"):
        people = _guided_people(cfg, part)
        train = part == "train"
        if train and len(people) < d.batch_size:
            raise PosetokError(f"{people.source}: field 'annotations': {len(people)} people, fewer than one batch "
                               f"of data.batch_size={d.batch_size}")
        center, crop = box_to_center_scale(people.boxes, size[0] / size[1], m.padding)
        crops = TopdownDataset(people.image_paths, people.keypoints, center, crop, input_size=size,
                               flip_index=skeleton.flip_index, augment=augment if train else None, seed=d.seed)
        workers = d.num_workers if train else 0
        loaders.append(DataLoader(GuidedCrops(crops), batch_size=d.batch_size if train else 64, shuffle=train,
                                  drop_last=train, num_workers=workers, collate_fn=topdown_collate,
                                  persistent_workers=workers > 0))
    return loaders[0], loaders[1]


def resolve_guide(cfg: DictConfig) -> None:
    """Fill ``model.guide`` (backbone name and channels) of an image-guided config from ``model.guide_backbone``
    after checking that file: an estimator ``model.ckpt`` with the tokenizer's skeleton and crop frame whose
    weights give the whole stride-32 map.

    Raises:
        PosetokError: naming the file and the field otherwise.
    """
    m = cfg.model
    if not m.guide_ratio or not m.guide_backbone:
        return
    path = m.guide_backbone
    if not Path(path).is_file():
        raise PosetokError(f"{path}: checkpoint not found (model.guide_backbone: the heatmap-trained estimator "
                           "that guides this tokenizer; train it first)")
    obj = checkpoint.read_checkpoint(path)
    if obj.get("format") not in ("posetok.estimator", "posetok.pct_estimator"):
        raise PosetokError(f"{path}: field 'format': expected a heatmap-trained estimator's model.ckpt "
                           f"(posetok.estimator), got {obj.get('format')!r}")
    try:
        skeleton, backbone, crop = obj["skeleton"], obj["dims"]["backbone"], obj["crop"]
    except KeyError as e:
        raise PosetokError(f"{path}: field {e}: missing") from None
    if skeleton != m.skeleton:
        raise PosetokError(f"{path}: field 'skeleton': the guide backbone was trained on '{skeleton}', this "
                           f"tokenizer's model.skeleton is '{m.skeleton}'")
    if [int(v) for v in crop["input_size"]] != [int(v) for v in m.input_size]:
        raise PosetokError(f"{path}: field 'crop.input_size': the guide backbone reads {list(crop['input_size'])} "
                           f"crops, this tokenizer's model.input_size is {list(m.input_size)}")
    if abs(float(crop["padding"]) - float(m.padding)) > 1e-9:
        raise PosetokError(f"{path}: field 'crop.padding': the guide backbone's crops are padded by "
                           f"{float(crop['padding']):g}, this tokenizer's model.padding is {float(m.padding):g}")
    guide = ImageGuide(GuideDims(float(m.guide_ratio), backbone, 0, tuple(m.input_size)), weights=path, source=path)
    report = guide.backbone.weights_report
    if report.missing:
        raise PosetokError(f"{path}: field 'state_dict': {len(report.missing)} weights of the {backbone} stride-32 "
                           f"map are missing (e.g. {report.missing[0]})")
    m.guide.backbone, m.guide.channels = backbone, guide.channels


def tokenizer_dims(m: Any) -> PCTDims:
    """The network dims of a resolved config's ``model`` section (a dict or DictConfig), the guide included."""
    d = OmegaConf.to_container(m) if OmegaConf.is_config(m) else dict(m)
    guide = d.get("guide") or {}
    dims = PCTDims.from_dict({s: d[s] for s in ("encoder", "decoder", "codebook")})
    dims.guide = GuideDims(float(d.get("guide_ratio") or 0.0), guide.get("backbone"), int(guide.get("channels") or 0),
                           tuple(d["input_size"]))
    return dims


def build_loaders(cfg: DictConfig) -> tuple[DataLoader, DataLoader]:
    """Training (augmented, shuffled) and validation loaders of a resolved config (crops when image-guided)."""
    if cfg.model.guide_ratio > 0:
        return build_guided_loaders(cfg)
    skeleton = get_skeleton(cfg.model.skeleton)
    aspect = cfg.model.input_size[0] / cfg.model.input_size[1]
    a = cfg.data.augment
    augment = KeypointAugment(
        skeleton, flip_prob=a.flip_prob, rot_deg=a.rot_deg, rot_prob=a.rot_prob,
        scale_range=tuple(a.scale_range), shift_factor=a.shift_factor, shift_prob=a.shift_prob,
        half_body_prob=a.half_body_prob) if a.enabled else None
    train_kp, train_bx = load_poses(cfg.data.train, skeleton, cfg.data.synthetic_train, cfg.data.seed)
    val_kp, val_bx = load_poses(cfg.data.val, skeleton, cfg.data.synthetic_val, cfg.data.seed + 1_000_003)
    if len(train_kp) < cfg.data.batch_size:
        raise PosetokError(f"{cfg.data.train or 'synthetic data'}: field 'annotations': {len(train_kp)} people, "
                           f"fewer than one batch of data.batch_size={cfg.data.batch_size}")
    train_loader = make_loader(
        CropTargets(train_kp, train_bx, aspect, cfg.model.padding, augment, seed=cfg.data.seed),
        cfg.data.batch_size, shuffle=True, num_workers=cfg.data.num_workers)
    val_loader = make_loader(CropTargets(val_kp, val_bx, aspect, cfg.model.padding), 1024, shuffle=False)
    return train_loader, val_loader


# ----------------------------------------------------------------------------------------------------------
# Lightning module
# ----------------------------------------------------------------------------------------------------------


class TokenizerTask(QuantizerTask):
    """Trains :class:`PCTTokenizerModel`: Smooth-L1 on labelled joints plus the VQ commitment loss."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.skeleton: Skeleton = get_skeleton(self.cfg.model.skeleton)
        self.model: PCTTokenizerModel | None = None

    def configure_model(self) -> None:
        if self.model is None:
            dims = tokenizer_dims(self.cfg.model)
            # the guide's weights: the estimator checkpoint (resuming then loads the same from last.ckpt)
            weights = self.cfg.model.get("guide_backbone") if dims.guide.enabled else None
            self.model = PCTTokenizerModel(self.skeleton.num_joints, dims, guide_weights=weights)

    @property
    def quantizing(self) -> bool:
        """vq: False before ``optim.vq_start_step`` (:class:`~posetok.tasks.runner.QuantizerTask`). fsq and lfq
        always: the warm-up exists so that k-means initialises a vq codebook on trained features, and a scalar
        quantizer has no codebook to initialise (switching it in late would only put an untrained projection
        between a trained encoder and decoder)."""
        return self.cfg.model.get("quantizer", "vq") != "vq" or super().quantizing

    @property
    def crop_px(self) -> float:
        """Crop height of the model input in pixels: turns normalised errors into input-resolution pixels."""
        return float(self.cfg.model.input_size[1])

    def _losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        assert self.model is not None
        images = imagenet_normalize_torch(batch["image"]) if "image" in batch else None  # guided: the crops
        out = self.model(batch["coords"], batch["visible"], quantize=self.quantizing, images=images)
        w = batch["visible"].float()
        per_joint = F.smooth_l1_loss(out["recon"], batch["coords"], beta=self.cfg.loss.beta, reduction="none")
        joint_loss = (per_joint.sum(-1) * w).sum() / w.sum().clamp(min=1.0)
        loss = self.cfg.loss.joint_weight * joint_loss + self.cfg.loss.commit_weight * out["commit_loss"]
        err = ((out["recon"] - batch["coords"]).norm(dim=-1) * w).sum() / w.sum().clamp(min=1.0)
        return {"loss": loss, "joint_loss": joint_loss, "commit_loss": out["commit_loss"].detach(),
                "error_px": err.detach() * self.crop_px, "recon": out["recon"].detach(), "tokens": out["tokens"]}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self._losses(batch)
        if not self.logging_step():  # what the loggers receive; see TimedTask.logging_step for why not every step
            return out["loss"]
        logs = {"train/loss": out["loss"].detach(), "train/joint_loss": out["joint_loss"].detach(),
                "train/commit_loss": out["commit_loss"]}
        if self.quantizing:
            v = self.model.codebook_size  # type: ignore[union-attr]
            used = torch.zeros(v, device=out["tokens"].device).index_fill_(0, out["tokens"].flatten(), 1.0)
            logs["train/batch_code_usage"] = used.mean()  # fixed size: no host wait, unlike unique()
        bs = batch["coords"].shape[0]
        self.log_dict(logs, batch_size=bs)
        self.show("train/error_px", out["error_px"])
        return out["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self._losses(batch)
        self._val.append((out["recon"], batch["coords"], batch["visible"], out["tokens"]))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        recon, coords, visible, tokens = (torch.cat(t) for t in zip(*self._val))
        self._val.clear()
        err = (recon - coords).norm(dim=-1)[visible].mean() * self.crop_px
        self.log("val/error_px", err, prog_bar=True, sync_dist=True)
        if self.quantizing:
            tok = tokens.cpu().numpy()
            v = self.model.codebook_size  # type: ignore[union-attr]
            self.log_dict({"val/code_usage": token_metrics.codebook_usage(tok, v),
                           "val/perplexity": token_metrics.perplexity(tok, v)}, sync_dist=True)


# ----------------------------------------------------------------------------------------------------------
# Checkpoint kind
# ----------------------------------------------------------------------------------------------------------


def _build(path: Path, payload: dict[str, Any], batch_size: int | None) -> PCTCodec:
    if (payload["dims"].get("guide") or {}).get("ratio", 0) and not (payload["dims"]["guide"].get("backbone")):
        raise PosetokError(f"{path}: field 'dims.guide.backbone': missing for an image-guided tokenizer")
    try:
        skeleton = get_skeleton(payload["skeleton"])
        model = PCTTokenizerModel(skeleton.num_joints, PCTDims.from_dict(payload["dims"]))
        model.load_state_dict(payload["state_dict"])
    except PosetokError as e:
        raise PosetokError(f"{path}: field 'skeleton': {e}") from None
    except (RuntimeError, TypeError, KeyError) as e:
        raise checkpoint.state_dict_error(path, e) from None
    model.eval()
    return PCTCodec(model, skeleton, tuple(payload["codec"]["input_size"]), payload["codec"]["padding"],
                    batch_size=batch_size or 4096)


def _from_lightning(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    cfg = checkpoint.lightning_config(path, obj)
    m = cfg["model"]
    return {
        "format": KIND.format, "format_version": KIND.format_version, "kind": m["kind"], "skeleton": m["skeleton"],
        "num_joints": get_skeleton(m["skeleton"]).num_joints,
        "dims": tokenizer_dims(m).to_dict(),
        "codec": {"input_size": m["input_size"], "padding": m["padding"]},
        "state_dict": checkpoint.lightning_weights(obj), "config": cfg, "meta": {"global_step": obj.get("global_step")},
    }


KIND = checkpoint.register(checkpoint.CheckpointKind(
    name="pct", task=TASK, format="posetok.tokenizer", format_version=1,
    fields=("skeleton", "dims", "codec"), build=_build, from_lightning=_from_lightning))


def tokenizer_payload(model: PCTTokenizerModel, skeleton: str, input_size: list[int], padding: float,
                      config: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``model.ckpt`` dict for ``model`` (layout in the module docstring)."""
    return checkpoint.envelope(
        KIND, model.state_dict(), config, meta, skeleton=skeleton, num_joints=model.num_joints,
        dims=model.dims.to_dict(), codec={"input_size": [int(v) for v in input_size], "padding": float(padding)})


def load_pose_tokenizer(path: str | Path, batch_size: int = 4096) -> PCTCodec:
    """Load a pose (PCT) tokenizer checkpoint (``model.ckpt`` or a run's ``last.ckpt``) as a :class:`PCTCodec`."""
    return checkpoint.load_as(path, batch_size, kind=KIND.name)[1]


# ----------------------------------------------------------------------------------------------------------
# Training and evaluation
# ----------------------------------------------------------------------------------------------------------


class _WriteModel:
    """Writes ``model.ckpt`` (weights plus everything needed to use them) at the end of training."""

    def __init__(self, out: Path, cfg: DictConfig) -> None:
        self.out = out
        self.cfg = cfg

    def write(self, trainer: L.Trainer, task: TokenizerTask) -> Path:
        m = self.cfg.model
        payload = tokenizer_payload(
            task.model, m.skeleton, list(m.input_size), m.padding, OmegaConf.to_container(self.cfg),  # type: ignore
            {"global_step": trainer.global_step, "train_time_s": round(task.train_time_s(), 1)})
        return checkpoint.save(self.out / "model.ckpt", payload)


def train(config: DictConfig | dict[str, Any], callbacks: list[L.Callback] | None = None) -> Path:
    """Train a pose tokenizer as ``config`` says (a config of ``task: tokenizer``, or a partial dict of one);
    returns the path of ``model.ckpt``.

    ``out`` receives ``config.yaml`` (resolved), ``last.ckpt`` (resume state, rewritten every
    ``trainer.val_every_n_steps`` steps and at the end), ``model.ckpt`` and TensorBoard logs under ``tb/``.
    If ``last.ckpt`` exists the run resumes from it.
    """
    cfg = build_config(TASK, config)
    prepare_run(cfg)
    resolve_guide(cfg)
    train_loader, val_loader = build_loaders(cfg)
    task = TokenizerTask(OmegaConf.to_container(cfg))  # type: ignore[arg-type]
    return fit_run(cfg, task, train_loader, val_loader, _WriteModel(Path(cfg.out), cfg), callbacks)


def _encode_people(codec: PCTCodec, data: CocoKeypoints, images: str | Path | None) -> np.ndarray:
    """Tokens ``(N, M)`` of every annotated person (an image-guided codec: with the crops of ``images``, read a
    chunk of people at a time)."""
    if not codec.guided:
        return codec.encode(data.keypoints, data.boxes)
    if images is None:
        raise PosetokError("--images: this tokenizer is image-guided (model.guide_ratio > 0): give the image "
                           f"folder of {data.path}")
    from ..data.images import read_image

    paths = coco_people(data, images).image_paths
    out = []
    for i in range(0, len(data), 256):
        rows = range(i, min(i + 256, len(data)))
        cache: dict[Path, np.ndarray] = {}  # people of one image share its decoding
        for r in rows:
            if paths[r] not in cache:
                cache[paths[r]] = read_image(paths[r])
        pictures = [cache[paths[r]] for r in rows]
        out.append(codec.encode(data.keypoints[i:rows.stop], data.boxes[i:rows.stop], images=pictures))
    return np.concatenate(out) if out else np.zeros((0, codec.num_tokens), np.int64)


def evaluate(codec: PCTCodec, data: CocoKeypoints, pck_thr: float = 0.05, images: str | Path | None = None
             ) -> tuple[dict[str, Any], dict]:
    """Reconstruct every annotated person of ``data`` and score it; ``images``: the image folder of ``data``,
    needed (and only allowed) when ``codec`` is image-guided.

    Returns the metrics and the arrays behind them (``tokens``, ``recon``, ``errors``). Reconstructions use
    each annotation's box; OKS-AP scores them (pycocotools) against the same people's annotations (their
    ``area``) with the skeleton's sigmas, and every labelled joint is scored (occluded ones included).
    """
    if data.skeleton.num_joints != codec.skeleton.num_joints:
        raise PosetokError(f"{data.path}: field 'annotations[0].keypoints': {data.skeleton.num_joints} joints, "
                           f"the checkpoint's skeleton '{codec.skeleton.name}' has {codec.skeleton.num_joints}")
    if images is not None and not codec.guided:
        raise PosetokError("--images: applies to image-guided tokenizers and estimators; this tokenizer reads "
                           "keypoints alone")
    t0 = time.perf_counter()
    tokens = _encode_people(codec, data, images)
    recon = codec.decode(tokens, data.boxes)
    seconds = time.perf_counter() - t0
    errors = keypoint_errors(recon, data.keypoints)
    metrics: dict[str, Any] = {"num_people": len(data), "num_joints": codec.skeleton.num_joints}
    if codec.skeleton.sigmas is not None:
        results = [{"image_id": int(i), "category_id": 1, "score": 1.0,
                    "keypoints": np.concatenate([r, np.ones((len(r), 1))], 1).ravel().tolist()}
                   for i, r in zip(data.image_ids, recon)]
        gt = keypoint_gt(data.keypoints, data.boxes, data.areas, data.image_ids)
        metrics.update(coco_keypoint_eval(gt, results, codec.skeleton.sigmas))
    v, m = codec.codebook_size, codec.num_tokens  # V: the effective codebook size (prod(levels) for fsq)
    metrics.update({
        "mean_error_px": float(np.nanmean(errors)),
        "median_error_px": float(np.nanmedian(errors)),
        f"pck_{pck_thr:g}": pck(recon, data.keypoints, bbox_size(data.boxes), pck_thr),
        "codebook_usage": token_metrics.codebook_usage(tokens, v),
        "perplexity": token_metrics.perplexity(tokens, v),
        "bits_per_pose": token_metrics.bits_per_pose(m, v),
        "compression_ratio": token_metrics.compression_ratio(codec.skeleton.num_joints, m, v),
        "num_tokens": m,
        "codebook_size": v,
        "quantizer": codec.model.quantizer_kind,
        "poses_per_s": len(data) / max(seconds, 1e-9),
    })
    return metrics, {"tokens": tokens, "recon": recon, "errors": errors}


# ----------------------------------------------------------------------------------------------------------
# Commands on files (posetok eval / tokenize / detokenize)
# ----------------------------------------------------------------------------------------------------------


def evaluate_file(codec: PCTCodec, data: str | Path, visualize: str | Path | None = None,
                  pck_threshold: float | None = None, num_quantizers: int | None = None,
                  animation: str | None = None, images: str | Path | None = None) -> dict[str, Any]:
    """``posetok eval``: score ``codec`` on a COCO keypoint file (:func:`evaluate`; ``pck_threshold`` of the box
    size, default 0.05; ``images``: the image folder, for an image-guided tokenizer); with ``visualize``, also
    write ``reconstructions.png``, ``codebook_usage.png`` and ``error_per_joint.png`` there. ``num_quantizers``
    and ``animation`` apply to sequence tokenizers only."""
    for flag, value in (("--num-quantizers", num_quantizers), ("--animation", animation)):
        if value is not None:
            raise PosetokError(f"{flag}: applies to sequence tokenizers only; this checkpoint is a pose (PCT) "
                               "tokenizer")
    coco = load_coco_keypoints(data, skeleton=codec.skeleton.name)
    metrics, arrays = evaluate(codec, coco, 0.05 if pck_threshold is None else pck_threshold, images)
    if visualize:
        from ..viz import save_codebook_usage, save_error_per_joint, save_reconstruction_grid

        out = Path(visualize)
        save_reconstruction_grid(out / "reconstructions.png", coco.keypoints, arrays["recon"], codec.skeleton,
                                 boxes=coco.boxes)
        save_codebook_usage(out / "codebook_usage.png", arrays["tokens"], codec.codebook_size)
        save_error_per_joint(out / "error_per_joint.png", arrays["errors"], codec.skeleton)
    return metrics


def tokenize_file(codec: PCTCodec, source: str | Path, output: str | Path, images: str | Path | None = None) -> str:
    """``posetok tokenize``: every annotated person of a COCO keypoint file -> a token ``.npz`` (``images``: the
    image folder, for an image-guided tokenizer); returns the line to print."""
    from ..data.tokens import save_tokens

    data = load_coco_keypoints(source, skeleton=codec.skeleton.name)
    if images is not None and not codec.guided:
        raise PosetokError("--images: applies to image-guided tokenizers; this tokenizer reads keypoints alone")
    tokens = _encode_people(codec, data, images)
    save_tokens(output, tokens, data.boxes, data.image_ids, data.ann_ids, codec.skeleton.name,
                codec.codebook_size, list(data.images.values()))
    return f"{len(tokens)} people -> {tokens.shape[1]} tokens each ({codec.codebook_size} codes): {output}"


def detokenize_file(codec: PCTCodec, source: str | Path, output: str | Path, num_quantizers: int | None = None
                    ) -> str:
    """``posetok detokenize``: a token ``.npz`` -> poses in the COCO results format; returns the line to print."""
    from ..data.coco import write_coco_results
    from ..data.tokens import load_tokens

    if num_quantizers is not None:
        raise PosetokError("--num-quantizers: applies to sequence tokenizers only; this checkpoint is a pose "
                           "(PCT) tokenizer")
    data = load_tokens(source, codec.num_tokens, codec.codebook_size, codec.skeleton.name)
    poses = codec.decode(data["tokens"], data["boxes"])
    write_coco_results(output, data["image_ids"], poses)
    return f"{len(poses)} people decoded: {output}"
