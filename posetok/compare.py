"""``posetok compare``: several tokenizer checkpoints evaluated on the same data, error against bits.

Every checkpoint is scored by its task's own evaluation (what ``posetok eval`` reports), so the numbers are the
same as eval's; the checkpoints must all be pose (PCT) tokenizers, scored on a COCO keypoint file, or all
sequence tokenizers, scored on a ``.npz`` sequence (or a folder of them).

One record per point of the comparison:

- a pose tokenizer gives one record: ``bits_per_pose`` = ``M log2 V`` (``V`` the effective codebook size:
  learned codes for vq, ``prod(levels)`` for fsq, ``2^bits`` for lfq) and eval's metrics (``mean_error_px``,
  ``oks_ap``, ``pck_0.05``, codebook usage, ...);
- a sequence tokenizer (residual: rvq, rfsq, rlfq) gives one record per prefix ``q = 1..Q`` of its quantizers, a
  curve: ``bits_per_frame`` of the tokens and eval's metrics decoded from ``q`` quantizers (``mpjpe`` in the
  file's units, ``pck``, ``mse``, ...; ``mpjpe_norm`` and ``quantization_error``, which eval computes through all
  ``Q`` quantizers, only in the record of ``q = Q``).

:func:`compare_checkpoints` returns them; :func:`save_comparison_plot` draws error against bits, one point (pose)
or curve (sequence) per checkpoint.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import PosetokError, field_error
from .io import atomic_path

#: Per kind: the rate key, the main error key and its axis label, a second score and its label.
_AXES = {
    "pct": ("bits_per_pose", "mean_error_px", "mean joint error (px)", "oks_ap", "OKS-AP"),
    "sequence": ("bits_per_frame", "mpjpe", "mean joint error (file units)", "pck", "PCK"),
}
_KINDS = tuple(_AXES)


def _label(path: str | Path, taken: set[str]) -> str:
    """A short name for a checkpoint: its run folder for ``model.ckpt`` / ``last.ckpt``, else its file stem."""
    p = Path(path)
    label = p.parent.name if p.name in ("model.ckpt", "last.ckpt") and p.parent.name else p.stem
    return str(p) if label in taken else label


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    """Eval's metrics without the per-prefix table (the records are that table) and the per-joint lists."""
    return {k: v for k, v in metrics.items() if k not in ("rate_distortion", "per_keypoint_error")}


def _pose_records(codec: Any, task: Any, path: str, label: str, data: str | Path) -> list[dict[str, Any]]:
    metrics = task.evaluate_file(codec, data)
    return [{"checkpoint": path, "label": label, "kind": "pct", "quantizer": codec.model.quantizer_kind,
             **_scalars(metrics)}]


def _sequence_records(codec: Any, task: Any, path: str, label: str, data: str | Path) -> list[dict[str, Any]]:
    records = []
    for q in range(1, codec.num_quantizers + 1):
        metrics = _scalars(task.evaluate_sequence(codec, data, num_quantizers=q)[0])
        if q < codec.num_quantizers:
            # eval computes these two from the forward through all Q quantizers, not from the prefix
            for key in ("mpjpe_norm", "quantization_error"):
                metrics.pop(key, None)
        records.append({"checkpoint": path, "label": label, "kind": "sequence",
                        "quantizer": codec.model.quantizer_kind, **metrics, "num_quantizers": q,
                        "max_quantizers": codec.num_quantizers})
    return records


def compare_checkpoints(checkpoints: Sequence[str | Path], data: str | Path) -> dict[str, Any]:
    """Evaluate every checkpoint on ``data``; returns ``{"kind", "data", "rate", "error", "records"}``.

    ``kind`` is ``pct`` or ``sequence`` (all checkpoints must share it), ``rate`` and ``error`` name the keys of
    the records that :func:`save_comparison_plot` draws (``bits_per_pose`` / ``mean_error_px`` or
    ``bits_per_frame`` / ``mpjpe``), and ``records`` holds one dict per point (see the module docstring), with
    ``checkpoint``, ``label`` (its run folder), ``kind`` and ``quantizer``.
    """
    from .tasks import load_with_task

    if not checkpoints:
        raise PosetokError("checkpoints: give at least one checkpoint to compare")
    if not Path(data).exists():
        raise field_error(data, "path", "no such file or folder")
    loaded, kind = [], None
    for path in checkpoints:
        codec, task = load_with_task(path)
        name = task.KIND.name
        if name not in _KINDS:
            raise field_error(path, "kind", f"a '{name}' checkpoint; compare needs pose (pct) or sequence "
                                            "tokenizers")
        if kind is not None and name != kind:
            raise field_error(path, "kind", f"a '{name}' checkpoint among '{kind}' ones; compare one kind at a "
                                            "time (pose tokenizers on a COCO file, sequence tokenizers on .npz)")
        kind = name
        loaded.append((str(path), codec, task))
    records: list[dict[str, Any]] = []
    taken: set[str] = set()
    for path, codec, task in loaded:
        label = _label(path, taken)
        taken.add(label)
        make = _pose_records if kind == "pct" else _sequence_records
        records.extend(make(codec, task, path, label, data))
    rate, error = _AXES[kind][:2]  # type: ignore[index]
    return {"kind": kind, "data": str(data), "rate": rate, "error": error, "records": records}


def save_comparison_plot(path: str | os.PathLike, result: dict[str, Any], title: str | None = None) -> Path:
    """Error against bits (left) and the second score against bits (right: OKS-AP for pose tokenizers, PCK for
    sequence ones) from :func:`compare_checkpoints`' result, as a PNG: one labelled point per pose checkpoint (the
    points of one quantizer kind joined by a dashed line), one curve per sequence checkpoint (its prefixes
    ``q = 1..Q``, each point labelled ``q``). Colours follow the quantizer kind."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise field_error(path, "suffix", "the plot is a PNG; name it *.png")
    kind = result["kind"]
    rate, error, error_label, second, second_label = _AXES[kind]
    colours = {"vq": "#364fc7", "rvq": "#364fc7", "fsq": "#e8590c", "rfsq": "#e8590c", "lfq": "#2b8a3e",
               "rlfq": "#2b8a3e"}
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    fig = Figure(figsize=(10.0, 4.2), dpi=120, layout="constrained")
    axes = fig.subplots(1, 2)
    if kind == "pct":
        # One point per checkpoint, each labelled; the points of one quantizer kind joined by a thin line in
        # order of bits, so a kind reads as a rate-distortion curve and the legend stays one entry per kind.
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for r in result["records"]:
            by_kind.setdefault(r["quantizer"], []).append(r)
        for k, (quantizer, rows) in enumerate(by_kind.items()):
            rows = sorted(rows, key=lambda r: r[rate])
            dy = 4 if k % 2 == 0 else -11  # labels of alternate kinds above / below, apart at equal bits
            xs = [r[rate] for r in rows]
            for ax, key in zip(axes, (error, second)):
                ys = [r.get(key, math.nan) for r in rows]
                ax.plot(xs, ys, marker="o", color=colours.get(quantizer, "#495057"), lw=1.0, ls="--", ms=7,
                        mec="white", label=quantizer)
                for r, x, y in zip(rows, xs, ys):
                    ax.annotate(r["label"], (x, y), xytext=(4, dy), textcoords="offset points", fontsize=7,
                                color="#495057")
    else:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in result["records"]:
            groups.setdefault(r["label"], []).append(r)
        per_kind: dict[str, int] = {}
        for label, rows in groups.items():
            quantizer = rows[0]["quantizer"]
            marker = markers[per_kind.get(quantizer, 0) % len(markers)]
            per_kind[quantizer] = per_kind.get(quantizer, 0) + 1
            rows = sorted(rows, key=lambda r: r[rate])
            xs = [r[rate] for r in rows]
            for ax, key in zip(axes, (error, second)):
                ys = [r.get(key, math.nan) for r in rows]
                ax.plot(xs, ys, marker=marker, color=colours.get(quantizer, "#495057"), lw=1.4, ms=7, mec="white",
                        label=f"{label} ({quantizer})")
                for r, x, y in zip(rows, xs, ys):
                    ax.annotate(f"q={r['num_quantizers']}", (x, y), xytext=(3, 4), textcoords="offset points",
                                fontsize=7, color="#495057")
    unit = "pose" if kind == "pct" else "frame"
    for ax, label in zip(axes, (error_label, second_label)):
        ax.set_xlabel(f"bits per {unit} (tokens, log2 of the effective codebook size)")
        ax.set_ylabel(label)
        ax.margins(x=0.1)  # room for the point labels
        ax.grid(True, color="#dee2e6", lw=0.6)
        ax.set_axisbelow(True)
        for s in ("top", "right"):
            ax.spines[s].set_visible(False)
    axes[0].set_ylim(bottom=0)
    axes[0].legend(fontsize=8, framealpha=0.9)
    fig.suptitle(title or f"{'Pose' if kind == 'pct' else 'Sequence'} tokenizers on {Path(result['data']).name}: "
                 f"error against bits per {unit}", fontsize=11)
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(str(tmp), format="png")
    return path


def run_compare(checkpoints: Sequence[str | Path], data: str | Path, json_out: str | Path | None = None,
                plot: str | Path | None = None) -> dict[str, Any]:
    """``posetok compare``: :func:`compare_checkpoints`, written as JSON to ``json_out`` and drawn to ``plot``
    (both optional); returns the result."""
    from .io import write_json

    if plot is not None and Path(plot).suffix.lower() != ".png":
        raise field_error(plot, "suffix", "--plot writes a PNG; name it *.png")
    result = compare_checkpoints(checkpoints, data)
    if json_out:
        write_json(json_out, result)
    if plot:
        save_comparison_plot(plot, result)
    return result
