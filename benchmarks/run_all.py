"""Every benchmark in one go, into one report: what `benchmarks/results/` was made with.

    tledge bench all --run runs/food_mobilenetv2 \
        --reference ../shared/data/tflite --data ../shared/data/food_mnist10 \
        --weights ../shared/data/weights/mobilenet_v2_1.0_224_no_top.from_slim_npy.h5 \
        --output benchmarks/results

Steps (choose with --only): latency (the run's variants and the reference .tflite files
beside them), client (edge client overhead), pipeline (camera loop), training (frozen
phase naive vs cached). The TensorFlow steps run last, after the TF-free ones.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.benchmarks import client_overhead, pipeline, training
from tledge.benchmarks.frames import CAMERA_SIZE, camera_frames, images_in
from tledge.benchmarks.latency import LatencyResult, measure_latency
from tledge.benchmarks.plots import accuracy_latency_plot, latency_plot, stage_breakdown_plot
from tledge.benchmarks.report import BenchmarkOutput, Log, build_report, write_report
from tledge.benchmarks.variants import find_variants
from tledge.core.errors import TledgeError

STEPS = ("latency", "client", "pipeline", "training")
REFERENCE_LABELS = "imagenet_labels.txt"
REFERENCE_FOR_CLIENT = "mobilenet_v2_1.0_224_quant.tflite"


@dataclass(frozen=True)
class RunAllOptions:
    """What `run_all` measures.

    Attributes:
        run: Exported run folder (latency, client and pipeline steps use its int8 model).
        reference: Folder of reference .tflite files and imagenet_labels.txt.
        data: Dataset with train/ and test/ (training step; test photos make frames).
        weights: Backbone weights for the training step.
        runs: Timed runs per latency measurement.
        thread_counts: Latency thread counts.
        client_runs: Timed calls per client-overhead measurement.
        frames: Timed frames per pipeline source.
        train_per_class: Training images per class in the training step.
        train_size: Image side in the training step.
        steps: Which of `STEPS` to run.
        output: Folder for results.{json,md} and the plots.
    """

    run: Path | None = None
    reference: Path | None = None
    data: Path | None = None
    weights: str = "none"
    runs: int = 100
    thread_counts: tuple[int, ...] = (1, 2, 4)
    client_runs: int = 300
    frames: int = 300
    train_per_class: int = 40
    train_size: int = 128
    steps: tuple[str, ...] = STEPS
    output: Path = Path("benchmarks/results")

    def __post_init__(self) -> None:
        unknown = sorted(set(self.steps) - set(STEPS))
        if unknown:
            raise TledgeError(f"--only: unknown steps {unknown}; choose from {', '.join(STEPS)}")

    @property
    def int8(self) -> Path | None:
        """The run's exported int8 model."""
        return self.run / "export" / "model_int8.tflite" if self.run else None

    @property
    def reference_labels(self) -> Path | None:
        """The reference models' labels file."""
        return self.reference / REFERENCE_LABELS if self.reference else None


# A step returns its report sections and its notes.
StepResult = tuple[dict[str, Any], list[str]]


def run_all(options: RunAllOptions, command: str = "", log: Log = lambda text: None):
    """Run the chosen steps; write results.{json,md} and the plots into `options.output`.

    Returns:
        A `BenchmarkOutput`.

    Raises:
        TledgeError: when a step lacks the input it needs (--run, --data).
    """
    photos = camera_frames(
        images_in(options.data / "test" if options.data else None), CAMERA_SIZE, 24
    )
    steps: dict[str, Callable[[], StepResult]] = {
        "latency": lambda: latency_step(options, log),
        "client": lambda: client_step(options, photos, log),
        "pipeline": lambda: pipeline_step(options, photos, log),
        "training": lambda: training_step(options, log),
    }
    sections: dict[str, Any] = {}
    notes: list[str] = []
    for name in STEPS:
        if name in options.steps:
            found, said = steps[name]()
            sections.update(found)
            notes += said
    report = build_report(command, notes=notes, **sections)
    written = write_report(report, options.output, "results")
    return BenchmarkOutput(report, written + write_plots(report, options.output))


def latency_step(options: RunAllOptions, log: Log) -> StepResult:
    """Latency of the run's variants and the reference models, plus a plain-loop check."""
    targets = [options.run] if options.run else []
    if options.reference:
        targets += sorted(options.reference.glob("*.tflite"))
    rows = measure_latency(
        find_variants(targets, labels=options.reference_labels),
        list(options.thread_counts),
        options.runs,
        progress=lambda done, total, text: log(f"latency [{done}/{total}] {text}"),
    )
    check = independent_check(next(r for r in rows if r.kind == "tflite"), options.runs)
    notes = [
        f"Latency: {options.runs} timed runs after 10 warm-up runs, each model and "
        "thread count in a fresh process; input tensor set once, invoke() timed.",
        f"Check: a plain in-process invoke() loop on {check['model']} {check['variant']} at "
        f"{check['threads']} threads gave a median of {check['plain_loop_median_ms']:.3f} ms "
        f"vs the benchmark's p50 {check['bench_p50_ms']:.3f} ms (ratio {check['ratio']:.2f}).",
    ]
    return {"latency": rows, "latency_check": check}, notes


def independent_check(row: LatencyResult, runs: int) -> dict:
    """Time `row`'s model with a plain invoke() loop here, to compare with the benchmark."""
    from tledge.edge.interpreter import open_interpreter

    interpreter, _ = open_interpreter(row.path, num_threads=row.threads)
    for _ in range(10):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1e3)
    median = statistics.median(times)
    return {
        "model": row.model,
        "variant": row.variant,
        "threads": row.threads,
        "bench_p50_ms": row.p50_ms,
        "plain_loop_median_ms": median,
        "ratio": row.p50_ms / median,
    }


def client_step(options: RunAllOptions, photos: Sequence, log: Log) -> StepResult:
    """Edge client overhead of the run's int8 model and one reference model."""
    models = [m for m in (options.int8,) if m is not None]
    if options.reference:
        models.append(options.reference / REFERENCE_FOR_CLIENT)
    rows = []
    for model in models:
        labels = options.reference_labels if model.parent == options.reference else None
        rows += client_overhead.measure_client_overhead(
            model,
            labels,
            threads=[1, 2],
            runs=options.client_runs,
            frames=photos,
            progress=lambda text: log(f"client overhead: {text}"),
        )
    return {"client_overhead": {"rows": rows}}, [client_overhead.METHOD_NOTE]


def pipeline_step(options: RunAllOptions, photos: Sequence, log: Log) -> StepResult:
    """The camera loop on a video made from test photos and on a simulated camera."""
    int8 = options.int8
    if int8 is None:
        raise TledgeError("the pipeline step needs --run with an exported int8 model")
    with tempfile.TemporaryDirectory() as scratch:
        video = pipeline.write_video(Path(scratch) / "clip.mp4", photos, options.frames + 40)
        rows = pipeline.measure_pipeline(
            int8,
            video,
            threads=2,
            frames=options.frames,
            progress=lambda text: log(f"pipeline: {text}"),
        )
    notes = [
        f"Pipeline: {int8.name}, 2 threads, {CAMERA_SIZE[1]}x{CAMERA_SIZE[0]} "
        f"frames made from test photos, {options.frames} timed frames per source.",
        *pipeline.PIPELINE_NOTES,
        *(
            f"{row.source}: limited by the camera rate, not the model."
            for row in rows
            if row.camera_bound
        ),
    ]
    return {"pipeline": {"stages": list(pipeline.STAGES), "rows": rows}}, notes


def training_step(options: RunAllOptions, log: Log) -> StepResult:
    """Frozen-phase training, naive vs the feature cache."""
    if options.data is None:
        raise TledgeError("the training step needs --data with train/ and test/ folders")
    setup = training.TrainingSetup(
        data=str(options.data / "train"),
        test=str(options.data / "test"),
        weights=options.weights,
        image_size=(options.train_size, options.train_size),
        per_class=options.train_per_class,
    )
    section = training.measure_frozen_phase(setup, progress=log)
    return {"training": section}, training.training_notes(section)


def write_plots(report: dict[str, Any], output: Path) -> list[Path]:
    """The latency and pipeline plots of `report`; returns the files written."""
    written: list[Path] = []
    if "latency" in report:
        written.append(latency_plot(report["latency"], output / "latency.png"))
        scatter = accuracy_latency_plot(report["latency"], output / "accuracy_latency.png")
        written += [scatter] if scatter else []
    if "pipeline" in report:
        rows = report["pipeline"]["rows"]
        written.append(stage_breakdown_plot(rows, pipeline.STAGES, output / "stages.png"))
    return written
