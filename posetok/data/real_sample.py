"""The bundled real sample (``posetok/assets/real_sample``): 221 person crops of one video, COCO-17 keypoints.

The keypoints are pseudo-labels of an off-the-shelf model (see the folder's README), and the frames of one
video are strongly correlated, so a random split would leak near-duplicates of the test frames into
training: :func:`split_by_time` holds out the end of the video instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import PosetokError
from .coco_format import CocoKeypoints

REAL_SAMPLE_DIR = Path(__file__).resolve().parents[1] / "assets" / "real_sample"
_FRAME_NUMBER = re.compile(r"(\d+)\.[^.]*$")


def real_sample_paths() -> tuple[Path, Path]:
    """``(annotation file, image folder)`` of the bundled sample, ``coco17_sports2d.json`` and ``images/``."""
    ann, images = REAL_SAMPLE_DIR / "coco17_sports2d.json", REAL_SAMPLE_DIR / "images"
    for p in (ann, images):
        if not p.exists():
            raise PosetokError(f"{p}: the bundled real sample is missing from this installation")
    return ann, images


def frame_times(data: CocoKeypoints) -> np.ndarray:
    """``(N,)`` int64 time key of each person: the number that ends its image's file name
    (``Sports2D__Demo__demo__0003.jpg`` -> 3), or the image id for every person when any image's name has no
    such number (or no image record)."""
    numbers = []
    for image_id in data.image_ids.tolist():
        match = _FRAME_NUMBER.search(str(data.images.get(int(image_id), {}).get("file_name", "")))
        if match is None:
            return data.image_ids.astype(np.int64)
        numbers.append(int(match.group(1)))
    return np.asarray(numbers, dtype=np.int64).reshape(-1)


def split_by_time(data: CocoKeypoints, train_fraction: float = 0.8) -> tuple[CocoKeypoints, CocoKeypoints]:
    """Split people by the time of their frame: the first ``train_fraction`` for training, the rest held out.

    People are ordered by :func:`frame_times` (then image id, then annotation id). The cut is at
    ``round(train_fraction * N)`` people, moved later to the next change of frame so that no frame is on both
    sides; every training frame comes before every held-out frame. On the bundled sample: 177 and 44.

    Returns:
        ``(train, held_out)`` as :meth:`CocoKeypoints.subset`, each in time order.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    n = len(data)
    if n < 2:
        raise PosetokError(f"{data.path}: {n} people; need at least 2 to split into training and held-out sets")
    times = frame_times(data)
    order = np.lexsort((data.ann_ids, data.image_ids, times))
    ordered = times[order]
    cut = min(max(int(round(train_fraction * n)), 1), n - 1)
    while 0 < cut < n and ordered[cut] == ordered[cut - 1]:
        cut += 1
    if cut >= n:
        raise PosetokError(f"{data.path}: all people after the first {train_fraction:.0%} share the last frame; "
                           "nothing left to hold out")
    return data.subset(order[:cut]), data.subset(order[cut:])


def split_every_nth(data: CocoKeypoints, train_fraction: float = 0.8) -> tuple[CocoKeypoints, CocoKeypoints]:
    """Split people by frames spread over the whole video: in time order, every ``round(1 / (1 - f))``-th
    frame is held out (every 5th for 0.8), the rest train. Held-out frames then have neighbours in time on the
    training side: a measure of localisation on seen scenes and poses, where :func:`split_by_time` measures
    generalisation to the unseen end of the video. On the bundled sample: 177 and 44."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if len(data) < 2:
        raise PosetokError(f"{data.path}: {len(data)} people; need at least 2 to split into training and held-out "
                           "sets")
    order = np.lexsort((data.ann_ids, data.image_ids, frame_times(data)))
    step = max(2, int(round(1.0 / (1.0 - train_fraction))))
    held = np.zeros(len(order), bool)
    held[step - 1::step] = True
    return data.subset(order[~held]), data.subset(order[held])
