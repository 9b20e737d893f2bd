"""Reading a small UTF-8 text file with a one-line error that names it."""

from __future__ import annotations

import os
from pathlib import Path

from tledge.core.errors import TledgeError


def read_text_file(path: str | os.PathLike, kind: str) -> str:
    """Return the text of `path`, a `kind` file ("labels", "plan", ...).

    Raises:
        TledgeError: "<path>: <kind> file not found", or "<path>: cannot read <kind>
            (<reason>)" when it is unreadable or not UTF-8.
    """
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TledgeError(f"{file}: {kind} file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TledgeError(f"{file}: cannot read {kind} ({error})") from None
