"""`tledge experiments`: train a series of runs from a plan file, then compare them."""

from __future__ import annotations

import click


@click.command()
@click.argument("plan", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a TrainConfig field for every run (repeatable), e.g. --set weights=none.",
)
@click.option(
    "--max-epochs",
    type=click.IntRange(min=1),
    help="Cap each phase at N epochs for a quick trial (runs get a _maxN suffix).",
)
@click.option("--output", type=click.Path(file_okay=False), help="Folder for the run folders.")
@click.option("--only", multiple=True, help="Train only this run (repeatable).")
@click.option("--dry-run", is_flag=True, help="List the runs and their settings; train nothing.")
@click.option("--example", is_flag=True, help="Print the example plan (seed's Model 0-4) and exit.")
@click.option("--verbose", "-v", is_flag=True, help="Show Keras progress for every epoch.")
def experiments(plan, overrides, max_epochs, output, only, dry_run, example, verbose):
    """Train a series of runs from a plan file, then compare them.

    Trains the runs of PLAN (TOML) that are not finished yet: finished runs are
    skipped and interrupted ones resume, so re-running a plan only does what is
    missing.

    \b
    Examples:
      tledge experiments --example > plan.toml
      tledge experiments plan.toml --set weights=weights/mobilenet_v2_no_top.h5
      tledge experiments plan.toml --max-epochs 1 --set image_size=[96,96]
    """
    from tledge.analysis.comparison import compare_runs
    from tledge.analysis.experiments import (
        example_plan_text,
        load_plan,
        run_plan,
    )
    from tledge.analysis.plan_files import parse_overrides
    from tledge.commands.compare import show_comparison
    from tledge.core.errors import TledgeError

    if example:
        click.echo(example_plan_text(), nl=False)
        return
    if plan is None:
        raise TledgeError("give a PLAN.toml (or --example to print one)")
    loaded = load_plan(plan, parse_overrides(overrides), output, max_epochs)
    if dry_run:
        for run in loaded.runs:
            settings = ", ".join(f"{key}={value}" for key, value in sorted(run.settings.items()))
            click.echo(f"{run.name}: {settings}")
        click.echo(f"output: {loaded.output}")
        return
    outcomes = run_plan(
        loaded, log=lambda line: click.echo(line, err=True), verbose=2 if verbose else 0, only=only
    )
    for outcome in outcomes:
        if outcome.note:
            click.echo(f"warning: {outcome.name}: {outcome.note}", err=True)
    summaries = compare_runs([o.path for o in outcomes], sort=loaded.sort)
    click.echo("")
    show_comparison(summaries, loaded.output / "comparison.png", as_json=False)
