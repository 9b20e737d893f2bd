"""The image check's memory: one verdict per file, keyed by path, size and mtime.

A small SQLite file beside the converted-image cache. A re-run or a resume looks every
file up here and decodes only files that are new or changed since their verdict (or
whose converted copy has gone). SQLite makes each batch of writes atomic and lets two
processes (workers of one machine) share the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

STORE_NAME = "checked_images.sqlite"
# Bump when what the check decides changes, so older verdicts are not trusted.
CHECK_VERSION = 1

OK = "ok"
CONVERTED = "converted"
BAD = "bad"


@dataclass(frozen=True)
class Verdict:
    """What the check decided about one file.

    Attributes:
        status: OK (use the file), CONVERTED (use `detail`, the converted copy) or BAD
            (skip it; `detail` says why).
        detail: The converted copy's path, the reason a file is bad, or "".
    """

    status: str
    detail: str = ""


@dataclass(frozen=True)
class FileKey:
    """The identity of a file's contents as far as the check trusts it."""

    path: str
    size: int
    mtime_ns: int


class VerdictStore:
    """Verdicts of earlier checks in `folder/checked_images.sqlite`.

    Example:
        >>> with VerdictStore(Path("runs/x/converted")) as store:
        ...     store.get(key)
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / STORE_NAME
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS verdicts (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, version INTEGER, status TEXT, detail TEXT)"
        )
        self._db.commit()

    def __enter__(self) -> VerdictStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self._db.close()

    def lookup(self, keys: Iterable[FileKey]) -> dict[str, Verdict]:
        """The stored verdicts of `keys` whose size and mtime still match, by path."""
        wanted = {key.path: key for key in keys}
        found: dict[str, Verdict] = {}
        rows = self._db.execute(
            "SELECT path, size, mtime_ns, status, detail FROM verdicts WHERE version = ?",
            (CHECK_VERSION,),
        )
        for path, size, mtime_ns, status, detail in rows:
            key = wanted.get(path)
            if key is None or (key.size, key.mtime_ns) != (size, mtime_ns):
                continue
            if status == CONVERTED and not Path(detail).is_file():
                continue
            found[path] = Verdict(status, detail)
        return found

    def remember(self, verdicts: Iterable[tuple[FileKey, Verdict]]) -> None:
        """Store (key, verdict) pairs in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        key.path,
                        key.size,
                        key.mtime_ns,
                        CHECK_VERSION,
                        verdict.status,
                        verdict.detail,
                    )
                    for key, verdict in verdicts
                ],
            )
