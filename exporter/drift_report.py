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
) -> Path:
    """Write drift.json atomically and return its path.

    Entries of variants not exported this time are kept when they were measured on the
    same held-out images (same "keras" entry) and their file is still there.

    Args:
        path: The drift.json to write.
        keras_entry: {"accuracy", "num_images", "eval_data"} of the Keras model.
        results: The variants exported now.
        options: The options they were exported with (thresholds are recorded).
        source_run: The run folder the model came from.
    """
    variants = _previous_variants(path, keras_entry)
    for result in results:
        variants[result.variant] = _variant_entry(result, options)
    report = {
        "keras": keras_entry,
        "variants": {v: variants[v] for v in VARIANTS if v in variants},
        "max_drift_pp": options.max_drift_pp,
        "min_agreement": options.min_agreement,
        "tledge_version": __version__,
        "source_run": source_run,
    }
    return atomic_write_text(path, json.dumps(report, indent=2) + "\n")


def _previous_variants(path: Path, keras_entry: dict[str, Any]) -> dict[str, Any]:
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(previous, dict) or previous.get("keras") != keras_entry:
        return {}
    return {
        variant: entry
        for variant, entry in previous.get("variants", {}).items()
        if isinstance(entry, dict) and (path.parent / str(entry.get("file", ""))).is_file()
    }


def _variant_entry(result: VariantResult, options: ExportOptions) -> dict[str, Any]:
    entry = {
        "file": result.path.name,
        "accuracy": result.drift.accuracy,
        "top1_drift_pp": result.drift.top1_drift_pp,
        "agreement": result.drift.agreement,
        "mean_abs_prob_diff": result.drift.mean_abs_prob_diff,
        "per_class_accuracy_delta": result.drift.per_class_accuracy_delta,
        "size_bytes": result.size_bytes,
        "accepted": result.accepted,
        "problems": list(result.problems),
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
