"""How a tokenizer uses its codebook: code counts, usage and perplexity, per token position or per quantizer."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..errors import PosetokError
from ..metrics.tokens import code_histogram, codebook_usage, per_position_usage, perplexity
from ._common import _DPI, _check_path, _save_figure

__all__ = ["save_codebook_usage", "save_codebook_usage_per_quantizer"]

# ------------------------------------------------------------------------------------ save_codebook_usage


def save_codebook_usage(
    path: str | os.PathLike,
    tokens: np.ndarray,
    codebook_size: int,
    title: str | None = None,
    *,
    heatmap_max_codes: int = 1024,
) -> Path:
    """Two panels on how a tokenizer uses its codebook.

    Top: code counts sorted from most to least frequent (log y), with the uniform level and the unused codes
    marked; its title gives the usage (share of codes used) and the perplexity. Bottom: a heat map of counts
    per token position (rows) and code (columns, in the top panel's order) when ``V <= heatmap_max_codes``,
    else a bar chart of the share of codes each position uses.

    Args:
        path: destination image file (``.png``).
        tokens: ``(N, M)`` integer code indices in ``[0, V)``: ``N`` poses of ``M`` tokens.
        codebook_size: ``V``.
        title: figure title, or ``None``.
        heatmap_max_codes: the largest ``V`` drawn as a heat map.

    Returns:
        ``Path(path)``.
    """
    path = _check_path(path)
    arr = np.asarray(tokens)
    if arr.ndim != 2:
        raise ValueError(f"tokens must have shape (N, M) (poses, tokens per pose), got {arr.shape}")
    hist = code_histogram(arr, codebook_size)  # validates range, dtype and emptiness
    arr = arr.astype(np.int64)
    v, (n, m) = codebook_size, arr.shape
    usage, ppl = codebook_usage(arr, v), perplexity(arr, v)
    pos_usage = per_position_usage(arr, v)
    order = np.argsort(-hist, kind="stable")
    sorted_counts = hist[order]
    used = int(np.count_nonzero(hist))

    heatmap = v <= heatmap_max_codes
    # Wide enough for about one screen pixel per code in the heat map, so no code column is dropped.
    width = float(np.clip(v / _DPI + 2.2, 10.0, 14.0)) if heatmap else 10.0
    fig = Figure(figsize=(width, 7.8), dpi=_DPI, layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, height_ratios=[1.0, 1.25])

    # Code of rank r spans [r, r + 1) so the curve ends exactly where the unused span begins.
    edges = np.arange(used + 1)
    steps = np.append(sorted_counts[:used], sorted_counts[used - 1])
    ax1.fill_between(edges, steps, step="post", color="#4263eb", alpha=0.3, lw=0)
    ax1.step(edges, steps, where="post", color="#364fc7", lw=1.2, label="code count")
    ax1.set_yscale("log")
    uniform = n * m / v
    ax1.axhline(uniform, color="#495057", ls="--", lw=1, label=f"uniform ({uniform:.3g} per code)")
    if used < v:
        ax1.axvspan(used, v, color="#fa5252", alpha=0.12, lw=0, label=f"unused ({v - used} codes)")
    ax1.set_xlim(0, v)
    ax1.set_ylim(0.7, sorted_counts[0] * 1.6)
    ax1.set_xlabel("code rank (most to least frequent)")
    ax1.set_ylabel("count (log scale)")
    ax1.set_title(
        f"Code frequency: {used}/{v} codes used ({usage:.1%}), perplexity {ppl:.1f} of {v}",
        fontsize=11, loc="left",
    )  # fmt: skip
    ax1.legend(loc="upper right", fontsize=9, framealpha=0.9)
    ax1.grid(True, which="major", axis="y", color="#dee2e6", lw=0.6)
    ax1.set_axisbelow(True)

    if heatmap:
        flat = np.arange(m)[None, :] * v + arr
        per_pos = np.bincount(flat.ravel(), minlength=m * v).reshape(m, v)[:, order].astype(float)
        masked = np.ma.masked_equal(per_pos, 0)
        cmap = colormaps["viridis"].with_extremes(bad="#f8f9fa")
        im = ax2.imshow(
            masked, aspect="auto", cmap=cmap, norm=LogNorm(vmin=1, vmax=max(per_pos.max(), 1.0)),
            interpolation="nearest", extent=(0, v, m - 0.5, -0.5),
        )  # fmt: skip
        ax2.set_xlabel("code rank (same order as above; blank = never used at this position)")
        ax2.set_ylabel("token position")
        fig.colorbar(im, ax=ax2, label="count", pad=0.01, fraction=0.04)
        ax2.set_title(
            f"Codes used per token position: {pos_usage.mean():.1%} of the codebook on average "
            f"(min {pos_usage.min():.1%}, max {pos_usage.max():.1%})",
            fontsize=11, loc="left",
        )  # fmt: skip
        if m <= 40:
            ax2.set_yticks(np.arange(m))
            ax2.tick_params(axis="y", labelsize=7 if m > 20 else 9)
    else:
        ax2.bar(np.arange(m), pos_usage * 100, color="#4263eb", alpha=0.8, width=0.8)
        ax2.axhline(
            usage * 100, color="#e03131", ls="--", lw=1.2, label=f"all positions pooled ({usage:.1%})"
        )
        ax2.set_xlabel("token position")
        ax2.set_ylabel("codes used at this position (%)")
        ax2.set_ylim(0, 105)
        ax2.set_xlim(-0.6, m - 0.4)
        ax2.legend(loc="upper right", fontsize=9, framealpha=0.9)
        ax2.grid(True, axis="y", color="#dee2e6", lw=0.6)
        ax2.set_axisbelow(True)
        ax2.set_title(f"Share of the {v} codes used at each token position", fontsize=11, loc="left")
    sub = f"{n} poses x {m} tokens, codebook of {v}"
    fig.suptitle(f"{title}\n{sub}" if title else sub, fontsize=12 if title else 10, fontweight="bold")
    return _save_figure(fig, path)


# ------------------------------------------------------------------------ save_codebook_usage_per_quantizer


def save_codebook_usage_per_quantizer(
    path: str | os.PathLike,
    tokens: np.ndarray,
    codebook_size: int,
    names: Sequence[str] | None = None,
    *,
    title: str | None = None,
) -> Path:
    """Codebook usage of each quantizer of a residual VQ, one panel per quantizer, stacked.

    Each panel is the top panel of :func:`save_codebook_usage` for one quantizer: code counts sorted from most
    to least frequent (log y) with the uniform level and the unused codes marked; its title gives the codes
    used (share of the codebook) and the perplexity, ``exp`` of the entropy of the code distribution. Panels
    share both axes, so the quantizers compare directly.

    Args:
        path: destination image file (``.png``).
        tokens: integer code ids of any shape whose **last** axis is the quantizer, e.g. ``(W, T', G, Q)``; ids
            lie in ``[0, V)`` and ``-1`` means "no token" (masked windows, dropped quantizers) and is ignored.
        codebook_size: ``V``, the size of every quantizer's codebook.
        names: ``Q`` panel names, or ``None`` for ``"quantizer 1"`` ... ``"quantizer Q"``.
        title: figure title, or ``None``.

    Returns:
        ``Path(path)``.

    Raises:
        PosetokError: ``tokens`` holds ids outside ``[-1, V)``, is not integer, or holds no token at all.
    """
    path = _check_path(path)
    arr = np.asarray(tokens)
    if isinstance(codebook_size, bool) or not isinstance(codebook_size, (int, np.integer)) or codebook_size < 1:
        raise ValueError(f"codebook_size must be an int >= 1, got {codebook_size!r}")
    v = int(codebook_size)
    if arr.ndim < 1 or arr.size == 0:
        raise PosetokError(f"{path}: tokens is empty (shape {arr.shape}); nothing to plot")
    if arr.dtype.kind not in "iu":
        # Whole-number floats (tokens saved through a float tensor) pass, as in posetok.metrics.tokens.
        if arr.dtype.kind != "f" or not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise PosetokError(f"{path}: tokens must hold integer code ids, got dtype {arr.dtype}")
    flat = arr.astype(np.int64).reshape(-1, arr.shape[-1])  # (positions, Q)
    lo, hi = int(flat.min()), int(flat.max())
    if lo < -1 or hi >= v:
        raise PosetokError(f"{path}: token ids must lie in [0, {v}) or be -1 (no token), got min {lo}, max {hi}")
    if hi < 0:
        raise PosetokError(f"{path}: tokens holds no token (all {flat.size} entries are -1); nothing to plot")
    nq = flat.shape[1]
    if names is None:
        names = [f"quantizer {q + 1}" for q in range(nq)]
    elif len(names) != nq:
        raise ValueError(f"names has {len(names)} entries but tokens has Q = {nq} quantizers (its last axis)")

    # Counts per quantizer and code, shifted by one so -1 lands in a column that is then dropped.
    hist = np.stack([np.bincount(flat[:, q] + 1, minlength=v + 1)[1:] for q in range(nq)])  # (Q, V)
    ymax = float(hist.max())
    fig = Figure(figsize=(10.0, 1.9 * nq + 1.0), dpi=_DPI, layout="constrained")
    axes = fig.subplots(nq, 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for q, ax in enumerate(axes):
        counts = hist[q]
        total = int(counts.sum())
        ax.set_yscale("log")
        ax.grid(True, which="major", axis="y", color="#dee2e6", lw=0.6)
        ax.set_axisbelow(True)
        if total == 0:
            ax.text(0.5, 0.5, "no tokens", transform=ax.transAxes, ha="center", va="center", color="#868e96")
            ax.set_title(f"{names[q]}: no tokens", fontsize=10, loc="left")
            continue
        sorted_counts = np.sort(counts)[::-1]
        used = int(np.count_nonzero(counts))
        prob = counts[counts > 0] / total
        ppl = math.exp(float(-(prob * np.log(prob)).sum()))
        # Code of rank r spans [r, r + 1) so the curve ends exactly where the unused span begins.
        edges = np.arange(used + 1)
        steps = np.append(sorted_counts[:used], sorted_counts[used - 1])
        ax.fill_between(edges, steps, step="post", color="#4263eb", alpha=0.3, lw=0)
        ax.step(edges, steps, where="post", color="#364fc7", lw=1.2, label="code count")
        uniform = total / v
        ax.axhline(uniform, color="#495057", ls="--", lw=1, label=f"uniform ({uniform:.3g} per code)")
        if used < v:
            ax.axvspan(used, v, color="#fa5252", alpha=0.12, lw=0, label=f"unused ({v - used} codes)")
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
        ax.set_title(
            f"{names[q]}: {used}/{v} codes used ({used / v:.1%}), perplexity {ppl:.1f} of {v}, {total} tokens",
            fontsize=10, loc="left",
        )  # fmt: skip
        ax.set_ylabel("count")
    axes[-1].set_xlim(0, v)
    axes[-1].set_ylim(0.7, ymax * 1.6)
    axes[-1].set_xlabel("code rank (most to least frequent, per quantizer)")
    shape = " x ".join(str(d) for d in arr.shape)
    sub = f"{nq} quantizers of {v} codes; tokens {shape}, -1 entries ignored"
    fig.suptitle(f"{title}\n{sub}" if title else sub, fontsize=12 if title else 10, fontweight="bold")
    return _save_figure(fig, path)
