"""posetok.viz.charts: save_error_per_joint and save_rate_distortion."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from posetok.skeletons import COCO17
from posetok.viz.charts import save_error_per_joint, save_rate_distortion

from .test_viz_common import assert_png, load_sample, noisy, synthetic_sequence


@pytest.fixture(scope="module")
def sample():
    """First 6 poses of the bundled real sample: keypoints (6, 17, 3), boxes (6, 4), RGB images."""
    return load_sample()


# --------------------------------------------------------------------------------- save_error_per_joint


def test_error_per_joint(sample, tmp_path):
    kp = sample[0]
    err = np.linalg.norm(kp[..., :2] - noisy(kp), axis=-1)
    err[:3, 4] = np.nan  # evaluated in 3 of 6 poses
    err[:, 16] = np.nan  # never evaluated
    out = save_error_per_joint(tmp_path / "e" / "err.png", err, COCO17, unit="px")
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
        save_error_per_joint(tmp_path / "err.png", errors, COCO17)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ save_error_per_joint, sequences


def test_error_per_joint_accepts_sequence_errors(tmp_path):
    orig, recon = synthetic_sequence(6)
    err = np.linalg.norm(orig - recon, axis=-1)  # (T, K)
    err[2:4] = np.nan  # masked-out frames are not scored
    windows = np.stack([err, err])  # (W, T, K): pooled over windows and frames
    a = save_error_per_joint(tmp_path / "a" / "e.png", windows, COCO17, unit="norm")
    b = save_error_per_joint(tmp_path / "b" / "e.png", windows.reshape(-1, 17), COCO17, unit="norm")
    assert_png(a, min_bytes=20_000)
    assert a.read_bytes() == b.read_bytes()


# ------------------------------------------------------------------------------------ save_rate_distortion

RD_ROWS = [
    {"num_quantizers": q, "mpjpe": e, "compression_ratio": r}
    for q, e, r in [(3, 3.9, 36.3), (1, 9.1, 108.8), (2, 5.2, 54.4), (4, 3.2, 27.2)]
]


@pytest.mark.parametrize("reference", [None, 4.0])
def test_rate_distortion(tmp_path, reference):
    out = save_rate_distortion(tmp_path / "rd" / "rd.png", RD_ROWS, unit="px", reference=reference)
    assert_png(out)
    assert mpimg.imread(out).shape[2] in (3, 4)


def test_rate_distortion_reference_line_is_drawn(tmp_path):
    plain = mpimg.imread(save_rate_distortion(tmp_path / "a.png", RD_ROWS))
    ref = mpimg.imread(save_rate_distortion(tmp_path / "b.png", RD_ROWS, reference=4.0, reference_label="3%"))
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
        save_rate_distortion(tmp_path / "rd.png", rows, **kwargs)
    assert list(tmp_path.iterdir()) == []

