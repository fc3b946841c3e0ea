"""Error charts: the error of each joint, the error against the rate of a residual tokenizer, and a metric
against training time."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..skeletons import Skeleton
from ._common import _DPI, SIDE_COLORS, _check_path, _joint_sides, _save_figure

__all__ = ["save_error_per_joint", "save_rate_distortion", "save_training_curve"]

# ----------------------------------------------------------------------------------- save_error_per_joint


def save_error_per_joint(
    path: str | os.PathLike,
    errors: np.ndarray,
    skeleton: Skeleton,
    unit: str = "px",
    *,
    title: str | None = None,
) -> Path:
    """Horizontal bar chart of the per-joint error: mean (bar, coloured by body side) and median (marker).

    Args:
        path: destination image file (``.png``).
        errors: ``(N, K)`` non-negative errors (e.g. pixel distances) per pose and joint; NaN where a joint
            was not evaluated (unlabelled, or in a masked-out frame). Joints evaluated in fewer than ``N`` poses
            show their count. Sequence errors such as ``(T, K)`` or ``(W, T, K)`` (any ``(..., K)`` with at
            least two axes) are pooled over every leading axis, so each frame counts as one pose.
        skeleton: layout of the ``K`` joints, listed top to bottom in its order.
        unit: unit of the errors for the axis label.
        title: figure title, or ``None`` for a default one.

    Returns:
        ``Path(path)``.
    """
    path = _check_path(path)
    err = np.asarray(errors)
    if err.dtype.kind not in "fiu" or err.ndim < 2 or err.shape[-1] != skeleton.num_joints:
        raise ValueError(
            f"errors must be a numeric (N, K) array with K = {skeleton.num_joints} joints of "
            f"'{skeleton.name}', got shape {err.shape} dtype {err.dtype}"
        )
    err = err.reshape(-1, err.shape[-1]).astype(np.float64)
    if np.isinf(err).any():
        raise ValueError("errors must not contain inf; mark joints that were not evaluated with NaN")
    valid = ~np.isnan(err)
    if not valid.any():
        raise ValueError("errors holds no value (all NaN or N = 0); nothing to plot")
    n, k = err.shape
    count = valid.sum(axis=0)
    # nanmean/nanmedian warn on all-NaN columns; those joints are drawn as "no data" instead.
    filled = np.where(valid, err, 0.0)
    mean = np.where(count > 0, filled.sum(axis=0) / np.maximum(count, 1), np.nan)
    median = np.array([np.median(err[valid[:, j], j]) if count[j] else np.nan for j in range(k)])
    overall = float(err[valid].mean())

    sides = _joint_sides(skeleton)
    fig = Figure(figsize=(8.5, 0.3 * k + 1.9), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(k)
    colors = [SIDE_COLORS[s] for s in sides]
    ax.barh(y, np.nan_to_num(mean), height=0.7, color=colors, alpha=0.85, zorder=2)
    ax.scatter(median, y, marker="D", s=22, color="#212529", edgecolors="white", linewidths=0.6, zorder=3)
    xmax = float(np.nanmax(np.concatenate([mean, median])))
    for j in range(k):
        if count[j] == 0:
            ax.text(xmax * 0.01, j, "no data", va="center", fontsize=8, color="#868e96")
        else:
            right = max(mean[j], median[j])
            # The white box keeps the number readable where the all-joints line crosses it.
            ax.text(right + xmax * 0.015, j, f"{mean[j]:.2f} / {median[j]:.2f}", va="center", fontsize=8,
                    color="#343a40", bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 0.4},
                    zorder=4)  # fmt: skip
    ax.axvline(overall, color="#495057", ls="--", lw=1, zorder=1)
    labels = [nm if count[j] == n else f"{nm} (n={count[j]})" for j, nm in enumerate(skeleton.joint_names)]
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_ylim(k - 0.4, -0.6)
    ax.set_xlim(0, xmax * 1.22 if xmax > 0 else 1.0)
    ax.set_xlabel(f"error ({unit}); labels: mean / median")
    ax.grid(True, axis="x", color="#dee2e6", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    handles = [
        Patch(color=SIDE_COLORS[s], alpha=0.85, label=f"mean, {s}")
        for s in ("left", "right", "centre")
        if s in sides
    ]
    handles += [
        Line2D([], [], ls="none", marker="D", ms=5, color="#212529", mec="white", label="median"),
        Line2D([], [], ls="--", color="#495057", lw=1, label=f"all joints: {overall:.2f} {unit}"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    ax.set_title(title or f"Error per joint ({skeleton.name}, {n} poses)", fontsize=12, loc="left")
    return _save_figure(fig, path)


# ------------------------------------------------------------------------------------ save_rate_distortion


def _ratio_label(r: float) -> str:
    return f"{r:.0f}x" if r >= 9.5 else f"{r:.1f}x"


def save_rate_distortion(
    path: str | os.PathLike,
    rows: Sequence[dict],
    unit: str = "px",
    reference: float | None = None,
    reference_label: str = "target",
    *,
    title: str | None = None,
) -> Path:
    """Reconstruction error against the number of residual quantizers used, each point labelled with its rate.

    Args:
        path: destination image file (``.png``).
        rows: one dict per quantizer count, ``{"num_quantizers": q, "mpjpe": err, "compression_ratio": r}``
            (``q`` an int >= 1, ``err`` >= 0 in ``unit``, ``r`` > 0); extra keys are ignored, order is free.
        unit: unit of the error, for the y label.
        reference: a level to compare with (e.g. 3 % of the box height), drawn as a dashed horizontal line,
            or ``None``.
        reference_label: legend text of the reference line.
        title: figure title, or ``None`` for a default one.

    Returns:
        ``Path(path)``.
    """
    path = _check_path(path)
    if len(rows) == 0:
        raise ValueError("rows is empty; nothing to plot")
    pts = []
    for i, row in enumerate(rows):
        missing = [k for k in ("num_quantizers", "mpjpe", "compression_ratio") if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks {', '.join(missing)}")
        q, err, ratio = row["num_quantizers"], float(row["mpjpe"]), float(row["compression_ratio"])
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 1:
            raise ValueError(f"rows[{i}]: num_quantizers must be an int >= 1, got {q!r}")
        if not (np.isfinite(err) and err >= 0) or not (np.isfinite(ratio) and ratio > 0):
            raise ValueError(f"rows[{i}]: mpjpe must be finite >= 0 and compression_ratio finite > 0")
        pts.append((int(q), err, ratio))
    pts.sort()
    qs = [p[0] for p in pts]
    if len(set(qs)) != len(qs):
        raise ValueError(f"rows repeat a num_quantizers value: {qs}")
    if reference is not None and not (np.isfinite(reference) and reference >= 0):
        raise ValueError(f"reference must be a finite number >= 0, got {reference}")
    errs = np.array([p[1] for p in pts])

    fig = Figure(figsize=(6.4, 4.2), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(qs, errs, color="#364fc7", lw=1.6, marker="o", ms=6, mec="white", zorder=3, label="reconstruction")
    for q, e, r in pts:
        ax.annotate(_ratio_label(r), (q, e), xytext=(0, 7), textcoords="offset points", ha="center",
                    fontsize=8, color="#343a40")  # fmt: skip
    if reference is not None:
        label = f"{reference_label} ({reference:.3g} {unit})"
        ax.axhline(reference, color="#e03131", ls="--", lw=1.2, zorder=2, label=label)
    ax.set_xticks(qs)
    ax.set_xlim(qs[0] - 0.5, qs[-1] + 0.5)
    # From zero, so the gain of an extra quantizer is not exaggerated; headroom for the labels.
    top = max(float(errs.max()), reference or 0.0)
    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)
    ax.set_xlabel("number of quantizers (labels: compression ratio)")
    ax.set_ylabel(f"mean joint error ({unit})")
    ax.grid(True, color="#dee2e6", lw=0.6)
    ax.set_axisbelow(True)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    ax.set_title(title or "Rate-distortion: error against quantizers", fontsize=11, loc="left")
    return _save_figure(fig, path)


# ----------------------------------------------------------------------------------- save_training_curve


def save_training_curve(
    path: str | os.PathLike,
    curves: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str = "training minutes",
    ylabel: str = "held-out OKS-AP",
    title: str | None = None,
    marks: Sequence[float] = (),
) -> Path:
    """Line chart of a metric against training time (or steps), one line per run.

    Args:
        path: destination image file (``.png``).
        curves: run name -> ``(x, y)`` sequences of equal length (e.g. minutes and held-out AP in percent).
        xlabel, ylabel, title: axis labels and title.
        marks: x values drawn as dotted vertical guides (e.g. 5, 10 and 20 minutes).
    """
    out = _check_path(path)
    if not curves:
        raise ValueError("curves: expected at least one run")
    fig = Figure(figsize=(6.4, 4.0), dpi=_DPI)
    ax = fig.add_subplot(1, 1, 1)
    for name, (x, y) in curves.items():
        if len(x) != len(y):
            raise ValueError(f"curves[{name!r}]: x has {len(x)} values, y {len(y)}")
        ax.plot(x, y, marker="o", markersize=3, label=name)
    for m in marks:
        ax.axvline(m, color="0.6", linestyle=":", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title or f"{ylabel} against {xlabel}")
    fig.tight_layout()
    return _save_figure(fig, out)
