"""posetok.viz.skeleton: draw_skeleton, save_reconstruction_grid and save_overlay."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from posetok.skeletons import COCO17, H36M17, MPII16
from posetok.viz import SIDE_COLORS
from posetok.viz.skeleton import draw_skeleton, save_overlay, save_reconstruction_grid

from .test_viz_common import assert_png, load_sample, noisy


@pytest.fixture(scope="module")
def sample():
    """First 6 poses of the bundled real sample: keypoints (6, 17, 3), boxes (6, 4), RGB images."""
    return load_sample()


# ---------------------------------------------------------------------------------------- draw_skeleton


def _axes() -> tuple[Figure, object]:
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def test_draw_skeleton_image_frame_and_sides(sample):
    kp = sample[0][0]
    fig, ax = _axes()
    artists = draw_skeleton(ax, kp, COCO17)
    assert ax.yaxis_inverted()
    assert ax.get_aspect() == 1.0
    colors = {tuple(np.round(a.get_edgecolor()[0][:3], 3)) for a in artists if hasattr(a, "get_segments")}
    expected = {tuple(np.round(to_rgb(c), 3)) for c in SIDE_COLORS.values()}
    assert colors == expected  # left, right and centre limbs, each in its own colour
    # Drawing a second pose keeps y down (no double flip).
    draw_skeleton(ax, kp, COCO17, color="k")
    assert ax.yaxis_inverted()
    fig.canvas.draw()


def test_draw_skeleton_skips_unlabelled_and_hides_occluded():
    kp = np.zeros((17, 3), dtype=np.float32)
    kp[:, 0], kp[:, 1] = np.arange(17) * 5.0, np.arange(17) * 3.0
    kp[:, 2] = 2
    kp[[0, 3]] = (0, 0, 0)  # unlabelled
    kp[[7, 9]] = (50, 50, 1)  # occluded
    kp[10, :2] = np.nan

    def points(artists) -> int:
        return sum(len(a.get_offsets()) for a in artists if not hasattr(a, "get_segments"))

    _, ax = _axes()
    assert points(draw_skeleton(ax, kp, COCO17)) == 17 - 3
    _, ax = _axes()
    assert points(draw_skeleton(ax, kp, COCO17, show_occluded=False)) == 17 - 5
    _, ax = _axes()
    assert points(draw_skeleton(ax, kp[:, :2], COCO17)) == 16  # (K, 2): all finite joints visible
    # Scores (COCO-WholeBody face/hand/foot values such as 0.087) are labelled joints: drawn, also without occluded.
    kp[[7, 9], 2] = (0.087, 1.37)
    _, ax = _axes()
    assert points(draw_skeleton(ax, kp, COCO17, show_occluded=False)) == 17 - 3


@pytest.mark.parametrize("skeleton", [MPII16, H36M17], ids=lambda s: s.name)
def test_draw_skeleton_other_layouts(skeleton):
    rng = np.random.default_rng(1)
    kp = np.concatenate(
        [rng.uniform(0, 100, (skeleton.num_joints, 2)), np.full((skeleton.num_joints, 1), 2)], 1
    )
    fig, ax = _axes()
    assert draw_skeleton(ax, kp, skeleton)
    fig.canvas.draw()


@pytest.mark.parametrize("shape", [(17,), (16, 3), (17, 4), (2, 17, 3)])
def test_draw_skeleton_bad_shape(shape):
    _, ax = _axes()
    with pytest.raises(ValueError, match="keypoints"):
        draw_skeleton(ax, np.zeros(shape), COCO17)


# ----------------------------------------------------------------------------- save_reconstruction_grid


def test_reconstruction_grid_with_images_and_boxes(sample, tmp_path):
    kp, boxes, images = sample
    out = tmp_path / "nested" / "dir" / "grid.png"
    ret = save_reconstruction_grid(out, kp, noisy(kp), COCO17, boxes=boxes, images=images, ncols=3)
    assert ret == out
    img = assert_png(out, min_bytes=50_000)
    assert img.shape[1] > img.shape[0] * 0.5  # 3 columns x 2 rows of tall cells


def test_reconstruction_grid_plain(sample, tmp_path):
    kp = sample[0]
    recon = np.concatenate([noisy(kp), kp[..., 2:]], axis=-1)  # (N, K, 3) reconstruction
    out = save_reconstruction_grid(
        tmp_path / "g.png", kp, recon, COCO17, titles=[f"pose {i}" for i in range(6)], max_items=4
    )
    assert_png(out)


def test_reconstruction_grid_max_items_and_mixed_images(sample, tmp_path):
    kp, _, images = sample
    wide = save_reconstruction_grid(tmp_path / "a" / "w.png", kp, noisy(kp), COCO17, ncols=6)
    few = save_reconstruction_grid(tmp_path / "b" / "f.png", kp, noisy(kp), COCO17, ncols=6, max_items=2)
    assert cv2.imread(str(few)).shape[1] < cv2.imread(str(wide)).shape[1]
    mixed = [images[0], None, None, images[3], None, None]
    assert_png(save_reconstruction_grid(tmp_path / "c" / "m.png", kp, noisy(kp), COCO17, images=mixed))


def test_reconstruction_grid_survives_unlabelled_pose(tmp_path):
    kp = np.zeros((2, 17, 3), dtype=np.float32)
    kp[0, :, :2] = np.random.default_rng(0).uniform(0, 100, (17, 2))
    kp[0, :, 2] = 2
    assert_png(save_reconstruction_grid(tmp_path / "g.png", kp, kp[..., :2], COCO17))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"originals": np.zeros((3, 17, 2))}, r"originals must have shape \(N, K, 3\)"),
        ({"originals": np.zeros((3, 16, 3))}, "16 joints"),
        ({"reconstructions": np.zeros((2, 17, 2))}, "reconstructions has 2 poses"),
        ({"reconstructions": np.zeros((3, 17, 4))}, "reconstructions must have shape"),
        ({"boxes": np.zeros((3, 3))}, r"boxes must have shape \(N, 4\)"),
        ({"boxes": np.zeros((3, 4))}, "positive width"),
        ({"images": [None, None]}, "images has 2 entries"),
        ({"images": [np.zeros((10, 10), np.uint8)] * 3}, r"images\[0\] must be an \(H, W, 3\) uint8"),
        ({"titles": ["a"]}, "titles has 1"),
        ({"ncols": 0}, "ncols"),
        ({"originals": np.zeros((0, 17, 3)), "reconstructions": np.zeros((0, 17, 2))}, "empty"),
    ],
)
def test_reconstruction_grid_bad_input(tmp_path, kwargs, match):
    args = {"originals": np.ones((3, 17, 3)), "reconstructions": np.ones((3, 17, 2))} | kwargs
    with pytest.raises(ValueError, match=match):
        save_reconstruction_grid(tmp_path / "g.png", skeleton=COCO17, **args)
    assert list(tmp_path.iterdir()) == []


def test_bad_path_leaves_nothing(sample, tmp_path):
    kp = sample[0]
    with pytest.raises(ValueError, match="extension"):
        save_reconstruction_grid(tmp_path / "grid", kp, kp, COCO17)
    with pytest.raises(ValueError):  # matplotlib has no encoder for the suffix: fails inside atomic_path
        save_reconstruction_grid(tmp_path / "grid.notaformat", kp, kp, COCO17)
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------------------------- save_overlay


def test_overlay_real_image(sample, tmp_path):
    kp, _, images = sample
    bgr = np.ascontiguousarray(images[2][..., ::-1])
    before = bgr.copy()
    out = save_overlay(tmp_path / "o" / "overlay.png", bgr, kp[2], COCO17, scale=2)
    img = assert_png(out)
    assert img.shape[:2] == (bgr.shape[0] * 2, bgr.shape[1] * 2)
    np.testing.assert_array_equal(bgr, before)  # input untouched
    assert not np.array_equal(cv2.resize(bgr, img.shape[1::-1]), img)


def _left_arm_pose() -> np.ndarray:
    kp = np.zeros((1, 17, 3), dtype=np.float32)
    kp[0, 5] = (20, 50, 2)  # left_shoulder
    kp[0, 7] = (80, 50, 2)  # left_elbow; (5, 7) is a left limb
    return kp


def test_overlay_colours_are_bgr(tmp_path):
    img = np.zeros((100, 100, 3), np.uint8)
    out = save_overlay(tmp_path / "o.png", img, _left_arm_pose(), COCO17, thickness=5)
    got = cv2.imread(str(out))
    r, g, b = (round(c * 255) for c in to_rgb(SIDE_COLORS["left"]))
    np.testing.assert_allclose(got[50, 50], (b, g, r), atol=2)  # limb midpoint, in the file's BGR order
    assert got[5, 5].tolist() == [0, 0, 0]


def test_overlay_rgb_input(tmp_path):
    red_rgb = np.zeros((100, 100, 3), np.uint8)
    red_rgb[..., 0] = 255
    out = save_overlay(tmp_path / "o.png", red_rgb, _left_arm_pose()[0], COCO17, rgb=True)
    assert cv2.imread(str(out))[5, 5].tolist() == [0, 0, 255]  # red, written as BGR


def test_overlay_multiple_people_and_occluded(sample, tmp_path):
    kp, _, images = sample
    people = np.stack([kp[0], kp[0] + (10, 5, 0)])
    people[1, :6, 2] = 1
    people[1, 6:8, 2] = 0
    assert_png(
        save_overlay(tmp_path / "o.png", np.ascontiguousarray(images[0]), people, COCO17, rgb=True)
    )


@pytest.mark.parametrize(
    "image, kp, kwargs, match",
    [
        (np.zeros((50, 50), np.uint8), np.zeros((17, 3)), {}, r"\(H, W, 3\) uint8"),
        (np.zeros((50, 50, 3), np.float32), np.zeros((17, 3)), {}, "uint8"),
        (np.zeros((50, 50, 3), np.uint8), np.zeros((3, 16, 3)), {}, "16 joints"),
        (np.zeros((50, 50, 3), np.uint8), np.zeros((17,)), {}, "keypoints must have shape"),
        (np.zeros((50, 50, 3), np.uint8), np.zeros((17, 3)), {"scale": 0}, "scale"),
    ],
)
def test_overlay_bad_input(tmp_path, image, kp, kwargs, match):
    with pytest.raises(ValueError, match=match):
        save_overlay(tmp_path / "o.png", image, kp, COCO17, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_overlay_unknown_suffix_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="cannot write"):
        save_overlay(
            tmp_path / "o.notaformat", np.zeros((20, 20, 3), np.uint8), np.zeros((17, 3)), COCO17
        )
    assert list(tmp_path.iterdir()) == []
