"""The `tledge` command line: a click group whose subcommands load on first use.

Each subcommand lives in `tledge/commands/<name>.py` and imports its heavy dependencies
(TensorFlow, OpenCV) inside the command body, so `tledge --help` starts fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

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


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when it is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._module_exists(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not self._module_exists(cmd_name):
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tledge")
def cli() -> None:
    """Train, export and run small image classifiers on edge devices."""


def main() -> None:
    """Entry point of the `tledge` console script."""
    cli(prog_name="tledge")


if __name__ == "__main__":
    sys.exit(main())
