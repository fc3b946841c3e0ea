"""posetok.viz.animation: save_sequence_animation, GIF and MP4."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from posetok.errors import PosetokError
from posetok.skeletons import COCO17
from posetok.viz import SIDE_COLORS
from posetok.viz.animation import save_sequence_animation

from .test_viz_common import synthetic_sequence

# The animation's fixed layout: two 240 px panels side by side, 308 px tall with the header.
ANIM_SIZE = (480, 308)


def _gif_frames(path: Path) -> tuple[Image.Image, list[np.ndarray]]:
    im = Image.open(path)
    frames = []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB")))
    return im, frames


def _side_pixels(frame: np.ndarray, side: str = "left") -> int:
    """Pixels of an RGB frame within a small distance of one body-side colour."""
    rgb = np.array([round(c * 255) for c in to_rgb(SIDE_COLORS[side])])
    return int((np.abs(frame.astype(int) - rgb).sum(-1) < 40).sum())


def test_sequence_animation_gif_with_masked_frames(tmp_path):
    orig, recon = synthetic_sequence()
    mask = np.ones(12, bool)
    mask[[3, 4]] = False  # the tracker lost the person
    out = tmp_path / "anim" / "seq.gif"
    assert save_sequence_animation(out, orig, recon, COCO17, mask=mask, title="synthetic") == out
    assert sorted(p.name for p in out.parent.iterdir()) == ["seq.gif"], "temporary files left behind"
    im, frames = _gif_frames(out)
    assert (im.n_frames, im.size) == (12, ANIM_SIZE)
    assert im.info["duration"] == 40  # 25 fps
    assert _side_pixels(frames[0]) > 100 and _side_pixels(frames[0], "right") > 100
    assert _side_pixels(frames[3]) == 0 and _side_pixels(frames[4]) == 0  # "no pose": no skeleton drawn
    assert not np.array_equal(frames[0], frames[1])  # the pose moves


def test_sequence_animation_mp4(tmp_path):
    orig, recon = synthetic_sequence()
    out = save_sequence_animation(tmp_path / "seq.mp4", orig, recon, COCO17, fps=10)
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
    orig, recon = synthetic_sequence()
    orig[..., 0] += 150 * np.arange(12)[:, None]  # a sprinter: 1650 px in 12 frames, a pose is ~80 px wide
    recon[..., 0] += 150 * np.arange(12)[:, None]
    mask = np.ones(12, bool)
    mask[0] = False  # the first centre comes from the next valid frame
    auto = save_sequence_animation(tmp_path / "auto.gif", orig, recon, COCO17, mask=mask)
    fixed = save_sequence_animation(tmp_path / "fixed.gif", orig, recon, COCO17, mask=mask, follow=False)
    _, big = _gif_frames(auto)
    _, small = _gif_frames(fixed)
    # Followed, the person fills the panel; with the whole track in view it is a few pixels tall.
    assert _side_pixels(big[5]) > 4 * _side_pixels(small[5]) > 0
    assert _side_pixels(big[0]) == 0  # still no skeleton in a frame without a pose
    # Standing still (the sway is smaller than the pose), the view does not follow.
    still, _ = synthetic_sequence()
    a = save_sequence_animation(tmp_path / "a.gif", still, still, COCO17, max_frames=2)
    b = save_sequence_animation(tmp_path / "b.gif", still, still, COCO17, max_frames=2, follow=False)
    assert a.read_bytes() == b.read_bytes()


def test_sequence_animation_3d_draws_the_xy_projection(tmp_path):
    orig3, recon3 = synthetic_sequence(channels=3)
    a = save_sequence_animation(tmp_path / "a" / "xyz.gif", orig3, recon3, COCO17, max_frames=3)
    b = save_sequence_animation(tmp_path / "b" / "xy.gif", orig3[..., :2], recon3[..., :2], COCO17, max_frames=3)
    assert a.read_bytes() == b.read_bytes()  # z plays no part


def test_sequence_animation_max_frames_and_confidence(tmp_path):
    orig, recon = synthetic_sequence()
    conf = np.ones((12, 17, 1), np.float32)
    conf[:, 11:] = 0.0  # legs undetected
    orig_c = np.concatenate([orig, conf], -1)
    out = save_sequence_animation(tmp_path / "s.gif", orig_c, recon, COCO17, max_frames=4, min_conf=0.3)
    im, frames = _gif_frames(out)
    assert (im.n_frames, im.size) == (4, ANIM_SIZE)
    assert im.info["duration"] == 120  # 12 frames in 4: the clip keeps its 0.48 s
    # The left panel shows only the upper body: nothing below the hips (y = 140 of 40..240).
    full = save_sequence_animation(tmp_path / "f.gif", orig, recon, COCO17, max_frames=4)
    left_panel = slice(0, ANIM_SIZE[0] // 2)
    legs = slice(ANIM_SIZE[1] // 2 + 60, ANIM_SIZE[1])
    assert _side_pixels(frames[0][legs, left_panel]) == 0
    assert _side_pixels(_gif_frames(full)[1][0][legs, left_panel]) > 0


@pytest.mark.parametrize("name", ["seq.png", "seq", "seq.avi"])
def test_sequence_animation_bad_suffix(tmp_path, name):
    orig, recon = synthetic_sequence(3)
    path = tmp_path / name
    with pytest.raises(PosetokError, match=re.escape(str(path))) as info:
        save_sequence_animation(path, orig, recon, COCO17)
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
    orig, recon = synthetic_sequence(3)
    args = {"original": orig, "recon": recon} | kwargs
    with pytest.raises(ValueError, match=match):
        save_sequence_animation(tmp_path / "s.gif", skeleton=COCO17, **args)
    assert list(tmp_path.iterdir()) == []

