"""Synthetic images of people: the painter, backgrounds, texture patches, the dataset, in-memory crops."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from posetok.codecs.crop import box_to_center_scale
from posetok.data.synthetic_images import (
    BACKGROUND_PART,
    JOINT_PARTS,
    PART_NAMES,
    SyntheticPeople,
    background,
    render_person,
    texture_pool,
)
from posetok.data.topdown import TopdownAugment, TopdownDataset
from posetok.errors import PosetokError
from posetok.skeletons import COCO17

SIZE = (256, 256)


@pytest.fixture(scope="module")
def textures():
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (96, 80, 3), dtype=np.uint8) for _ in range(3)]
    return texture_pool(photos, num=20, size=32, rng=rng)


@pytest.fixture(scope="module")
def people(textures):
    return SyntheticPeople(48, SIZE, seed=7, textures=textures)


def _labelled(kp):
    return kp[:, 2] > 0


def test_texture_pool_and_background(textures):
    assert len(textures) == 20
    assert all(t.shape == (32, 32, 3) and t.dtype == np.uint8 for t in textures)
    with pytest.raises(PosetokError):
        texture_pool([np.zeros((4, 4), np.uint8)])
    for tex in (None, textures):
        a = background(np.random.default_rng(3), (120, 90), tex)
        b = background(np.random.default_rng(3), (120, 90), tex)
        assert a.shape == (90, 120, 3) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    # Procedural backdrops are not flat.
    assert np.mean([background(np.random.default_rng(s), (64, 64)).std() > 3 for s in range(10)]) >= 0.8


def test_items_deterministic_with_shapes(people, textures):
    a, b = people[5], people[5]
    np.testing.assert_array_equal(a["image"], b["image"])
    again = SyntheticPeople(48, SIZE, seed=7, textures=textures)[5]
    np.testing.assert_array_equal(a["image"], again["image"])
    np.testing.assert_array_equal(a["keypoints"], again["keypoints"])
    assert not np.array_equal(a["image"], SyntheticPeople(48, SIZE, seed=8, textures=textures)[5]["image"])
    assert not np.array_equal(a["image"], people[6]["image"])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(people))[5]["image"], a["image"])  # workers

    tall = SyntheticPeople(6, (96, 160), seed=1)
    item = tall[2]
    assert item["image"].shape == (160, 96, 3) and item["image"].dtype == np.uint8
    assert item["keypoints"].shape == (17, 3) and item["keypoints"].dtype == np.float32
    assert item["box"].shape == (4,) and item["box"].dtype == np.float32
    assert len(tall) == 6 and tall.keypoints.shape == (6, 17, 3) and tall.boxes.shape == (6, 4)
    with pytest.raises(IndexError):
        tall[6]
    with pytest.raises(PosetokError):
        SyntheticPeople(2, skeleton="mpii16")


def test_keypoint_labels_follow_coco(people):
    w, h = SIZE
    kp, boxes = people.keypoints, people.boxes
    v = kp[..., 2]
    assert set(np.unique(v).tolist()) <= {0.0, 1.0, 2.0}
    assert (kp[v == 0][:, :2] == 0).all()
    lab = kp[v > 0]
    assert (lab[:, 0] >= 0).all() and (lab[:, 0] < w).all() and (lab[:, 1] >= 0).all() and (lab[:, 1] < h).all()
    assert (v == 1).any() and (v == 2).mean() > 0.5
    for k, box in zip(kp, boxes):
        pts = k[_labelled(k), :2]
        np.testing.assert_allclose(box[:2], pts.min(0), atol=1e-3)
        np.testing.assert_allclose(box[:2] + box[2:], pts.max(0), atol=1e-3)
    # People fill a good share of the image and vary in size; some are cut by the border.
    extent = np.maximum(boxes[:, 2] / w, boxes[:, 3] / h)
    assert np.median(extent) > 0.4 and extent.std() > 0.05
    assert (v == 0).any(axis=1).mean() > 0.0


def test_visible_joints_land_on_the_figure(people):
    grey = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    on_colour, on_part, total = 0, 0, 0
    for i in range(24):
        kp = np.concatenate([people.points[i], np.full((17, 1), 2.0, np.float32)], 1)
        image, parts = render_person(np.random.default_rng(i), kp, people.depth[i], SIZE, None, grey,
                                     unit=people.unit[i], return_parts=True)
        assert image.shape == grey.shape and image.dtype == np.uint8 and parts.shape == grey.shape[:2]
        for x, y, v in people.keypoints[i]:
            if v != 2:
                continue
            px, py = int(round(min(x, SIZE[0] - 1))), int(round(min(y, SIZE[1] - 1)))
            total += 1
            on_colour += np.abs(image[py, px].astype(int) - 128).max() > 20  # above the sensor noise
            on_part += parts[py, px] != BACKGROUND_PART
    assert total > 200
    assert on_colour / total >= 0.8
    assert on_part / total >= 0.95


def test_hidden_joints_are_covered_by_a_nearer_part(people):
    own = {j: {PART_NAMES.index(n) for n in names} for j, names in JOINT_PARTS.items()}
    covered = {"body": [], "face": []}
    for i in range(len(people)):
        _, parts = people.render(i, return_parts=True)
        for j, (x, y, v) in enumerate(people.keypoints[i]):
            if v == 1:
                part = parts[int(round(min(y, SIZE[1] - 1))), int(round(min(x, SIZE[0] - 1)))]
                covered["body" if j >= 5 else "face"].append(part != BACKGROUND_PART and part not in own[j])
    assert len(covered["body"]) > 30
    assert np.mean(covered["body"]) >= 0.85
    assert np.mean(covered["body"] + covered["face"]) >= 0.65  # face points hide mostly by turning away


def test_render_without_depth_or_visibility(people):
    rng = np.random.default_rng(0)
    image = render_person(rng, people.points[3], None, SIZE)
    assert image.shape == (SIZE[1], SIZE[0], 3) and image.dtype == np.uint8
    kp = people.keypoints[3].copy()  # COCO labels: joints outside the image (v = 0) are skipped
    image, parts = render_person(rng, kp, None, SIZE, return_parts=True)
    assert (parts != BACKGROUND_PART).mean() > 0.02
    with pytest.raises(PosetokError):
        render_person(rng, np.zeros((14, 3)), None, SIZE)
    with pytest.raises(PosetokError):
        render_person(rng, kp, None, SIZE, background=np.zeros((8, 8, 3), np.uint8))


def test_grid_png(people, tmp_path):
    tiles = [people[i]["image"] for i in range(16)]
    grid = np.concatenate([np.concatenate(tiles[r * 4:(r + 1) * 4], axis=1) for r in range(4)], axis=0)
    path = tmp_path / "synthetic_people_grid.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    assert path.exists() and path.stat().st_size > 1000


def test_topdown_dataset_from_memory(people):
    center, size = box_to_center_scale(people.boxes[:8], 192 / 256, 1.25)
    aug = TopdownAugment.for_skeleton(COCO17, 192 / 256)
    ds = TopdownDataset(None, people.keypoints[:8], center, size, input_size=(192, 256), augment=aug, seed=0,
                        images=people.image)
    assert len(ds) == 8
    sample = ds[2]
    assert sample["image"].shape == (256, 192, 3) and sample["image"].dtype == np.uint8
    assert sample["keypoints"].shape == (17, 3)
    plain = TopdownDataset(None, people.keypoints[:8], center, size, input_size=(192, 256), images=people.image)
    np.testing.assert_array_equal(plain.load_image(2), people.image(2))
    with pytest.raises(ValueError):
        TopdownDataset(None, people.keypoints[:8], center, size, input_size=(192, 256))
    with pytest.raises(PosetokError):
        TopdownDataset(None, people.keypoints[:8], center, size, input_size=(192, 256),
                       images=lambda i: np.zeros((4, 4), np.uint8))[0]
