"""`tledge predict`: top-k classes for your own photos, with a run, a .keras or a .tflite."""

from __future__ import annotations

import json

import click

from tledge.core.errors import TledgeError


@click.command()
@click.argument("model", type=click.Path(exists=True))
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", "-k", default=3, show_default=True, help="Classes shown per image.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
@click.option(
    "--annotate",
    type=click.Path(file_okay=False),
    help="Write each image with its top classes drawn on it to this folder.",
)
@click.option("--labels", type=click.Path(exists=True), help="labels.txt for a plain .tflite.")
@click.option("--threads", type=int, help="CPU threads for a .tflite interpreter.")
def predict(model, paths, top_k, as_json, annotate, labels, threads):
    """Top-k classes of your own photos with a run, .keras or .tflite.

    PATHS are image files or folders (searched recursively). MODEL is a run folder
    (its model.keras), a .keras file or a .tflite file. Unreadable files are named
    and skipped; the exit status is non-zero only when no image could be read.

    \b
    Examples:
      tledge predict runs/food photos/pizza.jpg photos/more/
      tledge predict runs/food/export/model_int8.tflite photos/ --top-k 5 --json
    """
    from tledge.analysis.annotation import write_annotated
    from tledge.analysis.prediction import load_model, predict_files
    from tledge.core.labels import read_labels

    loaded = load_model(model, num_threads=threads, labels=read_labels(labels) if labels else None)
    report = predict_files(loaded, paths, top_k=top_k)
    for path, reason in report.unreadable:
        # The reason is a whole message that already starts with the path.
        click.echo(f"warning: skipped {path}: {reason.removeprefix(f'{path}: ')}", err=True)
    if as_json:
        click.echo(json.dumps(report_json(report), indent=2))
    else:
        for prediction in report.predictions:
            answers = ", ".join(f"{label} {score:.1%}" for label, score in prediction.top_k)
            click.echo(f"{prediction.path}: {answers}")
    if annotate and report.predictions:
        try:
            written = write_annotated(report, annotate)
        except OSError as error:
            raise TledgeError(
                f"--annotate {annotate}: cannot write there ({error.strerror or error})"
            ) from None
        noun = "image" if len(written) == 1 else "images"
        click.echo(f"wrote {len(written)} annotated {noun} to {annotate}/", err=as_json)
    if not report.predictions:
        raise TledgeError(f"no readable image among {len(report.unreadable)} files")


def report_json(report) -> dict:
    """The prediction report as a JSON-ready dict."""
    return {
        "model": str(report.model.path),
        "predictions": [
            {
                "path": str(p.path),
                "top_k": [{"label": label, "score": round(score, 6)} for label, score in p.top_k],
            }
            for p in report.predictions
        ],
        "unreadable": [{"path": str(path), "reason": reason} for path, reason in report.unreadable],
    }
