"""Top-down image data: image/video I/O, the crop warp, augmentation, the dataset, detections, the real sample."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posetok.codecs.crop import box_to_center_scale
from posetok.data.coco_reader import load_coco_keypoints
from posetok.data.detections import load_detections
from posetok.data.images import VideoReader, VideoWriter, is_video, list_images, read_image
from posetok.data.occlusion import occlude_crops
from posetok.data.real_sample import frame_times, real_sample_paths, split_by_time, split_every_nth
from posetok.data.topdown import (
    TopdownAugment,
    TopdownDataset,
    coco_image_paths,
    compose,
    imagenet_normalize,
    imagenet_normalize_torch,
    topdown_collate,
    transform_keypoints,
    truncated_normal,
    warp_image,
    warp_matrix,
)
from posetok.errors import PosetokError
from posetok.skeletons import COCO17

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
INPUT = (192, 256)
ASPECT = INPUT[0] / INPUT[1]
NO_AUG = dict(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_prob=0.0, rot_prob=0.0, color_prob=0.0)

coords = st.floats(-500, 1500, allow_nan=False)
sizes = st.floats(5, 800, allow_nan=False)
angles = st.floats(-180, 180, allow_nan=False)


@pytest.fixture(scope="module")
def sample():
    ann, image_dir = real_sample_paths()
    data = load_coco_keypoints(ann)
    center, size = box_to_center_scale(data.boxes, ASPECT, 1.25)
    return data, coco_image_paths(data.images, data.image_ids, image_dir), center, size


def _mmpose_classic(center, size, rot, out):
    """MMPose's three-point get_warp_matrix, re-derived: the centre and the point half a width above it."""
    a = np.deg2rad(rot)
    up = np.array([np.sin(a), -np.cos(a)]) * size[0] * 0.5  # (0, -w/2) turned by rot
    src = np.array([center, center + up, center + up + np.array([up[1], -up[0]])])
    d = np.array([out[0] * 0.5, out[1] * 0.5])
    dst_up = np.array([0.0, -out[0] * 0.5])
    dst = np.array([d, d + dst_up, d + dst_up + np.array([dst_up[1], -dst_up[0]])])
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32)), src


def _blob_centre(image: np.ndarray) -> np.ndarray:
    grey = image.astype(np.float64).sum(axis=-1)
    ys, xs = np.mgrid[: grey.shape[0], : grey.shape[1]]
    return np.array([(grey * xs).sum(), (grey * ys).sum()]) / grey.sum()


def _dot_image(h: int, w: int, xy: tuple[float, float], sigma: float = 2.0) -> np.ndarray:
    ys, xs = np.mgrid[:h, :w]
    g = np.exp(-((xs - xy[0]) ** 2 + (ys - xy[1]) ** 2) / (2 * sigma**2)) * 255
    return np.repeat(np.round(g).astype(np.uint8)[..., None], 3, axis=-1)


# ------------------------------------------------------------------------------------------------- the warp


@FAST
@given(coords, coords, sizes, st.floats(0.3, 3), angles, st.booleans())
def test_warp_maps_centre_to_crop_centre_and_is_invertible(cx, cy, w, aspect, rot, udp):
    mat = warp_matrix((cx, cy), (w, w / aspect), rot, INPUT, udp=udp)
    centre = mat[:, :2] @ [cx, cy] + mat[:, 2]
    expected = (np.array(INPUT) - (1 if udp else 0)) / 2
    np.testing.assert_allclose(centre, expected, atol=1e-6)
    inv = cv2.invertAffineTransform(mat)
    np.testing.assert_allclose(compose(mat, inv), [[1, 0, 0], [0, 1, 0]], atol=1e-6)
    pts = np.array([[cx + 3.0, cy - 7.0, 2.0], [cx - w, cy, 1.0]])
    np.testing.assert_allclose(transform_keypoints(transform_keypoints(pts, mat), inv), pts, atol=1e-3)
    np.testing.assert_allclose(warp_matrix((cx, cy), (w, w / aspect), rot + 360, INPUT, udp), mat, atol=1e-6)


@FAST
@given(coords, coords, sizes, angles)
def test_classic_warp_is_mmposes_three_point_affine(cx, cy, w, rot):
    size = np.array([w, w / ASPECT])
    ref, src = _mmpose_classic(np.array([cx, cy]), size, rot, INPUT)
    pts = np.concatenate([src, np.full((3, 1), 2.0)], axis=1)
    mine = warp_matrix((cx, cy), size, rot, INPUT)
    np.testing.assert_allclose(transform_keypoints(pts, mine), transform_keypoints(pts, ref), atol=0.05)
    np.testing.assert_allclose(mine[:, :2], ref[:, :2], atol=1e-4 * np.abs(mine[:, :2]).max())


def test_udp_back_projection_and_rotation_direction():
    c, s = np.array([100.0, 80.0]), np.array([96.0, 128.0])
    mat = warp_matrix(c, s, 0.0, INPUT, udp=True)
    crop_pts = np.array([[0.0, 0.0], [191.0, 255.0], [40.0, 70.0]])
    image_pts = crop_pts * s / (np.array(INPUT) - 1) + c - 0.5 * s  # MMPose's UDP back-projection
    np.testing.assert_allclose(image_pts @ mat[:, :2].T + mat[:, 2], crop_pts, atol=1e-9)
    # Positive = counter-clockwise on screen, as cv2.getRotationMatrix2D: a crop of the input's own size.
    rot = warp_matrix((96.0, 128.0), INPUT, 30.0, INPUT)
    np.testing.assert_allclose(rot, cv2.getRotationMatrix2D((96.0, 128.0), 30.0, 1.0), atol=1e-9)
    right = rot[:, :2] @ [1.0, 0.0]
    assert right[1] < 0  # a point right of the centre moves up the screen


def test_transform_keypoints_matches_cv2_and_keeps_visibility():
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0, 300, (4, 17, 2)), rng.integers(0, 3, (4, 17, 1))], axis=-1)
    kp[kp[..., 2] == 0, :2] = 0
    mat = warp_matrix((120, 140), (150, 200), 25.0, INPUT)
    out = transform_keypoints(kp, mat)
    ref = cv2.transform(kp[..., :2].reshape(-1, 1, 2), mat).reshape(4, 17, 2)
    lab = kp[..., 2] > 0
    np.testing.assert_allclose(out[..., :2][lab], ref[lab], atol=1e-3)
    assert (out[~lab] == 0).all() and (out[..., 2] == kp[..., 2]).all() and out.dtype == np.float32
    np.testing.assert_allclose(transform_keypoints(kp[1], mat), out[1])
    np.testing.assert_allclose(transform_keypoints(kp, np.stack([mat] * 4)), out)


@pytest.mark.parametrize("udp", [False, True])
@pytest.mark.parametrize("rot", [0.0, 35.0, -120.0])
def test_warped_dot_lands_where_transform_keypoints_says(udp, rot):
    xy = (137.3, 181.6)
    image = _dot_image(300, 260, xy)
    mat = warp_matrix((130, 170), (180, 240), rot, INPUT, udp=udp)
    crop = warp_image(image, mat, INPUT)
    assert crop.shape == (256, 192, 3) and crop.dtype == np.uint8
    kp = transform_keypoints(np.array([[*xy, 2.0]]), mat)
    assert np.abs(_blob_centre(crop) - kp[0, :2]).max() < 1.0


# ------------------------------------------------------------------------------------------- augmentation


def test_truncated_normal_is_in_range_with_the_right_spread():
    t = truncated_normal(np.random.default_rng(1), 20000)
    assert np.abs(t).max() <= 1 and abs(t.mean()) < 0.02 and abs(t.std() - 0.5377) < 0.01


@FAST
@given(st.integers(0, 2**32 - 1), coords, coords, sizes)
def test_augment_parameters_stay_in_their_ranges(seed, cx, cy, w):
    aug = TopdownAugment.for_skeleton(COCO17, ASPECT, flip_prob=0.0, half_body_prob=0.0)
    rng = np.random.default_rng(seed)
    kp = np.zeros((17, 3), np.float32)
    size0 = np.array([w, w / ASPECT])
    for _ in range(20):
        p = aug(kp, (cx, cy), size0, 640, rng)
        scale = p.size / size0
        assert 0.5 - 1e-9 <= scale[0] <= 1.5 + 1e-9 and abs(scale[0] - scale[1]) < 1e-9
        assert abs(p.rotation) <= 80
        assert (np.abs(p.center - (cx, cy)) <= 0.16 * size0 + 1e-6).all()


def test_augment_probabilities_and_half_body():
    rng = np.random.default_rng(0)
    aug = TopdownAugment.for_skeleton(COCO17, ASPECT)
    kp = np.concatenate([rng.uniform(50, 250, (17, 2)), np.full((17, 1), 2.0)], axis=1).astype(np.float32)
    params = [aug(kp, (150, 150), (150, 200), 400, rng) for _ in range(2000)]
    assert abs(np.mean([p.flipped for p in params]) - 0.5) < 0.05
    assert abs(np.mean([p.rotation != 0 for p in params]) - 0.6) < 0.05
    half = TopdownAugment.for_skeleton(COCO17, ASPECT, **{**NO_AUG, "half_body_prob": 1.0, "upper_prob": 1.0})
    p = half(kp, (150, 150), (150, 200), 400, rng)
    np.testing.assert_allclose(p.center, kp[:11, :2].mean(axis=0), rtol=1e-6)
    extent = kp[:11, :2].max(0) - kp[:11, :2].min(0)
    assert abs(p.size[0] / p.size[1] - ASPECT) < 1e-9 and (p.size >= 1.5 * extent - 1e-3).all()
    few = kp.copy()
    few[:9, 2] = 0  # 8 labelled joints: fewer than MMPose's 9, no half-body
    p = half(few, (150, 150), (150, 200), 400, rng)
    np.testing.assert_allclose(p.center, (150, 150))
    lower = TopdownAugment.for_skeleton(COCO17, ASPECT, **{**NO_AUG, "half_body_prob": 1.0, "upper_prob": 0.0})
    np.testing.assert_allclose(lower(kp, (150, 150), (150, 200), 400, rng).center, kp[11:, :2].mean(axis=0),
                               rtol=1e-6)
    no_legs = kp.copy()
    no_legs[12:] = 0  # one lower joint (< 3): the upper body is taken even though the lower is preferred
    p = lower(no_legs, (150, 150), (150, 200), 400, rng)
    np.testing.assert_allclose(p.center, kp[:11, :2].mean(axis=0), rtol=1e-6)


def test_colour_jitter_changes_colours_but_not_shape():
    rng = np.random.default_rng(0)
    img = (rng.random((64, 48, 3)) * 255).astype(np.uint8)
    aug = TopdownAugment.for_skeleton(COCO17, ASPECT)
    out = aug.color(img, rng)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    off = TopdownAugment.for_skeleton(COCO17, ASPECT, color_prob=0.0)
    assert np.array_equal(off.color(img, rng), img)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(16, 160), w=st.integers(16, 160), seed=st.integers(0, 2**32 - 1),
       unit=st.tuples(st.integers(2, 20), st.integers(0, 30)))
def test_grid_dropout_blacks_out_a_regular_grid_of_square_holes(h, w, seed, unit):
    """The official PCT's grid dropout: holes of int(u * 0.5) px every u px in both directions, nothing else
    touched; about a quarter of the crop when the crop spans many units."""
    low, high = unit[0], unit[0] + unit[1]
    img = np.full((h, w, 3), 200, np.uint8)
    aug = TopdownAugment.for_skeleton(COCO17, ASPECT, grid_dropout_prob=1.0, grid_unit=(low, high))
    out = aug.grid_dropout(img, np.random.default_rng(seed))
    assert out.shape == img.shape and out.dtype == np.uint8
    dark = out[..., 0] == 0
    assert set(np.unique(out)) <= {0, 200} and (out == 0).all(-1)[dark].all()
    ys, xs = np.nonzero(dark)
    if 2 * high <= min(h, w):  # the first hole starts within u - hole of the corner: inside the crop
        assert len(ys) > 0
    # (a unit wider than the crop may put every hole outside it, as albumentations' GridDropout does)
    # the holes form a lattice: each dark row (column) repeats every u rows (columns) with the same run
    rows = sorted(set(ys.tolist()))
    runs = [r for r in rows if r - 1 not in rows]
    if len(runs) > 1:
        period = runs[1] - runs[0]
        assert low <= period <= high and all(b - a == period for a, b in zip(runs, runs[1:]))
        hole = max(1, int(period * 0.5))
        assert all(set(range(r, min(r + hole, h))) <= set(rows) for r in runs)
        if h >= 8 * high and w >= 8 * high:
            assert abs(dark.mean() - (hole / period) ** 2) < 0.12
    off = TopdownAugment.for_skeleton(COCO17, ASPECT)
    assert off.grid_dropout(img, np.random.default_rng(seed)) is img  # off by default (MMPose's recipes)


def test_flip_puts_the_left_wrist_dot_at_the_right_wrist(tmp_path):
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, 9] = (60.0, 90.0, 2)  # left wrist, where the dot is
    kp[0, 10] = (130.0, 95.0, 2)  # right wrist
    kp[0, 0] = (100.0, 40.0, 2)
    cv2.imwrite(str(tmp_path / "dot.png"), _dot_image(200, 180, tuple(kp[0, 9, :2])))
    aug = TopdownAugment.for_skeleton(COCO17, ASPECT, **{**NO_AUG, "flip_prob": 1.0})
    center, size = box_to_center_scale(np.array([[40.0, 20.0, 110.0, 120.0]]), ASPECT)
    ds = TopdownDataset([tmp_path / "dot.png"], kp, center, size, input_size=INPUT, augment=aug,
                        flip_index=COCO17.flip_index)
    s = ds[0]
    assert s["flipped"] and np.abs(_blob_centre(s["image"]) - s["keypoints"][10, :2]).max() < 1.0
    assert s["center"][0] == pytest.approx(180 - 1 - center[0, 0])
    # The plain crop of the mirrored image agrees with the flipped sample.
    plain = TopdownDataset([tmp_path / "dot.png"], kp, center, size, input_size=INPUT)[0]
    np.testing.assert_allclose(s["keypoints"][10, 0], INPUT[0] - plain["keypoints"][9, 0], atol=1e-3)
    np.testing.assert_allclose(transform_keypoints(kp[0], s["matrix"])[COCO17.flip_index], s["keypoints"],
                               atol=1e-3)
    # Every augmentation but colour at once: the dot still lands on the (left or right) wrist.
    full = TopdownAugment.for_skeleton(COCO17, ASPECT, color_prob=0.0, half_body_min_total=3)
    ds = TopdownDataset([tmp_path / "dot.png"], kp, center, size, input_size=INPUT, augment=full, seed=1)
    seen = set()
    for _ in range(12):
        s = ds[0]
        wrist = s["keypoints"][10 if s["flipped"] else 9, :2]
        if (wrist > 8).all() and (wrist < np.array(INPUT) - 8).all():
            assert np.abs(_blob_centre(s["image"]) - wrist).max() < 1.0
            seen.add((bool(s["flipped"]), bool(s["rotation"] != 0)))
    assert len(seen) >= 3


# ------------------------------------------------------------------------------------------- the dataset


def test_dataset_on_the_real_sample(sample):
    data, paths, center, size = sample
    plain = TopdownDataset(paths, data.keypoints, center, size, input_size=INPUT,
                           extras={"image_id": data.image_ids})
    for i in (0, 100, 220):
        s = plain[i]
        assert s["image"].shape == (256, 192, 3) and s["image"].dtype == np.uint8
        assert s["keypoints"].shape == (17, 3) and s["keypoints"].dtype == np.float32
        lab = s["keypoints"][:, 2] > 0
        x, y = s["keypoints"][lab, 0], s["keypoints"][lab, 1]
        assert (x >= 0).all() and (x < 192).all() and (y >= 0).all() and (y < 256).all()
        assert s["image_id"] == data.image_ids[i] and not s["flipped"] and s["rotation"] == 0
    aug = TopdownAugment.for_skeleton(COCO17, ASPECT)
    ds = TopdownDataset(paths, data.keypoints, center, size, input_size=INPUT, udp=True, augment=aug, seed=3)
    shots = [ds[i] for i in range(24)]
    assert all(s["image"].shape == (256, 192, 3) and s["keypoints"].dtype == np.float32 for s in shots)
    assert any(s["flipped"] for s in shots) and any(s["rotation"] != 0 for s in shots)
    batch = topdown_collate(shots)
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (24, 256, 192, 3)
    assert batch["keypoints"].shape == (24, 17, 3) and batch["flipped"].dtype == torch.bool
    norm = topdown_collate(shots[:2], normalize=True)["image"]
    assert norm.shape == (2, 3, 256, 192) and norm.dtype == torch.float32
    with pytest.raises(ValueError, match="flip_index"):
        TopdownDataset(paths, data.keypoints, center, size, input_size=INPUT, augment=aug,
                       flip_index=np.arange(17))


def test_dataloader_with_two_workers_repeats_with_the_same_seed(sample):
    data, paths, center, size = sample
    aug = TopdownAugment.for_skeleton(COCO17, ASPECT)

    def first_batch(seed):
        ds = TopdownDataset(paths[:16], data.keypoints[:16], center[:16], size[:16], input_size=INPUT,
                            augment=aug, seed=seed)
        ds[0]  # used in this process first: the workers must still re-seed
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=topdown_collate)
        return [b for _, b in zip(range(2), loader)]

    a, b, c = first_batch(7), first_batch(7), first_batch(8)
    for x, y in zip(a, b):
        assert all(torch.equal(x[k], y[k]) for k in x)
    assert not torch.equal(a[0]["image"], c[0]["image"])
    # The two workers draw different augmentations (same parameters would mean one shared stream).
    assert not torch.equal(a[0]["rotation"], a[1]["rotation"])


def test_imagenet_normalize_numpy_and_torch_agree():
    x = np.random.default_rng(0).integers(0, 256, (2, 8, 6, 3), dtype=np.uint8)
    a = imagenet_normalize(x)
    b = imagenet_normalize_torch(torch.from_numpy(x))
    assert a.shape == (2, 3, 8, 6) and a.dtype == np.float32 and imagenet_normalize(x[0]).shape == (3, 8, 6)
    np.testing.assert_allclose(a, b.numpy(), atol=1e-5)
    np.testing.assert_allclose(a[0, 0, 0, 0], (x[0, 0, 0, 0] - 123.675) / 58.395, rtol=1e-6)


# --------------------------------------------------------------------------------------- images and video


def test_read_image_and_its_errors(tmp_path, sample):
    _, paths, _, _ = sample
    img = read_image(paths[0])
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    bgr = cv2.imread(str(paths[0]))
    assert np.array_equal(img, bgr[..., ::-1])
    with pytest.raises(PosetokError, match=r"nothere\.jpg: image file not found"):
        read_image(tmp_path / "nothere.jpg")
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(PosetokError, match=r"text\.jpg: not an image OpenCV can decode"):
        read_image(tmp_path / "text.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(PosetokError, match=r"empty\.png: the image file is empty"):
        read_image(tmp_path / "empty.png")
    data = paths[0].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * 0.8)])
    with pytest.raises(PosetokError, match=r"cut\.jpg: truncated JPEG file"):
        read_image(tmp_path / "cut.jpg")
    png = cv2.imencode(".png", img)[1].tobytes()
    (tmp_path / "cut.png").write_bytes(png[:-30])
    with pytest.raises(PosetokError, match=r"cut\.png: truncated PNG file"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(PosetokError, match="not a file"):
        read_image(tmp_path)
    assert str(PosetokError("a\nb")) == "a b"


def test_list_images(tmp_path):
    with pytest.raises(PosetokError, match="image folder not found"):
        list_images(tmp_path / "none")
    with pytest.raises(PosetokError, match=r"no image in this folder"):
        list_images(tmp_path)
    for name in ("b.PNG", "a.jpg", ".hidden.jpg", "notes.txt", "c.webp"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.webp"]


def test_video_round_trip_and_errors(tmp_path):
    out = tmp_path / "v.mp4"
    with VideoWriter(out, 10, (32, 24)) as w:
        for i in range(4):
            w.write(np.full((24, 32, 3), (40 * i, 200, 30), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"] and is_video(out) and not is_video("a.jpg")
    with VideoReader(out) as r:
        assert r.size == (32, 24) and r.fps == pytest.approx(10) and r.num_frames == 4
        frames = list(r)
    assert len(frames) == 4 and frames[0].shape == (24, 32, 3)
    assert abs(int(frames[3][12, 16, 1]) - 200) < 12 and frames[3][12, 16, 0] > frames[3][12, 16, 2]  # RGB
    with pytest.raises(KeyError), VideoWriter(tmp_path / "bad.mp4", 10, (32, 24)) as w:
        w.write(np.zeros((24, 32, 3), np.uint8))
        raise KeyError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
    (tmp_path / "fake.mp4").write_text("not a video")
    with pytest.raises(PosetokError, match=r"fake\.mp4: cannot open as a video"):
        VideoReader(tmp_path / "fake.mp4")
    with pytest.raises(PosetokError, match=r"gone\.mp4: video file not found"):
        VideoReader(tmp_path / "gone.mp4")


# ------------------------------------------------------------------------------------------- detections


def _write(tmp_path, obj, name="dets.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


def test_load_detections(tmp_path):
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "score": 0.9},
        {"image_id": 1, "category_id": 2, "bbox": [0, 0, -1, 5], "score": 0.9},  # not a person: skipped unchecked
        {"image_id": 2, "category_id": 1, "bbox": [1.5, 2, 3, 4], "score": 0.2},
        {"image_id": 3, "bbox": [0, 0, 5, 5]},
    ]
    d = load_detections(_write(tmp_path, dets))
    assert d.image_ids.tolist() == [1, 2, 3] and d.boxes.dtype == np.float32 and d.boxes.shape == (3, 4)
    np.testing.assert_allclose(d.scores, [0.9, 0.2, 1.0])
    assert load_detections(_write(tmp_path, dets), score_thr=0.5).image_ids.tolist() == [1, 3]
    assert len(load_detections(_write(tmp_path, dets), image_ids={1, 2, 3})) == 3


@pytest.mark.parametrize("doc, message", [
    ({"image_id": 1}, r"expected a JSON list of detections"),
    ([[1, 2]], r"field '\[0\]': expected an object, got a list"),
    ([{"image_id": 1, "category_id": 1}], r"field '\[0\]\.bbox': missing"),
    ([{"bbox": [0, 0, 1, 1], "category_id": 1}], r"field '\[0\]\.image_id': missing"),
    ([{"image_id": "a", "bbox": [0, 0, 1, 1]}], r"field '\[0\]\.image_id': expected an integer"),
    ([{"image_id": 1, "bbox": [0, 0, 1]}], r"field '\[0\]\.bbox': expected 4 numbers"),
    ([{"image_id": 1, "bbox": [0, 0, "w", 1]}], r"field '\[0\]\.bbox': item 2 is a string"),
    ([{"image_id": 1, "bbox": [0, 0, 1, 1]}, {"image_id": 1, "bbox": [0, 0, 0, 1]}],
     r"field '\[1\]\.bbox': width and height must be > 0, got w=0, h=1"),
    ([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": None}], r"field '\[0\]\.score': expected a finite"),
    ([{"image_id": 1, "bbox": [0, 0, 1, 1]}, {"image_id": 99, "bbox": [0, 0, 1, 1]}],
     r"field '\[1\]\.image_id': image 99 is not in the annotation file"),
])
def test_detection_errors(tmp_path, doc, message):
    path = _write(tmp_path, doc)
    with pytest.raises(PosetokError, match=message) as err:
        load_detections(path, image_ids={1, 2})
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    nan = tmp_path / "nan.json"
    nan.write_text('[{"image_id": 1, "bbox": [0, NaN, 1, 1]}]')
    with pytest.raises(PosetokError, match=r"nan\.json: field '\[0\]\.bbox': item 1 is nan"):
        load_detections(nan)


# ------------------------------------------------------------------------------------------- real sample


def test_split_by_time(sample):
    data = sample[0]
    train, held = split_by_time(data)
    assert (len(train), len(held)) == (177, 44)
    t_train, t_held = frame_times(train), frame_times(held)
    assert t_train.max() < t_held.min() and (np.diff(t_train) > 0).all()
    assert set(train.image_ids) | set(held.image_ids) == set(data.image_ids)
    # Without frame numbers in the names, image ids give the order; one frame never lands on both sides.
    nameless = data.subset(np.arange(10))
    nameless.image_ids = np.array([5, 5, 4, 4, 3, 3, 2, 2, 1, 1], dtype=np.int64)
    nameless.images = {i: {"file_name": "frame.jpg"} for i in range(1, 6)}
    tr, ho = split_by_time(nameless, 0.7)
    assert tr.image_ids.tolist() == [1, 1, 2, 2, 3, 3, 4, 4] and ho.image_ids.tolist() == [5, 5]
    with pytest.raises(ValueError):
        split_by_time(data, 1.0)


def test_split_every_nth_spreads_the_held_out_frames(sample):
    data = sample[0]
    train, held = split_every_nth(data)
    assert (len(train), len(held)) == (177, 44)
    t_train, t_held = np.sort(frame_times(train)), np.sort(frame_times(held))
    assert set(t_train).isdisjoint(t_held)
    # every held-out frame lies between training frames, so the held-out set spans the whole video
    assert t_train.min() < t_held.min() and t_held.max() < t_train.max()
    assert np.median(np.diff(t_held)) > 3 * np.median(np.diff(t_train))


@settings(max_examples=60, deadline=None)
@given(h=st.integers(8, 96), w=st.integers(8, 96), lo=st.floats(0.05, 0.6), span=st.floats(0.0, 0.4),
       seed=st.integers(0, 2**31 - 1))
def test_occluder_covers_the_asked_share_inside_the_crop(h, w, lo, span, seed):
    hi = min(1.0, lo + span)
    crops = np.full((3, h, w, 3), 7, np.uint8)
    out, blocks = occlude_crops(crops, np.random.default_rng(seed), (lo, hi))
    assert out.dtype == np.uint8 and out.shape == crops.shape and (crops == 7).all()  # the input is untouched
    for img, (x0, y0, x1, y1) in zip(out, blocks):
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        grey = (img == 128).all(-1)
        assert grey[y0:y1, x0:x1].all() and grey.sum() == (x1 - x0) * (y1 - y0)
        # the share is met up to the rounding of the block's sides to whole pixels
        share = grey.mean()
        slack = (x1 - x0 + y1 - y0 + 1) / (h * w)
        assert lo - slack <= share <= hi + slack, (share, lo, hi)
    again, _ = occlude_crops(crops, np.random.default_rng(seed), (lo, hi))
    assert np.array_equal(out, again)  # seeded: repeatable
    with pytest.raises(PosetokError, match=r"--occlusion: expected 0 < MIN <= MAX <= 1"):
        occlude_crops(crops, np.random.default_rng(0), (0.5, 0.2))
