"""Checking one converted variant and writing it: the drift gate of `export_model`.

The variant is measured as the device runs it (the edge `Classifier`, fed by the file's
own contract, embedded with the standard metadata) against the Keras model's answers on
the same fitted images, checked for integer-only ops and runtimes, and written under its
final name only when every check passes (including the self-test it embeds, run on the
written file); otherwise as `model_<variant>.rejected.tflite`, so a good file stays in
place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tledge import __version__
from tledge.core.atomic import atomic_write_bytes
from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract
from tledge.edge.classifier import Classifier
from tledge.edge.contract import GoldenExample, ModelContract
from tledge.edge.golden import check_golden
from tledge.exporter.compact import share_zero_points
from tledge.exporter.datasets import ImageSet, ProgressCallback
from tledge.exporter.drift import Drift, measure_drift
from tledge.exporter.golden import golden_examples
from tledge.exporter.graph import GraphReport, full_integer_problems, inspect_graph
from tledge.exporter.inference import predict_tflite
from tledge.exporter.loading import ExportSource
from tledge.exporter.metadata import embed_metadata
from tledge.exporter.results import ExportOptions, VariantResult
from tledge.exporter.runtime_check import check_runtimes, runtime_warnings


@dataclass(frozen=True)
class Baseline:
    """The held-out images and the Keras model's answers that every variant is held to."""

    held_out: ImageSet
    reference: np.ndarray
    output_kind: str
    input_contract: InputContract


def check_and_write(
    variant: str,
    model_bytes: bytes,
    source: ExportSource,
    options: ExportOptions,
    baseline: Baseline,
    scratch: Path,
    progress: ProgressCallback,
) -> VariantResult:
    """Measure, check and write one converted variant; see the module docstring.

    Args:
        variant: "fp32", "fp16", "dynamic" or "int8".
        model_bytes: The converter's flatbuffer.
        source: The model, labels and export folder.
        options: The thresholds and runtime checks.
        baseline: The held-out images and the Keras answers.
        scratch: A temporary folder for candidate files.
        progress: Called as `progress(stage, done, total)`.

    Raises:
        TledgeError: when LiteRT cannot load the converted model at all.
    """
    model_bytes, shared, compact_warnings = _compacted(
        variant, model_bytes, source, baseline, scratch
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

    # Measured as the device runs it: the edge Classifier, fed by the file's own contract.
    measured_file = scratch / f"model_{variant}.measured.tflite"
    measured_contract = _contract(variant, source, baseline, graph)
    measured_file.write_bytes(embed_metadata(model_bytes, measured_contract, shared))
    scores = predict_tflite(
        measured_file,
        baseline.held_out.images,
        num_threads=options.num_threads,
        stage=f"evaluating {variant}",
        on_progress=progress,
    )
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

    # The metadata does not change what the graph computes: the measured file's scores
    # are the final file's answers, which its own self-test then checks.
    golden, golden_pngs = golden_examples(
        baseline.held_out.images, scores, source.labels, options.self_test_images
    )
    if options.self_test_images and not golden:
        warnings.append(f"{variant}: no held-out image is clear enough to embed as a self-test")
    numbers = _drift_numbers(drift, options)
    contract = _contract(variant, source, baseline, graph, numbers, golden)
    final_bytes = embed_metadata(model_bytes, contract, shared, golden_pngs)
    candidate = scratch / f"model_{variant}.tflite"
    candidate.write_bytes(final_bytes)
    runtimes = check_runtimes(candidate, options.check_pythons)
    if not runtimes.get("litert", True):
        problems.append("LiteRT cannot load and run it")
    else:
        problems.extend(_self_test_problems(candidate, options))
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


def _self_test_problems(candidate: Path, options: ExportOptions) -> list[str]:
    """The written file must pass its embedded self-test here, as the device will run it."""
    try:
        classifier = Classifier(candidate, num_threads=options.num_threads)
        check_golden(classifier, classifier.golden)
    except TledgeError as error:
        return [str(error).removeprefix(f"{candidate}: ")]
    return []


def _compacted(
    variant: str,
    model_bytes: bytes,
    source: ExportSource,
    baseline: Baseline,
    scratch: Path,
) -> tuple[bytes, bool, list[str]]:
    """The converter's file with shared zero points, when that is smaller and computes the same.

    Returns the file, whether its zero points are shared, and warnings.
    """
    compact = share_zero_points(model_bytes)
    if len(compact) >= len(model_bytes):
        return model_bytes, False, []
    probe_images = baseline.held_out.images[:2]

    def scores(candidate: bytes, shared: bool) -> np.ndarray:
        file = scratch / f"model_{variant}.{'compact' if shared else 'converted'}.tflite"
        contract = _contract(variant, source, baseline, inspect_graph(candidate))
        file.write_bytes(embed_metadata(candidate, contract, share_zero_points=shared))
        return predict_tflite(file, probe_images)

    if np.array_equal(scores(model_bytes, False), scores(compact, True)):
        return compact, True, []
    warning = f"{variant}: the zero-point-sharing repack changed outputs; kept as is"
    return model_bytes, False, [warning]


def _contract(
    variant: str,
    source: ExportSource,
    baseline: Baseline,
    graph: GraphReport,
    drift: dict[str, Any] | None = None,
    golden: tuple[GoldenExample, ...] = (),
) -> ModelContract:
    """The file's contract: the run's input contract completed by the export's findings."""
    return ModelContract.for_input(
        baseline.input_contract,
        labels=source.labels,
        input_quantization=graph.input_quantization,
        output_quantization=graph.output_quantization,
        output_kind=baseline.output_kind,
        backbone=source.backbone,
        variant=variant,
        tledge_version=__version__,
        source_run=source.source_run,
        drift=drift or {},
        temperature=source.temperature,
        unknown_threshold=source.unknown_threshold,
        golden=golden,
    )


def _drift_numbers(drift: Drift, options: ExportOptions) -> dict[str, Any]:
    return {
        "keras_accuracy": round(drift.reference_accuracy, 6),
        "accuracy": round(drift.accuracy, 6),
        "top1_drift_pp": round(drift.top1_drift_pp, 4),
        "agreement": round(drift.agreement, 6),
        "mean_abs_prob_diff": round(drift.mean_abs_prob_diff, 6),
        "num_images": drift.num_images,
        "max_drift_pp": options.max_drift_pp,
    }
