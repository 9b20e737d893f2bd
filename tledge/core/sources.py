"""Where a run's images are: a folder, or a `tfds:NAME[/SPLIT]` split written out as one.

The trainer writes each TFDS split once as class folders under `<output>/.tfds_files/`
(`tledge.trainer.tfds_source`) and records in the run folder (sources.json) the folder
each option read. Everything that reads a run's images afterwards (`tledge evaluate`, the
exporter's calibration and drift data, `--from-run` updates, the benchmarks) asks
`run_image_folder`, so a `tfds:` value in config.json means the same images everywhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tledge.core.atomic import atomic_write_text
from tledge.core.errors import TledgeError
from tledge.core.run_folder import RunFolder

TFDS_PREFIX = "tfds:"
# Folder (in --output, beside the run folders) of the written-out TFDS splits.
TFDS_FILES_FOLDER = ".tfds_files"
# Written into a split's folder once every file of it is there.
COMPLETE_MARKER = ".complete.json"
# Run file: the folder each of --data/--val/--test read (runs with a TFDS source only).
SOURCES_FILE = "sources.json"
# Split read when a source names none.
DEFAULT_SPLITS = {"--data": "train", "--val": "validation", "--test": "test"}
SOURCE_KEYS = ("data", "val", "test")


@dataclass(frozen=True)
class TfdsSource:
    """A parsed `tfds:NAME[/SPLIT]` option value."""

    name: str
    split: str


def is_tfds(source: str | None) -> bool:
    """True when an option value names a TFDS dataset."""
    return source is not None and str(source).startswith(TFDS_PREFIX)


def parse_source(source: str, option: str) -> TfdsSource:
    """Parse `tfds:NAME[/SPLIT]`; the split defaults per option (see `DEFAULT_SPLITS`).

    Example:
        >>> parse_source("tfds:food101/validation", "--test")
        TfdsSource(name='food101', split='validation')
    """
    name, _, split = source[len(TFDS_PREFIX) :].partition("/")
    if not name:
        raise TledgeError(f"{option} {source}: expected tfds:NAME or tfds:NAME/SPLIT")
    return TfdsSource(name, split or DEFAULT_SPLITS[option])


def split_folder_name(split: str) -> str:
    """The folder name of a split (slicing syntax such as `train[:10%]` made safe)."""
    return re.sub(r"[^A-Za-z0-9_.%-]+", "_", split)


def record_sources(run: RunFolder, folders: dict[str, str | None]) -> None:
    """Write sources.json: the folder each of "data", "val" and "test" read (absolute)."""
    resolved = {key: str(Path(folders[key]).resolve()) if folders.get(key) else None
                for key in SOURCE_KEYS}  # fmt: skip
    atomic_write_text(run.root / SOURCES_FILE, json.dumps(resolved, indent=2) + "\n")


def run_image_folder(run: RunFolder, key: str) -> Path | None:
    """The folder of a run's "data", "val" or "test" images, or None (none, or not here).

    A `tfds:` value is the folder the run recorded in sources.json, else (runs from
    before it was written) the completed written-out split beside the run folder. A
    relative folder (runs from before configs stored absolute ones) was relative to
    where training ran: the working folder, or else a folder above the run.
    """
    if key not in SOURCE_KEYS:
        raise ValueError(f"key must be one of {SOURCE_KEYS}, not {key!r}")
    value = getattr(run.read_config(), key)
    if not value:
        return None
    if is_tfds(value):
        return _tfds_folder(run, key, value)
    stored = Path(value)
    root = run.root.resolve()
    bases = [Path.cwd(), *root.parents] if not stored.is_absolute() else [Path("/")]
    for base in bases:
        if (base / stored).is_dir():
            return (base / stored).resolve()
    return None


def _tfds_folder(run: RunFolder, key: str, value: str) -> Path | None:
    recorded = run.root / SOURCES_FILE
    if recorded.is_file():
        folder = json.loads(recorded.read_text(encoding="utf-8")).get(key)
        if folder and Path(folder).is_dir():
            return Path(folder)
    source = parse_source(value, f"--{key}")
    files = run.root.resolve().parent / TFDS_FILES_FOLDER
    # `<builder name>_<version>/<split>`: the newest completed copy of that split.
    found = [
        marker.parent
        for marker in files.glob(f"*/{split_folder_name(source.split)}/{COMPLETE_MARKER}")
        if marker.parent.parent.name.rpartition("_")[0] == source.name
    ]
    return max(found, key=lambda folder: (folder / COMPLETE_MARKER).stat().st_mtime, default=None)
