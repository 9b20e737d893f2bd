"""`tledge compare`: runs side by side, ranked, with overlaid learning curves."""

from __future__ import annotations

import json

import click

SORT_CHOICES = ["test_accuracy", "best_val_accuracy", "int8_drift", "train_seconds", "name"]


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--sort",
    default="test_accuracy",
    show_default=True,
    type=click.Choice(SORT_CHOICES),
    help="Metric the runs are ranked by (best first).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    help="Learning-curves PNG [default: comparison.png beside the runs].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def compare(runs, sort, plot, as_json):
    """Rank runs by a metric, with their settings and learning curves.

    RUNS are run folders or folders holding runs. Also writes the overlaid validation
    curves (PNG) and prints the TensorBoard command that shows every run.

    \b
    Examples:
      tledge compare runs/
      tledge compare runs/a runs/b --sort best_val_accuracy
    """
    from tledge.analysis.comparison import compare_runs

    summaries = compare_runs(runs, sort=sort)
    show_comparison(summaries, plot, as_json)


def show_comparison(summaries, plot, as_json: bool) -> None:
    """Print the table (or JSON), write the curves PNG and print the TensorBoard command."""
    from tledge.analysis.comparison import (
        default_plot_path,
        format_table,
        plot_comparison,
        tensorboard_command,
    )

    written = plot_comparison(summaries, plot or default_plot_path(summaries))
    command = tensorboard_command(summaries)
    if as_json:
        document = {
            "runs": [s.to_dict() for s in summaries],
            "curves": str(written) if written else None,
            "tensorboard": command,
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(format_table(summaries))
    click.echo("")
    click.echo(f"learning curves: {written}" if written else "learning curves: no history.json")
    if command:
        click.echo(f"tensorboard:     {command}")
