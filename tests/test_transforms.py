"""Property and known-value tests for posetok.data.transforms."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posetok.data.transforms import KeypointAugment, affine, affine_matrices, half_body, hflip
from posetok.skeletons import COCO17, MPII16

SETTINGS = settings(max_examples=40, deadline=None)
ATOL = 2e-2  # float32 pixels at coordinates up to ~2000


@st.composite
def pose_batches(draw, skeleton=COCO17, min_n=1, max_n=4):
    """Random batch of poses: boxes in a 640-wide image, joints mostly inside their box, some unlabelled."""
    n = draw(st.integers(min_n, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    k = skeleton.num_joints
    xy0 = rng.uniform(0, 400, size=(n, 2))
    wh = rng.uniform(20, 240, size=(n, 2))
    boxes = np.concatenate([xy0, wh], axis=1).astype(np.float32)
    # A few joints land outside the box to exercise the "inside the original box" logic.
    rel = rng.uniform(-0.1, 1.1, size=(n, k, 2))
    xy = xy0[:, None] + rel * wh[:, None]
    p0 = draw(st.sampled_from([0.0, 0.2, 0.5]))
    v = rng.choice([0, 1, 2], size=(n, k), p=[p0, (1 - p0) * 0.3, (1 - p0) * 0.7])
    kp = np.concatenate([xy, v[..., None]], axis=-1).astype(np.float32)
    kp[v == 0] = 0.0
    return kp, boxes


def _assert_unlabelled_zero(kp: np.ndarray, ref_v: np.ndarray) -> None:
    assert np.array_equal(kp[..., 2], ref_v)
    assert np.all(kp[ref_v == 0] == 0.0)


# --------------------------------------------------------------------------------------------------- hflip


@SETTINGS
@given(pose_batches(), st.floats(300, 2000))
def test_hflip_twice_is_identity(batch, width):
    kp, boxes = batch
    kp_in, boxes_in = kp.copy(), boxes.copy()
    kp1, boxes1 = hflip(kp, boxes, width, COCO17.flip_index)
    kp2, boxes2 = hflip(kp1, boxes1, width, COCO17.flip_index)
    np.testing.assert_allclose(kp2, kp, atol=ATOL)
    np.testing.assert_allclose(boxes2, boxes, atol=ATOL)
    assert kp1.dtype == np.float32 and boxes1.dtype == np.float32
    assert np.array_equal(kp, kp_in) and np.array_equal(boxes, boxes_in)


@SETTINGS
@given(pose_batches(), st.floats(300, 2000))
def test_hflip_maps_left_joints_onto_right(batch, width):
    kp, boxes = batch
    out, out_boxes = hflip(kp, boxes, width, COCO17.flip_index)
    pairs = [(COCO17.index(n), COCO17.index("right_" + n[5:])) for n in COCO17.joint_names
             if n.startswith("left_")]
    assert len(pairs) == 8
    for left, right in pairs:
        for src, dst in ((left, right), (right, left)):
            lab = kp[:, src, 2] > 0
            np.testing.assert_allclose(out[lab, dst, 0], (width - 1) - kp[lab, src, 0], atol=ATOL)
            np.testing.assert_array_equal(out[:, dst, 1:], kp[:, src, 1:])
    # The nose has no partner: it stays joint 0.
    np.testing.assert_array_equal(out[:, 0, 2], kp[:, 0, 2])
    _assert_unlabelled_zero(out, kp[:, COCO17.flip_index, 2])
    # Box mirrored: its right edge becomes the left edge.
    np.testing.assert_allclose(out_boxes[:, 0], (width - 1) - (boxes[:, 0] + boxes[:, 2]), atol=ATOL)
    np.testing.assert_array_equal(out_boxes[:, 1:], boxes[:, 1:])


def test_hflip_known_values():
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, 5] = (10.0, 20.0, 2)  # left_shoulder
    kp[0, 6] = (30.0, 25.0, 1)  # right_shoulder
    boxes = np.array([[5.0, 15.0, 40.0, 50.0]], np.float32)
    out, out_boxes = hflip(kp, boxes, 100, COCO17.flip_index)
    np.testing.assert_array_equal(out[0, 6], [89.0, 20.0, 2])  # old left shoulder, now right
    np.testing.assert_array_equal(out[0, 5], [69.0, 25.0, 1])
    np.testing.assert_array_equal(out[0, 0], [0.0, 0.0, 0.0])  # unlabelled nose stays at the origin
    np.testing.assert_array_equal(out_boxes[0], [54.0, 15.0, 40.0, 50.0])  # x in [54, 94] = 99 - [45, 5]


def test_hflip_rejects_bad_flip_index():
    kp, boxes = np.zeros((1, 17, 3)), np.zeros((1, 4))
    with pytest.raises(ValueError, match="flip_index"):
        hflip(kp, boxes, 100, MPII16.flip_index)


# -------------------------------------------------------------------------------------------------- affine


@SETTINGS
@given(pose_batches())
def test_affine_identity(batch):
    kp, boxes = batch
    out, out_boxes = affine(kp, boxes, 0.0, 1.0, (0.0, 0.0))
    np.testing.assert_allclose(out, kp, atol=1e-3)
    np.testing.assert_allclose(out_boxes, boxes, atol=1e-3)
    assert out.dtype == np.float32 and out_boxes.dtype == np.float32


def _pairwise(kp: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    xy = kp[labelled, :2].astype(np.float64)
    return np.linalg.norm(xy[:, None] - xy[None], axis=-1)


@SETTINGS
@given(pose_batches(), st.floats(-180, 180), st.floats(0.5, 2.0), st.floats(-0.5, 0.5), st.floats(-0.5, 0.5))
def test_affine_preserves_distances_times_scale(batch, angle, scale, sx, sy):
    kp, boxes = batch
    kp_in, boxes_in = kp.copy(), boxes.copy()
    n = kp.shape[0]
    out, _ = affine(kp, boxes, np.full(n, angle), np.full(n, scale), np.tile([sx, sy], (n, 1)))
    for i in range(n):
        lab = kp[i, :, 2] > 0
        np.testing.assert_allclose(_pairwise(out[i], lab), scale * _pairwise(kp[i], lab), atol=0.05)
    _assert_unlabelled_zero(out, kp[..., 2])
    assert np.array_equal(kp, kp_in) and np.array_equal(boxes, boxes_in)


@SETTINGS
@given(pose_batches(), st.floats(-180, 180))
def test_inverse_rotation_undoes_rotation(batch, angle):
    kp, boxes = batch
    rotated, rot_boxes = affine(kp, boxes, angle)
    # The axis-aligned box around the rotated corners keeps the centre, so the pivot is the same.
    np.testing.assert_allclose(rot_boxes[:, :2] + rot_boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2,
                               atol=ATOL)
    back, _ = affine(rotated, rot_boxes, -angle)
    np.testing.assert_allclose(back, kp, atol=ATOL)


@SETTINGS
@given(pose_batches(), st.lists(st.floats(-180, 180), min_size=4, max_size=4),
       st.lists(st.floats(0.5, 2.0), min_size=4, max_size=4),
       st.lists(st.floats(-0.5, 0.5), min_size=8, max_size=8))
def test_affine_box_contains_transformed_inside_joints(batch, angles, scales, shifts):
    kp, boxes = batch
    n = kp.shape[0]
    angle, scale, shift = np.array(angles[:n]), np.array(scales[:n]), np.array(shifts).reshape(4, 2)[:n]
    out, out_boxes = affine(kp, boxes, angle, scale, shift)
    x, y = kp[..., 0], kp[..., 1]
    inside = ((kp[..., 2] > 0) & (x >= boxes[:, None, 0]) & (x <= boxes[:, None, 0] + boxes[:, None, 2])
              & (y >= boxes[:, None, 1]) & (y <= boxes[:, None, 1] + boxes[:, None, 3]))
    tol = 0.05
    ox, oy = out[..., 0], out[..., 1]
    assert np.all(~inside | (ox >= out_boxes[:, None, 0] - tol))
    assert np.all(~inside | (ox <= out_boxes[:, None, 0] + out_boxes[:, None, 2] + tol))
    assert np.all(~inside | (oy >= out_boxes[:, None, 1] - tol))
    assert np.all(~inside | (oy <= out_boxes[:, None, 1] + out_boxes[:, None, 3] + tol))
    # The new box grows with the scale and by |cos| + |sin| under rotation.
    a = np.deg2rad(angle)
    grow = scale * (np.abs(np.cos(a)) * boxes[:, 2] + np.abs(np.sin(a)) * boxes[:, 3])
    np.testing.assert_allclose(out_boxes[:, 2], grow, rtol=1e-4, atol=1e-2)


@SETTINGS
@given(pose_batches(max_n=8), st.integers(0, 2**32 - 1))
def test_affine_matrices_are_opencvs_rotation_matrices(batch, seed):
    _, boxes = batch
    rng = np.random.default_rng(seed)
    n = len(boxes)
    angle, scale, shift = rng.uniform(-180, 180, n), rng.uniform(0.3, 2.0, n), rng.uniform(-0.3, 0.3, (n, 2))
    mats = affine_matrices(boxes, angle, scale, shift)
    for i, (x, y, w, h) in enumerate(boxes.astype(np.float64)):
        ref = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), float(angle[i]), float(scale[i]))
        ref[:, 2] += shift[i] * (w, h)
        np.testing.assert_allclose(mats[i, :, :2], ref[:, :2], rtol=0, atol=1e-12)
        # OpenCV takes the centre as float32 (cv::Point2f); posetok keeps float64: the offsets differ by its rounding
        np.testing.assert_allclose(mats[i, :, 2], ref[:, 2], rtol=0, atol=1e-4)


def test_affine_known_values():
    # Box centre (50, 100). A joint 10 px right of it, rotated by +90 degrees (counter-clockwise on screen,
    # y down) ends 10 px above it; scaling by 2 doubles that; shift (0.5, 0) moves right by half the box
    # width.
    kp = np.array([[[60.0, 100.0, 2], [0.0, 0.0, 0]]], np.float32)
    boxes = np.array([[30.0, 60.0, 40.0, 80.0]], np.float32)
    out, out_boxes = affine(kp, boxes, 90.0, 2.0, (0.5, 0.0))
    np.testing.assert_allclose(out[0, 0], [70.0, 80.0, 2], atol=1e-4)
    np.testing.assert_array_equal(out[0, 1], [0.0, 0.0, 0])
    # Old box 40x80 -> rotated 80x40 -> scaled 160x80 about (50, 100) -> shifted by +20 in x.
    np.testing.assert_allclose(out_boxes[0], [-10.0, 60.0, 160.0, 80.0], atol=1e-4)


# ----------------------------------------------------------------------------------------------- half-body


@SETTINGS
@given(pose_batches(min_n=2, max_n=6), st.integers(0, 2**32 - 1))
def test_half_body_box_contains_chosen_half(batch, seed):
    kp, boxes = batch
    kp_in, boxes_in = kp.copy(), boxes.copy()
    out, out_boxes = half_body(kp, boxes, COCO17, np.random.default_rng(seed), prob=1.0)
    np.testing.assert_array_equal(out, kp)  # keypoints never move
    assert out.dtype == np.float32 and out_boxes.dtype == np.float32
    assert np.array_equal(kp, kp_in) and np.array_equal(boxes, boxes_in)
    for i in range(kp.shape[0]):
        lab = kp[i, :, 2] > 0
        halves = [np.array(COCO17.upper_body), np.array(COCO17.lower_body)]
        eligible = [h[lab[h]] for h in halves if lab[h].sum() >= 3]
        if lab.sum() < 8 or not eligible:
            np.testing.assert_array_equal(out_boxes[i], boxes[i])
            continue
        x0, y0, w, h = out_boxes[i].astype(np.float64)
        matches = []
        for joints in eligible:
            pts = kp[i, joints, :2].astype(np.float64)
            lo, hi = pts.min(0), pts.max(0)
            ext = hi - lo
            if ext.max() == 0:
                continue
            ext = np.where(ext > 0, ext, ext.max())
            exp = np.concatenate([(lo + hi) / 2 - 0.75 * ext, 1.5 * ext])
            lo_box, hi_box = np.array([x0, y0]), np.array([x0 + w, y0 + h])
            contained = np.all((pts >= lo_box - 1e-3) & (pts <= hi_box + 1e-3))
            matches.append(contained and np.allclose([x0, y0, w, h], exp, atol=1e-2))
        assert any(matches), (i, out_boxes[i])


def _half_body_loop(kp, boxes, skeleton, rng, prob, min_joints=3, min_total_joints=8, padding=1.5,
                    aspect_ratio=None):
    """The per-sample loop half_body had before it was vectorised: the reference it must equal."""
    bx = boxes.copy()
    n = kp.shape[0]
    attempt, upper_first = rng.random(n) < prob, rng.random(n) < 0.5
    labelled = kp[..., 2] > 0
    halves = (np.asarray(skeleton.upper_body), np.asarray(skeleton.lower_body))
    for i in np.flatnonzero(attempt & (labelled.sum(axis=1) >= min_total_joints)):
        order = halves if upper_first[i] else halves[::-1]
        chosen = next((half[labelled[i, half]] for half in order if labelled[i, half].sum() >= min_joints), None)
        if chosen is None:
            continue
        pts = kp[i, chosen, :2].astype(np.float64)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        w, h = hi - lo
        if w <= 0 and h <= 0:
            continue
        if aspect_ratio is not None:
            if w > aspect_ratio * h:
                h = w / aspect_ratio
            else:
                w = h * aspect_ratio
        elif w <= 0 or h <= 0:
            w = h = max(w, h)
        size = np.array([w, h]) * padding
        bx[i] = np.concatenate([0.5 * (lo + hi) - 0.5 * size, size]).astype(np.float32)
    return bx


@settings(max_examples=80, deadline=None)
@given(pose_batches(min_n=1, max_n=12), st.integers(0, 2**32 - 1), st.sampled_from([None, 0.75, 1.0]),
       st.sampled_from([COCO17, MPII16]), st.booleans())
def test_half_body_equals_the_per_sample_loop(batch, seed, aspect_ratio, skeleton, degenerate):
    kp, boxes = batch
    if skeleton is MPII16:
        kp = kp[:, :16].copy()
    if degenerate:  # joints of one half on a line or a point: the zero-extent branches
        kp[0, :, 1] = kp[0, 0, 1]
        kp[-1, :, :2] = kp[-1, 0, :2]
    _, out = half_body(kp, boxes, skeleton, np.random.default_rng(seed), prob=0.7, aspect_ratio=aspect_ratio)
    ref = _half_body_loop(kp, boxes, skeleton, np.random.default_rng(seed), 0.7, aspect_ratio=aspect_ratio)
    np.testing.assert_array_equal(out, ref)


def test_half_body_known_values():
    kp = np.zeros((2, 17, 3), np.float32)
    # Upper body: nose..wrists over x 100..140, y 50..130; lower body: hips..ankles x 110..130, y 150..250.
    for j in range(11):
        kp[:, j] = (100 + 4 * j, 50 + 8 * j, 2)
    for j, y in zip(range(11, 17), (150, 150, 200, 200, 250, 250)):
        kp[:, j] = (110 + 20 * (j % 2), y, 2)
    boxes = np.tile(np.array([[90.0, 40.0, 60.0, 220.0]], np.float32), (2, 1))

    class Fixed:  # first draw: apply; second: upper for sample 0, lower for sample 1
        def __init__(self):
            self.calls = [np.array([0.0, 0.0]), np.array([0.1, 0.9])]

        def random(self, n):
            return self.calls.pop(0)

    _, out = half_body(kp, boxes, COCO17, Fixed(), prob=0.5)
    np.testing.assert_allclose(out[0], [90.0, 30.0, 60.0, 120.0], atol=1e-4)   # 40x80 extent * 1.5
    np.testing.assert_allclose(out[1], [105.0, 125.0, 30.0, 150.0], atol=1e-4)  # 20x100 extent * 1.5

    # Too few labelled joints overall (7 < 8): nothing changes even with prob 1.
    few = kp.copy()
    few[:, 7:] = 0
    _, out = half_body(few, boxes, COCO17, np.random.default_rng(0), prob=1.0)
    np.testing.assert_array_equal(out, boxes)

    # The coin picks the lower half but it has only 2 labelled joints: the upper half is used instead.
    two_lower = kp.copy()
    two_lower[:, 13:] = 0
    _, out = half_body(two_lower, boxes, COCO17, Fixed(), prob=0.5)
    np.testing.assert_allclose(out[1], [90.0, 30.0, 60.0, 120.0], atol=1e-4)

    # With an aspect ratio (w / h = 0.75) the upper half's 40x80 extent grows to 60x80 before padding.
    _, out = half_body(kp, boxes, COCO17, Fixed(), prob=0.5, aspect_ratio=0.75)
    np.testing.assert_allclose(out[0], [75.0, 30.0, 90.0, 120.0], atol=1e-4)


def test_half_body_prob_zero_is_identity_and_rng_use_is_fixed():
    rng = np.random.default_rng(3)
    kp = np.zeros((5, 17, 3), np.float32)
    kp[..., :2] = rng.uniform(0, 100, (5, 17, 2))
    kp[..., 2] = 2
    boxes = np.tile(np.array([[0.0, 0.0, 100.0, 100.0]], np.float32), (5, 1))
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    _, out = half_body(kp, boxes, COCO17, a, prob=0.0)
    np.testing.assert_array_equal(out, boxes)
    b.random(10)  # half_body draws exactly 2 * N uniforms
    assert a.random() == b.random()


# ------------------------------------------------------------------------------------------ KeypointAugment


@SETTINGS
@given(pose_batches(max_n=6), st.integers(0, 2**32 - 1))
def test_augment_keeps_conventions(batch, seed):
    kp, boxes = batch
    kp_in, boxes_in = kp.copy(), boxes.copy()
    aug = KeypointAugment(COCO17)
    out, out_boxes = aug(kp, boxes, np.random.default_rng(seed))
    assert out.shape == kp.shape and out_boxes.shape == boxes.shape
    assert out.dtype == np.float32 and out_boxes.dtype == np.float32
    assert np.array_equal(kp, kp_in) and np.array_equal(boxes, boxes_in)
    # Flips permute joints, so compare the labelled counts and the zero convention.
    assert np.array_equal(np.sort(out[..., 2], axis=1), np.sort(kp[..., 2], axis=1))
    assert np.all(out[out[..., 2] == 0] == 0.0)
    assert np.all(out_boxes[:, 2:] > 0)
    # Same seed, same result.
    again, again_boxes = aug(kp, boxes, np.random.default_rng(seed))
    assert np.array_equal(out, again) and np.array_equal(out_boxes, again_boxes)


def _normalise(kp: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return (kp[..., :2] - boxes[:, None, :2]) / boxes[:, None, 2:]


def test_augment_flip_only_box_centre_matches_image_flip_after_normalisation():
    rng = np.random.default_rng(0)
    kp = np.zeros((3, 17, 3), np.float32)
    kp[..., :2] = rng.uniform(100, 300, (3, 17, 2))
    kp[..., 2] = 2
    boxes = np.array([[90, 90, 220, 220], [120, 80, 150, 260], [95, 100, 230, 210]], np.float32)
    off = dict(rot_prob=0.0, scale_range=(1.0, 1.0), shift_prob=0.0, half_body_prob=0.0, flip_prob=1.0)
    kp_c, box_c = KeypointAugment(COCO17, **off)(kp, boxes, np.random.default_rng(1))
    kp_i, box_i = KeypointAugment(COCO17, image_width=640, **off)(kp, boxes, np.random.default_rng(1))
    np.testing.assert_allclose(box_c, boxes, atol=1e-4)  # flipping about the box centre keeps the box
    np.testing.assert_allclose(_normalise(kp_c, box_c), _normalise(kp_i, box_i), atol=1e-5)
    # And it really is a flip: left shoulder x mirrored about the centre lands on the right shoulder.
    cx = boxes[:, 0] + boxes[:, 2] / 2
    np.testing.assert_allclose(kp_c[:, 6, 0], 2 * cx - kp[:, 5, 0], atol=1e-3)


def test_augment_all_off_is_identity_and_jitter_moves_only_the_box():
    rng = np.random.default_rng(2)
    kp = np.zeros((4, 17, 3), np.float32)
    kp[..., :2] = rng.uniform(0, 200, (4, 17, 2))
    kp[..., 2] = 1
    boxes = np.array([[0, 0, 200, 200]] * 4, np.float32)
    off = KeypointAugment(COCO17, flip_prob=0.0, rot_prob=0.0, scale_range=(1.0, 1.0), shift_prob=0.0,
                          half_body_prob=0.0)
    out, out_boxes = off(kp, boxes, np.random.default_rng(0))
    np.testing.assert_allclose(out, kp, atol=1e-4)
    np.testing.assert_allclose(out_boxes, boxes, atol=1e-4)

    scale_only = KeypointAugment(COCO17, flip_prob=0.0, rot_prob=0.0, scale_range=(1.25, 1.25),
                                 shift_prob=0.0, half_body_prob=0.0)
    out, out_boxes = scale_only(kp, boxes, np.random.default_rng(0))
    np.testing.assert_allclose(out, kp, atol=1e-4)
    np.testing.assert_allclose(out_boxes, [[-25.0, -25.0, 250.0, 250.0]] * 4, atol=1e-4)

    rot_only = KeypointAugment(COCO17, flip_prob=0.0, rot_prob=1.0, rot_deg=30.0, scale_range=(1.0, 1.0),
                               shift_prob=0.0, half_body_prob=0.0)
    out, out_boxes = rot_only(kp, boxes, np.random.default_rng(0))
    np.testing.assert_allclose(out_boxes, boxes, atol=1e-4)  # the box keeps its size under rotation
    d_in = np.linalg.norm(kp[:, :, :2] - 100.0, axis=-1)
    d_out = np.linalg.norm(out[:, :, :2] - 100.0, axis=-1)
    np.testing.assert_allclose(d_out, d_in, atol=1e-3)  # rotated about the box centre
    assert not np.allclose(out, kp, atol=1e-2)


def test_augment_rejects_bad_scale_range():
    with pytest.raises(ValueError, match="scale_range"):
        KeypointAugment(COCO17, scale_range=(1.2, 0.8))
