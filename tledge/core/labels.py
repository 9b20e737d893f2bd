"""Reading and writing `labels.txt`: one class name per line, in output order."""

from __future__ import annotations

import os
from pathlib import Path

from tledge.core.atomic import atomic_write_text
from tledge.core.errors import TledgeError
from tledge.core.text_files import read_text_file


def read_labels(path: str | os.PathLike) -> list[str]:
    """Return the class names in `path`, one per non-empty line.

    Raises:
        TledgeError: when the file is missing, unreadable or has no labels.
    """
    file = Path(path)
    text = read_text_file(file, "labels")
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise TledgeError(f"{file}: labels file is empty")
    return labels


def write_labels(path: str | os.PathLike, labels: list[str] | tuple[str, ...]) -> Path:
    """Write `labels` to `path` atomically, one per line, and return the path."""
    return atomic_write_text(path, "".join(f"{label}\n" for label in labels))
