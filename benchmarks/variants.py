"""Finding what to benchmark: the Keras model and exported variants of a run, or plain files.

Accuracy is never measured here; it comes from what the exporter already measured on
held-out data: `<run>/export/drift.json`, or the drift numbers embedded in a tledge
.tflite's contract. A plain .tflite (e.g. a published ImageNet model) has no accuracy.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError
from tledge.core.labels import read_labels
from tledge.core.run_folder import RunFolder
from tledge.edge.model_file import read_contract

REJECTED_SUFFIX = ".rejected.tflite"


@dataclass(frozen=True)
class Variant:
    """One model file to time.

    Attributes:
        model: Name of what it belongs to: the run folder name, or the file stem.
        name: "keras", the export variant ("fp32", "fp16", "dynamic", "int8"), or "tflite"
            for a file whose variant is unknown.
        kind: "keras" or "tflite".
        path: The model file.
        size_bytes: File size on disk.
        num_labels: Number of class names known for it, or None.
        accuracy: Top-1 accuracy (0-1) the exporter measured, or None.
        drift_pp: Top-1 drift against the Keras model in percentage points, or None.
        accuracy_source: Where `accuracy` came from ("drift.json", "contract", "").
    """

    model: str
    name: str
    kind: str
    path: Path
    size_bytes: int
    num_labels: int | None = None
    accuracy: float | None = None
    drift_pp: float | None = None
    accuracy_source: str = ""


def tensorflow_installed() -> bool:
    """True when TensorFlow can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def find_variants(
    targets: list[str | os.PathLike],
    labels: str | os.PathLike | None = None,
    include_keras: bool = True,
) -> list[Variant]:
    """Return every model to time for `targets`: run folders and/or .tflite files.

    Args:
        targets: Run folders (their model.keras and every `export/*.tflite`; a variant
            the exporter rejected for drift is named e.g. "dynamic (rejected)") or .tflite
            files.
        labels: Labels file for plain .tflite files without an embedded contract.
        include_keras: Time each run's model.keras too (only when TensorFlow is installed).

    Raises:
        TledgeError: when a target does not exist, is neither a run nor a .tflite, or
            a run has nothing to time.

    Example:
        >>> [v.name for v in find_variants(["runs/food"])]
        ['keras', 'dynamic', 'fp16', 'fp32', 'int8']
    """
    if not targets:
        raise TledgeError("give at least one run folder or .tflite file to benchmark")
    label_names = read_labels(labels) if labels is not None else None
    variants: list[Variant] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            variants.extend(_run_variants(path, include_keras and tensorflow_installed()))
        elif path.suffix == ".tflite" and path.is_file():
            variants.append(_file_variant(path, label_names))
        elif not path.exists():
            raise TledgeError(f"{path}: not found (expected a run folder or a .tflite file)")
        else:
            raise TledgeError(f"{path}: not a run folder or a .tflite file")
    return variants


def _run_variants(root: Path, include_keras: bool) -> list[Variant]:
    run = RunFolder(root)
    if not run.config.is_file():
        raise TledgeError(f"{root}: not a tledge run folder (no config.json)")
    drift = _read_drift(run.export_dir / "drift.json")
    labels = read_labels(run.labels) if run.labels.is_file() else None
    num_labels = len(labels) if labels else None
    by_file = {entry.get("file"): (name, entry) for name, entry in drift["variants"].items()}
    variants: list[Variant] = []
    if include_keras and run.model.is_file():
        keras_accuracy = drift["keras"].get("accuracy")
        variants.append(
            Variant(
                model=root.name,
                name="keras",
                kind="keras",
                path=run.model,
                size_bytes=run.model.stat().st_size,
                num_labels=num_labels,
                accuracy=keras_accuracy,
                drift_pp=0.0 if keras_accuracy is not None else None,
                accuracy_source="drift.json" if keras_accuracy is not None else "",
            )
        )
    for file in sorted(run.export_dir.glob("*.tflite")):
        stem = file.name.removesuffix(REJECTED_SUFFIX).removesuffix(".tflite")
        name, entry = by_file.get(file.name, (stem.removeprefix("model_"), {}))
        if file.name.endswith(REJECTED_SUFFIX):
            name = f"{name} (rejected)"  # over --max-drift: timed, but not to be shipped
        has_accuracy = entry.get("accuracy") is not None
        variants.append(
            Variant(
                model=root.name,
                name=name,
                kind="tflite",
                path=file,
                size_bytes=file.stat().st_size,
                num_labels=num_labels,
                accuracy=entry.get("accuracy"),
                drift_pp=entry.get("top1_drift_pp"),
                accuracy_source="drift.json" if has_accuracy else "",
            )
        )
    if not variants:
        raise TledgeError(
            f"{root}: nothing to benchmark (no model.keras with TensorFlow installed and no "
            f"export/*.tflite; run `tledge export {root}` first)"
        )
    return variants


def _file_variant(path: Path, labels: list[str] | None) -> Variant:
    contract = read_contract(path)
    drift: dict[str, Any] = dict(contract.drift) if contract else {}
    accuracy = drift.get("accuracy")
    if contract is not None:
        num_labels = len(contract.labels)
    else:
        num_labels = len(labels) if labels is not None else None
    return Variant(
        model=path.stem,
        name=(contract.variant if contract and contract.variant else "tflite"),
        kind="tflite",
        path=path,
        size_bytes=path.stat().st_size,
        num_labels=num_labels,
        accuracy=accuracy,
        drift_pp=drift.get("top1_drift_pp"),
        accuracy_source="contract" if accuracy is not None else "",
    )


def _read_drift(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"keras": {}, "variants": {}}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TledgeError(f"{path}: cannot read drift report ({error})") from None
    return {"keras": raw.get("keras") or {}, "variants": raw.get("variants") or {}}
