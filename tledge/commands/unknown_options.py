"""The `--unknown-threshold` / `--no-unknown` options shared by `edge` and `predict`."""

from __future__ import annotations

from collections.abc import Callable

import click


def unknown_options(command: Callable) -> Callable:
    """Add `unknown_threshold` (float or None) and `no_unknown` (bool) parameters."""
    command = click.option(
        "--no-unknown",
        is_flag=True,
        help="Never report 'unknown', whatever the model's threshold.",
    )(command)
    return click.option(
        "--unknown-threshold",
        type=click.FloatRange(0.0, 1.0),
        help="Report 'unknown' below this top probability [default: the model's own, "
        "chosen on validation; models without one never say unknown].",
    )(command)
