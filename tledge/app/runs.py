"""What `tledge app` shows of training runs: metrics, learning curves, plots, exports.

Only files are read (no TensorFlow): config.json, metrics.json, history.json, the
evaluation plots, and the exported .tflite variants.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tledge.core.run_folder import RunFolder

PLOTS = ("confusion_matrix.png", "most_wrong.png")


@dataclass(frozen=True)
class RunView:
    """A run as the app shows it.

    Attributes:
        name: The run folder's name.
        root: The run folder.
        config: config.json.
        metrics: metrics.json (test accuracy, per class, confusion matrix), {} if none.
        epochs: history.json's per-epoch rows ({} fields per epoch), [] if none.
        plots: Plot name -> newest PNG of that name under evaluation/ or the run.
        exported: The run's exported .tflite variants.
    """

    name: str
    root: Path
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    exported: list[Path] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        """Test accuracy from the run's metrics.json, None when it has none."""
        # Training writes test_accuracy; an evaluation's metrics.json says accuracy.
        value = self.metrics.get("test_accuracy", self.metrics.get("accuracy"))
        return float(value) if value is not None else None


def list_runs(root: str | os.PathLike) -> list[Path]:
    """Run folders (with a config.json) directly inside `root`, newest first."""
    folder = Path(root)
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def read_run(path: str | os.PathLike) -> RunView:
    """Read what the app shows of the run at `path` (missing parts stay empty)."""
    run = RunFolder(Path(path))
    plots = {}
    for name in PLOTS:
        found = sorted(run.root.rglob(name), key=lambda p: p.stat().st_mtime)
        if found:
            plots[name] = found[-1]
    exported = sorted(run.export_dir.rglob("*.tflite")) if run.export_dir.is_dir() else []
    return RunView(
        name=run.root.name,
        root=run.root,
        config=_read(run.config),
        metrics=_read(run.metrics),
        epochs=list(_read(run.history).get("epochs", [])),
        plots=plots,
        exported=exported,
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
