"""`tledge models`: list the versions of a `--model-dir` folder, roll back, follow again."""

from __future__ import annotations

import datetime

import click


@click.group()
def models() -> None:
    """Versions in a model folder used by `tledge edge --model-dir`.

    A running `tledge edge --model-dir` picks up a rollback or follow within a second.
    """


@models.command("list")
@click.argument("folder", type=click.Path(file_okay=False))
def list_versions(folder: str) -> None:
    """List the versions in FOLDER, newest first; * marks the one `tledge edge` runs."""
    from tledge.edge.model_dir import list_model_files, read_pin
    from tledge.edge.model_version import ModelVersion

    files = list_model_files(folder)
    pin = read_pin(folder)
    running = pin or (files[0].name if files else None)
    for file in files:
        arrived = datetime.datetime.fromtimestamp(file.arrived_ns / 1e9).isoformat(" ", "seconds")
        mark = "*" if file.name == running else " "
        pinned = "  (pinned)" if file.name == pin else ""
        sha = ModelVersion.of(file.path).sha
        click.echo(f"{mark} {file.name}  sha {sha}  arrived {arrived}{pinned}")
    if not files:
        click.echo(f"{folder}: no .tflite versions", err=True)


@models.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.argument("version", required=False)
def rollback(folder: str, version: str | None) -> None:
    """Pin FOLDER to VERSION (default: the version before the one running now)."""
    from tledge.core.errors import TledgeError
    from tledge.edge.model_dir import list_model_files, read_pin, write_pin

    if version is None:
        names = [file.name for file in list_model_files(folder)]
        running = read_pin(folder) or (names[0] if names else None)
        older = names[names.index(running) + 1 :] if running in names else []
        if not older:
            raise TledgeError(f"{folder}: no version older than {running} to roll back to")
        version = older[0]
    write_pin(folder, version)
    click.echo(f"pinned {folder} to {version}; `tledge models follow {folder}` undoes it")


@models.command()
@click.argument("folder", type=click.Path(file_okay=False))
def follow(folder: str) -> None:
    """Unpin FOLDER: run the newest accepted version again."""
    from tledge.edge.model_dir import write_pin

    write_pin(folder, None)
    click.echo(f"{folder}: following the newest version")
