"""`tledge evaluate`: accuracy, per-class metrics, confusion matrix and most-wrong images."""

from __future__ import annotations

import click


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--data", type=click.Path(), help="Class-per-folder images [default: the run's test folder]."
)
@click.option(
    "--model",
    "model",
    type=click.Path(),
    help="Model to evaluate, e.g. export/model_int8.tflite [default: model.keras].",
)
@click.option("--batch-size", default=32, show_default=True, help="Images scored at once.")
@click.option("--threads", type=int, help="CPU threads for a .tflite interpreter.")
def evaluate(run, data, model, batch_size, threads):
    """Score a run's model (Keras or .tflite) on labelled images.

    RUN's model.keras by default, or any exported .tflite with --model; images from
    the run's test folder by default, or --data DIR (one sub-folder per class).
    Writes metrics.json, predictions.csv, confusion_matrix.png and most_wrong.png to
    RUN/evaluation/<model name>/.

    \b
    Examples:
      tledge evaluate runs/food
      tledge evaluate runs/food --model export/model_int8.tflite --data photos/test
    """
    from tledge.analysis.evaluation import evaluate_run

    evaluation, outputs = evaluate_run(run, data, model, batch_size, threads)
    correct = int(evaluation.correct.sum())
    click.echo(f"model     {evaluation.model_path}")
    click.echo(f"data      {evaluation.data} ({len(evaluation.paths)} images)")
    click.echo(
        f"accuracy  {evaluation.accuracy:.2%} ({correct}/{len(evaluation.paths)})"
        f"   loss {evaluation.loss:.4f}"
    )
    if evaluation.skipped:
        click.echo(f"skipped   {len(evaluation.skipped)} unreadable images:", err=True)
        for path, reason in evaluation.skipped[:10]:
            # The reason is a whole message that may already start with the path.
            click.echo(f"  {path}: {reason.removeprefix(f'{path}: ')}", err=True)
    click.echo("")
    click.echo(per_class_table(evaluation.per_class()))
    click.echo("")
    click.echo(f"wrote {outputs.folder}/")
    for path in (
        outputs.metrics,
        outputs.predictions,
        outputs.confusion_matrix,
        outputs.most_wrong,
    ):
        if path is not None:
            click.echo(f"  {path.name}")
    if outputs.most_wrong is None:
        click.echo("  (no wrong predictions, so no most_wrong.png)")


def per_class_table(per_class: dict) -> str:
    """Per-class precision / recall / F1 / support as aligned text."""
    width = max([len("class"), *(len(label) for label in per_class)])
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for label, values in per_class.items():
        lines.append(
            f"{label:<{width}}  {values['precision']:>9.3f}  {values['recall']:>6.3f}"
            f"  {values['f1']:>5.3f}  {values['support']:>7d}"
        )
    return "\n".join(lines)
