"""The `tledge` command line: a click group whose subcommands load on first use.

Each subcommand lives in `tledge/commands/<name>.py` and imports its heavy dependencies
(TensorFlow, OpenCV) inside the command body, so `tledge --help` starts fast and never
imports TensorFlow. The native libraries' log lines (TensorFlow's oneDNN/CUDA start-up
lines, FFmpeg's connection errors) are hidden unless `tledge -v` is given: tledge says
in its own words what went wrong.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable

import click

from tledge import __version__
from tledge.core.errors import TledgeError

# name -> "module:attribute"; the module is imported only when the command runs or
# when `--help` needs its one-line summary.
COMMANDS = {
    "demo": "tledge.commands.demo:demo",
    "train": "tledge.commands.train:train",
    "export": "tledge.commands.export:export",
    "edge": "tledge.commands.edge:edge",
    "models": "tledge.commands.models:models",
    "capture": "tledge.commands.capture:capture",
    "app": "tledge.commands.app:app",
    "doctor": "tledge.commands.doctor:doctor",
    "bench": "tledge.commands.bench:bench",
    "evaluate": "tledge.commands.evaluate:evaluate",
    "predict": "tledge.commands.predict:predict",
    "compare": "tledge.commands.compare:compare",
    "experiments": "tledge.commands.experiments:experiments",
}

# Commands that need TensorFlow (unless their MODEL is a .tflite file): it is imported,
# with its start-up lines captured, before the command runs.
TENSORFLOW_COMMANDS = {"demo", "train", "export", "experiments", "evaluate", "predict"}
# Log levels that hide native libraries' INFO/WARNING lines; `-v` lifts them.
QUIET_NATIVE_LOGS = {"TF_CPP_MIN_LOG_LEVEL": "2", "OPENCV_FFMPEG_LOGLEVEL": "8"}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when it is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._module_exists(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not self._module_exists(cmd_name):
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if cmd_name in TENSORFLOW_COMMANDS and not hasattr(command.callback, "quiet_tensorflow"):
            command.callback = _import_tensorflow_first(command.callback)
        return command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TledgeError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(1)

    @staticmethod
    def _module_exists(name: str) -> bool:
        module_name = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module_name) is not None


def _import_tensorflow_first(callback: Callable) -> Callable:
    @functools.wraps(callback)
    def run(*args, **kwargs):
        verbose = click.get_current_context().find_root().params.get("verbose", False)
        if not verbose and not str(kwargs.get("model") or "").endswith(".tflite"):
            from tledge.exporter.capture import import_tensorflow_quietly

            # Not installed: the command itself says what it needs.
            with contextlib.suppress(TledgeError):
                import_tensorflow_quietly()
        return callback(*args, **kwargs)

    run.quiet_tensorflow = True  # type: ignore[attr-defined]
    return run


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tledge")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show TensorFlow's and FFmpeg's own log lines (hidden by default).",
)
def cli(verbose: bool) -> None:
    """Train, export and run small image classifiers on edge devices."""
    for name, quiet in QUIET_NATIVE_LOGS.items():
        if verbose:
            os.environ.pop(name, None)
        else:
            os.environ.setdefault(name, quiet)


def main() -> None:
    """Entry point of the `tledge` console script."""
    cli(prog_name="tledge")


if __name__ == "__main__":
    sys.exit(main())
