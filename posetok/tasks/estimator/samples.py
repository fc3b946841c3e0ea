"""The datasets that turn people to crop (:mod:`posetok.data.people`) into crops and codec targets for training."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, WeightedRandomSampler

from ...codecs.crop import box_to_center_scale
from ...data.people import People
from ...data.topdown import TopdownAugment, TopdownDataset
from ...errors import PosetokError

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
