"""`tledge bench`: the benchmarks, one subcommand each (`tledge bench TARGETS` = latency).

Each subcommand parses its options, calls the benchmark's function in `tledge.benchmarks`
and prints its table; the measuring lives there.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

DEFAULT_SUBCOMMAND = "latency"


class BenchGroup(click.Group):
    """A group whose first argument is a subcommand, or else latency's first target.

    So `tledge bench runs/food --threads 1,2` stays the latency benchmark.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [DEFAULT_SUBCOMMAND, *args]
        return super().parse_args(ctx, args)


@click.group(cls=BenchGroup)
def bench() -> None:
    """Measure latency, the edge client, the camera loop, training speed and scale.

    Every subcommand writes <name>.json and <name>.md (plus plots) and prints a table.
    Without a subcommand, the arguments go to `latency`.

    \b
    Example:
        tledge bench runs/food --threads 1,2 --runs 100
        tledge bench pipeline runs/food/export/model_int8.tflite
    """


def _log(text: str) -> None:
    click.echo(text, err=True)


def _command_line() -> str:
    """The command as typed, recorded in each report."""
    ctx = click.get_current_context()
    arguments = sys.argv[1:]
    if arguments[:1] == ["bench"]:
        arguments = arguments[1:]
    if arguments[:1] == [ctx.info_name]:
        arguments = arguments[1:]
    return shlex.join([*ctx.command_path.split(), *arguments])


def _finish(files: list[Path], table: str) -> None:
    click.echo(table)
    click.echo("Wrote " + ", ".join(str(path) for path in files), err=True)


def _threads(text: str) -> list[int]:
    from tledge.benchmarks.latency import parse_threads

    return parse_threads(text)


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@bench.command()
@click.argument("targets", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--runs", default=100, show_default=True, help="Timed runs per measurement.")
@click.option("--warmup", default=10, show_default=True, help="Untimed runs before timing.")
@click.option(
    "--threads", default="1,2,4", show_default=True, help="Comma-separated thread counts."
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labels file for plain .tflite files without an embedded tledge contract.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for bench.json, bench.md and the plots [default: RUN/bench for one run "
    "folder, else ./tledge-bench].",
)
@click.option(
    "--runtime",
    type=click.Choice(["auto", "litert", "tflite-runtime", "tensorflow"]),
    default="auto",
    show_default=True,
    help="TFLite runtime to time the .tflite files with.",
)
@click.option(
    "--keras/--no-keras",
    default=True,
    show_default=True,
    help="Also time each run's model.keras (needs TensorFlow).",
)
def latency(
    targets: tuple[Path, ...],
    runs: int,
    warmup: int,
    threads: str,
    labels: Path | None,
    output: Path | None,
    runtime: str,
    keras: bool,
) -> None:
    """Time every model variant of run folders or .tflite files and plot the trade-offs.

    TARGETS are run folders (their model.keras and every export/*.tflite) or .tflite
    files. Accuracy comes from the exporter's drift report. Prints a Markdown table and
    writes bench.json, bench.md, latency.png and accuracy_latency.png.

    Example: tledge bench runs/food --threads 1,2 --runs 100
    """
    from tledge.benchmarks.latency import latency_benchmark
    from tledge.benchmarks.report import latency_table

    result = latency_benchmark(
        targets,
        _threads(threads),
        output or _default_output(targets),
        runs=runs,
        warmup=warmup,
        labels=labels,
        runtime=runtime,
        include_keras=keras,
        command=_command_line(),
        log=_log,
    )
    _finish(result.files, latency_table(result.report["latency"]))


def _default_output(targets: tuple[Path, ...]) -> Path:
    if len(targets) == 1 and targets[0].is_dir():
        return targets[0] / "bench"
    return Path("tledge-bench")


@bench.command("client-overhead")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--labels", type=click.Path(path_type=Path), help="Labels of plain .tflite files.")
@click.option("--threads", default="2", show_default=True, help="Comma-separated thread counts.")
@click.option("--runs", default=200, show_default=True, help="Timed calls per measurement.")
@click.option("--images", type=click.Path(path_type=Path), help="Photos made into camera frames.")
@click.option("--output", type=click.Path(path_type=Path), default=Path("tledge-bench"))
def client_overhead(models, labels, threads, runs, images, output) -> None:
    """The edge client's classify() against raw invoke() on the same frames.

    Example: tledge bench client-overhead model_int8.tflite --threads 1,2 --runs 300
    """
    from tledge.benchmarks.client_overhead import client_overhead_benchmark
    from tledge.benchmarks.report import client_overhead_table

    result = client_overhead_benchmark(
        models, _threads(threads), output, labels, runs, images, _command_line(), _log
    )
    _finish(result.files, client_overhead_table(result.report["client_overhead"]))


@bench.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--labels", type=click.Path(path_type=Path), help="Labels of a plain .tflite.")
@click.option("--threads", default=2, show_default=True, help="Interpreter threads.")
@click.option("--frames", default=300, show_default=True, help="Timed frames per source.")
@click.option("--video", type=click.Path(path_type=Path), help="Video file [default: made].")
@click.option("--images", type=click.Path(path_type=Path), help="Photos for the made video.")
@click.option("--camera-fps", type=float, help="Simulated camera rate.")
@click.option("--output", type=click.Path(path_type=Path), default=Path("tledge-bench"))
def pipeline(model, labels, threads, frames, video, images, camera_fps, output) -> None:
    """The camera loop on a video file and a simulated live camera, stage by stage.

    Example: tledge bench pipeline model_int8.tflite --threads 2 --frames 300
    """
    from tledge.benchmarks.pipeline import pipeline_benchmark
    from tledge.benchmarks.report import pipeline_table

    result = pipeline_benchmark(
        model,
        output,
        labels,
        threads,
        frames,
        video,
        images,
        camera_fps,
        _command_line(),
        _log,
    )
    _finish(result.files, pipeline_table(result.report["pipeline"]))


@bench.command()
@click.option("--data", required=True, help="Class-per-folder training images.")
@click.option("--test", required=True, help="Class-per-folder test images.")
@click.option("--weights", default="none", show_default=True, help="none, imagenet or a .h5.")
@click.option("--alpha", default=1.0, show_default=True)
@click.option("--image-size", default=128, show_default=True)
@click.option("--per-class", default=30, show_default=True, help="Train images per class; 0 = all.")
@click.option("--test-per-class", default=0, show_default=True, help="0 = all test images.")
@click.option("--epochs", default=10, show_default=True)
@click.option("--dropout", default=0.2, show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=Path("tledge-bench"))
def training(
    data, test, weights, alpha, image_size, per_class, test_per_class, epochs, dropout, output
) -> None:
    """Frozen-phase training: the trainer's naive fit vs its cached-feature fit.

    Example: tledge bench training --data food/train --test food/test --weights W.h5
    """
    _quiet_tensorflow()
    from tledge.benchmarks.report import training_table
    from tledge.benchmarks.training import TrainingSetup, training_benchmark

    setup = TrainingSetup(
        data=data,
        test=test,
        weights=weights,
        alpha=alpha,
        image_size=(image_size, image_size),
        per_class=per_class or None,
        test_per_class=test_per_class or None,
        epochs=epochs,
        dropout=dropout,
    )
    result = training_benchmark(setup, output, _command_line(), _log)
    _finish(result.files, training_table(result.report["training"]))


@bench.command("cross-validation")
@click.option("--data", required=True, help="Class-per-folder training images.")
@click.option("--weights", default="imagenet", show_default=True)
@click.option("--backbone", default="mobilenetv2", show_default=True)
@click.option("--folds", default=5, show_default=True)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    required=True,
    help="name:field=value[:field=value...] (TrainConfig fields); the first is the reference.",
)
@click.option(
    "--set", "settings", multiple=True, help="field=value[:field=value...] for every variant."
)
@click.option("--output", type=click.Path(path_type=Path), default=Path("tledge-cv"))
def cross_validation(data, weights, backbone, folds, variants, settings, output) -> None:
    """Compare training settings by k-fold cross-validation on the training photos.

    Example: tledge bench cross-validation --data food/train --variant a:fine_tune_layers=40
    --variant b:fine_tune_layers=100
    """
    _quiet_tensorflow()
    from tledge.benchmarks.cross_validation import cross_validation_benchmark
    from tledge.benchmarks.report import cross_validation_table

    result = cross_validation_benchmark(
        data, variants, output, settings, weights, backbone, folds, _command_line(), _log
    )
    _finish(result.files, cross_validation_table(result.report["cross_validation"]))


@bench.command("all")
@click.option("--run", type=click.Path(path_type=Path), help="Exported run folder.")
@click.option("--reference", type=click.Path(path_type=Path), help="Reference .tflite + labels.")
@click.option("--data", type=click.Path(path_type=Path), help="Dataset with train/ and test/.")
@click.option("--weights", default="none", show_default=True, help="Weights for training.")
@click.option("--runs", default=100, show_default=True)
@click.option("--threads", default="1,2,4", show_default=True)
@click.option("--client-runs", default=300, show_default=True)
@click.option("--frames", default=300, show_default=True)
@click.option("--train-per-class", default=40, show_default=True)
@click.option("--train-size", default=128, show_default=True)
@click.option("--only", default="latency,client,pipeline,training", show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=Path("benchmarks/results"))
def run_all(
    run,
    reference,
    data,
    weights,
    runs,
    threads,
    client_runs,
    frames,
    train_per_class,
    train_size,
    only,
    output,
) -> None:
    """Every benchmark into one report (what benchmarks/results/ was made with).

    Example: tledge bench all --run runs/food --reference tflite/ --data food --weights W.h5
    """
    _quiet_tensorflow()
    from tledge.benchmarks.report import to_markdown
    from tledge.benchmarks.run_all import RunAllOptions
    from tledge.benchmarks.run_all import run_all as run_benchmarks

    options = RunAllOptions(
        run=run,
        reference=reference,
        data=data,
        weights=weights,
        runs=runs,
        thread_counts=tuple(_threads(threads)),
        client_runs=client_runs,
        frames=frames,
        train_per_class=train_per_class,
        train_size=train_size,
        steps=tuple(step for step in only.split(",") if step),
        output=output,
    )
    result = run_benchmarks(options, _command_line(), _log)
    _finish(result.files, to_markdown(result.report))


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated image counts") from None


@bench.command()
@click.option(
    "--root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Scratch folder for the generated JPEGs, checks and runs (tens of GB at 50k: "
    "keep it out of the repository).",
)
@click.option("--sizes", default="1000,5000,20000,50000", show_default=True)
@click.option("--train-sizes", help="Sizes that also train [default: all].")
@click.option("--reference-size", default=5000, show_default=True, help="Top size compared with.")
@click.option("--parallel-size", default=5000, show_default=True, help="Size timed on one core.")
@click.option("--image-size", default=96, show_default=True, help="Model input side.")
@click.option("--cache", default="none", show_default=True, help="--cache of the trainings.")
@click.option("--side", default=320, show_default=True, help="Short side of the JPEGs.")
@click.option("--append", is_flag=True, help="Keep the other sizes of an existing scale.json.")
@click.option("--output", type=click.Path(path_type=Path), default=Path("tledge-bench"))
def scale(
    root, sizes, train_sizes, reference_size, parallel_size, image_size, cache, side, append, output
) -> None:
    """Check time, training images/s, peak RSS and cache disk against dataset size.

    Synthetic photo-like JPEGs at each size; each trained for one short epoch per phase
    (streaming: --cache none), in its own process. Writes scale.json, scale.md, scale.png.

    Example: nice -n 5 tledge bench scale --root /tmp/scale --sizes 1000,5000,20000,50000
    """
    _quiet_tensorflow()
    import json

    from tledge.benchmarks.scale import ScaleOptions, scale_benchmark
    from tledge.benchmarks.scale_report import scale_table

    options = ScaleOptions(
        root=root,
        sizes=_sizes(sizes),
        train_sizes=_sizes(train_sizes) if train_sizes is not None else None,
        reference_size=reference_size,
        parallel_size=parallel_size,
        image_size=image_size,
        cache=cache,
        side=side,
    )
    earlier = None
    if append and (output / "scale.json").is_file():
        earlier = json.loads((output / "scale.json").read_text(encoding="utf-8"))
    result = scale_benchmark(options, output, _command_line(), _log, earlier)
    _finish(result.files, scale_table(result.report["scale"]))


@bench.command("mixed-precision")
@click.option("--data", required=True, help="Training images: a folder or tfds:NAME[/split].")
@click.option("--test", required=True, help="Test images: a folder or tfds:NAME[/split].")
@click.option("--weights", default="imagenet", show_default=True, help="none, imagenet or a .h5.")
@click.option("--backbone", default="mobilenetv2", show_default=True)
@click.option("--train-fraction", default=1.0, show_default=True)
@click.option("--epochs", default=3, show_default=True, help="Phase 1 epochs.")
@click.option("--fine-tune-epochs", default=3, show_default=True, help="Phase 2 epochs.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--image-size", default=224, show_default=True)
@click.option("--tfds-data-dir", help="A prepared TFDS data_dir (offline).")
@click.option("--force-precision", is_flag=True, help="Allow mixed_float16 without a GPU.")
@click.option("--output", type=click.Path(path_type=Path), default=Path("tledge-bench"))
def mixed_precision(
    data,
    test,
    weights,
    backbone,
    train_fraction,
    epochs,
    fine_tune_epochs,
    batch_size,
    image_size,
    tfds_data_dir,
    force_precision,
    output,
) -> None:
    """float32 vs mixed_float16 on the same fine-tune: images/s per phase, test accuracy.

    For a GPU with tensor cores; on a CPU mixed_float16 is refused unless
    --force-precision. Writes mixed_precision.json and mixed_precision.md.

    Example: tledge bench mixed-precision --data tfds:food101 --test tfds:food101/validation
    --train-fraction 0.1 --tfds-data-dir ~/tensorflow_datasets
    """
    _quiet_tensorflow()
    from tledge.benchmarks.mixed_precision import PrecisionSetup, mixed_precision_benchmark
    from tledge.benchmarks.report import mixed_precision_table

    setup = PrecisionSetup(
        data=data,
        test=test,
        weights=weights,
        backbone=backbone,
        train_fraction=train_fraction,
        epochs=epochs,
        fine_tune_epochs=fine_tune_epochs,
        batch_size=batch_size,
        image_size=image_size,
        tfds_data_dir=tfds_data_dir,
        force_precision=force_precision,
    )
    result = mixed_precision_benchmark(setup, output, _command_line(), _log)
    _finish(result.files, mixed_precision_table(result.report["mixed_precision"]))


@bench.command()
@click.option(
    "--run",
    "run_folder",
    required=True,
    type=click.Path(path_type=Path),
    help="Run folder (exported with --all or --int8).",
)
@click.option(
    "--near",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Photos of classes the run did not learn.",
)
@click.option(
    "--sanity",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of non-food photos (the ImageNet sanity photos) for the easy unknowns.",
)
@click.option("--alternatives", is_flag=True, help="Also measure energy, max logit, Mahalanobis.")
@click.option("--output", type=click.Path(path_type=Path), default=Path("tledge-bench"))
def unknowns(run_folder, near, sanity, alternatives, output) -> None:
    """Calibration and unknown rejection of every model of a run.

    Known test photos against photos of classes the run did not learn (near) and
    non-food images (easy). Writes unknowns.json, unknowns.md and the score plots.

    Example: tledge bench unknowns --run runs/food8 --near near_ood --sanity tflite/sanity_images
    """
    _quiet_tensorflow()
    from tledge.benchmarks.unknowns import unknowns_benchmark, unknowns_table

    result = unknowns_benchmark(
        run_folder, near, sanity, output, alternatives, _command_line(), _log
    )
    _finish(result.files, unknowns_table(result.report["unknowns"]))


@bench.command()
@click.argument(
    "models", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--images",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Photos, searched recursively (class-named folders also give accuracy).",
)
@click.option(
    "--mediapipe-python",
    type=click.Path(path_type=Path),
    envvar="TLEDGE_MEDIAPIPE_PYTHON",
    show_envvar=True,
    help="Python of a virtual environment with mediapipe installed (kept apart from "
    "tledge's: mediapipe brings its own cv2).",
)
@click.option("--threads", default=2, show_default=True, help="tledge interpreter threads.")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("tledge-bench"),
    show_default=True,
    help="Folder for the reports.",
)
def mediapipe(models, images, mediapipe_python, threads, output) -> None:
    """MediaPipe Tasks' ImageClassifier vs `tledge predict` on the same photos.

    MediaPipe reads the photo files, OpenCV's decode of them, and the photos already
    fitted by tledge's resize; tledge is also fed MediaPipe's corner-to-corner resize.
    Writes mediapipe_agreement.json and mediapipe_agreement.md.

    Example: tledge bench mediapipe runs/food/export/model_fp32.tflite --images food/test
    --mediapipe-python ~/mediapipe-venv/bin/python
    """
    from tledge.core.errors import TledgeError

    if mediapipe_python is None:
        raise TledgeError(
            "--mediapipe-python: give the Python of a virtual environment with mediapipe "
            "installed, or set $TLEDGE_MEDIAPIPE_PYTHON"
        )
    from tledge.benchmarks.mediapipe_agreement import (
        mediapipe_agreement_benchmark,
        mediapipe_table,
    )

    result = mediapipe_agreement_benchmark(
        models, images, mediapipe_python, output, threads, _command_line(), _log
    )
    _finish(result.files, mediapipe_table(result.report["mediapipe_agreement"]))
