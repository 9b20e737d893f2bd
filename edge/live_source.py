"""Live sources: a camera or stream read in a background thread, newest frame only.

A slow consumer always gets the latest image instead of one that waited in OpenCV's
~4-frame buffer. A camera that cannot be opened, or stops delivering, is reopened with
a delay that doubles up to `Backoff.maximum`; each outage (at start or mid-run) may last
`Backoff.give_up_after` seconds before the source ends with `SourceStats.lost` set.
Every failed attempt and every recovery is reported as one line through `on_event`.

Example:
    >>> source = LiveSource(lambda: OpenCVCamera("rtsp://cam/stream"), "rtsp://cam/stream",
    ...                     on_event=print)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tledge.edge.cameras import Camera, CameraUnavailable, SimulatedCamera, close_quietly
from tledge.edge.sources import Frame, Source, SourceStats, VideoFileSource

# The command's default for how long one outage may last before the run ends.
DEFAULT_GIVE_UP_AFTER_S = 60.0


@dataclass(frozen=True)
class Backoff:
    """Reconnect policy of a live source.

    Attributes:
        initial: First delay between attempts, in seconds; it doubles after each failure.
        maximum: Longest delay between attempts.
        give_up_after: Longest one outage may last (at start or mid-run) before the
            source ends; 0 fails at once, `math.inf` waits forever.
    """

    initial: float = 0.5
    maximum: float = 10.0
    give_up_after: float = DEFAULT_GIVE_UP_AFTER_S


class _Outage:
    """Bookkeeping of one stretch without frames: when it began and how many attempts."""

    def __init__(self, backoff: Backoff, reason: str, attempts: int = 0) -> None:
        self.started = time.monotonic()
        self.attempts = attempts
        self.reason = reason
        self.delay = backoff.initial
        self._backoff = backoff

    def next_delay(self) -> float | None:
        """The wait before the next attempt, None when the outage has lasted too long."""
        remaining = self._backoff.give_up_after - (time.monotonic() - self.started)
        if remaining <= 0:
            return None
        # The last attempt falls on the limit itself.
        delay, self.delay = min(self.delay, remaining), min(self.delay * 2, self._backoff.maximum)
        return delay

    def lasted(self) -> float:
        return time.monotonic() - self.started


class LiveSource(Source):
    """A camera read in a background thread that keeps only the newest frame.

    `read` returns the newest frame not returned before, waiting for one if needed, so a
    consumer slower than the camera works on images at most one frame old and never sees
    the same frame twice. Read failures close the camera and reopen it after a delay
    that doubles from `backoff.initial` to `backoff.maximum` and resets after a good frame.

    Args:
        open_camera: Returns an opened `Camera`; called again to reconnect. The first
            call happens here: a `CameraUnavailable` or `OSError` is retried by the
            capture thread (unless `backoff.give_up_after == 0`); other errors (a
            missing driver) raise at once.
        name: Shown in messages, e.g. "0" or "rtsp://...".
        backoff: Reconnect policy.
        on_event: Called with one line per failed attempt, recovery or give-up.

    Attributes:
        last_error: Text of the last failure, "" when none.

    Raises:
        TledgeError: when the first `open_camera()` fails and is not retried.

    Example:
        >>> source = LiveSource(lambda: SimulatedCamera(images, fps=30), "clip")
    """

    def __init__(
        self,
        open_camera: Callable[[], Camera],
        name: str = "camera",
        backoff: Backoff = Backoff(),
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self._open_camera = open_camera
        self._backoff = backoff
        self._on_event = on_event or (lambda line: None)
        self.last_error = ""
        self._captured = 0
        self._delivered = 0
        self._reconnects = 0
        self._lost = ""
        self._latest: Frame | None = None
        self._last_returned = -1
        self._ended = False
        self._closed = threading.Event()
        self._changed = threading.Condition()
        camera: Camera | None
        outage: _Outage | None = None
        try:
            camera = open_camera()
        except Exception as error:
            if backoff.give_up_after <= 0 or not isinstance(error, (CameraUnavailable, OSError)):
                raise
            camera, outage = None, _Outage(backoff, _reason(error), attempts=1)
            self.last_error = outage.reason
        super().__init__(name, is_live=True, fps=getattr(camera, "fps", None))
        self._thread = threading.Thread(
            target=self._capture_loop, args=(camera, outage), name=f"capture-{name}", daemon=True
        )
        self._thread.start()

    @property
    def finished(self) -> bool:
        with self._changed:
            return self._closed.is_set() or (self._ended and self._all_read())

    @property
    def latest_index(self) -> int:
        """Index of the newest captured frame, -1 before the first."""
        latest = self._latest
        return latest.index if latest is not None else -1

    def stats(self) -> SourceStats:
        """Frames captured and returned, reconnects, and why the source gave up (if it did)."""
        with self._changed:
            return SourceStats(self._captured, self._delivered, self._reconnects, lost=self._lost)

    def read(self, timeout: float | None = None) -> Frame | None:
        """Return the newest unread frame; None after `timeout` seconds, at the end or on close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                if self._closed.is_set():
                    return None
                latest = self._latest
                if latest is not None and latest.index > self._last_returned:
                    self._last_returned = latest.index
                    self._delivered += 1
                    return latest
                if self._ended:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                # Short waits keep the main thread responsive to signals.
                self._changed.wait(0.1 if remaining is None else min(remaining, 0.1))

    def close(self) -> None:
        """Stop the capture thread and release the camera."""
        self._closed.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def _all_read(self) -> bool:
        return self._latest is None or self._latest.index <= self._last_returned

    def _capture_loop(self, camera: Camera | None, outage: _Outage | None) -> None:
        while not self._closed.is_set():
            if camera is None:
                assert outage is not None
                if not self._wait_before_retry(outage):
                    break
                camera = self._reopen(outage)
                continue
            image = self._grab(camera)
            if image is not None:
                if outage is not None:
                    self._on_event(
                        f"--source {self.name}: back after {outage.lasted():.1f} s "
                        f"({outage.attempts} attempt{'s' if outage.attempts != 1 else ''})"
                    )
                    outage = None
                # Fitted here, outside the lock, while the consumer classifies the last one.
                frame = self._make_frame(image, self._captured)
                with self._changed:
                    self._latest = frame
                    self._captured += 1
                    self._changed.notify_all()
                continue
            if camera.finished:
                break
            close_quietly(camera)
            camera = None
            if outage is None:
                outage = _Outage(self._backoff, self.last_error)
                self._on_event(f"--source {self.name}: no frames ({self.last_error}); reconnecting")
        if camera is not None:
            close_quietly(camera)
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def _wait_before_retry(self, outage: _Outage) -> bool:
        """Sleep until the next attempt; False when the outage lasted too long (or closed)."""
        delay = outage.next_delay()
        if delay is None:
            with self._changed:
                self._lost = (
                    f"--source {self.name}: no frames for {outage.lasted():.0f} s "
                    f"({outage.attempts} attempts; last: {self.last_error})"
                )
            return False
        self._on_event(
            f"--source {self.name}: {self.last_error}; attempt {outage.attempts + 1} "
            f"in {delay:.1f} s"
        )
        return not self._closed.wait(delay)

    def _grab(self, camera: Camera) -> np.ndarray | None:
        # A camera driver can raise anything (USB unplugged, stream reset); the thread
        # must survive it and reconnect, so every exception counts as a failed read.
        try:
            image = camera.grab()
        except Exception as error:
            self.last_error = f"read failed: {error}"
            return None
        if image is None and not camera.finished:
            self.last_error = "read failed"
        return image

    def _reopen(self, outage: _Outage) -> Camera | None:
        outage.attempts += 1
        try:
            camera = self._open_camera()
        except Exception as error:
            self.last_error = _reason(error)
            return None
        with self._changed:
            self._reconnects += 1
        return camera


def _reason(error: Exception) -> str:
    """The error's text without a leading "--source X: " (the events add their own)."""
    text = str(error)
    if text.startswith("--source "):
        text = text.split(": ", 1)[-1]
    return text


def simulated_live_source(
    frames: str | os.PathLike | Sequence[np.ndarray],
    fps: float,
    loop: bool = True,
    backoff: Backoff = Backoff(),
) -> LiveSource:
    """A `LiveSource` over a `SimulatedCamera`: a video or images played as a live camera.

    Example:
        >>> with simulated_live_source("clip.mp4", fps=60, loop=False) as source:
        ...     frames = list(source)  # only the frames that were newest when read
    """
    if isinstance(frames, (str, os.PathLike)):
        frames = [frame.image for frame in VideoFileSource(frames)]
    return LiveSource(lambda: SimulatedCamera(frames, fps, loop), name="simulated", backoff=backoff)
