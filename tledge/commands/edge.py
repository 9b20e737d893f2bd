"""`tledge edge`: classify a camera, video, image folder or stream live, without TensorFlow."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from tledge.commands.unknown_options import unknown_options

MAX_SKIPPED_SHOWN = 10


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
@click.option(
    "--serve", metavar="[HOST:]PORT", help="Live web view, e.g. 8080, 0.0.0.0:8080 or [::]:8080."
)
@click.option(
    "--token",
    envvar="TLEDGE_TOKEN",
    metavar="SECRET|auto",
    help="Web view access token (env TLEDGE_TOKEN); auto makes one and prints the link. "
    "Required when --serve is reachable beyond this machine.",
)
@click.option(
    "--insecure-no-token",
    is_flag=True,
    help="Serve beyond loopback without a token: anyone on the network can watch.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Host name the web view may be opened by (besides IPs, localhost and this machine).",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="PEM certificate: serve HTTPS.")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="PEM private key for --tls-cert.")
@click.option(
    "--max-clients",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Web view connections served at once.",
)
@click.option(
    "--reconnect-for",
    type=click.FloatRange(min=0.0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a camera or stream may be down (at start or mid-run) before the run "
    "ends; 0 fails at once, inf waits forever. Files never retry.",
)
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after N frames.")
@unknown_options
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
    token: str | None,
    insecure_no_token: bool,
    allow_hosts: tuple[str, ...],
    tls_cert: str | None,
    tls_key: str | None,
    max_clients: int,
    reconnect_for: float,
    max_frames: int | None,
    unknown_threshold: float | None,
    no_unknown: bool,
    collect: str | None,
    collect_max_mb: float,
    model_dir: str | None,
    model_version: str | None,
    keep_models: int,
) -> None:
    """Classify frames from --source with MODEL (.tflite) and show or log the results.

    With no window, --jsonl, --save or --serve, JSON lines go to stdout. Stop with
    Ctrl-C (or SIGTERM); outputs are finalized and the summary printed. A second Ctrl-C
    at least 2 s later stops at once.

    --serve beyond this machine needs a token: open the printed link once, the browser
    keeps it in a cookie.

    \b
    Examples:
      tledge edge model_int8.tflite --source picamera2 --serve 0.0.0.0:8080 --token auto
      tledge edge model_int8.tflite --source clip.mp4 --save annotated.mp4
      tledge edge mobilenet.tflite --labels imagenet_labels.txt --source photos/
      tledge edge --model-dir models/ --source picamera2 --serve 0.0.0.0:8080
    """
    import threading

    from tledge.edge.stopping import ForcedStop, stop_on_signals

    # Installed before the slow start-up, so a stop request during it is a clean stop too.
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            serve_options = serve and _serve_options(
                serve, token, insecure_no_token, allow_hosts, tls_cert, tls_key, max_clients
            )
            from tledge.edge.app import EdgeOptions
            from tledge.edge.collect import CollectOptions
            from tledge.edge.window import display_available

            if display is None:
                display = display_available()
            if not (display or jsonl or save or serve):
                jsonl = "-"
            models = _models(model, labels, threads, runtime, model_dir, model_version, keep_models)
            options = EdgeOptions(
                top_k=top_k,
                threshold=threshold,
                smooth=smooth,
                display=display,
                jsonl=jsonl,
                save=save,
                serve=serve_options or None,
                max_frames=max_frames,
                unknown_threshold=unknown_threshold,
                detect_unknown=not no_unknown,
                collect=CollectOptions(Path(collect), max_mb=collect_max_mb) if collect else None,
            )
            # The watcher follows the folder only while the loop runs.
            with models if model_dir is not None else contextlib.nullcontext():
                _run(models, source, options, stop, reconnect_for, token == "auto")
    except ForcedStop:
        click.echo("Stopped by a second Ctrl-C; outputs may be incomplete.", err=True)
        raise SystemExit(130) from None


def _models(
    model: str | None,
    labels: str | None,
    threads: int | None,
    runtime: str,
    model_dir: str | None,
    model_version: str | None,
    keep_models: int,
):
    """The Classifier of MODEL, or a `ModelWatcher` over --model-dir (not yet following)."""
    from tledge.core.errors import TledgeError
    from tledge.edge.classifier import Classifier

    if (model is None) == (model_dir is None):
        raise TledgeError("give either MODEL or --model-dir DIR")
    if model_version is not None and model_dir is None:
        raise TledgeError("--model-version needs --model-dir")

    def load(path):
        return Classifier(path, labels=labels, num_threads=threads, runtime=runtime)

    if model_dir is None:
        return load(model)
    from tledge.edge.model_dir import ModelWatcher, write_pin

    if model_version is not None:
        write_pin(model_dir, model_version)
    return ModelWatcher(
        model_dir, load, keep=keep_models, on_event=lambda line: click.echo(line, err=True)
    )


def _serve_options(
    address: str,
    token: str | None,
    insecure_no_token: bool,
    allow_hosts: tuple[str, ...],
    tls_cert: str | None,
    tls_key: str | None,
    max_clients: int,
):
    """Checked web view options; refuses a view beyond loopback without a token."""
    from tledge.edge.web_access import ServeOptions, WebAccess

    options = ServeOptions(
        address=address,
        token=WebAccess.new_token() if token == "auto" else token or None,
        insecure_no_token=insecure_no_token,
        allow_hosts=allow_hosts,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_clients=max_clients,
    )
    options.check()
    return options


def _run(models, source: str, options, stop, reconnect_for: float, show_token: bool) -> None:
    """Open the source, run the loop, and report skipped files, outages and the summary."""
    from tledge.core.errors import TledgeError
    from tledge.edge.app import run_edge
    from tledge.edge.live_source import Backoff
    from tledge.edge.source_spec import open_source

    def say(line: str) -> None:
        click.echo(line, err=True)

    def on_serve(url: str) -> None:
        token = options.serve.token
        if token is None and options.serve.insecure_no_token:
            say(f"Serving the live view at {url} to anyone who can reach it (no token)")
        elif token is None:
            say(f"Serving the live view at {url}")
        elif show_token:
            say(f"Serving the live view at {url}?token={token}")
        else:
            say(f"Serving the live view at {url} (open it once as {url}?token=<your token>)")

    frames = open_source(source, Backoff(give_up_after=reconnect_for), on_event=say)
    summary = run_edge(models, frames, options, stop=stop, on_serve=on_serve)
    for path in summary.skipped[:MAX_SKIPPED_SHOWN]:
        say(f"skipped {path}: not a readable image")
    if len(summary.skipped) > MAX_SKIPPED_SHOWN:
        say(f"... and {len(summary.skipped) - MAX_SKIPPED_SHOWN} more unreadable files")
    click.echo(summary.describe(), err=options.jsonl == "-")
    if summary.lost:
        raise TledgeError(f"{summary.lost}; allow longer outages with --reconnect-for SECONDS")
    if summary.frames == 0 and summary.skipped:
        raise TledgeError(
            f"--source {source}: none of its {len(summary.skipped)} files is a readable image"
        )
