"""`tledge bench`: latency, size and accuracy of every variant of a run (or of .tflite files)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click


@click.command()
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
def bench(
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
    from tledge.benchmarks.latency import measure_latency, parse_threads
    from tledge.benchmarks.plots import accuracy_latency_plot, latency_plot, plots_available
    from tledge.benchmarks.report import build_report, latency_table, write_report
    from tledge.benchmarks.variants import find_variants, tensorflow_installed

    thread_counts = parse_threads(threads)
    variants = find_variants(list(targets), labels=labels, include_keras=keras)
    notes = []
    if keras and not tensorflow_installed() and any(t.is_dir() for t in targets):
        notes.append("TensorFlow is not installed here: the Keras model was not timed.")
    if not plots_available():
        notes.append("matplotlib is not installed here: no plots (pip install matplotlib).")
    for note in notes:
        click.echo(note, err=True)

    def progress(done: int, total: int, description: str) -> None:
        click.echo(f"[{done}/{total}] {description}", err=True)

    results = measure_latency(variants, thread_counts, runs, warmup, runtime, progress)
    report = build_report(_command_line(), notes=notes, latency=results)
    folder = output or _default_output(targets)
    written = write_report(report, folder, "bench")
    if plots_available():
        written.append(latency_plot(report["latency"], folder / "latency.png"))
        scatter = accuracy_latency_plot(report["latency"], folder / "accuracy_latency.png")
        if scatter is not None:
            written.append(scatter)
    click.echo(latency_table(report["latency"]))
    click.echo("Wrote " + ", ".join(str(path) for path in written), err=True)


def _command_line() -> str:
    ctx = click.get_current_context()
    arguments = sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:]
    return shlex.join([*ctx.command_path.split(), *arguments])


def _default_output(targets: tuple[Path, ...]) -> Path:
    if len(targets) == 1 and targets[0].is_dir():
        return targets[0] / "bench"
    return Path("tledge-bench")
