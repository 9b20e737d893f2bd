"""Progress bars for long library steps: on a terminal only, silent in logs and CI."""

from __future__ import annotations

import sys
import time
from typing import Any

import click


class ProgressBars:
    """A (stage, done, total) progress callback showing one click bar per stage.

    Each bar shows done/total, the rate and the time left. When stderr is not a
    terminal (a log file, CI) nothing is printed.
    """

    def __init__(self) -> None:
        self.stage = ""
        self.done = 0
        self.started = 0.0
        self.bar: Any = None
        self.enabled = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            self.close()
            self.stage, self.done, self.started = stage, 0, time.perf_counter()
            self.bar = click.progressbar(
                length=max(total, 1),
                label=f"{stage:<26}",
                file=sys.stderr,
                show_pos=True,
                show_eta=True,
                item_show_func=lambda _: self._rate(),
            )
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def _rate(self) -> str:
        seconds = time.perf_counter() - self.started
        return f"{self.done / seconds:.0f}/s" if seconds > 0 and self.done else ""

    def close(self) -> None:
        """Finish the current bar, if any."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        self.stage = ""
