"""Exact values of the tokenizer statistics in posetok.metrics.tokens."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posetok.metrics.tokens import (
    bits_per_pose,
    code_histogram,
    codebook_usage,
    compression_ratio,
    per_position_usage,
    perplexity,
)


def test_histogram_counts_every_position():
    tokens = np.array([[0, 1, 1], [3, 1, 0]])
    hist = code_histogram(tokens, 5)
    assert hist.dtype == np.int64
    np.testing.assert_array_equal(hist, [2, 3, 0, 1, 0])
    assert hist.sum() == tokens.size


def test_histogram_accepts_any_shape_and_whole_floats():
    np.testing.assert_array_equal(code_histogram(np.array([2, 2, 0]), 3), [1, 0, 2])
    np.testing.assert_array_equal(code_histogram(np.array([[[1.0]], [[1.0]]]), 2), [0, 2])


def test_uniform_distribution():
    v = 16
    tokens = np.tile(np.arange(v), (5, 1))  # every code exactly 5 times
    assert codebook_usage(tokens, v) == 1.0
    assert perplexity(tokens, v) == pytest.approx(v, rel=1e-12)


def test_single_code():
    tokens = np.full((7, 4), 3)
    assert codebook_usage(tokens, 8) == pytest.approx(1 / 8)
    assert perplexity(tokens, 8) == pytest.approx(1.0, abs=1e-12)


def test_perplexity_of_skewed_distribution():
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2, exp(H) = 2 ** 1.5.
    tokens = np.array([0, 0, 1, 2])
    assert perplexity(tokens, 4) == pytest.approx(2**1.5, rel=1e-12)
    assert codebook_usage(tokens, 4) == 0.75


def test_perplexity_of_two_equal_codes_among_many():
    tokens = np.array([[5, 9], [9, 5]])
    assert perplexity(tokens, 1024) == pytest.approx(2.0, rel=1e-12)
    assert codebook_usage(tokens, 1024) == pytest.approx(2 / 1024)


def test_bits_per_pose():
    assert bits_per_pose(34, 1024) == 340.0
    assert bits_per_pose(1, 2) == 1.0
    assert bits_per_pose(10, 1) == 0.0
    assert bits_per_pose(3, 1000) == pytest.approx(3 * math.log2(1000))


def test_compression_ratio():
    # COCO-17, 2-D float32 = 17 * 2 * 32 = 1088 bits; 34 tokens of 1024 codes = 340 bits.
    assert compression_ratio(17, 34, 1024) == pytest.approx(1088 / 340)
    assert compression_ratio(17, 34, 1024, coord_dims=3) == pytest.approx(1632 / 340)
    assert compression_ratio(16, 8, 256) == pytest.approx(16 * 2 * 32 / 64)


def test_compression_ratio_undefined_for_one_code():
    with pytest.raises(ValueError, match="codebook_size 1"):
        compression_ratio(17, 34, 1)


def test_per_position_usage():
    tokens = np.array(
        [
            [0, 1, 2],
            [0, 2, 2],
            [0, 3, 2],
            [0, 1, 2],
        ]
    )
    usage = per_position_usage(tokens, 4)
    assert usage.shape == (3,)
    np.testing.assert_allclose(usage, [1 / 4, 3 / 4, 1 / 4])


def test_per_position_usage_full():
    v, m = 8, 5
    tokens = np.stack([np.full(m, c) for c in range(v)])  # each position sees every code
    np.testing.assert_allclose(per_position_usage(tokens, v), np.ones(m))


@pytest.mark.parametrize(
    "fn", [code_histogram, codebook_usage, perplexity, per_position_usage], ids=lambda f: f.__name__
)
def test_out_of_range_tokens_raise(fn):
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        fn(np.array([[0, 4]]), 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        fn(np.array([[-1, 0]]), 4)


@pytest.mark.parametrize("fn", [code_histogram, perplexity, per_position_usage], ids=lambda f: f.__name__)
def test_bad_inputs_raise(fn):
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros((0, 3), dtype=np.int64), 4)
    with pytest.raises(ValueError, match="integer"):
        fn(np.array([[0.5, 1.0]]), 4)
    with pytest.raises(ValueError, match="codebook_size"):
        fn(np.array([[0, 1]]), 0)


def test_per_position_usage_needs_2d():
    with pytest.raises(ValueError, match=r"\(N, M\)"):
        per_position_usage(np.array([0, 1, 2]), 4)


def test_bits_per_pose_rejects_no_tokens():
    with pytest.raises(ValueError, match="num_tokens"):
        bits_per_pose(0, 16)
