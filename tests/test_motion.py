"""Synthetic pose sequences: shapes, determinism, physical plausibility, joint limits and the written dataset."""

from __future__ import annotations

import numpy as np
import pytest

from posetok.data.motion import (
    GAP_SHARE,
    MOTIONS,
    OCCLUDED_CONF,
    sample_motion,
    simulate_motion,
    write_motion_dataset,
)
from posetok.data.sequences import WindowDataset, list_sequences, load_sequence
from posetok.data.synthetic import JOINT_LIMITS, clip_to_limits
from posetok.errors import PosetokError
from posetok.skeletons import COCO17, WB_FACE, WB_LEFT_HAND, WB_RIGHT_HAND, WHOLEBODY133, get_skeleton

FPS = 30.0


@pytest.fixture(scope="module")
def clips():
    """28 COCO-17 clips of 3 s: every motion four times."""
    return simulate_motion(28, 90, "coco17", fps=FPS, seed=3)


@pytest.fixture(scope="module")
def wholebody():
    return simulate_motion(14, 45, "wholebody133", fps=FPS, seed=5)


@pytest.mark.parametrize("skeleton", ["coco17", "mpii16", "h36m17", "wholebody133"])
@pytest.mark.parametrize("coords", ["2d", "2d+conf", "3d"])
def test_shapes_and_dtypes(skeleton, coords):
    poses, mask, kinds = sample_motion(7, 12, skeleton, coords, seed=1)
    n = get_skeleton(skeleton).num_joints
    d = {"2d": 2, "2d+conf": 3, "3d": 3}[coords]
    assert poses.shape == (7, 12, n, d) and poses.dtype == np.float32
    assert mask.shape == (7, 12) and mask.dtype == bool
    assert kinds.shape == (7,) and kinds.dtype == np.int64
    assert sorted(kinds.tolist()) == list(range(len(MOTIONS)))
    assert np.isfinite(poses).all()
    if coords == "3d":
        assert (poses[mask][..., 2] > 1.0).all()  # in front of the camera, metres away
    if coords == "2d+conf":
        assert set(np.unique(poses[mask][..., 2]).tolist()) <= {0.0, float(np.float32(OCCLUDED_CONF)), 1.0}


def test_determinism_per_seed():
    a = sample_motion(7, 20, "coco17", "2d+conf", seed=11)
    b = sample_motion(7, 20, "coco17", "2d+conf", seed=11)
    c = sample_motion(7, 20, "coco17", "2d+conf", seed=12)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.allclose(a[0], c[0])


def test_every_motion_kind_appears(clips):
    assert MOTIONS == ("walk", "run", "wave", "reach", "jump", "turn", "transition")
    assert np.bincount(clips.kinds, minlength=len(MOTIONS)).tolist() == [4] * len(MOTIONS)


def test_angles_stay_within_limits(clips):
    for name, (lo, hi) in JOINT_LIMITS.items():
        a = clips.angles[name]
        assert a.shape == (28, 90)
        assert (a >= lo - 1e-9).all() and (a <= hi + 1e-9).all(), name
    # The couplings hold too: clipping again changes nothing.
    again = clip_to_limits(clips.angles)
    for name in JOINT_LIMITS:
        assert np.allclose(again[name], clips.angles[name]), name
    # And the motion uses the range: knees bend far in runs and jumps, arms go overhead in waves.
    assert clips.angles["left_knee_flex"].max() > 90
    assert max(clips.angles[f"{s}_shoulder_elevation"].max() for s in ("left", "right")) > 110


def consecutive_valid(mask: np.ndarray) -> np.ndarray:
    return mask[:, 1:] & mask[:, :-1]


def test_motion_is_smooth(clips):
    """Joint speeds and accelerations in the camera frame stay human (m/s, m/s^2) at 30 fps."""
    cam = clips.camera.astype(np.float64)
    vel = np.diff(cam, axis=1) * FPS  # (S, T-1, K, 3)
    speed = np.linalg.norm(vel, axis=-1)[consecutive_valid(clips.mask)]
    assert speed.max() < 12.0  # a sprinter's swinging foot, a jumper's arm swing, seen by a moving camera
    assert np.percentile(speed, 50) < 2.0
    acc = np.linalg.norm(np.diff(vel, axis=1), axis=-1) * FPS
    both = clips.mask[:, 2:] & clips.mask[:, 1:-1] & clips.mask[:, :-2]
    assert np.percentile(acc[both], 99) < 100.0 and acc[both].max() < 250.0
    # Gait speeds: walkers travel at walking pace, runners faster (world frame, hip centre).
    hips = clips.world[:, :, [11, 12]].mean(2)
    pace = np.linalg.norm(hips[:, -1, [0, 2]] - hips[:, 0, [0, 2]], axis=-1) / (89 / FPS)
    walk, run = pace[clips.kinds == 0], pace[clips.kinds == 1]
    assert (walk > 0.7).all() and (walk < 2.0).all()
    assert (run > 1.8).all() and (run < 6.5).all()
    assert (pace[clips.kinds == 5] < 0.5).all()  # turning on the spot


def test_bone_lengths_constant_within_a_sequence(clips):
    rigid = [(5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (11, 12)]
    for a, b in rigid:
        length = np.linalg.norm(clips.camera[:, :, a] - clips.camera[:, :, b], axis=-1)  # (S, T)
        for s in range(len(length)):
            ok = length[s][clips.mask[s]]
            assert ok.max() - ok.min() < 1e-4, (a, b, s)
    # Upper arms differ between people (bone lengths are drawn per sequence).
    upper = np.linalg.norm(clips.camera[:, 0, 5] - clips.camera[:, 0, 7], axis=-1)
    assert np.ptp(upper) > 0.01
    assert np.allclose(upper, clips.bones["left_upper_arm"], atol=1e-4)


def test_feet_on_the_ground_and_jumps_fly(clips):
    feet = clips.world[:, :, [15, 16], 1].min(-1)  # ankles (y up, ground 0)
    grounded = clips.kinds != 4
    assert (feet[grounded] > 0.0).all() and (feet[grounded] < 0.3).all()  # on tiptoe at most
    # Jumpers leave the ground: their ankles rise well above the standing ankle height.
    jumps = feet[clips.kinds == 4]
    assert (jumps.max(1) - jumps.min(1) > 0.15).any()


def test_projections_mostly_inside_the_image(clips):
    w, h = clips.image_size
    assert (w, h) == (1280, 720)
    inside = (clips.conf > 0)[clips.mask]
    assert inside.mean() > 0.95
    per_seq = np.array([(clips.conf[s][clips.mask[s]] > 0).mean() for s in range(len(clips.kinds))])
    assert (per_seq > 0.7).all()
    px = clips.pixels[clips.mask]
    assert np.array_equal((clips.conf[clips.mask] > 0), (px[..., 0] >= 0) & (px[..., 0] < w) & (px[..., 1] >= 0)
                          & (px[..., 1] < h))
    # Some joints are hidden by the body (a person turns, swings arms across).
    assert 0.02 < (clips.conf[clips.mask] == OCCLUDED_CONF).mean() < 0.5
    # The person fills a fair share of the image height.
    height = np.ptp(clips.pixels[..., 1], axis=2)[clips.mask]
    assert 0.15 * h < np.median(height) < 0.8 * h


def test_tracking_gaps_are_masked_and_zero():
    poses, mask, _ = sample_motion(60, 40, "coco17", "2d+conf", seed=2)
    gappy = (~mask).any(1)
    assert 0 < gappy.mean() < 3 * GAP_SHARE
    assert (poses[~mask] == 0).all()
    assert (mask.sum(1) >= 30).all()


def test_wholebody_parts_are_attached_and_animated(wholebody):
    world = wholebody.world.astype(np.float64)
    assert world.shape == (14, 45, 133, 3)
    # Hand roots sit on the body wrists; fingertips within a hand's length of them.
    assert np.allclose(world[:, :, WB_LEFT_HAND], world[:, :, 9], atol=1e-5)
    assert np.allclose(world[:, :, WB_RIGHT_HAND], world[:, :, 10], atol=1e-5)
    for root, wrist in ((WB_LEFT_HAND, 9), (WB_RIGHT_HAND, 10)):
        reach = np.linalg.norm(world[:, :, root + 1:root + 21] - world[:, :, wrist, None], axis=-1)
        assert 0.05 < reach.max() < 0.3
        # Fingers keep their segment lengths while curling (rigid phalanges).
        seg = np.linalg.norm(world[:, :, root + 10] - world[:, :, root + 11], axis=-1)
        assert (np.ptp(seg, axis=1) < 1e-5).all()
    # Face landmarks around the nose, symmetric about the face's midline.
    face = world[:, :, WB_FACE:WB_FACE + 68]
    assert np.linalg.norm(face - world[:, :, :1], axis=-1).max() < 0.2
    eyes = np.linalg.norm(face[:, :, 36] - face[:, :, 45], axis=-1)  # outer eye corners
    assert 0.07 < np.median(eyes) < 0.11
    # Mouths open and close (talking, breathing) in some clips.
    lips = np.linalg.norm(face[:, :, 62] - face[:, :, 66], axis=-1)
    assert np.ptp(lips, axis=1).max() > 0.005
    # Feet: toes ahead of the heel.
    l_toe, l_heel, l_ankle = world[:, :, 17], world[:, :, 19], world[:, :, 15]
    assert (np.linalg.norm(l_toe - l_heel, axis=-1) > 0.1).all()
    assert (np.linalg.norm(l_heel - l_ankle, axis=-1) < 0.15).all()
    # The hands' visibility follows the body: some face points are hidden when the head turns away.
    conf = wholebody.conf[wholebody.mask]
    assert (conf[:, WB_FACE:WB_FACE + 68] == OCCLUDED_CONF).any()
    assert WHOLEBODY133.num_joints == 133


def test_write_motion_dataset_round_trip(tmp_path):
    write_motion_dataset(tmp_path, 3, 2, 1, 24, "coco17", "2d+conf", seed=4)
    train = list_sequences(tmp_path, "train")
    assert [p.name for p in train] == ["seq_00000.npz", "seq_00001.npz", "seq_00002.npz"]
    assert len(list_sequences(tmp_path, "val")) == 2 and len(list_sequences(tmp_path, "test")) == 1
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind
    seq = load_sequence(train[0], COCO17, 3)
    assert seq.poses.shape == (24, 17, 3)
    with np.load(train[0]) as z:
        assert str(z["motion"]) in MOTIONS and str(z["coords"]) == "2d+conf" and float(z["fps"]) == 30.0
    # Splits come from different streams.
    val = load_sequence(list_sequences(tmp_path, "val")[0], COCO17, 3)
    assert not np.allclose(val.poses, seq.poses)
    ds = WindowDataset(tmp_path, COCO17, "2d+conf", length=16, stride=8, split="train")
    assert len(ds) == 6 and ds[0]["poses"].shape == (16, 17, 3)


def test_bad_arguments():
    with pytest.raises(PosetokError, match="synthetic motion does not support skeleton 'smpl24'"):
        sample_motion(1, 4, "smpl24")
    with pytest.raises(PosetokError, match="unknown coords 'xyz'"):
        sample_motion(1, 4, "coco17", "xyz")
    with pytest.raises(PosetokError, match="length must be >= 1 frame, got 0"):
        sample_motion(1, 0)
    with pytest.raises(PosetokError, match="fps must be > 0"):
        sample_motion(1, 4, fps=0)
    poses, mask, kinds = sample_motion(0, 5)
    assert poses.shape == (0, 5, 17, 3) and mask.shape == (0, 5) and kinds.shape == (0,)
    one, _, _ = sample_motion(2, 1, "h36m17", "3d")
    assert one.shape == (2, 1, 17, 3) and np.isfinite(one).all()
