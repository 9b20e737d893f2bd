"""Every benchmark in one go, into one report: what `benchmarks/results/` was made with.

    python -m tledge.benchmarks.run_all --run runs/food_mobilenetv2 \
        --reference ../shared/data/tflite --data ../shared/data/food_mnist10 \
        --weights ../shared/data/weights/mobilenet_v2_1.0_224_no_top.from_slim_npy.h5 \
        --output benchmarks/results

Steps (choose with --only): latency (the run's variants and the reference .tflite files
beside them), client (edge client overhead), pipeline (camera loop), training (frozen
phase naive vs cached). The TensorFlow steps run last, after the TF-free ones.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tledge.benchmarks import client_overhead, pipeline, training
from tledge.benchmarks.frames import CAMERA_SIZE, camera_frames, images_in
from tledge.benchmarks.latency import measure_latency, parse_threads
from tledge.benchmarks.plots import accuracy_latency_plot, latency_plot, stage_breakdown_plot
from tledge.benchmarks.report import build_report, to_markdown, write_report
from tledge.benchmarks.variants import find_variants
from tledge.core.errors import TledgeError

STEPS = ("latency", "client", "pipeline", "training")
REFERENCE_LABELS = "imagenet_labels.txt"
REFERENCE_FOR_CLIENT = "mobilenet_v2_1.0_224_quant.tflite"


def say(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


def independent_check(row, runs: int) -> dict:
    """Time `row`'s model with a plain invoke() loop here, to compare with the benchmark."""
    import statistics
    import time

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks and write results.{json,md} and the plots."""
    parser = argparse.ArgumentParser(prog="python -m tledge.benchmarks.run_all")
    parser.add_argument("--run", type=Path, help="exported run folder")
    parser.add_argument("--reference", type=Path, help="folder of reference .tflite + labels")
    parser.add_argument("--data", type=Path, help="dataset with train/ and test/ folders")
    parser.add_argument("--weights", default="none", help="backbone weights for training")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--client-runs", type=int, default=300)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--train-per-class", type=int, default=40)
    parser.add_argument("--train-size", type=int, default=128)
    parser.add_argument("--only", default=",".join(STEPS))
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    steps = [step for step in args.only.split(",") if step]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise SystemExit(f"--only: unknown steps {unknown}; choose from {', '.join(STEPS)}")

    sections: dict = {}
    notes: list[str] = []
    int8 = args.run / "export" / "model_int8.tflite" if args.run else None
    reference_labels = args.reference / REFERENCE_LABELS if args.reference else None
    photos = camera_frames(images_in(args.data / "test" if args.data else None), CAMERA_SIZE, 24)
    output = args.output
    written: list[Path] = []

    if "latency" in steps:
        targets = [args.run] if args.run else []
        if args.reference:
            targets += sorted(args.reference.glob("*.tflite"))
        variants = find_variants(targets, labels=reference_labels)
        rows = measure_latency(
            variants,
            parse_threads(args.threads),
            args.runs,
            progress=lambda d, t, text: say(f"latency [{d}/{t}] {text}"),
        )
        sections["latency"] = rows
        notes.append(
            f"Latency: {args.runs} timed runs after 10 warm-up runs, each model and "
            "thread count in a fresh process; input tensor set once, invoke() timed."
        )
        check = independent_check(next(r for r in rows if r.kind == "tflite"), args.runs)
        sections["latency_check"] = check
        notes.append(
            f"Check: a plain in-process invoke() loop on {check['model']} {check['variant']} at "
            f"{check['threads']} threads gave a median of {check['plain_loop_median_ms']:.3f} ms "
            f"vs the benchmark's p50 {check['bench_p50_ms']:.3f} ms "
            f"(ratio {check['ratio']:.2f})."
        )

    if "client" in steps:
        models = [m for m in (int8,) if m is not None]
        if args.reference:
            models.append(args.reference / REFERENCE_FOR_CLIENT)
        rows = []
        for model in models:
            labels = reference_labels if model.parent == args.reference else None
            rows += client_overhead.measure_client_overhead(
                model,
                labels,
                threads=[1, 2],
                runs=args.client_runs,
                frames=photos,
                progress=lambda text: say(f"client overhead: {text}"),
            )
        sections["client_overhead"] = {"rows": rows}
        notes.append(client_overhead.METHOD_NOTE)

    if "pipeline" in steps:
        if int8 is None:
            raise TledgeError("the pipeline step needs --run with an exported int8 model")
        with tempfile.TemporaryDirectory() as scratch:
            video = pipeline.write_video(Path(scratch) / "clip.mp4", photos, args.frames + 40)
            rows = pipeline.measure_pipeline(
                int8,
                video,
                threads=2,
                frames=args.frames,
                progress=lambda text: say(f"pipeline: {text}"),
            )
        sections["pipeline"] = {"stages": list(pipeline.STAGES), "rows": rows}
        notes.append(
            f"Pipeline: {int8.name}, 2 threads, {CAMERA_SIZE[1]}x{CAMERA_SIZE[0]} "
            f"frames made from test photos, {args.frames} timed frames per source."
        )
        notes += pipeline.PIPELINE_NOTES
        notes += [
            f"{row.source}: limited by the camera rate, not the model."
            for row in rows
            if row.camera_bound
        ]

    if "training" in steps:
        if args.data is None:
            raise TledgeError("the training step needs --data with train/ and test/ folders")
        setup = training.TrainingSetup(
            data=str(args.data / "train"),
            test=str(args.data / "test"),
            weights=args.weights,
            image_size=(args.train_size, args.train_size),
            per_class=args.train_per_class,
        )
        section = training.measure_frozen_phase(setup, progress=lambda text: say(text))
        sections["training"] = section
        notes += training.training_notes(section)

    command = " ".join(["python -m tledge.benchmarks.run_all", *sys.argv[1:]])
    report = build_report(command, notes=notes, **sections)
    written += write_report(report, output, "results")
    if "latency" in report:
        written.append(latency_plot(report["latency"], output / "latency.png"))
        scatter = accuracy_latency_plot(report["latency"], output / "accuracy_latency.png")
        written += [scatter] if scatter else []
    if "pipeline" in report:
        rows = report["pipeline"]["rows"]
        written.append(stage_breakdown_plot(rows, pipeline.STAGES, output / "stages.png"))
    print(to_markdown(report))
    say("Wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TledgeError as error:
        sys.exit(f"Error: {error}")
