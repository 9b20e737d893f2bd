"""`tledge doctor`: check the runtime, cameras and libraries the edge client needs."""

from __future__ import annotations

import click

MARKS = {"ok": "ok", "warn": "!!", "missing": "--", "info": "  "}


@click.command()
def doctor() -> None:
    """Show the TFLite runtime, numpy/OpenCV, cameras and CPU, and what to install.

    Exits with status 1 when no TFLite runtime works.
    """
    from tledge.edge.doctor import has_working_runtime, run_checks

    checks = run_checks()
    width = max(len(check.name) for check in checks)
    for check in checks:
        click.echo(f"[{MARKS[check.status]}] {check.name:<{width}}  {check.detail}")
        if check.hint:
            click.echo(f"     {'':<{width}}  -> {check.hint}")
    if not has_working_runtime(checks):
        raise SystemExit(1)
