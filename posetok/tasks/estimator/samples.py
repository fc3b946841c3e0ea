"""People to crop: annotation files (COCO, COCO-WholeBody, MPII) with their images, detection files, the
bundled real sample, and the datasets that turn them into crops and codec targets for training."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, WeightedRandomSampler

from ...codecs.crop import box_to_center_scale
from ...data.coco import CocoKeypoints, load_coco_keypoints
from ...data.detections import load_detections
from ...data.json_fields import read_json_file
from ...data.mpii import MpiiAnnotations, hrnet_center_scale, load_mpii_json
from ...data.real_sample import real_sample_paths, split_by_time, split_every_nth
from ...data.topdown import TopdownAugment, TopdownDataset
from ...errors import PosetokError
from ...skeletons import Skeleton


@dataclass
class People:
    """People to crop, one row per person, with what evaluation needs.

    Attributes:
        skeleton: joint layout.
        image_paths: the image of each person.
        keypoints: ``(N, K, 3)`` ground truth x, y, v in image pixels (zeros for detected people).
        boxes: ``(N, 4)`` xywh person boxes (annotated or detected) in image pixels.
        box_scores: ``(N,)`` detection scores (1 for annotated boxes).
        image_ids: ``(N,)`` int64 image ids (COCO ids; MPII: the record index).
        coco: the COCO annotations, when the people come from a COCO file (the ground truth of COCO AP).
        mpii: the MPII annotations, when from an MPII file (the ground truth of PCKh).
        source: the annotation file (named in messages).
    """

    skeleton: Skeleton
    image_paths: list[Path]
    keypoints: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    image_ids: np.ndarray
    coco: CocoKeypoints | None = None
    mpii: MpiiAnnotations | None = None
    source: str = ""
    detected: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_paths)


def _image_dir(images: str | Path, ann: str | Path) -> Path:
    d = Path(images)
    if not d.is_dir():
        raise PosetokError(f"{d}: image folder not found (the images of {ann})")
    return d


def coco_people(data: CocoKeypoints, images: str | Path) -> People:
    """The annotated people of a COCO file (ground-truth boxes), each with its image file."""
    root = _image_dir(images, data.path)
    paths = []
    for i, image_id in enumerate(data.image_ids):
        rec = data.images.get(int(image_id))
        if rec is None or "file_name" not in rec:
            raise PosetokError(f"{data.path}: field 'images': no file_name for image_id {int(image_id)} "
                               f"(annotation {int(data.ann_ids[i])})")
        paths.append(root / rec["file_name"])
    return People(data.skeleton, paths, data.keypoints, data.boxes, np.ones(len(data), np.float32),
                  data.image_ids.astype(np.int64), coco=data, source=data.path)


def detected_people(data: CocoKeypoints, images: str | Path, detections: str | Path, score_thr: float) -> People:
    """People of a detection file (``[{image_id, category_id, bbox, score}]``) on the images of ``data``."""
    root = _image_dir(images, data.path)
    dets = load_detections(detections, score_thr=score_thr, image_ids=set(data.images))
    paths = [root / data.images[int(i)]["file_name"] for i in dets.image_ids]
    k = data.skeleton.num_joints
    return People(data.skeleton, paths, np.zeros((len(dets.image_ids), k, 3), np.float32), dets.boxes,
                  dets.scores, dets.image_ids.astype(np.int64), coco=data, source=str(detections), detected=True)


def mpii_people(data: MpiiAnnotations, images: str | Path) -> People:
    """The people of an MPII file; boxes from ``center``/``scale`` as HRNet crops them (centre 15 x scale px
    lower; the crop padding then makes HRNet's 1.25 enlargement)."""
    root = _image_dir(images, data.path)
    centers, scales = hrnet_center_scale(data.centers, data.scales)
    side = scales / 1.25 * 200.0
    boxes = np.concatenate([centers - side[:, None] / 2, np.stack([side, side], 1)], 1).astype(np.float32)
    return People(data.skeleton, [root / n for n in data.image_names], data.keypoints, boxes,
                  np.ones(len(data), np.float32), np.arange(len(data), dtype=np.int64), mpii=data, source=data.path)


def load_people(ann: str | Path, images: str | Path, skeleton: str | None = None, boxes: str | Path | None = None,
                score_thr: float = 0.0) -> People:
    """People of an annotation file with its image folder: COCO / COCO-WholeBody (a JSON object) or MPII in the
    HRNet/MMPose form (a JSON list); ``boxes``: a detection file to crop instead of the annotated boxes (COCO)."""
    doc = read_json_file(ann)
    if isinstance(doc, list):
        if boxes is not None:
            raise PosetokError(f"{boxes}: detection files apply to COCO annotations; {ann} is an MPII file")
        return mpii_people(load_mpii_json(ann), images)
    data = load_coco_keypoints(ann, skeleton=skeleton)
    if boxes is not None:
        return detected_people(data, images, boxes, score_thr)
    return coco_people(data, images)


def real_sample_people(part: str, train_fraction: float = 0.8, split: str = "time") -> People:
    """The bundled real frames, split by time (``split="time"``: ``part`` ``train`` is the first frames, ``val``
    the rest) or with held-out frames spread over the video (``split="spread"``, :func:`split_every_nth`).
    Marked as a subset (``extra["subset"]``): COCO AP scores them against their own people, not the whole file."""
    ann, images = real_sample_paths()
    splitter = split_by_time if split == "time" else split_every_nth
    train, held_out = splitter(load_coco_keypoints(ann, skeleton="coco17"), train_fraction)
    people = coco_people(train if part == "train" else held_out, images)
    people.extra["subset"] = True
    return people


# ----------------------------------------------------------------------------------------------------------
# Training samples
# ----------------------------------------------------------------------------------------------------------


class EncodedCrops(Dataset):
    """Crops of :class:`~posetok.data.topdown.TopdownDataset` with their codec targets, computed in the
    DataLoader workers so the training step only runs the network."""

    def __init__(self, crops: TopdownDataset, codec: Any) -> None:
        self.crops = crops
        self.codec = codec

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        sample = self.crops[index]
        kp = sample["keypoints"][None]
        targets = self.codec.encode(kp)
        out = {"image": sample["image"], "keypoints": sample["keypoints"]}
        out.update({k: v[0] for k, v in targets.items()})
        if hasattr(self.codec, "to_heatmap_coords"):  # heatmap codecs: the integral term's target (loss.coord)
            out["target_xy"] = self.codec.to_heatmap_coords(kp[..., :2])[0].astype(np.float32)
        return out


def collate(samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Stack samples; images stay uint8 (4x less to copy) and are normalised on the device."""
    return {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}


def crop_frames(people: People, input_size: tuple[int, int], padding: float) -> tuple[np.ndarray, np.ndarray]:
    """Crop centres and sizes ``(N, 2)`` in image pixels of every person's box."""
    return box_to_center_scale(people.boxes, input_size[0] / input_size[1], padding)


def synthetic_crops(people: People, num: int, image_size: tuple[int, int], input_size: tuple[int, int],
                    padding: float, udp: bool, augment: TopdownAugment | None, seed: int) -> TopdownDataset:
    """``num`` rendered synthetic people (:class:`~posetok.data.synthetic_images.SyntheticPeople`) as crops, their
    clothes and backgrounds textured with patches of the real training images."""
    from ...data.images import read_image
    from ...data.synthetic_images import SyntheticPeople, texture_pool

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(people), size=min(len(people), 64), replace=False)
    textures = texture_pool([read_image(people.image_paths[i]) for i in pick], rng=rng)
    synth = SyntheticPeople(num, image_size=image_size, skeleton=people.skeleton.name, seed=seed + 1,
                            textures=textures)
    centers, sizes = box_to_center_scale(synth.boxes, input_size[0] / input_size[1], padding)
    return TopdownDataset(None, synth.keypoints, centers, sizes, input_size=input_size, udp=udp,
                          flip_index=people.skeleton.flip_index, augment=augment, seed=seed + 2, images=synth.image)


def train_loader(people: People, codec: Any, input_size: tuple[int, int], padding: float,
                 augment: TopdownAugment | None, batch_size: int, num_workers: int, seed: int,
                 synthetic: TopdownDataset | None = None, synthetic_share: float = 0.5) -> DataLoader:
    """Shuffled batches of augmented crops and their targets; with ``synthetic`` crops, a share
    ``synthetic_share`` of each batch comes from them on average (an epoch still shows each real person once on
    average)."""
    centers, sizes = crop_frames(people, input_size, padding)
    crops = TopdownDataset(people.image_paths, people.keypoints, centers, sizes, input_size=input_size,
                           udp=codec.udp, flip_index=people.skeleton.flip_index, augment=augment, seed=seed)
    dataset: Dataset = EncodedCrops(crops, codec)
    sampler = None
    if synthetic is not None and len(synthetic) and synthetic_share > 0:
        dataset = ConcatDataset([dataset, EncodedCrops(synthetic, codec)])
        n_real, n_syn = len(crops), len(synthetic)
        weights = np.concatenate([np.full(n_real, (1 - synthetic_share) / n_real),
                                  np.full(n_syn, synthetic_share / n_syn)])
        per_epoch = int(round(n_real / (1 - synthetic_share)))
        sampler = WeightedRandomSampler(torch.from_numpy(weights), per_epoch, replacement=True,
                                        generator=torch.Generator().manual_seed(seed))
    elif len(crops) < batch_size:
        raise PosetokError(f"{people.source}: {len(crops)} people, fewer than data.batch_size={batch_size}")
    return DataLoader(dataset, batch_size=batch_size, shuffle=sampler is None, sampler=sampler, drop_last=True,
                      num_workers=num_workers, collate_fn=collate, persistent_workers=num_workers > 0,
                      pin_memory=torch.cuda.is_available())
