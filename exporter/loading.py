"""What to export: a run folder or a `.keras` file, resolved to a model, labels and data.

A run folder is the preferred input: its config.json names the training data (for
calibration), the test set (for the drift check), the backbone and the precision policy
the model trained under. A bare `.keras` file needs `--labels` and the data folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError, first_line
from tledge.core.labels import read_labels
from tledge.core.run_folder import RunFolder
from tledge.exporter.tf_keras_model import load_tf_keras_saved_model


@dataclass(frozen=True)
class ExportSource:
    """A model to export and the data that goes with it.

    Attributes:
        model_path: The `.keras` file (a SavedModel folder for a TF Hub run).
        labels: Class names in output order.
        backbone: Backbone registry name ("" when unknown).
        precision: Keras dtype policy the model trained under ("float32" when unknown).
        calibration_data: Class-per-folder images for int8 calibration, or None.
        eval_data: Class-per-folder held-out images for the drift check, or None.
        export_dir: Folder the .tflite files, labels.txt and drift.json go to.
        source_run: The run folder the model came from ("" for a bare `.keras` file).
    """

    model_path: Path
    labels: tuple[str, ...]
    backbone: str
    precision: str
    calibration_data: Path | None
    eval_data: Path | None
    export_dir: Path
    source_run: str


def resolve_source(
    path: str | os.PathLike,
    labels_file: str | os.PathLike | None = None,
    calibration_data: str | os.PathLike | None = None,
    eval_data: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
) -> ExportSource:
    """Resolve a run folder or a `.keras` file into an `ExportSource`.

    Explicit arguments override what a run's config.json says.

    Args:
        path: A run folder (`runs/<name>`) or a `.keras` file.
        labels_file: labels.txt for a `.keras` file (a run folder has its own).
        calibration_data: Class-per-folder images for int8 calibration.
        eval_data: Class-per-folder held-out images for the drift check.
        output_dir: Where to write; default `<run>/export` or `export/` beside the file.

    Raises:
        TledgeError: when the path is neither, or labels are missing.

    Example:
        >>> source = resolve_source("runs/food")
    """
    given = Path(path)
    if given.is_dir():
        return _from_run(given, labels_file, calibration_data, eval_data, output_dir)
    if given.suffix != ".keras":
        raise TledgeError(f"{given}: expected a run folder or a .keras file")
    if not given.is_file():
        raise TledgeError(f"{given}: model file not found")
    if labels_file is None:
        raise TledgeError(f"{given}: a bare .keras file needs --labels labels.txt")
    return ExportSource(
        model_path=given,
        labels=tuple(read_labels(labels_file)),
        backbone="",
        precision="float32",
        calibration_data=_existing_folder(calibration_data, "--calibration-data"),
        eval_data=_existing_folder(eval_data, "--eval-data"),
        export_dir=Path(output_dir) if output_dir else given.parent / "export",
        source_run="",
    )


def load_keras_model(path: str | os.PathLike) -> Any:
    """Load a `.keras` file for inference with Keras safe mode on (no arbitrary code).

    A folder is a TF Hub run's tf_keras SavedModel (see `tf_keras_model.py`).

    Raises:
        TledgeError: when the file cannot be loaded.
    """
    import keras

    if Path(path).is_dir():
        return load_tf_keras_saved_model(path)

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        raise TledgeError(f"{path}: cannot load the Keras model ({first_line(error)})") from None


def _from_run(
    root: Path,
    labels_file: str | os.PathLike | None,
    calibration_data: str | os.PathLike | None,
    eval_data: str | os.PathLike | None,
    output_dir: str | os.PathLike | None,
) -> ExportSource:
    run = RunFolder.open(root)
    config = run.read_config()
    labels = read_labels(labels_file) if labels_file else run.read_labels()
    return ExportSource(
        model_path=run.trained_model,
        labels=tuple(labels),
        backbone=config.backbone or "",
        precision=config.precision or "float32",
        calibration_data=_existing_folder(calibration_data, "--calibration-data")
        or _first_folder(config.data),
        eval_data=_existing_folder(eval_data, "--eval-data")
        or _first_folder(config.test, config.val),
        export_dir=Path(output_dir) if output_dir else run.export_dir,
        source_run=str(run.root.resolve()),
    )


def _existing_folder(folder: str | os.PathLike | None, option: str) -> Path | None:
    if folder is None:
        return None
    directory = Path(folder)
    if not directory.is_dir():
        raise TledgeError(f"{option} {directory}: folder not found")
    return directory


def _first_folder(*folders: str | None) -> Path | None:
    """The first of a run config's `folders` that exists here."""
    for folder in folders:
        if folder and Path(folder).is_dir():
            return Path(folder)
    return None
