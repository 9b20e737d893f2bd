"""Stop requests from signals: the first SIGINT/SIGTERM asks for a clean stop.

`timeout`, systemd and a terminal's Ctrl-C often signal the whole process group, so one
stop arrives as two or three signals within milliseconds. Only the first counts; the
rest are ignored while the outputs are finalized. A Ctrl-C given again after
`FORCE_AFTER_S` seconds is a person insisting, and interrupts at once.

Example:
    >>> stop = threading.Event()
    >>> with stop_on_signals(stop):
    ...     while not stop.is_set():
    ...         work()
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

# Signals closer together than this are one request (a process group signalled twice).
FORCE_AFTER_S = 2.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ForcedStop(KeyboardInterrupt):
    """Raised by a second Ctrl-C given at least `FORCE_AFTER_S` after the first."""


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, force_after_s: float = FORCE_AFTER_S) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into `stop.set()` while the block runs (main thread only).

    A handler installed by an enclosing `stop_on_signals` is kept, so a command can
    install it before its slow start-up and the run loop inside can install it again.

    After a stop requested by a signal, the handler is left installed (the process is
    stopping, and late copies of the group signal must not abort it); after a forced
    stop or a block that ended on its own, the previous handlers are restored.

    Args:
        stop: Set by the first signal.
        force_after_s: A SIGINT this long after the first signal raises `ForcedStop`;
            earlier ones, and every later SIGTERM, are ignored.
    """
    installed = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or getattr(
        installed, "tledge_stop", None
    ):
        yield
        return
    first: list[float] = []
    forced: list[bool] = []

    def request_stop(signum: int, _frame: object) -> None:
        now = time.monotonic()
        if not first:
            first.append(now)
            stop.set()
        elif signum == signal.SIGINT and now - first[0] >= force_after_s:
            forced.append(True)
            raise ForcedStop

    request_stop.tledge_stop = True  # type: ignore[attr-defined]
    previous = {sig: signal.signal(sig, request_stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        # After a signal-initiated stop the handler stays installed: the rest of a group
        # signal can arrive after the block has ended (the stop was quick), and restoring
        # Python's handler would turn it into KeyboardInterrupt ("Aborted!", exit 1).
        if forced or not first:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
