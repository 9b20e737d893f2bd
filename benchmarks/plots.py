"""PNG plots of benchmark results, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tledge.analysis.plots import new_figure, save_figure

STAGE_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def plots_available() -> bool:
    """True when matplotlib is installed (it is not part of the edge install)."""
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def accuracy_latency_plot(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path | None:
    """Scatter top-1 accuracy against p50 latency; marker area follows file size.

    One colour per thread count, each point labelled with its model and variant. Rows
    without an accuracy are left out; returns None (and writes nothing) when none has one.
    """
    rows = [row for row in rows if row.get("accuracy") is not None]
    if not rows:
        return None
    figure = new_figure(figsize=(7, 4.5))
    axes = figure.subplots()
    largest = max(row["size_bytes"] for row in rows)
    for index, threads in enumerate(sorted({row["threads"] for row in rows})):
        group = [row for row in rows if row["threads"] == threads]
        axes.scatter(
            [row["p50_ms"] for row in group],
            [100 * row["accuracy"] for row in group],
            s=[40 + 600 * row["size_bytes"] / largest for row in group],
            alpha=0.6,
            color=STAGE_COLORS[index % len(STAGE_COLORS)],
            label=f"{threads} thread{'s' if threads > 1 else ''}",
        )
    for row in rows:
        if row["threads"] == min(r["threads"] for r in rows):
            name = _row_name(row, rows)
            axes.annotate(
                name,
                (row["p50_ms"], 100 * row["accuracy"]),
                fontsize=8,
                xytext=(6, 4),
                textcoords="offset points",
            )
    latencies = [row["p50_ms"] for row in rows]
    scale = "linear"
    if max(latencies) > 20 * min(latencies):  # e.g. Keras next to int8: a log axis
        from matplotlib.ticker import FuncFormatter, NullFormatter

        scale = "log"
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel(f"p50 latency per image, ms ({scale} scale)")
    axes.set_ylabel("top-1 accuracy, %")
    axes.set_title("Accuracy vs latency (marker area = file size)")
    axes.grid(True, alpha=0.3)
    legend = axes.legend(title="runtime threads", fontsize=8, loc="best")
    for handle in legend.legend_handles:
        handle.set_sizes([40])
    return save_figure(figure, path, dpi=120)


def latency_plot(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Grouped bars of p50 latency per variant and thread count, whiskers to p90."""
    names = list(dict.fromkeys(_row_name(row, rows) for row in rows))
    thread_counts = sorted({row["threads"] for row in rows})
    width = 0.8 / len(thread_counts)
    figure = new_figure(figsize=(max(6, 1.2 * len(names) + 2), 4))
    axes = figure.subplots()
    for index, threads in enumerate(thread_counts):
        by_name = {_row_name(row, rows): row for row in rows if row["threads"] == threads}
        positions = [i + (index - (len(thread_counts) - 1) / 2) * width for i in range(len(names))]
        p50 = [by_name[n]["p50_ms"] if n in by_name else 0 for n in names]
        p90 = [by_name[n]["p90_ms"] - by_name[n]["p50_ms"] if n in by_name else 0 for n in names]
        axes.bar(
            positions,
            p50,
            width,
            yerr=[[0] * len(names), p90],
            capsize=2,
            color=STAGE_COLORS[index % len(STAGE_COLORS)],
            label=f"{threads}",
        )
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("ms per image (bar p50, whisker p90)")
    axes.set_title("Inference latency")
    axes.legend(title="threads", fontsize=8)
    axes.grid(True, axis="y", alpha=0.3)
    return save_figure(figure, path, dpi=120)


def stage_breakdown_plot(
    rows: Sequence[dict[str, Any]], stages: Sequence[str], path: str | os.PathLike
) -> Path:
    """Stacked horizontal bars: mean ms per frame in each pipeline stage, per source."""
    figure = new_figure(figsize=(7, 1.2 + 0.7 * len(rows)))
    axes = figure.subplots()
    labels = [row["source"] for row in rows]
    left = [0.0] * len(rows)
    for index, stage in enumerate(stages):
        widths = [row["stage_ms"][stage] for row in rows]
        axes.barh(
            labels, widths, left=left, label=stage, color=STAGE_COLORS[index % len(STAGE_COLORS)]
        )
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, row in enumerate(rows):
        axes.annotate(
            f"{row['fps']:.0f} FPS ({100 * row['fps_fraction']:.0f}% of 1/invoke)",
            (left[y], y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axes.invert_yaxis()  # first row on top, as in the table
    axes.set_xlabel("ms per frame")
    axes.set_title("Camera pipeline: time per stage")
    axes.set_xlim(0, max(left) * 1.6)
    axes.legend(fontsize=8, ncols=len(stages), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return save_figure(figure, path, dpi=120)


def _row_name(row: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    if len({r["model"] for r in rows}) == 1 and row["variant"] != "tflite":
        return row["variant"]
    return row["model"] if row["variant"] == "tflite" else f"{row['model']} {row['variant']}"
