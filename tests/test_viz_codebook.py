"""posetok.viz.codebook: save_codebook_usage and save_codebook_usage_per_quantizer."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from posetok.errors import PosetokError
from posetok.viz.codebook import save_codebook_usage, save_codebook_usage_per_quantizer

from .test_viz_common import assert_png

# ---------------------------------------------------------------------------------- save_codebook_usage


def _skewed_tokens(n: int, m: int, v: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, v + 1) ** 1.2
    return rng.choice(v, size=(n, m), p=p / p.sum())


def test_codebook_usage_heatmap(tmp_path):
    tokens = _skewed_tokens(300, 16, 128)
    tokens[:, 5] = 3  # a collapsed position
    out = save_codebook_usage(tmp_path / "cb.png", tokens, 256, title="test tokenizer")
    assert out == tmp_path / "cb.png"
    assert_png(out, min_bytes=20_000)


def test_codebook_usage_bar_chart_for_large_codebooks(tmp_path):
    out = save_codebook_usage(tmp_path / "cb.png", _skewed_tokens(200, 34, 4096), 4096)
    assert_png(out, min_bytes=20_000)


def test_codebook_usage_single_code(tmp_path):
    assert_png(save_codebook_usage(tmp_path / "cb.png", np.zeros((5, 3), np.int64), 8))


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
        save_codebook_usage(tmp_path / "cb.png", tokens, v)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- save_codebook_usage_per_quantizer


def test_codebook_usage_per_quantizer(tmp_path):
    tokens = _skewed_tokens(6 * 5 * 2, 3, 64).reshape(6, 5, 2, 3)  # (W, T', G, Q)
    tokens[0] = -1  # a masked window
    tokens[..., 2] %= 4  # a nearly collapsed quantizer
    out = save_codebook_usage_per_quantizer(tmp_path / "q" / "cbq.png", tokens, 64, names=["q1", "q2", "q3"])
    assert_png(out, min_bytes=20_000)
    three = mpimg.imread(out)
    one = mpimg.imread(save_codebook_usage_per_quantizer(tmp_path / "one.png", tokens[..., :1], 64))
    assert three.shape[1] == one.shape[1] and three.shape[0] > 2 * one.shape[0]  # one panel per quantizer


def test_codebook_usage_per_quantizer_empty_quantizer(tmp_path):
    tokens = np.zeros((4, 2), np.int64)
    tokens[:, 1] = -1  # the second quantizer was dropped everywhere: drawn as "no tokens"
    assert_png(save_codebook_usage_per_quantizer(tmp_path / "cbq.png", tokens, 8))


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
        save_codebook_usage_per_quantizer(path, tokens, 8)
    assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_codebook_usage_per_quantizer_bad_names(tmp_path):
    with pytest.raises(ValueError, match="names has 1"):
        save_codebook_usage_per_quantizer(tmp_path / "cbq.png", np.zeros((4, 2), np.int64), 8, names=["a"])

