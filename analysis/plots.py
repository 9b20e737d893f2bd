"""PNG plots for evaluations and comparisons, drawn with matplotlib's Agg renderer.

matplotlib is imported inside each function so importing tledge stays fast. Figures are
built without pyplot, so they need no display (servers, CI) and leave a notebook's
plotting backend alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tledge.core.atomic import atomic_path

# Past this many classes the cells are too small for their numbers.
ANNOTATE_MAX_CLASSES = 20


def new_figure(**options: Any) -> Any:
    """A matplotlib Figure (options as for `Figure`) that draws with Agg, without pyplot.

    A bare Figure never touches pyplot's global backend, so a notebook's inline plotting
    keeps working after these calls, and nothing needs closing.
    """
    from matplotlib.figure import Figure

    return Figure(**options)


def save_figure(figure: Any, path: str | os.PathLike, dpi: int) -> Path:
    """Write `figure` to `path` as PNG, atomically; return the path."""
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return Path(path)


def plot_confusion_matrix(
    matrix: np.ndarray, labels: Sequence[str], path: str | os.PathLike, title: str = ""
) -> Path:
    """Draw a confusion matrix (rows: true, columns: predicted) and save it as PNG.

    Colours show each row normalized to the class's recall, so rare and common classes
    read alike; cells carry their counts up to 20 classes. Figure and fonts grow with the
    number of classes so 101 labels stay readable.

    Args:
        matrix: (num_classes, num_classes) counts.
        labels: Class names in matrix order.
        path: The PNG to write (atomically).
        title: Figure title.

    Returns:
        `path`.

    Example:
        >>> plot_confusion_matrix(evaluation.confusion_matrix, evaluation.labels, "cm.png")
    """
    count = len(labels)
    side = max(6.0, 3.0 + 0.26 * count)
    tick_font = float(np.clip(11 - count / 12, 7, 10))
    title_font = 12 if count <= 40 else 18
    figure = new_figure(figsize=(side + 1.5, side))
    axis = figure.subplots()
    totals = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, totals, out=np.zeros(matrix.shape, float), where=totals > 0)
    image = axis.imshow(normalized, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    colorbar = figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    colorbar.set_label("fraction of the true class")
    axis.set_xticks(range(count))
    axis.set_yticks(range(count))
    axis.set_xticklabels(
        labels,
        rotation=90 if count > 8 else 45,
        ha="center" if count > 8 else "right",
        fontsize=tick_font,
    )
    axis.set_yticklabels(labels, fontsize=tick_font)
    axis.set_xlabel("predicted", fontsize=title_font)
    axis.set_ylabel("true", fontsize=title_font)
    if count <= ANNOTATE_MAX_CLASSES:
        cell_font = float(np.clip(14 - count / 2, 7, 12))
        for row in range(count):
            for column in range(count):
                if matrix[row, column] == 0:
                    continue
                dark = normalized[row, column] > 0.5
                axis.text(
                    column,
                    row,
                    str(matrix[row, column]),
                    ha="center",
                    va="center",
                    fontsize=cell_font,
                    color="white" if dark else "black",
                )
    correct, total = int(np.trace(matrix)), int(matrix.sum())
    axis.set_title(title or f"{correct} / {total} correct", fontsize=title_font)
    return save_figure(figure, path, dpi=110)


def plot_most_wrong(
    entries: Sequence[tuple[Path, str, str, float]], path: str | os.PathLike, columns: int = 4
) -> Path:
    """Draw a grid of images with their true label, wrong prediction and confidence.

    Args:
        entries: (image path, true label, predicted label, confidence) tuples, in the
            order to show them (most confident first).
        path: The PNG to write (atomically).
        columns: Images per row.

    Returns:
        `path`.
    """
    import cv2

    from tledge.core.errors import TledgeError
    from tledge.edge.images import read_rgb

    columns = max(1, min(columns, len(entries)))
    rows = -(-len(entries) // columns)
    figure = new_figure(figsize=(3.4 * columns, 3.8 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (image_path, true, predicted, confidence) in zip(axes.flat, entries, strict=False):
        try:
            image = read_rgb(image_path)
            scale = 256 / max(image.shape[:2])
            if scale < 1:
                size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            axis.imshow(image)
        except TledgeError:
            axis.text(0.5, 0.5, "unreadable", ha="center", va="center")
        axis.set_title(
            f"true: {true}\npred: {predicted} ({confidence:.0%})", color="firebrick", fontsize=10
        )
    figure.suptitle("Most confident wrong predictions", fontsize=13)
    return save_figure(figure, path, dpi=90)


def plot_learning_curves(
    histories: Mapping[str, Mapping[str, Any]], path: str | os.PathLike
) -> Path:
    """Overlay the validation accuracy and loss of several runs, phase boundaries marked.

    Args:
        histories: run name -> history.json content ({"epochs": [...],
            "phase_boundaries": [...]}).
        path: The PNG to write (atomically).

    Returns:
        `path`.

    Example:
        >>> plot_learning_curves({"a": json.load(open("runs/a/history.json"))}, "curves.png")
    """
    from matplotlib import colormaps
    from matplotlib.ticker import PercentFormatter

    figure = new_figure(figsize=(13, 5), layout="constrained")
    accuracy_axis, loss_axis = figure.subplots(1, 2)
    colors = colormaps["tab10" if len(histories) <= 10 else "tab20"]
    for index, (name, history) in enumerate(histories.items()):
        color = colors(index % colors.N)
        epochs = history.get("epochs", [])
        for axis, key in ((accuracy_axis, "val_accuracy"), (loss_axis, "val_loss")):
            points = [(e["epoch"], e[key]) for e in epochs if e.get(key) is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, marker="o", markersize=3, color=color, label=name)
            for boundary in history.get("phase_boundaries", []):
                # A boundary of N means fine-tuning started after epoch N.
                axis.axvline(boundary + 0.5, color=color, linestyle="--", alpha=0.6)
    accuracy_axis.set_title("validation accuracy")
    loss_axis.set_title("validation loss")
    for axis in (accuracy_axis, loss_axis):
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
    accuracy_axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    accuracy_axis.legend(fontsize=8, loc="best")
    figure.suptitle("dashed lines: fine-tuning starts", fontsize=9, color="gray")
    return save_figure(figure, path, dpi=100)
