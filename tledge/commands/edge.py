"""`tledge edge`: classify a camera, video, image folder or stream live, without TensorFlow."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click


@click.command()
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--source",
    default="0",
    show_default=True,
    help="Camera index, /dev/videoN, picamera2, video file, image file or folder, rtsp:// URL.",
)
@click.option("--labels", type=click.Path(dir_okay=False), help="Labels file for a plain .tflite.")
@click.option("--threads", type=click.IntRange(min=1), help="Interpreter CPU threads.")
@click.option(
    "--runtime",
    type=click.Choice(["auto", "litert", "tflite-runtime", "tensorflow"]),
    default="auto",
    show_default=True,
    help="TFLite runtime; auto prefers litert, then tflite-runtime.",
)
@click.option(
    "--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="Labels per frame."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Hide labels scoring below this.",
)
@click.option(
    "--smooth",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Average scores over N frames.",
)
@click.option(
    "--display/--no-display",
    default=None,
    help="Show a window (default: when a display and OpenCV GUI support exist).",
)
@click.option(
    "--jsonl", metavar="PATH", help="Write one JSON line per frame to PATH, or - for stdout."
)
@click.option(
    "--save", type=click.Path(dir_okay=False), help="Write the annotated video (.mp4/.avi)."
)
@click.option("--serve", metavar="[HOST:]PORT", help="Live web view, e.g. 8080 or 0.0.0.0:8080.")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after N frames.")
@click.option(
    "--collect",
    type=click.Path(file_okay=False),
    help="Keep frames the model is unsure about (and a few sure ones) here, for review.",
)
@click.option(
    "--collect-max-mb",
    type=click.FloatRange(min=1.0),
    default=500.0,
    show_default=True,
    help="Size cap of --collect; the oldest frames are evicted.",
)
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False),
    help="Run the newest accepted model in this folder and swap in new ones (instead of MODEL).",
)
@click.option(
    "--model-version", metavar="NAME", help="With --model-dir: pin (roll back to) this version."
)
@click.option(
    "--keep-models",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="With --model-dir: versions kept on disk.",
)
def edge(
    model: str | None,
    source: str,
    labels: str | None,
    threads: int | None,
    runtime: str,
    top_k: int,
    threshold: float,
    smooth: int,
    display: bool | None,
    jsonl: str | None,
    save: str | None,
    serve: str | None,
    max_frames: int | None,
    collect: str | None,
    collect_max_mb: float,
    model_dir: str | None,
    model_version: str | None,
    keep_models: int,
) -> None:
    """Classify frames from --source with MODEL (.tflite) and show or log the results.

    With no window, --jsonl, --save or --serve, JSON lines go to stdout. Stop with
    Ctrl-C (or SIGTERM); outputs are finalized.

    \b
    Examples:
      tledge edge model_int8.tflite --source picamera2 --serve 0.0.0.0:8080
      tledge edge model_int8.tflite --source clip.mp4 --save annotated.mp4
      tledge edge mobilenet.tflite --labels imagenet_labels.txt --source photos/
      tledge edge --model-dir models/ --source picamera2 --serve 0.0.0.0:8080
    """
    from tledge.core.errors import TledgeError
    from tledge.edge.app import EdgeOptions, display_available, run_edge
    from tledge.edge.classifier import Classifier
    from tledge.edge.collect import CollectOptions
    from tledge.edge.source_spec import open_source

    if display is None:
        display = display_available()
    if not (display or jsonl or save or serve):
        jsonl = "-"
    if (model is None) == (model_dir is None):
        raise TledgeError("give either MODEL or --model-dir DIR")
    if model_version is not None and model_dir is None:
        raise TledgeError("--model-version needs --model-dir")

    def load(path):
        return Classifier(path, labels=labels, num_threads=threads, runtime=runtime)

    models = load(model) if model is not None else None
    if model_dir is not None:
        from tledge.edge.model_dir import ModelWatcher, write_pin

        if model_version is not None:
            write_pin(model_dir, model_version)
        models = ModelWatcher(
            model_dir, load, keep=keep_models, on_event=lambda line: click.echo(line, err=True)
        )
    options = EdgeOptions(
        top_k=top_k,
        threshold=threshold,
        smooth=smooth,
        display=display,
        jsonl=jsonl,
        save=save,
        serve=serve,
        max_frames=max_frames,
        collect=CollectOptions(Path(collect), max_mb=collect_max_mb) if collect else None,
    )
    frames = open_source(source)
    # The watcher follows the folder only while the loop runs.
    with models if model_dir is not None else contextlib.nullcontext():
        summary = run_edge(
            models,
            frames,
            options,
            on_serve=lambda url: click.echo(f"Serving the live view at {url}", err=True),
        )
    click.echo(summary.describe(), err=jsonl == "-")
