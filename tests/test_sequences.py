"""Pose sequence files: reading with one-line errors, sliding windows, the normaliser and the window dataset."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posetok.data.sequences import (
    PoseSequence,
    SequenceNormalizer,
    WindowDataset,
    coords_dims,
    list_sequences,
    load_sequence,
    sliding_windows,
    window_starts,
)
from posetok.errors import PosetokError
from posetok.skeletons import COCO17, H36M17, MPII16, Skeleton

REAL_TRACK = Path(__file__).resolve().parents[1] / "posetok/assets/real_sample/sequence_sports2d.npz"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

L_SH, R_SH, L_HIP, R_HIP = 5, 6, 11, 12  # COCO-17


def bad(path: Path, field: str, problem: str):
    """``pytest.raises`` for the standard message ``{path}: field '{field}': {problem}`` (problem is a regex)."""
    return pytest.raises(PosetokError, match=re.escape(f"{path}: field '{field}': ") + problem)


def person(t: int = 20, seed: int = 0, d: int = 3) -> np.ndarray:
    """``(t, 17, d)`` COCO-17 people: a fixed skeleton (torso 50 px) drifting and jittering, conf in [0.5, 1]."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 30, (17, 2))
    base[[L_SH, R_SH]] = [[-20, -50], [20, -50]]
    base[[L_HIP, R_HIP]] = [[-15, 0], [15, 0]]
    xy = base + np.array([300.0, 200.0]) + np.linspace(0, 40, t)[:, None, None] + rng.normal(0, 1, (t, 17, 2))
    if d == 2:
        return xy
    return np.concatenate([xy, rng.uniform(0.5, 1.0, (t, 17, 1))], axis=-1)


def save(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------


def test_load_sequence_shapes_dtypes_and_default_mask(tmp_path):
    path = save(tmp_path / "a.npz", poses=person(20))  # float64 in the file
    seq = load_sequence(path, COCO17, 3)
    assert isinstance(seq, PoseSequence) and seq.path == str(path)
    assert seq.poses.shape == (20, 17, 3) and seq.poses.dtype == np.float32
    assert seq.mask.shape == (20,) and seq.mask.dtype == bool and seq.mask.all()
    assert np.allclose(seq.poses, person(20), atol=1e-4)
    assert seq.num_frames == 20


def test_masked_frames_may_hold_nan_and_are_zero_filled(tmp_path):
    poses = person(10)
    poses[3:5] = np.nan
    poses[7, 2] = np.inf
    mask = np.ones(10, dtype=np.uint8)
    mask[[3, 4, 7]] = 0  # 0/1 integers are accepted as a mask
    seq = load_sequence(save(tmp_path / "a.npz", poses=poses, mask=mask), COCO17, 3)
    assert seq.mask.tolist() == [True] * 3 + [False] * 2 + [True] * 2 + [False] + [True] * 2
    assert np.isfinite(seq.poses).all()
    assert (seq.poses[[3, 4, 7]] == 0).all()
    assert np.allclose(seq.poses[0], poses[0], atol=1e-4)


def test_not_an_npz(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(PosetokError, match=re.escape(f"{text}: not a readable .npz archive")):
        load_sequence(text, COCO17, 3)
    single = tmp_path / "single.npz"
    with open(single, "wb") as fh:
        np.save(fh, person(4))
    with pytest.raises(PosetokError, match=re.escape(f"{single}: not a readable .npz archive (a single .npy")):
        load_sequence(single, COCO17, 3)
    with pytest.raises(PosetokError, match=re.escape(f"{tmp_path / 'nope.npz'}: no such file")):
        load_sequence(tmp_path / "nope.npz", COCO17, 3)


def test_bad_fields_name_file_and_field(tmp_path):
    p = tmp_path / "a.npz"
    with bad(p, "poses", re.escape("missing; the archive has fields ['joints']")):
        load_sequence(save(p, joints=person(4)), COCO17, 3)
    with bad(p, "poses", re.escape("expected rank 3 (T, N, D), got shape (64, 17)")):
        load_sequence(save(p, poses=np.zeros((64, 17))), COCO17, 3)
    # The message is exactly the documented one line.
    try:
        load_sequence(save(p, poses=np.zeros((64, 17))), COCO17, 3)
    except PosetokError as err:
        assert str(err) == f"{p}: field 'poses': expected rank 3 (T, N, D), got shape (64, 17)"
    with bad(p, "poses", re.escape("expected D = 3 channels per keypoint, got shape (8, 17, 2)")):
        load_sequence(save(p, poses=np.zeros((8, 17, 2))), COCO17, 3)
    with bad(p, "poses", re.escape("expected N = 17 keypoints of skeleton 'coco17', got shape (8, 16, 3)")):
        load_sequence(save(p, poses=np.zeros((8, 16, 3))), COCO17, 3)
    with bad(p, "poses", re.escape("expected N = 16 keypoints of skeleton 'mpii16'")):
        load_sequence(save(p, poses=np.zeros((8, 17, 3))), MPII16, 3)
    with bad(p, "poses", re.escape("has no frames, got shape (0, 17, 3)")):
        load_sequence(save(p, poses=np.zeros((0, 17, 3))), COCO17, 3)
    with bad(p, "poses", "expected a numeric array, got dtype <U1"):
        load_sequence(save(p, poses=np.full((2, 17, 3), "a")), COCO17, 3)


def test_nan_and_inf_in_valid_frames(tmp_path):
    p = tmp_path / "a.npz"
    poses = person(10)
    poses[6, 9, 0] = np.nan
    poses[8, 1, 1] = np.inf
    with bad(p, "poses", re.escape("NaN or infinite values in valid frames (2 frames), first at frame 6, "
                                   "joint 9 ('left_wrist')")):
        load_sequence(save(p, poses=poses), COCO17, 3)
    mask = np.ones(10, bool)
    mask[6] = False
    with bad(p, "poses", re.escape("NaN or infinite values in valid frames (1 frame), first at frame 8, joint 1 "
                                   "('left_eye'); set 'mask' False for frames without a pose")):
        load_sequence(save(p, poses=poses, mask=mask), COCO17, 3)


def test_bad_masks(tmp_path):
    p = tmp_path / "a.npz"
    with bad(p, "mask", re.escape("expected shape (10,) to match 10 frames of 'poses', got shape (9,)")):
        load_sequence(save(p, poses=person(10), mask=np.ones(9, bool)), COCO17, 3)
    with bad(p, "mask", re.escape("expected shape (10,) to match 10 frames of 'poses', got shape (10, 1)")):
        load_sequence(save(p, poses=person(10), mask=np.ones((10, 1), bool)), COCO17, 3)
    half = np.ones(10)
    half[4] = 0.5
    with bad(p, "mask", re.escape("expected bool values (or 0/1), got 0.5 at frame 4")):
        load_sequence(save(p, poses=person(10), mask=half), COCO17, 3)
    with bad(p, "mask", re.escape("expected bool values (or 0/1), got dtype <U3")):
        load_sequence(save(p, poses=person(10), mask=np.array(["yes"] * 10)), COCO17, 3)


def test_list_sequences(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split / "sub").mkdir(parents=True)
    for name in ("b.npz", "a.npz", "sub/c.npz"):
        save(tmp_path / "train" / name, poses=person(4))
    (tmp_path / "train" / "readme.txt").write_text("x")
    train = list_sequences(tmp_path, "train")
    assert [p.relative_to(tmp_path / "train").as_posix() for p in train] == ["a.npz", "b.npz", "sub/c.npz"]
    assert list_sequences(tmp_path / "train" / "b.npz") == [tmp_path / "train" / "b.npz"]
    assert len(list_sequences(tmp_path)) == 3  # no split: the whole folder
    with pytest.raises(PosetokError, match=re.escape(f"{tmp_path / 'val'}: empty: no .npz pose sequence files")):
        list_sequences(tmp_path, "val")
    with pytest.raises(PosetokError, match=re.escape(f"{tmp_path}: split 'test' not found: no folder "
                                                     f"{tmp_path / 'test'} (subfolders: ['train', 'val'])")):
        list_sequences(tmp_path, "test")
    with pytest.raises(PosetokError, match=re.escape(f"{tmp_path / 'missing'}: no such file or folder")):
        list_sequences(tmp_path / "missing")
    with pytest.raises(PosetokError, match="not a pose sequence file"):
        list_sequences(tmp_path / "train" / "readme.txt")


def test_coords_dims():
    assert [coords_dims(c) for c in ("2d", "2d+conf", "3d")] == [2, 3, 3]
    with pytest.raises(PosetokError, match="unknown coords 'xyz'; choose one of 2d, 2d\\+conf, 3d"):
        coords_dims("xyz")


# ----------------------------------------------------------------------------------------------------------
# Windows
# ----------------------------------------------------------------------------------------------------------


def seq_of(t: int, n: int = 17, d: int = 3) -> PoseSequence:
    poses = np.arange(t * n * d, dtype=np.float32).reshape(t, n, d)
    return PoseSequence("mem", poses, np.ones(t, dtype=bool))


def test_windows_cover_every_frame_and_end_aligned():
    seq = seq_of(11)
    windows, masks, starts = sliding_windows(seq, 4, 3)
    assert starts.tolist() == [0, 3, 6, 7]  # the last window ends at the last frame
    assert windows.shape == (4, 4, 17, 3) and windows.dtype == np.float32
    assert masks.shape == (4, 4) and masks.dtype == bool and masks.all()
    for w, s in zip(windows, starts):
        assert np.array_equal(w, seq.poses[s:s + 4])
    assert sliding_windows(seq_of(10), 4, 3)[2].tolist() == [0, 3, 6]  # exact fit: no extra window
    assert sliding_windows(seq_of(10), 10, 5)[2].tolist() == [0]


def test_short_clip_is_padded_with_its_last_frame():
    seq = seq_of(3)
    seq.mask[1] = False
    windows, masks, starts = sliding_windows(seq, 5, 2)
    assert starts.tolist() == [0] and windows.shape == (1, 5, 17, 3)
    assert masks[0].tolist() == [True, False, True, False, False]
    assert np.array_equal(windows[0, 3], seq.poses[2]) and np.array_equal(windows[0, 4], seq.poses[2])


def test_bad_window_arguments():
    with pytest.raises(PosetokError, match="window length must be >= 1 frame, got 0"):
        sliding_windows(seq_of(5), 0, 1)
    with pytest.raises(PosetokError, match="window stride must be >= 1 frame, got -2"):
        window_starts(5, 3, -2)
    with pytest.raises(PosetokError, match=re.escape("window stride (5) must be <= window length (4) so every "
                                                     "frame is covered")):
        sliding_windows(seq_of(20), 4, 5)


@FAST
@given(t=st.integers(1, 300), length=st.integers(1, 80), data=st.data())
def test_window_count_and_coverage(t, length, data):
    stride = data.draw(st.integers(1, length))
    starts = window_starts(t, length, stride)
    expected = 1 if t <= length else -(-(t - length) // stride) + 1
    assert len(starts) == expected
    assert starts[0] == 0 and np.all(np.diff(starts) > 0) and np.all(np.diff(starts) <= stride)
    assert starts[-1] == max(t - length, 0)  # aligned to the end
    covered = np.zeros(t, dtype=bool)
    for s in starts:
        covered[s:s + length] = True
    assert covered.all()


@FAST
@given(t=st.integers(1, 40), length=st.integers(1, 16), data=st.data())
def test_window_masks_follow_the_file(t, length, data):
    stride = data.draw(st.integers(1, length))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=t, max_size=t)))
    seq = PoseSequence("mem", np.random.default_rng(t).normal(size=(t, 2, 2)).astype(np.float32), mask)
    windows, masks, starts = sliding_windows(seq, length, stride)
    assert windows.shape == (len(starts), length, 2, 2) and masks.shape == (len(starts), length)
    for w, m, s in zip(windows, masks, starts):
        inside = min(length, t - s)
        assert np.array_equal(m[:inside], mask[s:s + inside]) and not m[inside:].any()
        assert np.array_equal(w[:inside], seq.poses[s:s + inside])
        assert (w[inside:] == seq.poses[-1]).all()


# ----------------------------------------------------------------------------------------------------------
# Normaliser
# ----------------------------------------------------------------------------------------------------------


def torso_stats(normed: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per window: mean hip centre over valid frames and median torso size (COCO-17)."""
    hip = normed[..., [L_HIP, R_HIP], :2].mean(-2)
    sh = normed[..., [L_SH, R_SH], :2].mean(-2)
    root = np.stack([hip[w][masks[w]].mean(0) for w in range(len(hip))])
    torso = np.stack([np.median(np.linalg.norm(sh[w] - hip[w], axis=-1)[masks[w]]) for w in range(len(hip))])
    return root, torso


def test_normalize_centres_scales_and_inverts():
    poses = person(40, d=3).astype(np.float32)
    seq = PoseSequence("mem", poses, np.ones(40, dtype=bool))
    seq.mask[5:9] = False
    windows, masks, _ = sliding_windows(seq, 16, 8)
    norm = SequenceNormalizer(COCO17, "2d+conf")
    normed, params = norm.normalize(windows, masks)
    assert normed.shape == windows.shape and normed.dtype == np.float32
    assert params["root"].shape == (len(windows), 2) and params["scale"].shape == (len(windows),)
    root, torso = torso_stats(normed, masks)
    assert np.allclose(root, 0.0, atol=1e-5)
    assert np.allclose(torso, 1.0, atol=1e-5)
    assert np.allclose(params["scale"], 50.0, rtol=0.05)  # the 50 px torso of person()
    assert np.array_equal(normed[..., 2], windows[..., 2])  # confidence passes through
    back = norm.denormalize(normed, params)
    assert back.dtype == np.float32
    assert np.allclose(back, windows, rtol=1e-5, atol=1e-5 * 300)
    # float64 in, float64 out: the inverse is exact to rounding.
    n64, p64 = norm.normalize(windows.astype(np.float64), masks)
    assert n64.dtype == np.float64
    assert np.allclose(norm.denormalize(n64, p64), windows, rtol=0, atol=1e-9)


def test_low_confidence_joints_do_not_move_the_root():
    poses = person(10, d=3)
    poses[:, L_HIP, 2] = 0.1
    poses[:, L_HIP, :2] += 1000.0  # a wild, unconfident detection
    norm = SequenceNormalizer(COCO17, "2d+conf", min_conf=0.3)
    _, params = norm.normalize(poses[None], np.ones((1, 10), bool))
    # The hip centre needs both hips: it falls back to the centroid of the confident joints.
    confident = np.delete(poses[..., :2], L_HIP, axis=1)
    assert np.allclose(params["root"][0], confident.reshape(-1, 2).mean(0))
    assert params["scale"][0] < 500  # the torso too ignores the wild hip


def test_single_window_and_fallbacks():
    norm = SequenceNormalizer(COCO17, "2d+conf")
    nothing = person(6)
    nothing[..., 2] = 0.0  # no confident joint: identity transform
    normed, params = norm.normalize(nothing, np.ones(6, bool))
    assert normed.shape == (6, 17, 3) and params["root"].shape == (2,) and params["scale"].shape == ()
    assert np.allclose(params["root"], 0) and params["scale"] == 1.0
    assert np.allclose(normed, nothing)
    still = np.zeros((1, 4, 17, 2))  # all joints on one point: no torso, no spread
    normed, params = SequenceNormalizer(COCO17, "2d").normalize(still, np.ones((1, 4), bool))
    assert params["scale"][0] == 1.0 and np.allclose(normed, 0)


def test_root_joint_of_h36m_and_mpii_and_shoulderless_layouts():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2, 8, 17, 3))
    norm = SequenceNormalizer(H36M17, "3d")
    assert norm.root_joints == [0] and norm.torso_bottom == [H36M17.index("left_hip"), H36M17.index("right_hip")]
    normed, params = norm.normalize(x, np.ones((2, 8), bool))
    assert np.allclose(normed[:, :, 0].mean(1), 0, atol=1e-6)  # the root joint averages to the origin
    assert np.allclose(norm.denormalize(normed, params), x)
    assert SequenceNormalizer(MPII16, "2d").root_joints == [MPII16.index("pelvis")]
    blob = Skeleton("blob", ("a", "b", "c", "d"), (), (), upper_body=(0, 1))
    nb = SequenceNormalizer(blob, "2d")
    assert (nb.torso_top, nb.torso_bottom, nb.root_joints) == ([0, 1], [2, 3], [2, 3])
    pts = np.array([[0, 0], [2, 0], [0, 4], [2, 4]], dtype=np.float64)[None, None].repeat(3, 1)
    _, params = nb.normalize(pts, np.ones((1, 3), bool))
    assert np.allclose(params["root"], [[1, 4]]) and np.allclose(params["scale"], 4.0)


@FAST
@given(
    coords=st.sampled_from(["2d", "2d+conf", "3d"]),
    data=st.data(),
)
def test_normalizer_round_trip_random_poses(coords, data):
    d = coords_dims(coords)
    w, length = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 6))
    x = data.draw(hnp.arrays(np.float64, (w, length, 17, d), elements=st.floats(-1e3, 1e3, width=64)))
    masks = data.draw(hnp.arrays(np.bool_, (w, length)))
    norm = SequenceNormalizer(COCO17, coords)
    normed, params = norm.normalize(x, masks)
    assert np.isfinite(normed).all() and (params["scale"] > 0).all()
    assert np.allclose(norm.denormalize(normed, params), x, rtol=1e-9, atol=1e-6)
    # float32, as a dataset would feed it, within 1e-5 relative.
    x32 = x.astype(np.float32)
    n32, p32 = norm.normalize(x32, masks)
    assert np.allclose(norm.denormalize(n32, p32), x32, rtol=1e-5,
                       atol=1e-5 * (1 + np.abs(p32["root"]).max() + p32["scale"].max()))


# ----------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------


def test_window_dataset(tmp_path):
    (tmp_path / "train").mkdir()
    for i, t in enumerate((30, 7, 16)):
        mask = np.ones(t, bool)
        mask[2] = False
        poses = person(t, seed=i)
        poses[2] = np.nan
        save(tmp_path / "train" / f"s{i}.npz", poses=poses, mask=mask)
    ds = WindowDataset(tmp_path, COCO17, "2d+conf", length=16, stride=8, split="train")
    # 30 frames: starts 0, 8, 14; 7 frames: one padded window; 16 frames: one window.
    assert [tuple(r) for r in ds.index] == [(0, 0), (0, 8), (0, 14), (1, 0), (2, 0)]
    assert len(ds) == 5
    item = ds[3]
    assert item["poses"].shape == (16, 17, 3) and item["poses"].dtype == torch.float32
    assert item["mask"].dtype == torch.bool and item["mask"].tolist() == [True, True, False] + [True] * 4 + [False] * 9
    assert item["conf"].shape == (16, 17) and (item["conf"][~item["mask"]] == 0).all()
    assert (item["poses"][~item["mask"]] == 0).all()
    raw = load_sequence(ds.files[1], COCO17, 3)
    assert np.allclose(item["conf"][:2].numpy(), raw.poses[:2, :, 2])
    # The parameters undo the normalisation on valid frames, batched through a DataLoader too.
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert batch["poses"].shape == (5, 16, 17, 3) and batch["root"].shape == (5, 2) and batch["scale"].shape == (5,)
    back = ds.normalizer.denormalize(batch["poses"], {"root": batch["root"], "scale": batch["scale"]})
    for b in range(5):
        f, s = int(batch["file"][b]), int(batch["start"][b])
        seq = load_sequence(ds.files[f], COCO17, 3)
        m = batch["mask"][b].numpy()
        n_valid = int(m.sum())
        assert n_valid > 0
        ref = seq.poses[s:s + 16][m[: len(seq.poses[s:s + 16])]]
        assert np.allclose(back[b][m], ref, rtol=1e-5, atol=1e-3)
    root, torso = torso_stats(batch["poses"].numpy(), batch["mask"].numpy())
    assert np.allclose(root, 0, atol=1e-5) and np.allclose(torso, 1, atol=1e-5)


def test_window_dataset_reports_a_bad_file_at_once(tmp_path):
    save(tmp_path / "a.npz", poses=person(5))
    save(tmp_path / "b.npz", poses=person(5, d=2))
    with bad(tmp_path / "b.npz", "poses", "expected D = 3"):
        WindowDataset(tmp_path, COCO17, "2d+conf", length=4)
    ds = WindowDataset([tmp_path / "a.npz"], COCO17, "2d+conf", length=4, cache_files=1)
    assert len(ds) == 2 and (ds[1]["conf"] > 0).all()
    plain = WindowDataset(tmp_path / "b.npz", COCO17, "2d", length=8)
    assert (plain[0]["conf"][:5] == 1).all() and (plain[0]["conf"][5:] == 0).all()


# ----------------------------------------------------------------------------------------------------------
# The bundled real track
# ----------------------------------------------------------------------------------------------------------


def test_real_track_loads_windows_and_normalises():
    seq = load_sequence(REAL_TRACK, COCO17, 3)
    assert seq.poses.shape == (230, 17, 3) and seq.mask.shape == (230,)
    assert int(seq.mask.sum()) == 221
    valid = seq.poses[seq.mask]
    # Full-frame pixels of the 1768x994 video (a detector may put a joint a little past the border).
    assert -100 < valid[..., 0].min() < valid[..., 0].max() < 1868
    assert -100 < valid[..., 1].min() < valid[..., 1].max() < 1094
    assert np.ptp(valid[..., 0]) > 500  # the sprinter crosses the frame
    assert (seq.poses[~seq.mask] == 0).all()
    windows, masks, starts = sliding_windows(seq, 64, 32)
    assert starts.tolist() == [0, 32, 64, 96, 128, 160, 166]
    norm = SequenceNormalizer(COCO17, "2d+conf")
    normed, params = norm.normalize(windows, masks)
    full = masks.sum(1) > 32
    ok = (windows[..., [L_SH, R_SH, L_HIP, R_HIP], 2] >= 0.3).all(-1) & masks
    for w in np.flatnonzero(full):
        hip = normed[w][..., [L_HIP, R_HIP], :2].mean(-2)
        sh = normed[w][..., [L_SH, R_SH], :2].mean(-2)
        assert np.median(np.linalg.norm(sh - hip, axis=-1)[ok[w]]) == pytest.approx(1.0, abs=1e-5)
    # A person's torso in this 1768x994 video is tens to a few hundred pixels.
    assert (10 < params["scale"][full]).all() and (params["scale"][full] < 500).all()
    assert np.allclose(norm.denormalize(normed, params), windows, rtol=1e-5, atol=1e-3)
    ds = WindowDataset(REAL_TRACK, COCO17, "2d+conf", length=64, stride=32)
    assert len(ds) == 7 and ds[6]["poses"].shape == (64, 17, 3)
