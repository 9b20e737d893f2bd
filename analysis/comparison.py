"""Comparing training runs: key settings and results side by side, and their learning curves.

Everything is read from the run folders (config.json, history.json, metrics.json,
export/drift.json), so runs made by `tledge train`, `tledge experiments` or a notebook
compare alike; unfinished runs are listed with the numbers they have.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError
from tledge.core.run_folder import RunFolder, read_json

# sort key -> (attribute of RunSummary, True when bigger is better)
SORT_KEYS = {
    "test_accuracy": ("test_accuracy", True),
    "best_val_accuracy": ("best_val_accuracy", True),
    "int8_drift": ("int8_drift_pp", False),
    "train_seconds": ("train_seconds", False),
    "name": ("name", False),
}


@dataclass(frozen=True)
class RunSummary:
    """The key settings and results of one run.

    Attributes:
        name: The run folder's name.
        path: The run folder.
        backbone: Backbone registry name.
        train_fraction: Fraction of the training images used.
        augment: Whether augmentation was on.
        precision: Keras dtype policy the run trained under.
        epochs: Phase 1 (feature extraction) epochs asked for.
        fine_tune_epochs: Phase 2 (fine-tuning) epochs asked for.
        epochs_run: Epochs in history.json (fewer than asked after early stopping).
        finished: True when metrics.json exists.
        best_val_accuracy: Best validation accuracy, or None.
        test_accuracy: Final test accuracy, or None (no test set or unfinished).
        int8_drift_pp: Top-1 accuracy drift of the int8 export in percentage points,
            or None when the run was not exported to int8.
        train_seconds: Wall time of training, or None.
        history: history.json content ({} when missing).
    """

    name: str
    path: Path
    backbone: str
    train_fraction: float
    augment: bool
    precision: str
    epochs: int
    fine_tune_epochs: int
    epochs_run: int
    finished: bool
    best_val_accuracy: float | None
    test_accuracy: float | None
    int8_drift_pp: float | None
    train_seconds: float | None
    history: dict[str, Any]

    @property
    def phases(self) -> str:
        """The phases asked for, e.g. "FE 10", "FT 5" or "FE 5 + FT 5"."""
        parts = [f"FE {self.epochs}"] if self.epochs else []
        if self.fine_tune_epochs:
            parts.append(f"FT {self.fine_tune_epochs}")
        return " + ".join(parts) or "-"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the summary (history left out)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "backbone": self.backbone,
            "train_fraction": self.train_fraction,
            "augment": self.augment,
            "precision": self.precision,
            "epochs": self.epochs,
            "fine_tune_epochs": self.fine_tune_epochs,
            "epochs_run": self.epochs_run,
            "finished": self.finished,
            "best_val_accuracy": self.best_val_accuracy,
            "test_accuracy": self.test_accuracy,
            "int8_drift_pp": self.int8_drift_pp,
            "train_seconds": self.train_seconds,
        }


def find_runs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand run folders and folders of runs into a list of run folders.

    A path holding config.json is a run; any other folder contributes its sub-folders
    that hold one (sorted by name).

    Raises:
        TledgeError: when a path is missing or no run is found.
    """
    runs: list[Path] = []
    for item in paths:
        path = Path(item)
        if not path.is_dir():
            raise TledgeError(f"{path}: not a run folder or a folder of runs")
        if (path / "config.json").is_file():
            runs.append(path)
            continue
        children = sorted(p for p in path.iterdir() if (p / "config.json").is_file())
        if not children:
            raise TledgeError(f"{path}: no run folders in it (folders with a config.json)")
        runs.extend(children)
    if not runs:
        raise TledgeError("no runs given")
    return runs


def summarize_run(path: str | os.PathLike) -> RunSummary:
    """Read one run folder into a `RunSummary`.

    Raises:
        TledgeError: when config.json is missing or a JSON file is corrupt.
    """
    run = RunFolder(Path(path))
    if not run.config.is_file():
        raise TledgeError(f"{run.root}: not a tledge run folder (no config.json)")
    config = run.read_config()
    metrics = run.read_metrics() if run.metrics.is_file() else {}
    history = read_json(run.history) if run.history.is_file() else {}
    drift_file = run.export_dir / "drift.json"
    drift = read_json(drift_file) if drift_file.is_file() else {}
    int8 = drift.get("variants", {}).get("int8") or {}
    val_accuracies = [
        e["val_accuracy"] for e in history.get("epochs", []) if e.get("val_accuracy") is not None
    ]
    best_val = metrics.get("best_val_accuracy")
    if best_val is None and val_accuracies:
        best_val = max(val_accuracies)
    return RunSummary(
        name=run.root.name,
        path=run.root,
        backbone=config.backbone or "?",
        train_fraction=config.train_fraction,
        augment=bool(config.augment),
        precision=config.precision or "?",
        epochs=config.epochs or 0,
        fine_tune_epochs=config.fine_tune_epochs or 0,
        epochs_run=len(history.get("epochs", [])),
        finished=run.metrics.is_file(),
        best_val_accuracy=best_val,
        test_accuracy=metrics.get("test_accuracy"),
        int8_drift_pp=int8.get("top1_drift_pp"),
        train_seconds=metrics.get("train_seconds"),
        history=history,
    )


def compare_runs(
    paths: Sequence[str | os.PathLike], sort: str = "test_accuracy"
) -> list[RunSummary]:
    """Summarize runs and sort them, best first; runs lacking the sort metric go last.

    Args:
        paths: Run folders and/or folders of runs.
        sort: One of `SORT_KEYS`: "test_accuracy", "best_val_accuracy" (higher first),
            "int8_drift" (smallest absolute drift first), "train_seconds" (fastest
            first) or "name".

    Raises:
        TledgeError: for an unknown sort key or unreadable runs.

    Example:
        >>> for summary in compare_runs(["runs/"], sort="best_val_accuracy"):
        ...     print(summary.name, summary.best_val_accuracy)
    """
    if sort not in SORT_KEYS:
        raise TledgeError(f"--sort {sort}: choose one of {', '.join(SORT_KEYS)}")
    attribute, higher_first = SORT_KEYS[sort]
    summaries = [summarize_run(path) for path in find_runs(paths)]

    def key(summary: RunSummary) -> tuple[bool, Any, str]:
        value = getattr(summary, attribute)
        if value is None:
            return (True, 0, summary.name)
        if attribute == "int8_drift_pp":
            value = abs(value)
        if isinstance(value, str):
            return (False, value, summary.name)
        return (False, -value if higher_first else value, summary.name)

    return sorted(summaries, key=key)


def format_table(summaries: Sequence[RunSummary]) -> str:
    """A plain-text table of the summaries, one row per run, in the given order."""
    header = (
        "run",
        "backbone",
        "data",
        "aug",
        "phases",
        "epochs",
        "precision",
        "best val",
        "test",
        "int8 drift",
        "time",
    )
    rows = [header]
    for s in summaries:
        rows.append(
            (
                s.name if s.finished else f"{s.name} (unfinished)",
                s.backbone,
                f"{s.train_fraction:.0%}"
                if s.train_fraction >= 0.01
                else f"{s.train_fraction:.1%}",
                "yes" if s.augment else "no",
                s.phases,
                str(s.epochs_run),
                s.precision,
                _percent(s.best_val_accuracy),
                _percent(s.test_accuracy),
                "-" if s.int8_drift_pp is None else f"{s.int8_drift_pp:+.2f} pp",
                "-" if s.train_seconds is None else _duration(s.train_seconds),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def tensorboard_command(summaries: Sequence[RunSummary]) -> str | None:
    """The `tensorboard` command that shows every run's logs, each under its run name.

    Returns:
        The command, or None when no run has a logs/ folder.
    """
    logged = [s for s in summaries if RunFolder(s.path).logs.is_dir()]
    if not logged:
        return None
    names = [s.name for s in logged]
    # --logdir_spec separates entries with "," and name from path with ":".
    if len(set(names)) == len(names) and not any(c in n for n in names for c in ",:"):
        spec = ",".join(f"{s.name}:{RunFolder(s.path).logs.resolve()}" for s in logged)
        return f"tensorboard --logdir_spec {shlex.quote(spec)}"
    parent = os.path.commonpath([str(s.path.resolve()) for s in logged])
    return f"tensorboard --logdir {shlex.quote(parent)}"


def plot_comparison(summaries: Sequence[RunSummary], path: str | os.PathLike) -> Path | None:
    """Write the overlaid validation curves of the runs that have a history.

    Returns:
        `path`, or None when no run has history.json.
    """
    from tledge.analysis.plots import plot_learning_curves

    histories = {s.name: s.history for s in summaries if s.history.get("epochs")}
    if not histories:
        return None
    return plot_learning_curves(histories, path)


def default_plot_path(summaries: Sequence[RunSummary]) -> Path:
    """comparison.png in the folder that holds all the compared runs."""
    parent = Path(os.path.commonpath([str(s.path.resolve().parent) for s in summaries]))
    return parent / "comparison.png"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
