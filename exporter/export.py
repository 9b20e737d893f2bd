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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tledge import __version__
from tledge.core.atomic import atomic_write_bytes
from tledge.core.errors import TledgeError
from tledge.core.labels import write_labels
from tledge.edge.contract import ModelContract
from tledge.exporter.capture import import_tensorflow_quietly
from tledge.exporter.compact import share_zero_points
from tledge.exporter.convert import convert_variant, export_saved_model
from tledge.exporter.datasets import (
    ImageSet,
    ProgressCallback,
    calibration_per_class,
    load_image_set,
)
from tledge.exporter.defaults import INT8_ROUNDINGS, IO_TYPES, VARIANTS
from tledge.exporter.drift import Drift, measure_drift, top1_accuracy
from tledge.exporter.drift_report import write_drift_report
from tledge.exporter.float32_twin import float32_twin, uses_low_precision
from tledge.exporter.graph import GraphReport, full_integer_problems, inspect_graph
from tledge.exporter.inference import predict_keras, predict_tflite, softmax
from tledge.exporter.loading import ExportSource, load_keras_model, resolve_source
from tledge.exporter.metadata import embed_metadata
from tledge.exporter.results import ExportOptions, ExportResult, VariantResult
from tledge.exporter.runtime_check import (
    check_runtimes,
    runtime_warnings,
    runtimes_in_other_python,
)
from tledge.exporter.tf_keras_model import is_tf_keras_model
from tledge.exporter.weight_rounding import int8_weights_prepared


@dataclass(frozen=True)
class _Baseline:
    """The held-out images and the Keras model's answers that every variant is held to."""

    held_out: ImageSet
    reference: np.ndarray
    output_kind: str
    input_size: tuple[int, int]


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
    twin = source.precision != "float32" or uses_low_precision(model)
    if twin:
        model = float32_twin(model)
    output_kind = _output_kind(model)
    progress("loading model", 1, 1)

    held_out = load_image_set(
        source.eval_data, source.labels, input_size, stage="reading held-out", on_progress=progress
    )
    calibration = _calibration_set(source, options, input_size, progress)
    reference = predict_keras(model, held_out.images, stage="keras", on_progress=progress)
    if output_kind == "logits":
        reference = softmax(reference)
    baseline = _Baseline(held_out, reference, output_kind, input_size)

    with tempfile.TemporaryDirectory(prefix="tledge-export-") as scratch_name:
        scratch = Path(scratch_name)
        converted, prepared = _convert_all(
            model, input_size, options, calibration, scratch, progress
        )
        results = [
            _check_and_write(variant, model_bytes, source, options, baseline, scratch, progress)
            for variant, model_bytes in converted.items()
        ]
    results = [
        dataclasses.replace(result, prepared_layers=prepared.get(result.variant, 0))
        for result in results
    ]
    labels_path = write_labels(source.export_dir / "labels.txt", source.labels)
    drift_path = _write_drift_json(source, options, baseline, results)
    warnings = [warning for result in results for warning in result.warnings]
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
    if options.max_drift_pp < 0:
        raise TledgeError("--max-drift must be 0 or more percentage points")
    if not 0.0 <= options.min_agreement <= 1.0:
        raise TledgeError("--min-agreement must be between 0 and 100 percent")
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
    input_size: tuple[int, int],
    progress: ProgressCallback,
) -> ImageSet | None:
    if "int8" not in options.variants or source.calibration_data is None:
        return None
    picked = load_image_set(
        source.calibration_data,
        source.labels,
        input_size,
        limit_per_class=calibration_per_class(options.calibration_size, len(source.labels)),
        seed=options.seed,
        stage="reading calibration",
        on_progress=progress,
    )
    size = min(options.calibration_size, len(picked.images))
    return ImageSet(picked.images[:size], picked.labels[:size], picked.paths[:size])


def _convert_all(
    model: Any,
    input_size: tuple[int, int],
    options: ExportOptions,
    calibration: ImageSet | None,
    scratch: Path,
    progress: ProgressCallback,
) -> tuple[dict[str, bytes], dict[str, int]]:
    """Convert every requested variant; also return {variant: layers prepared for int8}."""
    progress("saving batch-1 SavedModel", 0, 1)
    saved_model = export_saved_model(model, scratch / "saved_model", input_size)
    progress("saving batch-1 SavedModel", 1, 1)

    def representative_data():
        for image in calibration.images:
            yield image[None].astype(np.float32)

    converted, prepared = {}, {}
    for variant in [v for v in VARIANTS if v in options.variants]:
        source = saved_model
        rounding = options.int8_rounding
        if variant == "int8" and _prepares_int8_weights(options) and not is_tf_keras_model(model):
            progress(f"int8 weights ({rounding})", 0, 1)
            with int8_weights_prepared(model, calibration.images, rounding) as count:
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


def _check_and_write(
    variant: str,
    model_bytes: bytes,
    source: ExportSource,
    options: ExportOptions,
    baseline: _Baseline,
    scratch: Path,
    progress: ProgressCallback,
) -> VariantResult:
    model_bytes, shared, compact_warnings = _compacted(
        variant, model_bytes, baseline.held_out.images[:2], scratch
    )
    graph = inspect_graph(model_bytes)
    problems: list[str] = []
    warnings = compact_warnings + runtime_warnings(variant, graph)
    if variant == "int8":
        integer_problems = full_integer_problems(graph, options.io_type, options.allow_float_ops)
        problems.extend(f"not full integer: {problem}" for problem in integer_problems)
        if options.allow_float_ops and graph.float_ops:
            kept = ", ".join(graph.float_ops)
            warnings.append(f"int8: float ops kept (--allow-float-ops): {kept}")

    plain_file = scratch / f"model_{variant}.plain.tflite"
    plain_file.write_bytes(model_bytes)
    scores = predict_tflite(
        plain_file,
        baseline.held_out.images,
        num_threads=options.num_threads,
        stage=f"evaluating {variant}",
        on_progress=progress,
    )
    if baseline.output_kind == "logits":
        scores = softmax(scores)
    drift = measure_drift(baseline.reference, scores, baseline.held_out.labels, source.labels)
    if drift.top1_drift_pp > options.max_drift_pp:
        problems.append(
            f"top-1 accuracy dropped {drift.top1_drift_pp:.2f} pp against Keras "
            f"(--max-drift {options.max_drift_pp:g})"
        )
    if drift.agreement < options.min_agreement:
        problems.append(
            f"agrees with Keras on {100 * drift.agreement:.1f}% of images "
            f"(--min-agreement {100 * options.min_agreement:g})"
        )

    contract = _contract(variant, source, baseline, graph, drift, options)
    final_bytes = embed_metadata(model_bytes, contract, share_zero_points=shared)
    candidate = scratch / f"model_{variant}.tflite"
    candidate.write_bytes(final_bytes)
    runtimes = check_runtimes(candidate, options.check_pythons)
    if not runtimes.get("litert", True):
        problems.append("LiteRT cannot load and run it")
    if runtimes.get("tflite-runtime") is False:
        warnings.append(f"{variant}: tflite-runtime cannot load and run it; use ai-edge-litert")

    final = source.export_dir / f"model_{variant}.tflite"
    rejected = source.export_dir / f"model_{variant}.rejected.tflite"
    target = rejected if problems else final
    atomic_write_bytes(target, final_bytes)
    if not problems:
        rejected.unlink(missing_ok=True)
    return VariantResult(
        variant=variant,
        path=target,
        accepted=not problems,
        problems=tuple(problems),
        drift=drift,
        size_bytes=len(final_bytes),
        runtimes=runtimes,
        graph=graph,
        warnings=tuple(warnings),
    )


def _compacted(
    variant: str, model_bytes: bytes, probe_images: np.ndarray, scratch: Path
) -> tuple[bytes, bool, list[str]]:
    """The converter's file with shared zero points, when that is smaller and computes the same.

    Returns the file, whether its zero points are shared, and warnings.
    """
    compact = share_zero_points(model_bytes)
    if len(compact) >= len(model_bytes):
        return model_bytes, False, []
    original_file = scratch / f"model_{variant}.converted.tflite"
    compact_file = scratch / f"model_{variant}.compact.tflite"
    original_file.write_bytes(model_bytes)
    compact_file.write_bytes(compact)
    if np.array_equal(
        predict_tflite(original_file, probe_images), predict_tflite(compact_file, probe_images)
    ):
        return compact, True, []
    return (
        model_bytes,
        False,
        [f"{variant}: the zero-point-sharing repack changed outputs; kept as is"],
    )


def _contract(
    variant: str,
    source: ExportSource,
    baseline: _Baseline,
    graph: GraphReport,
    drift: Drift,
    options: ExportOptions,
) -> ModelContract:
    return ModelContract(
        labels=source.labels,
        input_size=baseline.input_size,
        input_quantization=graph.input_quantization,
        output_quantization=graph.output_quantization,
        output_kind=baseline.output_kind,
        backbone=source.backbone,
        variant=variant,
        tledge_version=__version__,
        source_run=source.source_run,
        drift={
            "keras_accuracy": round(drift.reference_accuracy, 6),
            "accuracy": round(drift.accuracy, 6),
            "top1_drift_pp": round(drift.top1_drift_pp, 4),
            "agreement": round(drift.agreement, 6),
            "mean_abs_prob_diff": round(drift.mean_abs_prob_diff, 6),
            "num_images": drift.num_images,
            "max_drift_pp": options.max_drift_pp,
        },
    )


def _write_drift_json(
    source: ExportSource, options: ExportOptions, baseline: _Baseline, results: list[VariantResult]
) -> Path:
    keras_entry = {
        "accuracy": top1_accuracy(baseline.reference, baseline.held_out.labels),
        "num_images": len(baseline.held_out.labels),
        "eval_data": str(source.eval_data),
    }
    return write_drift_report(
        source.export_dir / "drift.json", keras_entry, results, options, source.source_run
    )
