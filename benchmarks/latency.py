"""Model latency: p50/p90/p99, throughput and peak memory of every variant at each thread count.

Each (variant, thread count) is timed in a fresh Python process
(`tledge.benchmarks.latency_worker`): the peak RSS it reports is then that model's and
not the high-water mark of everything timed before, and TensorFlow's thread setting (fixed
when it starts) can differ per measurement. The timed call is `interpreter.invoke()` with
the input tensor already set (as TFLite's own `benchmark_model` does), or one batch-1 call
of the Keras model compiled with `tf.function`.

`tledge bench latency` (or plain `tledge bench`) runs `latency_benchmark`:
    tledge bench runs/food --runs 100 --threads 1,2,4
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tledge.benchmarks.plots import accuracy_latency_plot, latency_plot, plots_available
from tledge.benchmarks.report import BenchmarkOutput, Log, build_report, write_report
from tledge.benchmarks.variants import Variant, find_variants, tensorflow_installed
from tledge.core.errors import TledgeError

WORKER = "tledge.benchmarks.latency_worker"
WORKER_TIMEOUT_S = 1800


@dataclass(frozen=True)
class LatencyResult:
    """Latency of one variant at one thread count.

    Attributes:
        model: Run name or file stem the variant belongs to.
        variant: "keras", "fp32", "fp16", "dynamic", "int8" or "tflite".
        kind: "keras" or "tflite".
        path: Model file.
        threads: Thread count the runtime was given.
        runs: Number of timed runs (after `warmup` untimed ones).
        warmup: Number of untimed runs before timing.
        p50_ms, p90_ms, p99_ms, mean_ms, min_ms: Per-run latency statistics.
        images_per_s: Throughput, 1000 / mean_ms (batch 1).
        size_bytes: File size.
        peak_rss_mb: Peak resident memory of the measuring process (Python, numpy, the
            runtime and the model).
        model_rss_mb: Part of the peak added by loading and running the model.
        accuracy: Top-1 accuracy (0-1) from the exporter's drift report, or None.
        drift_pp: Top-1 drift against Keras in percentage points, or None.
        runtime: Runtime name and version that ran it.
        input: Input tensor shape and dtype, e.g. "1x224x224x3 uint8".
    """

    model: str
    variant: str
    kind: str
    path: str
    threads: int
    runs: int
    warmup: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    images_per_s: float
    size_bytes: int
    peak_rss_mb: float
    model_rss_mb: float
    accuracy: float | None
    drift_pp: float | None
    runtime: str
    input: str


def parse_threads(text: str) -> list[int]:
    """Parse "1,2,4" into [1, 2, 4].

    Raises:
        TledgeError: when an entry is not a positive integer.
    """
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise TledgeError(f"--threads {text!r}: expected positive integers like 1,2,4")
    return list(dict.fromkeys(counts))


def measure_latency(
    variants: Sequence[Variant],
    threads: Sequence[int] = (1, 2, 4),
    runs: int = 100,
    warmup: int = 10,
    runtime: str = "auto",
    progress: Callable[[int, int, str], None] | None = None,
) -> list[LatencyResult]:
    """Time every variant at every thread count, each in a fresh process.

    Args:
        variants: What to time, from `find_variants`.
        threads: Thread counts to give the runtime.
        runs: Timed runs per measurement.
        warmup: Untimed runs before timing.
        runtime: TFLite runtime ("auto", "litert", "tflite-runtime", "tensorflow").
        progress: Called as `progress(done, total, description)` before each measurement.

    Returns:
        One `LatencyResult` per (variant, thread count), in that order.

    Raises:
        TledgeError: when a model cannot be loaded or timed, or its labels do not match.

    Example:
        >>> results = measure_latency(find_variants(["runs/food"]), threads=[2], runs=50)
    """
    if runs < 1 or warmup < 0:
        raise TledgeError("--runs must be at least 1 and --warmup at least 0")
    jobs = [(variant, count) for variant in variants for count in threads]
    results = []
    for done, (variant, count) in enumerate(jobs):
        if progress is not None:
            progress(done, len(jobs), f"{variant.model} {variant.name} threads={count}")
        spec = {
            "kind": variant.kind,
            "path": str(variant.path),
            "threads": count,
            "runs": runs,
            "warmup": warmup,
            "runtime": runtime,
        }
        results.append(_summarize(variant, spec, run_worker(spec)))
    if progress is not None:
        progress(len(jobs), len(jobs), "done")
    return results


def run_worker(spec: dict) -> dict:
    """Run `latency_worker` on `spec` in a fresh Python process and return its JSON result.

    Raises:
        TledgeError: when the worker fails; the message names the model file.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    try:
        completed = subprocess.run(
            [sys.executable, "-m", WORKER, json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
            timeout=WORKER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise TledgeError(f"{spec['path']}: timing took over {WORKER_TIMEOUT_S} s") from None
    lines = completed.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        raise TledgeError(f"{spec['path']}: benchmark process failed ({tail[0]})") from None
    if "error" in result:
        raise TledgeError(f"{spec['path']}: cannot time this model ({result['error']})")
    return result


def latency_stats(times_ms: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/min of per-run times in ms, and images/s from the mean."""
    times = np.asarray(times_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    mean = float(times.mean())
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": mean,
        "min_ms": float(times.min()),
        "images_per_s": 1000.0 / mean,
    }


def _summarize(variant: Variant, spec: dict, measured: dict) -> LatencyResult:
    if variant.num_labels is not None and variant.num_labels != measured["num_outputs"]:
        raise TledgeError(
            f"{variant.path}: {variant.num_labels} labels but the model has "
            f"{measured['num_outputs']} outputs; pass the matching --labels file"
        )
    shape = "x".join(str(v) for v in measured["input_shape"])
    return LatencyResult(
        model=variant.model,
        variant=variant.name,
        kind=variant.kind,
        path=str(variant.path),
        threads=spec["threads"],
        runs=spec["runs"],
        warmup=spec["warmup"],
        **latency_stats(measured["times_ms"]),
        size_bytes=variant.size_bytes,
        peak_rss_mb=measured["peak_rss_kb"] / 1024,
        model_rss_mb=(measured["peak_rss_kb"] - measured["baseline_rss_kb"]) / 1024,
        accuracy=variant.accuracy,
        drift_pp=variant.drift_pp,
        runtime=measured["runtime"],
        input=f"{shape} {measured['input_dtype']}",
    )


def latency_benchmark(
    targets: Sequence[Path],
    thread_counts: Sequence[int],
    output: Path,
    runs: int = 100,
    warmup: int = 10,
    labels: Path | None = None,
    runtime: str = "auto",
    include_keras: bool = True,
    command: str = "",
    log: Log = lambda text: None,
) -> BenchmarkOutput:
    """Time every variant of `targets`, write bench.{json,md} and the plots into `output`.

    Args:
        targets: Run folders (their model.keras and every export/*.tflite) or .tflite files.
        thread_counts: Thread counts to time each variant at.
        output: Folder for the report and plots.
        runs: Timed runs per measurement.
        warmup: Untimed runs before timing.
        labels: Labels of plain .tflite files without an embedded contract.
        runtime: TFLite runtime ("auto", "litert", "tflite-runtime", "tensorflow").
        include_keras: Also time each run's Keras model (needs TensorFlow).
        command: The command line, recorded in the report.
        log: Called with notes and "[done/total] variant" progress lines.

    Returns:
        The report and the files written.

    Example:
        >>> latency_benchmark([Path("runs/food")], [1, 2], Path("runs/food/bench"))
    """
    variants = find_variants(list(targets), labels=labels, include_keras=include_keras)
    notes = []
    if include_keras and not tensorflow_installed() and any(t.is_dir() for t in targets):
        notes.append("TensorFlow is not installed here: the Keras model was not timed.")
    if not plots_available():
        notes.append("matplotlib is not installed here: no plots (pip install matplotlib).")
    for note in notes:
        log(note)
    results = measure_latency(
        variants,
        list(thread_counts),
        runs,
        warmup,
        runtime,
        lambda done, total, description: log(f"[{done}/{total}] {description}"),
    )
    report = build_report(command, notes=notes, latency=results)
    written = write_report(report, output, "bench")
    if plots_available():
        written.append(latency_plot(report["latency"], output / "latency.png"))
        scatter = accuracy_latency_plot(report["latency"], output / "accuracy_latency.png")
        if scatter is not None:
            written.append(scatter)
    return BenchmarkOutput(report, written)
