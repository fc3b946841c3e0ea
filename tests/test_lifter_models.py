"""The lifters' networks, losses and codec without training: shapes for any window length, the root at zero, the
mask token, the learned COCO -> Human3.6M joint mapping's start, exact flip equivariance of the flip test, the two
2D normalisation rules, windows and stitching, and the masking of masked pose modelling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posetok.codecs.lifting import (
    BOX_EXTENT,
    LiftingCodec,
    denormalize_2d,
    flip_poses,
    normalize_2d,
    stitch,
    window_frames,
    windows,
)
from posetok.data.h36m_cameras import normalize_screen
from posetok.errors import PosetokError
from posetok.models import lifter_losses as L
from posetok.models.lifter import LifterDims, build_lifter, root_joints
from posetok.models.lifter_layers import correspondence
from posetok.skeletons import COCO17, H36M17
from posetok.tasks.lifter.module import apply_masks

pytestmark = pytest.mark.usefixtures("one_thread")

ARCHS = ("transformer", "vit", "simplebaseline")


def tiny(arch: str, frames: int = 9, skeleton_in: str = "h36m17", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    dims = LifterDims(arch=arch, frames=frames, dim=16, depth=1, heads=2, hidden=32, blocks=1,
                      skeleton_in=skeleton_in, **kw)
    return build_lifter(dims).eval()


def inputs(b: int, t: int, k: int = 17, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, t, k, 3, generator=g) - 0.5
    x[..., 2] = 0.5 + 0.5 * torch.rand(b, t, k, generator=g)
    return x


@pytest.mark.parametrize("arch", ARCHS)
def test_any_window_length_root_relative_output(arch):
    model = tiny(arch, skeleton_in="coco17")
    for t in (1, 4, 9, 13):  # single frame, shorter, the trained window, longer (frame embedding interpolated)
        y = model(inputs(2, t))
        assert y.shape == (2, t, 17, 3)
        assert torch.all(y[..., 0, :] == 0)  # H36M-17's root joint is exactly 0 (subtracted in the network)
    # COCO out: the root is the hips' midpoint
    coco_out = build_lifter(LifterDims(arch=arch, frames=1, dim=16, depth=1, heads=2, hidden=32, blocks=1,
                                       skeleton_out="coco17")).eval()
    y = coco_out(inputs(2, 1))
    assert root_joints(COCO17) == (11, 12)
    torch.testing.assert_close((y[..., 11, :] + y[..., 12, :]) / 2, torch.zeros(2, 1, 3), atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_missing_joint_is_the_mask_token_whatever_its_coordinates(arch):
    model = tiny(arch)
    x = inputs(1, 9)
    x[0, 3, 5, 2] = 0.0  # confidence 0: not detected
    a = model(x)
    x[0, 3, 5, :2] = torch.tensor([7.0, -3.0])
    b = model(x)
    torch.testing.assert_close(a, b)
    x[0, 3, 5, 2] = 0.9  # now seen: its coordinates count
    assert not torch.allclose(model(x), a)
    # an explicit visibility overrides the confidence (3D inputs have none)
    v = torch.ones(1, 9, 17, dtype=torch.bool)
    v[0, 3, 5] = False
    torch.testing.assert_close(model(x, v), b)


def test_dual_stream_uses_time_and_single_frame_networks_do_not():
    temporal = tiny("transformer", frames=9)
    x = inputs(1, 9)
    y = temporal(x)
    x2 = x.clone()
    x2[0, 8] = inputs(1, 1, seed=5)[0, 0]  # change the last frame only
    assert not torch.allclose(temporal(x2)[0, 0], y[0, 0])  # the first frame's output sees it
    single = tiny("transformer", frames=1)
    assert not any("frame_pos" in k or ".ts." in k for k in single.state_dict())
    assert torch.allclose(single(x2)[0, 0], single(x)[0, 0])  # frame by frame


def test_joint_mapping_starts_from_the_named_correspondence():
    m = correspondence(COCO17, H36M17)
    assert m.shape == (17, 17) and np.allclose(m.sum(1), 1.0)
    names = COCO17.joint_names
    root = H36M17.joint_names.index("root")
    assert m[root, names.index("left_hip")] == m[root, names.index("right_hip")] == 0.5
    assert m[H36M17.joint_names.index("right_foot"), names.index("right_ankle")] == 1.0
    assert m[H36M17.joint_names.index("left_wrist"), names.index("left_wrist")] == 1.0
    assert np.array_equal(correspondence(H36M17, H36M17), np.eye(17, dtype=np.float32))
    model = tiny("transformer", skeleton_in="coco17")
    assert model.head.joint_map.shape == (17, 17)
    assert tiny("transformer").head.joint_map is None  # same skeleton: no mapping


@pytest.mark.parametrize("arch", ("transformer", "simplebaseline"))
def test_flip_test_is_exactly_mirror_equivariant(arch):
    codec = LiftingCodec(tiny(arch, skeleton_in="coco17"), flip_test=True, device="cpu")
    x = inputs(3, 9).numpy()
    flip_in = torch.from_numpy(COCO17.flip_index)
    flip_out = torch.from_numpy(H36M17.flip_index)
    y = codec.predict(x)
    y_mirror = codec.predict(flip_poses(torch.from_numpy(x), flip_in).numpy())
    np.testing.assert_allclose(flip_poses(torch.from_numpy(y), flip_out).numpy(), y_mirror, atol=1e-6)
    assert not np.allclose(codec.predict(x, flip=False), y)  # the plain prediction is not symmetric


def test_losses():
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(2, 5, 17, 3, generator=g)
    assert L.mpjpe(gt, gt) == 0
    assert float(L.n_mpjpe(1.3 * gt, gt)) < 1e-6  # protocol 3 forgives scale
    assert float(L.mpjpe(1.3 * gt, gt)) > 0.1
    shifted = gt + torch.tensor([0.1, 0.0, 0.0])
    assert float(L.velocity(shifted, gt)) < 1e-6  # a constant offset has no velocity error
    assert float(L.bone(shifted, gt, H36M17.limbs)) < 1e-6
    assert float(L.bone_time(gt[:, :1].expand(2, 5, 17, 3), H36M17.limbs)) == 0.0
    assert float(L.bone_time(gt, H36M17.limbs)) > 0
    pred = gt.clone()
    pred[0, 0, 0, 0] += 1.0
    valid = torch.ones(2, 5, 17, dtype=torch.bool)
    masked = torch.zeros_like(valid)
    assert float(L.recon(pred, gt, valid, masked)) == pytest.approx(1.0 / valid.numel())
    masked[0, 0, 0] = True  # the masked joint counts (1 + 2) times
    assert float(L.recon(pred, gt, valid, masked, 2.0)) == pytest.approx(3.0 / (valid.numel() + 2))
    out = L.lifting_losses(pred, gt, H36M17.limbs, {"mpjpe": 1.0, "velocity": 2.0})
    assert float(out["total"]) == pytest.approx(float(out["mpjpe"] + 2 * out["velocity"]))


def test_image_and_box_normalisation():
    rng = np.random.default_rng(0)
    poses = np.concatenate([rng.uniform(100, 600, (6, 17, 2)), rng.uniform(0.3, 1, (6, 17, 1))], -1)
    poses[2, 4, 2] = 0.0  # not detected
    poses[3, 5, :2] = np.nan  # not detected either: NaN
    poses[3, 5, 2] = 0.0
    mask = np.ones(6, bool)
    mask[5] = False  # no pose in this frame
    x, p = normalize_2d(poses, "image", (1000, 800), mask)
    np.testing.assert_allclose(x[0, :, :2], normalize_screen(poses[0, :, :2], 1000, 800), atol=1e-6)
    assert x[2, 4].tolist() == [0, 0, 0] and x[3, 5].tolist() == [0, 0, 0] and not x[5].any()
    np.testing.assert_allclose(denormalize_2d(x, p)[0, :, :2], poses[0, :, :2], atol=1e-3)
    x, p = normalize_2d(poses, "box", mask=mask)
    sides = [np.ptp(x[t, x[t, :, 2] > 0, :2], axis=0).max() for t in range(5)]
    assert np.median(sides) == pytest.approx(BOX_EXTENT, rel=1e-5)  # one scale per clip
    lo, hi = x[0, :, :2].min(0), x[0, :, :2].max(0)
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-6)  # each frame centred on its box
    np.testing.assert_allclose(denormalize_2d(x, p)[1, :, :2], poses[1, :, :2], atol=1e-3)
    x, _ = normalize_2d(poses, "box", mask=mask, per_frame=True)  # separate people: one scale each
    for t in range(5):
        assert np.ptp(x[t, x[t, :, 2] > 0, :2], axis=0).max() == pytest.approx(BOX_EXTENT, rel=1e-5)
    with pytest.raises(PosetokError, match="image size"):
        normalize_2d(poses, "image")


def test_windows_cover_every_frame_once():
    assert windows(10, 4).tolist() == [0, 4, 6] and windows(3, 4).tolist() == [0] and windows(8, 4).tolist() == [0, 4]
    assert window_frames(3, 4).tolist() == [[0, 1, 2, 2]]  # a short clip: its last frame repeated
    for length in (1, 5, 9, 23):
        idx = window_frames(length, 9)
        np.testing.assert_array_equal(stitch(idx[..., None], length)[:, 0], np.arange(length))


def test_masks():
    x = inputs(64, 20)
    vis = torch.ones(64, 20, 17, dtype=torch.bool)
    vis[0, 0, 0] = False
    g = torch.Generator().manual_seed(1)
    out, v, masked = apply_masks(x, vis, 0.2, 0.3, 0.0, g)
    assert not masked[0, 0, 0]  # an already missing joint is not "masked"
    assert torch.all(out[masked] == 0) and torch.equal(v, vis & ~masked)
    assert torch.equal(out[~masked], x[~masked])
    share = masked.float().mean().item()
    assert 0.40 < share < 0.48  # 1 - 0.7 * 0.8 = 0.44
    full = masked.all(-1).float().mean().item()
    assert 0.26 < full < 0.34
    again = apply_masks(x, vis, 0.2, 0.3, 0.0, torch.Generator().manual_seed(1))[2]
    assert torch.equal(again, masked)  # seeded: validation masks repeat
    noisy, _, m2 = apply_masks(x, vis, 0.0, 0.0, 0.01, g)
    assert not m2.any() and torch.equal(noisy[..., 2], x[..., 2])  # noise on x, y only
    assert 0.008 < (noisy[..., :2] - x[..., :2])[vis].std().item() < 0.012


def test_frames_without_a_pose_are_interpolated():
    from posetok.codecs.lifting import fill_missing_frames

    x = np.zeros((6, 2, 3), np.float32)
    x[1] = [[1.0, 2.0, 1.0], [5.0, 5.0, 1.0]]
    x[4] = [[4.0, 8.0, 1.0], [0.0, 0.0, 0.0]]  # the second joint is missing here
    out = fill_missing_frames(x)
    np.testing.assert_allclose(out[0], x[1])  # held before the first pose
    np.testing.assert_allclose(out[2, 0], [2.0, 4.0, 1.0])  # a third of the way from frame 1 to frame 4
    np.testing.assert_allclose(out[3, 0], [3.0, 6.0, 1.0])
    assert not out[2, 1].any()  # missing at one end: stays missing
    np.testing.assert_allclose(out[5], x[4])  # held after the last pose
    np.testing.assert_array_equal(out[[1, 4]], x[[1, 4]])  # frames with a pose are untouched
