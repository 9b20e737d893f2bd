"""`export/drift.json`: the drift report every variant of an export is described in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tledge import __version__
from tledge.core.atomic import atomic_write_text
from tledge.exporter.defaults import VARIANTS
from tledge.exporter.results import ExportOptions, VariantResult


def write_drift_report(
    path: Path,
    keras_entry: dict[str, Any],
    results: list[VariantResult],
    options: ExportOptions,
    source_run: str,
    measured_at: str,
) -> Path:
    """Update drift.json atomically, variant by variant, and return its path.

    "variants" describes the file in place for each variant (`model_<variant>.tflite`);
    "rejected" the latest rejected attempt (`model_<variant>.rejected.tflite`). A variant
    exported now gets a new entry; the entries of files that were not re-exported are
    kept as long as their file is there, and a rejected export leaves the good file's
    entry alone. Every entry says when and on which images it was measured.

    Args:
        path: The drift.json to update.
        keras_entry: {"accuracy", "num_images", "eval_data"} of the Keras model now.
        results: The variants exported now.
        options: The options they were exported with (thresholds are recorded).
        source_run: The run folder the model came from.
        measured_at: UTC time of this export, ISO 8601.
    """
    previous = _previous_report(path)
    variants = _entries_with_files(previous.get("variants"), path.parent)
    rejected = _entries_with_files(previous.get("rejected"), path.parent)
    for result in results:
        entry = _variant_entry(result, options, keras_entry, measured_at)
        if result.accepted:
            variants[result.variant] = entry
            rejected.pop(result.variant, None)
        else:
            rejected[result.variant] = entry
    report = {
        "keras": keras_entry,
        "variants": {v: variants[v] for v in VARIANTS if v in variants},
        "rejected": {v: rejected[v] for v in VARIANTS if v in rejected},
        "max_drift_pp": options.max_drift_pp,
        "min_agreement": options.min_agreement,
        "measured_at": measured_at,
        "tledge_version": __version__,
        "source_run": source_run,
    }
    return atomic_write_text(path, json.dumps(report, indent=2) + "\n")


def _previous_report(path: Path) -> dict[str, Any]:
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return previous if isinstance(previous, dict) else {}


def _entries_with_files(entries: Any, folder: Path) -> dict[str, Any]:
    """The entries (of one section of a previous report) whose file is still there."""
    if not isinstance(entries, dict):
        return {}
    return {
        variant: entry
        for variant, entry in entries.items()
        if variant in VARIANTS
        and isinstance(entry, dict)
        and entry.get("file")
        and (folder / str(entry["file"])).is_file()
    }


def _variant_entry(
    result: VariantResult, options: ExportOptions, keras_entry: dict[str, Any], measured_at: str
) -> dict[str, Any]:
    entry = {
        "file": result.path.name,
        "measured_at": measured_at,
        "eval_data": keras_entry["eval_data"],
        "num_images": keras_entry["num_images"],
        "keras_accuracy": keras_entry["accuracy"],
        "accuracy": result.drift.accuracy,
        "top1_drift_pp": result.drift.top1_drift_pp,
        "agreement": result.drift.agreement,
        "mean_abs_prob_diff": result.drift.mean_abs_prob_diff,
        "per_class_accuracy_delta": result.drift.per_class_accuracy_delta,
        "size_bytes": result.size_bytes,
        "accepted": result.accepted,
        "problems": list(result.problems),
        "max_drift_pp": options.max_drift_pp,
        "min_agreement": options.min_agreement,
        "runtimes": result.runtimes,
        "op_counts": result.graph.op_counts,
        "input_dtype": result.graph.input_quantization.dtype,
        "output_dtype": result.graph.output_quantization.dtype,
    }
    if result.variant == "int8":
        entry["full_integer"] = result.graph.is_full_integer
        entry["float_ops"] = list(result.graph.float_ops)
        entry["io_type"] = options.io_type
        entry["int8_rounding"] = options.int8_rounding if result.prepared_layers else "nearest"
        entry["prepared_layers"] = result.prepared_layers
    return entry
