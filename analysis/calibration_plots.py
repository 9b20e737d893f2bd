"""PNG plots of calibration and unknown rejection: reliability diagram, score
histograms, accuracy-coverage curve (matplotlib Agg, no pyplot; see `plots.py`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tledge.analysis.plots import new_figure, save_figure
from tledge.core.calibration import ReliabilityBins


def plot_reliability(
    bins: Mapping[str, ReliabilityBins], path: str | os.PathLike, title: str = ""
) -> Path:
    """Draw accuracy against confidence per bin for each named set of predictions.

    Args:
        bins: Name (e.g. "calibrated, ECE 0.021") -> its reliability bins.
        path: The PNG to write (atomically).
        title: Figure title.
    """
    figure = new_figure(figsize=(5.5, 5.0))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfect")
    for name, values in bins.items():
        used = values.counts > 0
        axes.plot(values.confidence[used], values.accuracy[used], marker="o", label=name)
    axes.set_xlabel("confidence (top probability)")
    axes.set_ylabel("accuracy")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left")
    axes.set_title(title)
    return save_figure(figure, path, dpi=110)


def plot_score_histograms(
    scores: Mapping[str, np.ndarray],
    threshold: float | None,
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Overlaid histograms of the unknown score (top probability) per set of images."""
    figure = new_figure(figsize=(7.0, 4.0))
    axes = figure.subplots()
    edges = np.linspace(0, 1, 41)
    for name, values in scores.items():
        axes.hist(values, bins=edges, alpha=0.5, density=True, label=f"{name} ({len(values)})")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    axes.set_xlabel("score (top probability)")
    axes.set_ylabel("density")
    axes.legend(loc="upper left")
    axes.set_title(title)
    return save_figure(figure, path, dpi=110)


def plot_accuracy_coverage(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    marks: Sequence[tuple[float, float, str]],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Accuracy on the most confident fraction of images against that fraction.

    Args:
        curves: Name -> (coverage, accuracy) from `accuracy_coverage`.
        marks: (coverage, accuracy, text) points to mark, e.g. the threshold.
        path: The PNG to write.
        title: Figure title.
    """
    figure = new_figure(figsize=(6.0, 4.0))
    axes = figure.subplots()
    for name, (coverage, accuracy) in curves.items():
        axes.plot(coverage, accuracy, label=name)
    for coverage, accuracy, text in marks:
        axes.plot([coverage], [accuracy], marker="o", color="black")
        axes.annotate(text, (coverage, accuracy), textcoords="offset points", xytext=(-60, -16))
    axes.set_xlabel("coverage (fraction of images accepted)")
    axes.set_ylabel("accuracy on accepted images")
    axes.set_xlim(0, 1)
    axes.legend(loc="lower left")
    axes.set_title(title)
    return save_figure(figure, path, dpi=110)
