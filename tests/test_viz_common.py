"""posetok.viz as a package: what its test modules share, its re-exports, and no pyplot on import.

The picture tests live in one module per subject: ``test_viz_skeleton.py``, ``test_viz_codebook.py``,
``test_viz_animation.py`` and ``test_viz_charts.py``; every picture is a real, non-blank file written atomically
and bad input is a clear one-line error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

import posetok.viz
from posetok.viz import animation, charts, codebook, skeleton

SAMPLE = Path(__file__).resolve().parents[1] / "posetok" / "assets" / "real_sample"


def load_sample() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
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


# A standing COCO-17 person facing the camera (its left on the image's right), in image pixels.
STANDING = np.array(
    [[100, 40], [106, 34], [94, 34], [114, 38], [86, 38], [125, 70], [75, 70], [135, 105], [65, 105],
     [140, 140], [60, 140], [118, 140], [82, 140], [120, 190], [80, 190], [122, 240], [78, 240]],
    dtype=np.float32,
)  # fmt: skip


def synthetic_sequence(t: int = 12, channels: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(t, 17, channels)`` original (the standing pose swaying sideways) and a slightly off reconstruction."""
    sway = 15 * np.sin(np.arange(t) / 2.0)
    orig = np.repeat(STANDING[None], t, axis=0)
    orig[..., 0] += sway[:, None]
    recon = orig + np.random.default_rng(0).normal(0, 2, orig.shape).astype(np.float32)
    if channels == 3:
        depth = np.linspace(3.0, 4.0, t * 17, dtype=np.float32).reshape(t, 17, 1)  # z in metres: ignored
        orig, recon = np.concatenate([orig, depth], -1), np.concatenate([recon, depth + 0.1], -1)
    return orig, recon


def test_importing_viz_leaves_pyplot_alone():
    # Figures are plain Figure objects: importing viz must not load pyplot (which picks a GUI backend).
    code = "import sys, posetok.viz; print('matplotlib.pyplot' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_package_reexports_every_public_name():
    # The names of the single-module posetok.viz that came before the package; callers import them from here.
    assert sorted(posetok.viz.__all__) == [
        "SIDE_COLORS", "draw_skeleton", "save_codebook_usage", "save_codebook_usage_per_quantizer",
        "save_error_per_joint", "save_overlay", "save_rate_distortion", "save_reconstruction_grid",
        "save_sequence_animation", "save_training_curve",
    ]  # fmt: skip
    homes = {m.__name__: m for m in (animation, charts, codebook, skeleton)}
    for name in posetok.viz.__all__:
        obj = getattr(posetok.viz, name)
        if name == "SIDE_COLORS":  # shared by the modules, from posetok.viz._common
            assert all(m.SIDE_COLORS is obj for m in (animation, charts, skeleton))
        else:
            assert getattr(homes[obj.__module__], name) is obj
            assert name in homes[obj.__module__].__all__
