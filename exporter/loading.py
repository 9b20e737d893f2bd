"""What to export: a run folder or a `.keras` file, resolved to a model, labels and data.

A run folder is the preferred input: its config.json names the training data (for
calibration), the test set (for the drift check), the backbone and the precision policy
the model trained under, and its input_contract.json how the model takes images. A bare
`.keras` file needs `--labels` and the data folders. Data folders are resolved to
absolute paths: given relative to the working folder or absolute, or (for a run whose
config stores relative paths) relative to where the run was trained.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError, first_line
from tledge.core.input_contract import InputContract, read_input_contract
from tledge.core.labels import read_labels
from tledge.core.run_folder import RunFolder
from tledge.core.sources import run_image_folder
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
        input_contract: How the model takes images, from the run's input_contract.json
            (or one beside a `.keras` file); None when there is none.
        temperature: Temperature already folded into the model (metrics.json's
            "calibration"; 1.0 when not calibrated).
        unknown_threshold: The run's unknown threshold, or None.
    """

    model_path: Path
    labels: tuple[str, ...]
    backbone: str
    precision: str
    calibration_data: Path | None
    eval_data: Path | None
    export_dir: Path
    source_run: str
    input_contract: InputContract | None
    temperature: float = 1.0
    unknown_threshold: float | None = None


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
        input_contract=_contract_beside(given),
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
    calibration = (run.read_metrics() if run.metrics.is_file() else {}).get("calibration") or {}
    run_root = run.root.resolve()
    return ExportSource(
        model_path=run.trained_model,
        labels=tuple(labels),
        backbone=config.backbone or "",
        precision=config.precision or "float32",
        calibration_data=_existing_folder(calibration_data, "--calibration-data")
        or run_image_folder(run, "data"),
        eval_data=_existing_folder(eval_data, "--eval-data")
        or run_image_folder(run, "test")
        or run_image_folder(run, "val"),
        export_dir=Path(output_dir) if output_dir else run.export_dir,
        source_run=str(run_root),
        input_contract=run.read_input_contract(),
        temperature=float(calibration.get("temperature", 1.0)),
        unknown_threshold=calibration.get("unknown_threshold"),
    )


def _existing_folder(folder: str | os.PathLike | None, option: str) -> Path | None:
    if folder is None:
        return None
    directory = Path(folder)
    if not directory.is_dir():
        raise TledgeError(f"{option} {directory}: folder not found")
    return directory.resolve()


def model_input_contract(
    model_file: Path, model_size: tuple[int, int], recorded: InputContract | None = None
) -> tuple[InputContract, list[str]]:
    """How a Keras model takes images, checked against its input size; also warnings.

    Args:
        model_file: The `.keras` file (or SavedModel folder) of a run.
        model_size: The model's input (height, width).
        recorded: The contract already read (e.g. `ExportSource.input_contract`); None
            looks for the run's input_contract.json beside `model_file`.

    Returns:
        The contract, and a warning when a run trained before tledge recorded its
        contract gets the one every tledge backbone had then.

    Raises:
        TledgeError: when the recorded contract's size is not the model's.
    """
    contract = recorded or _contract_beside(Path(model_file))
    if contract is not None:
        if tuple(contract.input_size) != tuple(model_size):
            raise TledgeError(
                f"{model_file}: the run's input contract says input {contract.input_size} "
                f"but the model takes {tuple(model_size)}"
            )
        return contract, []
    contract = InputContract.raw_rgb_stretch_half_pixel(model_size)
    return contract, [
        f"{model_file}: no input_contract.json (trained before tledge recorded it); using raw "
        f"0-255 {contract.color_order}, {contract.resize}, {contract.interpolation}, the "
        "input of every tledge backbone then"
    ]


def _contract_beside(model_file: Path) -> InputContract | None:
    """The input_contract.json of the run a `.keras` file sits in (or beside it), if any."""
    for folder in (model_file.parent, model_file.parent.parent):
        run = RunFolder(folder)
        if run.input_contract.is_file():
            return read_input_contract(run.input_contract)
    return None
