"""posetok.viz: every picture is a real, non-blank file written atomically; bad input is a clear one-line error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image

from posetok import viz
from posetok.errors import PosetokError
from posetok.skeletons import COCO17, H36M17, MPII16

SAMPLE = Path(__file__).resolve().parents[1] / "posetok" / "assets" / "real_sample"


@pytest.fixture(scope="module")
def sample():
    """First 6 poses of the bundled real sample: keypoints (6, 17, 3), boxes (6, 4), RGB images."""
    d = json.loads((SAMPLE / "coco17_sports2d.json").read_text())
    files = {im["id"]: im["file_name"] for im in d["images"]}
    anns = d["annotations"][:6]
    kp = np.array([a["keypoints"] for a in anns], dtype=np.float32).reshape(-1, 17, 3)
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float32)
    images = [cv2.imread(str(SAMPLE / "images" / files[a["image_id"]]))[..., ::-1] for a in anns]
    return kp, boxes, images


def assert_png(path: Path, min_bytes: int = 5000) -> np.ndarray:
    """``path`` is the only file in its folder, a decodable PNG of non-trivial size, not one flat colour."""
    assert path.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "temporary files left behind"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > min_bytes
    img = cv2.imread(str(path))
    assert img is not None and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[0] > 50 and img.shape[1] > 50
    assert img.reshape(-1, 3).std(axis=0).max() > 10, "image is (nearly) one colour"
    return img


def noisy(kp: np.ndarray, sigma: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (kp[..., :2] + rng.normal(0, sigma, kp[..., :2].shape)).astype(np.float32)


# ---------------------------------------------------------------------------------------- draw_skeleton


def _axes() -> tuple[Figure, object]:
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def test_draw_skeleton_image_frame_and_sides(sample):
    kp = sample[0][0]
    fig, ax = _axes()
    artists = viz.draw_skeleton(ax, kp, COCO17)
    assert ax.yaxis_inverted()
    assert ax.get_aspect() == 1.0
    colors = {tuple(np.round(a.get_edgecolor()[0][:3], 3)) for a in artists if hasattr(a, "get_segments")}
    expected = {tuple(np.round(to_rgb(c), 3)) for c in viz.SIDE_COLORS.values()}
    assert colors == expected  # left, right and centre limbs, each in its own colour
    # Drawing a second pose keeps y down (no double flip).
    viz.draw_skeleton(ax, kp, COCO17, color="k")
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
    assert points(viz.draw_skeleton(ax, kp, COCO17)) == 17 - 3
    _, ax = _axes()
    assert points(viz.draw_skeleton(ax, kp, COCO17, show_occluded=False)) == 17 - 5
    _, ax = _axes()
    assert points(viz.draw_skeleton(ax, kp[:, :2], COCO17)) == 16  # (K, 2): all finite joints visible


@pytest.mark.parametrize("skeleton", [MPII16, H36M17], ids=lambda s: s.name)
def test_draw_skeleton_other_layouts(skeleton):
    rng = np.random.default_rng(1)
    kp = np.concatenate(
        [rng.uniform(0, 100, (skeleton.num_joints, 2)), np.full((skeleton.num_joints, 1), 2)], 1
    )
    fig, ax = _axes()
    assert viz.draw_skeleton(ax, kp, skeleton)
    fig.canvas.draw()


@pytest.mark.parametrize("shape", [(17,), (16, 3), (17, 4), (2, 17, 3)])
def test_draw_skeleton_bad_shape(shape):
    _, ax = _axes()
    with pytest.raises(ValueError, match="keypoints"):
        viz.draw_skeleton(ax, np.zeros(shape), COCO17)


# ----------------------------------------------------------------------------- save_reconstruction_grid


def test_reconstruction_grid_with_images_and_boxes(sample, tmp_path):
    kp, boxes, images = sample
    out = tmp_path / "nested" / "dir" / "grid.png"
    ret = viz.save_reconstruction_grid(out, kp, noisy(kp), COCO17, boxes=boxes, images=images, ncols=3)
    assert ret == out
    img = assert_png(out, min_bytes=50_000)
    assert img.shape[1] > img.shape[0] * 0.5  # 3 columns x 2 rows of tall cells


def test_reconstruction_grid_plain(sample, tmp_path):
    kp = sample[0]
    recon = np.concatenate([noisy(kp), kp[..., 2:]], axis=-1)  # (N, K, 3) reconstruction
    out = viz.save_reconstruction_grid(
        tmp_path / "g.png", kp, recon, COCO17, titles=[f"pose {i}" for i in range(6)], max_items=4
    )
    assert_png(out)


def test_reconstruction_grid_max_items_and_mixed_images(sample, tmp_path):
    kp, _, images = sample
    wide = viz.save_reconstruction_grid(tmp_path / "a" / "w.png", kp, noisy(kp), COCO17, ncols=6)
    few = viz.save_reconstruction_grid(tmp_path / "b" / "f.png", kp, noisy(kp), COCO17, ncols=6, max_items=2)
    assert cv2.imread(str(few)).shape[1] < cv2.imread(str(wide)).shape[1]
    mixed = [images[0], None, None, images[3], None, None]
    assert_png(viz.save_reconstruction_grid(tmp_path / "c" / "m.png", kp, noisy(kp), COCO17, images=mixed))


def test_reconstruction_grid_survives_unlabelled_pose(tmp_path):
    kp = np.zeros((2, 17, 3), dtype=np.float32)
    kp[0, :, :2] = np.random.default_rng(0).uniform(0, 100, (17, 2))
    kp[0, :, 2] = 2
    assert_png(viz.save_reconstruction_grid(tmp_path / "g.png", kp, kp[..., :2], COCO17))


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
        viz.save_reconstruction_grid(tmp_path / "g.png", skeleton=COCO17, **args)
    assert list(tmp_path.iterdir()) == []


def test_bad_path_leaves_nothing(sample, tmp_path):
    kp = sample[0]
    with pytest.raises(ValueError, match="extension"):
        viz.save_reconstruction_grid(tmp_path / "grid", kp, kp, COCO17)
    with pytest.raises(ValueError):  # matplotlib has no encoder for the suffix: fails inside atomic_path
        viz.save_reconstruction_grid(tmp_path / "grid.notaformat", kp, kp, COCO17)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- save_codebook_usage


def _skewed_tokens(n: int, m: int, v: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, v + 1) ** 1.2
    return rng.choice(v, size=(n, m), p=p / p.sum())


def test_codebook_usage_heatmap(tmp_path):
    tokens = _skewed_tokens(300, 16, 128)
    tokens[:, 5] = 3  # a collapsed position
    out = viz.save_codebook_usage(tmp_path / "cb.png", tokens, 256, title="test tokenizer")
    assert out == tmp_path / "cb.png"
    assert_png(out, min_bytes=20_000)


def test_codebook_usage_bar_chart_for_large_codebooks(tmp_path):
    out = viz.save_codebook_usage(tmp_path / "cb.png", _skewed_tokens(200, 34, 4096), 4096)
    assert_png(out, min_bytes=20_000)


def test_codebook_usage_single_code(tmp_path):
    assert_png(viz.save_codebook_usage(tmp_path / "cb.png", np.zeros((5, 3), np.int64), 8))


@pytest.mark.parametrize(
    "tokens, v, match",
    [
        (np.zeros(10, np.int64), 8, r"\(N, M\)"),
        (np.full((2, 3), 8), 8, r"\[0, 8\)"),
        (np.zeros((0, 3), np.int64), 8, "empty"),
        (np.zeros((2, 3)) + 0.5, 8, "integer"),
    ],
)
def test_codebook_usage_bad_input(tmp_path, tokens, v, match):
    with pytest.raises(ValueError, match=match):
        viz.save_codebook_usage(tmp_path / "cb.png", tokens, v)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------- save_error_per_joint


def test_error_per_joint(sample, tmp_path):
    kp = sample[0]
    err = np.linalg.norm(kp[..., :2] - noisy(kp), axis=-1)
    err[:3, 4] = np.nan  # evaluated in 3 of 6 poses
    err[:, 16] = np.nan  # never evaluated
    out = viz.save_error_per_joint(tmp_path / "e" / "err.png", err, COCO17, unit="px")
    img = assert_png(out, min_bytes=20_000)
    assert img.shape[0] > 17 * 20  # one readable row per joint


@pytest.mark.parametrize(
    "errors, match",
    [
        (np.zeros((4, 16)), "K = 17"),
        (np.zeros(17), r"\(N, K\)"),
        (np.full((4, 17), np.nan), "no value"),
        (np.full((4, 17), np.inf), "inf"),
    ],
)
def test_error_per_joint_bad_input(tmp_path, errors, match):
    with pytest.raises(ValueError, match=match):
        viz.save_error_per_joint(tmp_path / "err.png", errors, COCO17)
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------------------------- save_overlay


def test_overlay_real_image(sample, tmp_path):
    kp, _, images = sample
    bgr = np.ascontiguousarray(images[2][..., ::-1])
    before = bgr.copy()
    out = viz.save_overlay(tmp_path / "o" / "overlay.png", bgr, kp[2], COCO17, scale=2)
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
    out = viz.save_overlay(tmp_path / "o.png", img, _left_arm_pose(), COCO17, thickness=5)
    got = cv2.imread(str(out))
    r, g, b = (round(c * 255) for c in to_rgb(viz.SIDE_COLORS["left"]))
    np.testing.assert_allclose(got[50, 50], (b, g, r), atol=2)  # limb midpoint, in the file's BGR order
    assert got[5, 5].tolist() == [0, 0, 0]


def test_overlay_rgb_input(tmp_path):
    red_rgb = np.zeros((100, 100, 3), np.uint8)
    red_rgb[..., 0] = 255
    out = viz.save_overlay(tmp_path / "o.png", red_rgb, _left_arm_pose()[0], COCO17, rgb=True)
    assert cv2.imread(str(out))[5, 5].tolist() == [0, 0, 255]  # red, written as BGR


def test_overlay_multiple_people_and_occluded(sample, tmp_path):
    kp, _, images = sample
    people = np.stack([kp[0], kp[0] + (10, 5, 0)])
    people[1, :6, 2] = 1
    people[1, 6:8, 2] = 0
    assert_png(
        viz.save_overlay(tmp_path / "o.png", np.ascontiguousarray(images[0]), people, COCO17, rgb=True)
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
        viz.save_overlay(tmp_path / "o.png", image, kp, COCO17, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_overlay_unknown_suffix_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="cannot write"):
        viz.save_overlay(
            tmp_path / "o.notaformat", np.zeros((20, 20, 3), np.uint8), np.zeros((17, 3)), COCO17
        )
    assert list(tmp_path.iterdir()) == []


def test_importing_viz_leaves_pyplot_alone():
    # Figures are plain Figure objects: importing viz must not load pyplot (which picks a GUI backend).
    code = "import sys, posetok.viz; print('matplotlib.pyplot' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# ----------------------------------------------------------------------------- save_sequence_animation

# The animation's fixed layout: two 240 px panels side by side, 308 px tall with the header.
ANIM_SIZE = (480, 308)
# A standing COCO-17 person facing the camera (its left on the image's right), in image pixels.
STANDING = np.array(
    [[100, 40], [106, 34], [94, 34], [114, 38], [86, 38], [125, 70], [75, 70], [135, 105], [65, 105],
     [140, 140], [60, 140], [118, 140], [82, 140], [120, 190], [80, 190], [122, 240], [78, 240]],
    dtype=np.float32,
)  # fmt: skip


def _sequence(t: int = 12, channels: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(t, 17, channels)`` original (the standing pose swaying sideways) and a slightly off reconstruction."""
    sway = 15 * np.sin(np.arange(t) / 2.0)
    orig = np.repeat(STANDING[None], t, axis=0)
    orig[..., 0] += sway[:, None]
    recon = orig + np.random.default_rng(0).normal(0, 2, orig.shape).astype(np.float32)
    if channels == 3:
        depth = np.linspace(3.0, 4.0, t * 17, dtype=np.float32).reshape(t, 17, 1)  # z in metres: ignored
        orig, recon = np.concatenate([orig, depth], -1), np.concatenate([recon, depth + 0.1], -1)
    return orig, recon


def _gif_frames(path: Path) -> tuple[Image.Image, list[np.ndarray]]:
    im = Image.open(path)
    frames = []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB")))
    return im, frames


def _side_pixels(frame: np.ndarray, side: str = "left") -> int:
    """Pixels of an RGB frame within a small distance of one body-side colour."""
    rgb = np.array([round(c * 255) for c in to_rgb(viz.SIDE_COLORS[side])])
    return int((np.abs(frame.astype(int) - rgb).sum(-1) < 40).sum())


def test_sequence_animation_gif_with_masked_frames(tmp_path):
    orig, recon = _sequence()
    mask = np.ones(12, bool)
    mask[[3, 4]] = False  # the tracker lost the person
    out = tmp_path / "anim" / "seq.gif"
    assert viz.save_sequence_animation(out, orig, recon, COCO17, mask=mask, title="synthetic") == out
    assert sorted(p.name for p in out.parent.iterdir()) == ["seq.gif"], "temporary files left behind"
    im, frames = _gif_frames(out)
    assert (im.n_frames, im.size) == (12, ANIM_SIZE)
    assert im.info["duration"] == 40  # 25 fps
    assert _side_pixels(frames[0]) > 100 and _side_pixels(frames[0], "right") > 100
    assert _side_pixels(frames[3]) == 0 and _side_pixels(frames[4]) == 0  # "no pose": no skeleton drawn
    assert not np.array_equal(frames[0], frames[1])  # the pose moves


def test_sequence_animation_mp4(tmp_path):
    orig, recon = _sequence()
    out = viz.save_sequence_animation(tmp_path / "seq.mp4", orig, recon, COCO17, fps=10)
    cap = cv2.VideoCapture(str(out))
    try:
        assert cap.isOpened()
        got = (cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FRAME_WIDTH),
               cap.get(cv2.CAP_PROP_FRAME_HEIGHT), cap.get(cv2.CAP_PROP_FPS))  # fmt: skip
        assert got == (12, *ANIM_SIZE, 10)
        ok, frame = cap.read()
        assert ok and frame.shape == (ANIM_SIZE[1], ANIM_SIZE[0], 3)
        assert _side_pixels(frame[..., ::-1]) > 100  # BGR in the file
    finally:
        cap.release()


def test_sequence_animation_follows_a_person_who_crosses_the_image(tmp_path):
    orig, recon = _sequence()
    orig[..., 0] += 150 * np.arange(12)[:, None]  # a sprinter: 1650 px in 12 frames, a pose is ~80 px wide
    recon[..., 0] += 150 * np.arange(12)[:, None]
    mask = np.ones(12, bool)
    mask[0] = False  # the first centre comes from the next valid frame
    auto = viz.save_sequence_animation(tmp_path / "auto.gif", orig, recon, COCO17, mask=mask)
    fixed = viz.save_sequence_animation(tmp_path / "fixed.gif", orig, recon, COCO17, mask=mask, follow=False)
    _, big = _gif_frames(auto)
    _, small = _gif_frames(fixed)
    # Followed, the person fills the panel; with the whole track in view it is a few pixels tall.
    assert _side_pixels(big[5]) > 4 * _side_pixels(small[5]) > 0
    assert _side_pixels(big[0]) == 0  # still no skeleton in a frame without a pose
    # Standing still (the sway is smaller than the pose), the view does not follow.
    still, _ = _sequence()
    a = viz.save_sequence_animation(tmp_path / "a.gif", still, still, COCO17, max_frames=2)
    b = viz.save_sequence_animation(tmp_path / "b.gif", still, still, COCO17, max_frames=2, follow=False)
    assert a.read_bytes() == b.read_bytes()


def test_sequence_animation_3d_draws_the_xy_projection(tmp_path):
    orig3, recon3 = _sequence(channels=3)
    a = viz.save_sequence_animation(tmp_path / "a" / "xyz.gif", orig3, recon3, COCO17, max_frames=3)
    b = viz.save_sequence_animation(tmp_path / "b" / "xy.gif", orig3[..., :2], recon3[..., :2], COCO17, max_frames=3)
    assert a.read_bytes() == b.read_bytes()  # z plays no part


def test_sequence_animation_max_frames_and_confidence(tmp_path):
    orig, recon = _sequence()
    conf = np.ones((12, 17, 1), np.float32)
    conf[:, 11:] = 0.0  # legs undetected
    orig_c = np.concatenate([orig, conf], -1)
    out = viz.save_sequence_animation(tmp_path / "s.gif", orig_c, recon, COCO17, max_frames=4, min_conf=0.3)
    im, frames = _gif_frames(out)
    assert (im.n_frames, im.size) == (4, ANIM_SIZE)
    assert im.info["duration"] == 120  # 12 frames in 4: the clip keeps its 0.48 s
    # The left panel shows only the upper body: nothing below the hips (y = 140 of 40..240).
    full = viz.save_sequence_animation(tmp_path / "f.gif", orig, recon, COCO17, max_frames=4)
    left_panel = slice(0, ANIM_SIZE[0] // 2)
    legs = slice(ANIM_SIZE[1] // 2 + 60, ANIM_SIZE[1])
    assert _side_pixels(frames[0][legs, left_panel]) == 0
    assert _side_pixels(_gif_frames(full)[1][0][legs, left_panel]) > 0


@pytest.mark.parametrize("name", ["seq.png", "seq", "seq.avi"])
def test_sequence_animation_bad_suffix(tmp_path, name):
    orig, recon = _sequence(3)
    path = tmp_path / name
    with pytest.raises(PosetokError, match=re.escape(str(path))) as info:
        viz.save_sequence_animation(path, orig, recon, COCO17)
    assert ".gif, .mp4" in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"recon": np.zeros((4, 17, 2))}, "recon has 4 frames"),
        ({"original": np.zeros((3, 16, 2))}, "16 joints"),
        ({"original": np.zeros((3, 17, 1))}, r"\(T, K, C\)"),
        ({"mask": np.ones(4, bool)}, r"mask must have shape \(T,\)"),
        ({"max_frames": 0}, "max_frames"),
        ({"fps": 0}, "fps"),
    ],
)
def test_sequence_animation_bad_input(tmp_path, kwargs, match):
    orig, recon = _sequence(3)
    args = {"original": orig, "recon": recon} | kwargs
    with pytest.raises(ValueError, match=match):
        viz.save_sequence_animation(tmp_path / "s.gif", skeleton=COCO17, **args)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- save_codebook_usage_per_quantizer


def test_codebook_usage_per_quantizer(tmp_path):
    tokens = _skewed_tokens(6 * 5 * 2, 3, 64).reshape(6, 5, 2, 3)  # (W, T', G, Q)
    tokens[0] = -1  # a masked window
    tokens[..., 2] %= 4  # a nearly collapsed quantizer
    out = viz.save_codebook_usage_per_quantizer(tmp_path / "q" / "cbq.png", tokens, 64, names=["q1", "q2", "q3"])
    assert_png(out, min_bytes=20_000)
    three = mpimg.imread(out)
    one = mpimg.imread(viz.save_codebook_usage_per_quantizer(tmp_path / "one.png", tokens[..., :1], 64))
    assert three.shape[1] == one.shape[1] and three.shape[0] > 2 * one.shape[0]  # one panel per quantizer


def test_codebook_usage_per_quantizer_empty_quantizer(tmp_path):
    tokens = np.zeros((4, 2), np.int64)
    tokens[:, 1] = -1  # the second quantizer was dropped everywhere: drawn as "no tokens"
    assert_png(viz.save_codebook_usage_per_quantizer(tmp_path / "cbq.png", tokens, 8))


@pytest.mark.parametrize(
    "tokens, match",
    [
        (np.full((2, 3), 8), r"\[0, 8\)"),
        (np.full((2, 3), -2), "min -2"),
        (np.zeros((0, 3), np.int64), "empty"),
        (np.full((2, 3), -1), "no token"),
        (np.zeros((2, 3)) + 0.5, "integer"),
    ],
)
def test_codebook_usage_per_quantizer_bad_tokens(tmp_path, tokens, match):
    path = tmp_path / "cbq.png"
    with pytest.raises(PosetokError, match=match) as info:
        viz.save_codebook_usage_per_quantizer(path, tokens, 8)
    assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_codebook_usage_per_quantizer_bad_names(tmp_path):
    with pytest.raises(ValueError, match="names has 1"):
        viz.save_codebook_usage_per_quantizer(tmp_path / "cbq.png", np.zeros((4, 2), np.int64), 8, names=["a"])


# ------------------------------------------------------------------------------------ save_rate_distortion

RD_ROWS = [
    {"num_quantizers": q, "mpjpe": e, "compression_ratio": r}
    for q, e, r in [(3, 3.9, 36.3), (1, 9.1, 108.8), (2, 5.2, 54.4), (4, 3.2, 27.2)]
]


@pytest.mark.parametrize("reference", [None, 4.0])
def test_rate_distortion(tmp_path, reference):
    out = viz.save_rate_distortion(tmp_path / "rd" / "rd.png", RD_ROWS, unit="px", reference=reference)
    assert_png(out)
    assert mpimg.imread(out).shape[2] in (3, 4)


def test_rate_distortion_reference_line_is_drawn(tmp_path):
    plain = mpimg.imread(viz.save_rate_distortion(tmp_path / "a.png", RD_ROWS))
    ref = mpimg.imread(viz.save_rate_distortion(tmp_path / "b.png", RD_ROWS, reference=4.0, reference_label="3%"))
    def reddish(img: np.ndarray) -> int:
        # The dashed line is thin and antialiased, so count clearly red pixels rather than exact matches.
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        return int(((r > 0.75) & (g < 0.5) & (b < 0.5)).sum())

    assert reddish(plain) == 0 and reddish(ref) > 100


@pytest.mark.parametrize(
    "rows, kwargs, match",
    [
        ([], {}, "empty"),
        ([{"num_quantizers": 1, "mpjpe": 2.0}], {}, "lacks compression_ratio"),
        ([{"num_quantizers": 0, "mpjpe": 2.0, "compression_ratio": 3.0}], {}, "num_quantizers"),
        ([{"num_quantizers": 1, "mpjpe": np.nan, "compression_ratio": 3.0}], {}, "mpjpe"),
        (RD_ROWS + RD_ROWS[:1], {}, "repeat"),
        (RD_ROWS, {"reference": -1.0}, "reference"),
    ],
)
def test_rate_distortion_bad_input(tmp_path, rows, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.save_rate_distortion(tmp_path / "rd.png", rows, **kwargs)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ save_error_per_joint, sequences


def test_error_per_joint_accepts_sequence_errors(tmp_path):
    orig, recon = _sequence(6)
    err = np.linalg.norm(orig - recon, axis=-1)  # (T, K)
    err[2:4] = np.nan  # masked-out frames are not scored
    windows = np.stack([err, err])  # (W, T, K): pooled over windows and frames
    a = viz.save_error_per_joint(tmp_path / "a" / "e.png", windows, COCO17, unit="norm")
    b = viz.save_error_per_joint(tmp_path / "b" / "e.png", windows.reshape(-1, 17), COCO17, unit="norm")
    assert_png(a, min_bytes=20_000)
    assert a.read_bytes() == b.read_bytes()
