"""Task ``estimator``: top-down 2D pose estimation from images with heatmap heads (HRNet, HRFormer; the plain
heatmap head or the fusion head) or the PCT token classifier (``model.head.kind: pct``: Swin or HRNet features,
token logits decoded through a frozen pose tokenizer decoder). Its datasets, Lightning module, training,
evaluation, inference and checkpoint kinds.

``model.ckpt`` of kind ``heatmap`` (:mod:`posetok.checkpoint` envelope)::

    format: "posetok.estimator"   format_version: 1   kind: "heatmap"
    skeleton: "coco17"   num_joints: 17
    dims: {backbone, head, num_joints, input_size, deconv_channels, num_outputs, ...}  (EstimatorDims)
    codec: {type: msra | udp | fusion, input_size, heatmap_size, sigma, ...}
    crop: {input_size: [w, h], padding: 1.25}
    eval: {flip_test, nms, nms_thr, score_mode, keypoint_score_thr}
    state_dict, config (resolved training config), meta {global_step, train_time_s, posetok_version}

``model.ckpt`` of kind ``pct_estimator`` (the PCT classifier), the same envelope and fields::

    format: "posetok.pct_estimator"   format_version: 1   kind: "pct_estimator"
    dims: {..., head: "pct", pct: {head sizes}, tokenizer: {num_joints, num_tokens, token_dim, codebook_size,
           decoder}}  (EstimatorDims with SoftDecoderDims)
    codec: {type: pct, input_size, num_joints, num_tokens, codebook_size, score: logit | prob}
    tokenizer: {path, skeleton, input_size, padding}  (where the targets came from; never read back)
    state_dict: backbone.*, head.* and decoder.* (the tokenizer's decoder and its code vectors, frozen)

It is self-contained: the tokenizer's decoder travels in ``state_dict`` (``decoder.codebook`` ``(V, Dt)`` and the
decoder layers), so evaluation, inference and export need no tokenizer file. Its config's ``model.pct.decoder``
holds the decoder's dims too, so a run's Lightning ``last.ckpt`` converts without the tokenizer.

A Lightning ``last.ckpt`` of an estimator run loads too: its hyper-parameters hold the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from ... import checkpoint
from ...codecs.heatmap import build_heatmap_codec
from ...codecs.pct_tokens import PCTTokenCodec
from ...config import build_config
from ...data.mpii import load_mpii_head_boxes
from ...data.people import People, load_people, real_sample_people
from ...data.topdown import TopdownAugment
from ...errors import PosetokError
from ...models.estimator import EstimatorDims, build_estimator
from ...skeletons import get_skeleton
from ..runner import fit_run, prepare_run
from .evaluation import HeldOut, evaluate, save_visuals, score_file
from .inference import infer_file
from .module import EstimatorTask, codec_spec, config_dict, estimator_dims
from .pct import check_tokenizer, load_tokenizer, pct_codec
from .predictor import TopdownEstimator
from .samples import EncodedCrops, collate, crop_frames, synthetic_crops, train_loader

TASK = "estimator"

__all__ = ["TASK", "KIND", "PCT_KIND", "train", "evaluate", "evaluate_file", "infer_file", "score_file",
           "convert_mmpose", "load_estimator", "TopdownEstimator"]


# ----------------------------------------------------------------------------------------------------------
# Checkpoint kind
# ----------------------------------------------------------------------------------------------------------


def _build(path: Path, payload: dict[str, Any], batch_size: int | None) -> TopdownEstimator:
    try:
        skeleton = get_skeleton(payload["skeleton"])
        model = build_estimator(EstimatorDims.from_dict(payload["dims"]))
        model.load_state_dict(payload["state_dict"])
        codec: Any = (PCTTokenCodec.from_dict(payload["codec"]) if payload["codec"].get("type") == "pct"
                      else build_heatmap_codec(payload["codec"]))
    except PosetokError as e:
        raise PosetokError(f"{path}: field 'dims': {e}") from None
    except (RuntimeError, TypeError, KeyError, ValueError) as e:
        raise checkpoint.state_dict_error(path, e) from None
    model.eval()
    crop = payload["crop"]
    return TopdownEstimator(model, codec, skeleton, tuple(crop["input_size"]), crop["padding"],
                            flip_test=bool(payload.get("eval", {}).get("flip_test", True)),
                            batch_size=batch_size or 32)


def _payload_fields(cfg: Any) -> dict[str, Any]:
    m = cfg["model"] if isinstance(cfg, dict) else cfg.model
    c = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
    out = {"skeleton": m["skeleton"], "num_joints": get_skeleton(m["skeleton"]).num_joints,
           "dims": estimator_dims(c).to_dict(), "codec": codec_spec(c),
           "crop": {"input_size": [int(v) for v in m["input_size"]], "padding": float(m["padding"])},
           "eval": OmegaConf.to_container(c.eval)}
    if c.model.head.kind == "pct":
        out["tokenizer"] = {"path": c.model.tokenizer, "skeleton": m["skeleton"],
                            "input_size": [int(v) for v in m["input_size"]], "padding": float(m["padding"])}
    return out


def _from_lightning(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    cfg = checkpoint.lightning_config(path, obj)
    kind = PCT_KIND if cfg["model"]["kind"] == PCT_KIND.name else KIND
    return {"format": kind.format, "format_version": kind.format_version, "kind": kind.name,
            **_payload_fields(cfg), "state_dict": checkpoint.lightning_weights(obj), "config": cfg,
            "meta": {"global_step": obj.get("global_step")}}


#: The PCT token classifier's checkpoints: the same fields, builder and Lightning conversion as ``heatmap`` (the
#: payload says which network and codec), their own format, so a file says what it holds without its ``kind``.
PCT_KIND = checkpoint.register(checkpoint.CheckpointKind(
    name="pct_estimator", task=TASK, format="posetok.pct_estimator", format_version=1,
    fields=("skeleton", "dims", "codec", "crop"), build=_build, from_lightning=_from_lightning))
KIND = checkpoint.register(checkpoint.CheckpointKind(
    name="heatmap", task=TASK, format="posetok.estimator", format_version=1,
    fields=("skeleton", "dims", "codec", "crop"), build=_build, from_lightning=_from_lightning))
KINDS = (KIND.name, PCT_KIND.name)


def estimator_payload(model: torch.nn.Module, cfg: DictConfig, meta: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """The ``model.ckpt`` dict of a trained network (layout in the module docstring)."""
    kind = PCT_KIND if cfg.model.head.kind == "pct" else KIND
    return checkpoint.envelope(kind, model.state_dict(), config_dict(cfg), meta, **_payload_fields(cfg))


def load_estimator(path: str | Path, batch_size: int = 32) -> TopdownEstimator:
    """Load an estimator checkpoint (``model.ckpt`` or a run's ``last.ckpt``; heatmap or PCT) as a
    :class:`TopdownEstimator`."""
    found, payload = checkpoint.read_payload(path)
    if found.task != TASK:
        raise PosetokError(f"{path}: field 'format': expected 'posetok.estimator', got {payload.get('format')!r} "
                           f"(a '{found.name}' checkpoint)")
    return checkpoint.load_as(path, batch_size, kind=found.name)[1]


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------


class _WriteModel:
    def __init__(self, out: Path, cfg: DictConfig) -> None:
        self.out = out
        self.cfg = cfg

    def write(self, trainer: L.Trainer, task: EstimatorTask) -> Path:
        payload = estimator_payload(task.model, self.cfg, {"global_step": trainer.global_step,
                                                            "train_time_s": round(task.train_time_s(), 1)})
        return checkpoint.save(self.out / "model.ckpt", payload)


def people_for(cfg: DictConfig, split: str) -> People:
    d = cfg.data
    if d[split]:
        boxes = d.val_boxes if split == "val" else None
        people = load_people(d[split], d[f"{split}_images"], cfg.model.skeleton, boxes, d.box_score_thr)
        if split == "val" and people.mpii is not None:
            if not d.val_head_boxes:
                raise PosetokError(f"{d.val}: MPII validation scores PCKh, which needs data.val_head_boxes "
                                   "(gt_valid.mat, or a .npy / JSON of x1, y1, x2, y2 per person)")
            people.extra["head_boxes"] = load_mpii_head_boxes(d.val_head_boxes, len(people))
        return people
    people = real_sample_people(split, d.train_fraction, d.real_split)
    people.extra["subset"] = True
    return people


def augmentation(cfg: DictConfig) -> TopdownAugment | None:
    a = cfg.data.augment
    if not a.enabled:
        return None
    m = cfg.model
    return TopdownAugment.for_skeleton(
        get_skeleton(m.skeleton), m.input_size[0] / m.input_size[1], flip_prob=a.flip_prob,
        half_body_prob=a.half_body_prob, half_body_padding=a.half_body_padding, shift_factor=a.shift_factor,
        shift_prob=a.shift_prob, scale_range=tuple(a.scale_range), rot_factor=a.rot_factor, rot_prob=a.rot_prob,
        color_prob=1.0 if a.color_jitter else 0.0, grid_dropout_prob=a.grid_dropout, grid_unit=tuple(a.grid_unit))


def train(config: DictConfig | dict[str, Any], callbacks: list[L.Callback] | None = None) -> Path:
    """Train a top-down estimator as ``config`` says (``task: estimator``, or a partial dict of one); returns
    the path of ``model.ckpt``. Without ``data.train`` it trains on the first frames of the bundled real
    sample and reports the AP of the held-out rest at every validation."""
    cfg = build_config(TASK, config)
    prepare_run(cfg)
    m, d = cfg.model, cfg.data
    train_people, val_people = people_for(cfg, "train"), people_for(cfg, "val")
    for people in (train_people, val_people):
        if people.skeleton.name != m.skeleton:
            raise PosetokError(f"{people.source}: field 'categories': skeleton '{people.skeleton.name}', the "
                               f"config's model.skeleton is '{m.skeleton}'")
    tokenizer = None
    if m.head.kind == "pct":
        # The tokenizer decoder's dims go into the config: config.yaml, last.ckpt and model.ckpt then rebuild
        # the network without the tokenizer file.
        from ...models.pct_classifier import SoftDecoderDims

        tokenizer = load_tokenizer(m.tokenizer)
        check_tokenizer(cfg, tokenizer)
        if not m.pct.decoder:
            m.pct.decoder = SoftDecoderDims.of_tokenizer(tokenizer.model).to_dict()
        codec: Any = pct_codec(cfg, tokenizer)  # checks the tokenizer's skeleton, input size and padding
    else:
        codec = build_heatmap_codec(codec_spec(cfg))
    check_backbone_weights(cfg)
    augment = augmentation(cfg)
    synthetic = (synthetic_crops(train_people, d.synthetic, tuple(d.synthetic_size), tuple(m.input_size), m.padding,
                                 codec.udp, augment, d.seed) if d.synthetic else None)
    loader = train_loader(train_people, codec, tuple(m.input_size), m.padding, augment, d.batch_size,
                          d.num_workers, d.seed, synthetic, d.synthetic_share)
    if cfg.trainer.max_epochs and cfg.trainer.max_epochs > 0:
        cfg.trainer.max_steps = int(cfg.trainer.max_epochs) * len(loader)
    task = EstimatorTask(config_dict(cfg), steps_per_epoch=len(loader))

    def make_estimator(model: torch.nn.Module) -> TopdownEstimator:
        return TopdownEstimator(model, task.codec, train_people.skeleton, tuple(m.input_size), m.padding,
                                flip_test=cfg.eval.flip_test, batch_size=d.val_batch_size)

    task.evaluator = HeldOut(val_people, make_estimator, cfg.eval)
    if tokenizer is not None and not val_people.detected and val_people.keypoints[..., 2].any():
        task.val_tokens = held_out_tokens(val_people, codec, tuple(m.input_size), m.padding, d.val_batch_size)
    # Lightning needs a validation loader to schedule validation; the held-out AP is computed by the evaluator.
    val_loader = torch.utils.data.DataLoader([0], batch_size=1)
    return fit_run(cfg, task, loader, val_loader, _WriteModel(Path(cfg.out), cfg), callbacks)


def held_out_tokens(people: People, codec: PCTTokenCodec, input_size: tuple[int, int], padding: float,
                    batch_size: int) -> torch.utils.data.DataLoader:
    """Crops of the held-out people (no augmentation) with their ground-truth token ids, for the token accuracy
    logged at every validation (``val/token_top1``, ``val/token_top5``)."""
    from ...data.topdown import TopdownDataset

    centers, sizes = crop_frames(people, input_size, padding)
    crops = TopdownDataset(people.image_paths, people.keypoints, centers, sizes, input_size=input_size,
                           udp=codec.udp, flip_index=people.skeleton.flip_index, augment=None)
    return torch.utils.data.DataLoader(EncodedCrops(crops, codec), batch_size=batch_size, shuffle=False,
                                       collate_fn=collate)


# ----------------------------------------------------------------------------------------------------------
# Commands on files
# ----------------------------------------------------------------------------------------------------------


def evaluate_file(est: TopdownEstimator, data: str | Path, images: str | Path | None = None,
                  boxes: str | Path | None = None, flip: bool = True, visualize: str | Path | None = None,
                  box_score_thr: float = 0.0, head_boxes: str | Path | None = None,
                  occlusion: tuple[float, float] | None = None) -> dict[str, Any]:
    """``posetok eval`` of an estimator on ``data`` with its image folder ``images``: COCO keypoint AP (a COCO or
    COCO-WholeBody file; annotated boxes or the detection file ``boxes``) or MPII PCKh (an MPII file, with the
    ``head_boxes`` of :func:`posetok.data.mpii.load_mpii_head_boxes`); see :func:`evaluate`. ``occlusion``
    ``(min, max)``: every crop gets a grey block covering that share of its area (seeded, so repeatable)."""
    if images is None:
        raise PosetokError("--images: required for an estimator: the image folder of --data")
    people = load_people(data, images, est.skeleton.name, boxes, box_score_thr)
    if head_boxes is not None:
        if people.mpii is None:
            raise PosetokError(f"--head-boxes: applies to MPII annotation files; {data} is a COCO file")
        people.extra["head_boxes"] = load_mpii_head_boxes(head_boxes, len(people))
    e = est.info.get("eval", {})
    saved, est.flip_test = est.flip_test, flip
    try:
        metrics, arrays = evaluate(est, people, e.get("nms", "oks"), e.get("nms_thr", 0.9),
                                   e.get("score_mode", "bbox_keypoint"), e.get("keypoint_score_thr", 0.2),
                                   progress=True, occlusion=occlusion)
    finally:
        est.flip_test = saved
    if visualize:
        save_visuals(visualize, est, people, arrays["preds"])
    return metrics


def check_backbone_weights(cfg: DictConfig) -> None:
    """``model.backbone.weights`` handed over from an earlier posetok stage: an estimator ``model.ckpt`` with this
    config's skeleton and crop frame; with ``model.backbone.frozen``, one that holds every weight of the backbone
    (a frozen backbone with weights left at their initial values would be noise). Plain timm / ImageNet state
    dicts pass unchecked here (their loading reports what they lack).

    Raises:
        PosetokError: naming the file and the field.
    """
    m, path = cfg.model, cfg.model.backbone.weights
    if not path or str(path).endswith(".safetensors"):
        return
    obj = checkpoint.read_checkpoint(path)
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if isinstance(fmt, str) and fmt.startswith("posetok."):
        if fmt not in (KIND.format, PCT_KIND.format):
            raise PosetokError(f"{path}: field 'format': model.backbone.weights takes an estimator's model.ckpt or "
                               f"a timm / ImageNet state dict, not a {fmt} checkpoint")
        crop = obj.get("crop") or {}
        if obj.get("skeleton") != m.skeleton:
            raise PosetokError(f"{path}: field 'skeleton': '{obj.get('skeleton')}', this config's model.skeleton is "
                               f"'{m.skeleton}'")
        if [int(v) for v in crop.get("input_size", ())] != [int(v) for v in m.input_size] or \
                abs(float(crop.get("padding", 0.0)) - float(m.padding)) > 1e-9:
            raise PosetokError(f"{path}: field 'crop': trained on {crop.get('input_size')} crops padded by "
                               f"{crop.get('padding')}, this config's are {list(m.input_size)} padded by {m.padding}")
    if m.backbone.frozen:
        report = build_estimator(estimator_dims(cfg), weights=path, source=path).backbone.weights_report
        if report is not None and report.missing:
            raise PosetokError(f"{path}: field 'state_dict': model.backbone.frozen, but {len(report.missing)} "
                               f"weights of the {m.backbone.name} backbone are not in the file (first: "
                               f"{report.missing[0]})")


def convert_mmpose(source: str | Path, config: str | Path, output: str | Path) -> dict[str, Any]:
    """``posetok convert mmpose``: an MMPose 1.x top-down heatmap checkpoint (HRNet or HRFormer backbone,
    ``backbone.*`` and ``head.*`` keys) -> a posetok ``model.ckpt`` of the network ``config`` describes.

    Returns a summary with the keys that could not be placed (``unplaced``) and the model's keys that received
    nothing (``missing``); the checkpoint is written only when every model key received a weight.
    """
    from ...config import load_config
    from ...models.convert import convert_mmpose_state_dict

    cfg = load_config(config)
    if cfg.task != TASK:
        raise PosetokError(f"{config}: field 'task': expected 'estimator', got {cfg.task!r}")
    obj = checkpoint.read_checkpoint(source)
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict) or not any(k.startswith("backbone.") for k in state):
        raise PosetokError(f"{source}: field 'state_dict': no 'backbone.*' keys; not an MMPose top-down checkpoint")
    model = build_estimator(estimator_dims(cfg))
    converted, unplaced = convert_mmpose_state_dict(state, model)
    own = model.state_dict()
    missing = sorted(k for k in own if k not in converted)
    if missing:
        raise PosetokError(f"{source}: field 'state_dict': {len(missing)} weights of the {cfg.model.backbone.name} "
                           f"network are not in the file (first: {missing[0]}); check --config")
    try:
        model.load_state_dict(converted)
    except RuntimeError as e:
        raise checkpoint.state_dict_error(source, e) from None
    checkpoint.save(output, estimator_payload(model, cfg, {"converted_from": str(source)}))
    return {"output": str(output), "placed": len(converted), "unplaced": unplaced}
