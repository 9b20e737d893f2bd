"""`export_model`: a trained Keras model to verified TFLite files with an accuracy-drift gate.

Order of work, chosen so a failure never costs a good file: convert every requested
variant first (a conversion error stops before anything is written), then for each
variant measure drift on held-out images, embed the model contract, check that the
runtimes load it, and only then write it under its final name atomically. A variant
that fails a check is written as `model_<variant>.rejected.tflite` instead, so the
previous good `model_<variant>.tflite`, if any, stays in place.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError
from tledge.core.folders import describe_bad_files
from tledge.core.input_contract import InputContract
from tledge.core.labels import write_labels
from tledge.exporter.capture import import_tensorflow_quietly
from tledge.exporter.convert import convert_variant, export_saved_model
from tledge.exporter.datasets import (
    ImageSet,
    ProgressCallback,
    calibration_per_class,
    load_image_set,
)
from tledge.exporter.defaults import INT8_ROUNDINGS, IO_TYPES, VARIANTS
from tledge.exporter.drift import top1_accuracy
from tledge.exporter.drift_report import write_drift_report
from tledge.exporter.float32_twin import float32_twin, uses_low_precision
from tledge.exporter.inference import keras_input, predict_keras, softmax
from tledge.exporter.loading import (
    ExportSource,
    load_keras_model,
    model_input_contract,
    resolve_source,
)
from tledge.exporter.results import ExportOptions, ExportResult, VariantResult
from tledge.exporter.runtime_check import runtimes_in_other_python
from tledge.exporter.tf_keras_model import is_tf_keras_model
from tledge.exporter.variant_check import Baseline, check_and_write
from tledge.exporter.weight_rounding import int8_weights_prepared


def export_model(
    path: str | os.PathLike,
    options: ExportOptions | None = None,
    *,
    labels_file: str | os.PathLike | None = None,
    calibration_data: str | os.PathLike | None = None,
    eval_data: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    on_progress: ProgressCallback | None = None,
) -> ExportResult:
    """Export a run folder (or `.keras` file) to TFLite variants, gated on accuracy drift.

    Args:
        path: A run folder or a `.keras` file.
        options: Variants and checks, see `ExportOptions` (default: int8 only).
        labels_file: labels.txt, needed for a bare `.keras` file.
        calibration_data: Class-per-folder images for int8 calibration (default: the
            run's training data).
        eval_data: Class-per-folder held-out images (default: the run's test set).
        output_dir: Where to write (default: `<run>/export`).
        on_progress: Called as `on_progress(stage, done, total)` while working.

    Returns:
        An `ExportResult`; check `.rejected` - a rejected variant is not an exception.

    Raises:
        TledgeError: on bad input or a failed conversion (nothing is written then).

    Example:
        >>> result = export_model("runs/food", ExportOptions(variants=("fp32", "int8")))
        >>> [(v.variant, v.accepted, v.drift.top1_drift_pp) for v in result.variants]
    """
    options = options or ExportOptions()
    _check_options(options)
    source = resolve_source(path, labels_file, calibration_data, eval_data, output_dir)
    progress = on_progress or _ignore_progress
    if source.eval_data is None:
        raise TledgeError(
            f"{path}: no held-out images for the drift check (the run has no test or val "
            "folder); pass --eval-data DIR"
        )
    if "int8" in options.variants and source.calibration_data is None:
        raise TledgeError(f"{path}: int8 needs calibration images; pass --calibration-data DIR")

    for python in options.check_pythons:
        runtimes_in_other_python(python)  # a bad --check-python fails before any work
    progress("loading model", 0, 1)
    import_tensorflow_quietly()
    model = load_keras_model(source.model_path)
    input_size = _input_size(model, source)
    input_contract, contract_warnings = model_input_contract(
        source.model_path, input_size, source.input_contract
    )
    twin = source.precision != "float32" or uses_low_precision(model)
    if twin:
        model = float32_twin(model)
    output_kind = _output_kind(model)
    progress("loading model", 1, 1)

    held_out = load_image_set(
        source.eval_data,
        source.labels,
        input_contract,
        stage="reading held-out",
        on_progress=progress,
    )
    calibration = _calibration_set(source, options, input_contract, progress)
    reference = predict_keras(
        model, held_out.images, input_contract, stage="keras", on_progress=progress
    )
    if output_kind == "logits":
        reference = softmax(reference)
    baseline = Baseline(held_out, reference, output_kind, input_contract)
    measured_at = datetime.now(timezone.utc).isoformat(timespec="seconds")

    with tempfile.TemporaryDirectory(prefix="tledge-export-") as scratch_name:
        scratch = Path(scratch_name)
        converted, prepared = _convert_all(
            model, input_contract, options, calibration, scratch, progress
        )
        results = [
            check_and_write(variant, model_bytes, source, options, baseline, scratch, progress)
            for variant, model_bytes in converted.items()
        ]
    results = [
        dataclasses.replace(result, prepared_layers=prepared.get(result.variant, 0))
        for result in results
    ]
    labels_path = write_labels(source.export_dir / "labels.txt", source.labels)
    drift_path = _write_drift_json(source, options, baseline, results, measured_at)
    warnings = contract_warnings + _skip_warnings(source, held_out, calibration)
    warnings += [warning for result in results for warning in result.warnings]
    if _prepares_int8_weights(options) and is_tf_keras_model(model):
        warnings.append(f"int8: --int8-rounding {options.int8_rounding} needs a Keras 3 model")
    if not any(result.runtimes.get("tflite-runtime") is not None for result in results):
        warnings.append(
            "the models were not checked with tflite-runtime: it is not installed here "
            "(it needs numpy<2); pass --check-python with a venv that has it"
        )
    return ExportResult(
        export_dir=source.export_dir,
        keras_accuracy=top1_accuracy(reference, held_out.labels),
        num_images=len(held_out.labels),
        variants=tuple(results),
        labels_file=labels_path,
        drift_file=drift_path,
        float32_twin=twin,
        calibration_images=0 if calibration is None else len(calibration.images),
        warnings=tuple(warnings),
    )


def _check_options(options: ExportOptions) -> None:
    if not options.variants:
        raise TledgeError("nothing to export: pick --fp32, --fp16, --dynamic, --int8 or --all")
    unknown = [v for v in options.variants if v not in VARIANTS]
    if unknown:
        raise TledgeError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if options.io_type not in IO_TYPES:
        raise TledgeError(f"--io-type {options.io_type}: choose from {', '.join(IO_TYPES)}")
    if options.calibration_size < 1:
        raise TledgeError("--calibration-size must be at least 1")
    # `not (low <= x <= high)` also refuses NaN, which compares false with everything and
    # would switch a gate off; infinities are outside the ranges.
    if not (isinstance(options.max_drift_pp, (int, float)) and 0 <= options.max_drift_pp <= 100):
        raise TledgeError(
            f"--max-drift {options.max_drift_pp}: give a number of percentage points from 0 to 100"
        )
    if not (isinstance(options.min_agreement, (int, float)) and 0 <= options.min_agreement <= 1):
        raise TledgeError(
            f"--min-agreement {100 * options.min_agreement:g}: give a percentage from 0 to 100"
        )
    if options.num_threads is not None and options.num_threads < 1:
        raise TledgeError(f"--threads {options.num_threads}: give 1 or more")
    if options.int8_rounding not in INT8_ROUNDINGS:
        raise TledgeError(
            f"--int8-rounding {options.int8_rounding}: choose from {', '.join(INT8_ROUNDINGS)}"
        )


def _prepares_int8_weights(options: ExportOptions) -> bool:
    """Whether the int8 variant asks for weights other than the converter's own rounding."""
    return "int8" in options.variants and options.int8_rounding != "nearest"


def _ignore_progress(stage: str, done: int, total: int) -> None:
    """Progress callback used when the caller passes none."""


def _input_size(model: Any, source: ExportSource) -> tuple[int, int]:
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else ()
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[2] is None:
        raise TledgeError(
            f"{source.model_path}: expected one RGB image input of fixed size, got shape {shape}"
        )
    classes = model.outputs[0].shape[-1]
    if classes != len(source.labels):
        raise TledgeError(
            f"{source.model_path}: the model has {classes} outputs but there are "
            f"{len(source.labels)} labels; check --labels"
        )
    return int(shape[1]), int(shape[2])


def _skip_warnings(
    source: ExportSource, held_out: ImageSet, calibration: ImageSet | None
) -> list[str]:
    """One warning per image folder with unreadable files, worded as training words it."""
    warnings = []
    if held_out.skipped:
        warnings.append(f"--eval-data {source.eval_data}: {describe_bad_files(held_out.skipped)}")
    if calibration is not None and calibration.skipped:
        warnings.append(
            f"--calibration-data {source.calibration_data}: "
            + describe_bad_files(calibration.skipped)
        )
    return warnings


def _output_kind(model: Any) -> str:
    """ "probabilities" when the model ends in a softmax, else "logits"."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "")
    if name == "softmax" or type(last).__name__ == "Softmax":
        return "probabilities"
    return "logits"


def _calibration_set(
    source: ExportSource,
    options: ExportOptions,
    input_contract: InputContract,
    progress: ProgressCallback,
) -> ImageSet | None:
    if "int8" not in options.variants or source.calibration_data is None:
        return None
    picked = load_image_set(
        source.calibration_data,
        source.labels,
        input_contract,
        limit_per_class=calibration_per_class(options.calibration_size, len(source.labels)),
        seed=options.seed,
        stage="reading calibration",
        on_progress=progress,
    )
    size = min(options.calibration_size, len(picked.images))
    return ImageSet(picked.images[:size], picked.labels[:size], picked.paths[:size], picked.skipped)


def _convert_all(
    model: Any,
    input_contract: InputContract,
    options: ExportOptions,
    calibration: ImageSet | None,
    scratch: Path,
    progress: ProgressCallback,
) -> tuple[dict[str, bytes], dict[str, int]]:
    """Convert every requested variant; also return {variant: layers prepared for int8}."""
    input_size = input_contract.input_size
    model_inputs = None if calibration is None else keras_input(calibration.images, input_contract)
    progress("saving batch-1 SavedModel", 0, 1)
    saved_model = export_saved_model(model, scratch / "saved_model", input_size)
    progress("saving batch-1 SavedModel", 1, 1)

    def representative_data():
        for values in model_inputs:
            yield values[None]

    converted, prepared = {}, {}
    for variant in [v for v in VARIANTS if v in options.variants]:
        source = saved_model
        rounding = options.int8_rounding
        if variant == "int8" and _prepares_int8_weights(options) and not is_tf_keras_model(model):
            progress(f"int8 weights ({rounding})", 0, 1)
            with int8_weights_prepared(model, model_inputs, rounding) as count:
                source = export_saved_model(model, scratch / "saved_model_int8", input_size)
            prepared[variant] = count
            progress(f"int8 weights ({rounding})", 1, 1)
        progress(f"converting {variant}", 0, 1)
        converted[variant] = convert_variant(
            source,
            variant,
            representative_data if variant == "int8" else None,
            io_type=options.io_type,
            allow_float_ops=options.allow_float_ops,
        )
        progress(f"converting {variant}", 1, 1)
    return converted, prepared


def _write_drift_json(
    source: ExportSource,
    options: ExportOptions,
    baseline: Baseline,
    results: list[VariantResult],
    measured_at: str,
) -> Path:
    keras_entry = {
        "accuracy": top1_accuracy(baseline.reference, baseline.held_out.labels),
        "num_images": len(baseline.held_out.labels),
        "eval_data": str(source.eval_data),
    }
    return write_drift_report(
        source.export_dir / "drift.json",
        keras_entry,
        results,
        options,
        source.source_run,
        measured_at,
    )
