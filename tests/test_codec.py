import numpy as np
import pytest
import torch

import posetok
from posetok.codecs.crop import box_to_center_scale, boxes_from_keypoints, from_crop, to_crop
from posetok.data.coco import load_coco_keypoints
from posetok.errors import PosetokError

from .conftest import REAL_SAMPLE


@pytest.fixture(scope="module")
def tok(tiny_ckpt):
    return posetok.load(tiny_ckpt)


@pytest.fixture(scope="module")
def real():
    return load_coco_keypoints(REAL_SAMPLE)


def test_crop_frame_aspect_and_padding():
    center, size = box_to_center_scale(np.array([[10, 20, 30, 90]], np.float32), aspect_ratio=0.75)
    np.testing.assert_allclose(center, [[25, 65]])
    np.testing.assert_allclose(size, [[90 * 0.75 * 1.25, 90 * 1.25]])  # widened to 3:4, then padded
    center, size = box_to_center_scale(np.array([[0, 0, 200, 100]], np.float32), aspect_ratio=1.0, padding=1.0)
    np.testing.assert_allclose(size, [[200, 200]])
    xy = np.random.default_rng(0).uniform(0, 300, (4, 17, 2)).astype(np.float32)
    c, s = box_to_center_scale(np.array([[5, 5, 100, 200]] * 4, np.float32), 0.75)
    np.testing.assert_allclose(from_crop(to_crop(xy, c, s), c, s), xy, rtol=1e-5, atol=1e-3)


def test_boxes_from_keypoints_uses_labelled_joints_only():
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :3] = [[10, 20, 2], [30, 5, 1], [20, 40, 2]]
    kp[0, 3] = [500, 500, 0]
    np.testing.assert_allclose(boxes_from_keypoints(kp), [[10, 5, 20, 35]])


def test_encode_decode_types_and_shapes(tok, real):
    kp, bx = real.keypoints[:10], real.boxes[:10]
    tokens = tok.encode(kp, bx)
    assert isinstance(tokens, np.ndarray) and tokens.dtype == np.int64 and tokens.shape == (10, tok.num_tokens)
    poses = tok.decode(tokens, bx)
    assert isinstance(poses, np.ndarray) and poses.dtype == np.float32 and poses.shape == (10, 17, 2)
    t_tokens = tok.encode(torch.from_numpy(kp), torch.from_numpy(bx))
    assert isinstance(t_tokens, torch.Tensor) and torch.equal(t_tokens, torch.from_numpy(tokens))
    t_poses = tok.decode(t_tokens, torch.from_numpy(bx))
    assert isinstance(t_poses, torch.Tensor) and t_poses.dtype == torch.float32
    np.testing.assert_allclose(t_poses.numpy(), poses)
    np.testing.assert_allclose(tok.reconstruct(kp, bx), poses)


def test_tokens_invariant_to_shifting_and_scaling_pose_with_box(tok, real):
    kp, bx = real.keypoints[:20].copy(), real.boxes[:20].copy()
    tokens = tok.encode(kp, bx)
    s, shift = 2.5, np.array([300.0, -40.0], np.float32)
    kp2 = kp.copy()
    kp2[..., :2] = kp[..., :2] * s + shift
    bx2 = np.concatenate([bx[:, :2] * s + shift, bx[:, 2:] * s], 1)
    assert np.array_equal(tok.encode(kp2, bx2), tokens)
    np.testing.assert_allclose(tok.decode(tokens, bx2), tok.decode(tokens, bx) * s + shift, rtol=1e-4, atol=1e-2)


def test_without_boxes_the_box_comes_from_the_keypoints(tok, real):
    kp = real.keypoints[:8]
    assert np.array_equal(tok.encode(kp), tok.encode(kp, boxes_from_keypoints(kp)))
    two = tok.encode(kp[..., :2])  # (N, K, 2): every joint visible
    assert two.shape == (8, tok.num_tokens)


def test_batch_equals_items_one_by_one(tok, real):
    kp, bx = real.keypoints[:25], real.boxes[:25]
    batch = tok.encode(kp, bx)
    single = np.concatenate([tok.encode(kp[i:i + 1], bx[i:i + 1]) for i in range(25)])
    assert np.array_equal(batch, single)


def test_round_trip_reconstructs_real_poses(tok, real):
    recon = tok.reconstruct(real.keypoints, real.boxes)
    err = np.linalg.norm(recon - real.keypoints[..., :2], axis=-1)[real.keypoints[..., 2] > 0]
    person = real.boxes[:, 3].mean()
    assert err.mean() < 0.08 * person  # 300 steps of pct_small already land within 8 % of the box height
    again = tok.decode(tok.encode(real.keypoints, real.boxes), real.boxes)
    np.testing.assert_array_equal(again, recon)


def test_codec_rejects_bad_input(tok, real):
    with pytest.raises(PosetokError, match="has 17 joints, got 16"):
        tok.encode(np.zeros((2, 16, 3), np.float32) + 1)
    bad = real.keypoints[:2].copy()
    bad[0, 3, 0] = np.nan
    with pytest.raises(PosetokError, match="NaN or infinite"):
        tok.encode(bad, real.boxes[:2])
    with pytest.raises(PosetokError, match=r"tokens: ids must lie in \[0, "):
        tok.decode(np.full((1, tok.num_tokens), tok.codebook_size), real.boxes[:1])
    with pytest.raises(PosetokError, match="expected 3 boxes for 3 token rows"):
        tok.decode(np.zeros((3, tok.num_tokens), np.int64), real.boxes[:2])
    empty = np.zeros((1, 17, 3), np.float32)
    with pytest.raises(PosetokError, match="no labelled joint"):
        tok.encode(empty)
