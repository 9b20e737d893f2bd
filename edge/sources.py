"""Frame sources: live cameras and streams, video files and image folders.

Every source has `read(timeout=None) -> Frame | None`, `close()`, `finished`, and works as
a context manager and an iterator. `fit_frames(classifier.fit_to_input)` makes each frame
also carry the model-sized image (`Frame.fitted`), computed where the frame is read, so
the inference thread does not spend time resizing. Two kinds behave differently on purpose:

- File sources (`VideoFileSource`, `ImageFolderSource`) return every frame in order and
  end cleanly; nothing is dropped, however slow the consumer.
- Live sources (`LiveSource`) read a camera in a background thread and keep only the
  newest frame, so a slow consumer always gets the latest image instead of one that
  waited in OpenCV's ~4-frame buffer. A failed read closes the camera and reopens it
  with exponential backoff; the thread never dies of a camera error.

`tledge.edge.source_spec.open_source` opens one from its command-line spelling.

Example:
    >>> with open_source("0") as source:
    ...     for frame in source:
    ...         print(frame.index, frame.image.shape)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.folders import list_images
from tledge.edge.cameras import (
    Camera,
    SimulatedCamera,
    close_quietly,
    open_capture,
)


@dataclass(frozen=True)
class Frame:
    """One image from a source.

    Attributes:
        image: HxWx3 BGR uint8 pixels (OpenCV order); the consumer may draw on it.
        index: Position in the source: frame number in a file, or the count of frames
            the camera delivered so far (gaps mean a live source dropped stale frames).
        timestamp: `time.time()` when the frame was captured (read, for files).
        path: The image file it came from (image sources), else "".
        fitted: `image` fitted to the model input by the source's fit function (see
            `Source.fit_frames`), or None when the source has none.
    """

    image: np.ndarray
    index: int
    timestamp: float
    path: str = ""
    fitted: np.ndarray | None = None


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays of a live source: `initial` seconds, doubling up to `maximum`."""

    initial: float = 0.5
    maximum: float = 10.0


class Source:
    """Shared behaviour: context manager and iteration over `read()` until it ends."""

    name: str = "source"
    is_live: bool = False
    fps: float | None = None
    _fit: Callable[[np.ndarray], np.ndarray] | None = None

    def fit_frames(self, fit: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """Attach `fit(image)` to every frame read from now on as `Frame.fitted`.

        Live sources call it in their capture thread, file sources in `read`; None stops.
        A frame whose fit raises gets `fitted=None`, so the classifier meets (and reports)
        the bad image itself.

        Example:
            >>> source.fit_frames(classifier.fit_to_input)
        """
        self._fit = fit

    def _make_frame(self, image: np.ndarray, index: int, path: str = "") -> Frame:
        return Frame(image, index, time.time(), path, _fitted(self._fit, image))

    def read(self, timeout: float | None = None) -> Frame | None:
        """Return the next frame; None at the end (or, for live sources, on timeout)."""
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        """True once the source has no more frames (end of file, or closed)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read()
            if frame is not None:
                yield frame
            elif self.finished:
                return


class VideoFileSource(Source):
    """Every frame of a video file, in order.

    Raises:
        TledgeError: when OpenCV cannot open the file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.name = str(path)
        self._capture = open_capture(str(path))
        if self._capture is None:
            raise TledgeError(f"--source {path}: cannot open as a video (unsupported or corrupt)")
        reported = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(reported) if reported and reported > 0 else None
        self.frame_count = max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        self._index = 0
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    def read(self, timeout: float | None = None) -> Frame | None:
        """Return the next frame of the file, or None at its end."""
        if self._finished:
            return None
        ok, image = self._capture.read()
        if not ok or image is None:
            self.close()
            return None
        frame = self._make_frame(image, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        self._finished = True
        self._capture.release()


class ImageFolderSource(Source):
    """Image files in the given order (an image folder is read sorted by name).

    Unreadable files are skipped and listed in `skipped`; `Frame.index` is the file's
    position, so a gap shows which one.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], name: str = "images") -> None:
        self.name = name
        self.paths = [Path(p) for p in paths]
        self.skipped: list[Path] = []
        self._next = 0

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> ImageFolderSource:
        """All images directly inside `folder`, sorted by file name.

        Raises:
            TledgeError: when the folder holds no image files.
        """
        paths = list_images(folder)
        if not paths:
            raise TledgeError(f"--source {folder}: folder has no image files")
        return cls(paths, name=str(folder))

    @property
    def finished(self) -> bool:
        return self._next >= len(self.paths)

    def read(self, timeout: float | None = None) -> Frame | None:
        """Return the next readable image, or None after the last one."""
        while self._next < len(self.paths):
            index, path = self._next, self.paths[self._next]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self.skipped.append(path)
                continue
            return self._make_frame(image, index, str(path))
        return None

    def close(self) -> None:
        self._next = len(self.paths)


class LiveSource(Source):
    """A camera read in a background thread that keeps only the newest frame.

    `read` returns the newest frame not returned before, waiting for one if needed, so a
    consumer slower than the camera works on images at most one frame old and never sees
    the same frame twice. Read failures close the camera and reopen it after a delay
    that doubles from `backoff.initial` to `backoff.maximum` and resets after a good frame.

    Args:
        open_camera: Returns an opened `Camera`; called again to reconnect. The first
            call happens here, so a wrong device raises at once.
        name: Shown in messages, e.g. "0" or "rtsp://...".
        backoff: Reconnect delays.

    Attributes:
        captured: Frames delivered by the camera so far.
        delivered: Frames returned by `read`.
        reconnects: Times the camera was reopened after a failure.
        last_error: Text of the last failure, "" when none.

    Raises:
        TledgeError: when the first `open_camera()` fails.

    Example:
        >>> source = LiveSource(lambda: SimulatedCamera(images, fps=30), "clip")
    """

    is_live = True

    def __init__(
        self, open_camera: Callable[[], Camera], name: str = "camera", backoff: Backoff = Backoff()
    ) -> None:
        self.name = name
        self._open_camera = open_camera
        self._backoff = backoff
        camera = open_camera()
        self.fps = getattr(camera, "fps", None)
        self.captured = 0
        self.delivered = 0
        self.reconnects = 0
        self.last_error = ""
        self._latest: Frame | None = None
        self._last_returned = -1
        self._ended = False
        self._closed = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self._capture_loop, args=(camera,), name=f"capture-{name}"
        )
        self._thread.daemon = True
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
                    self.delivered += 1
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

    def _capture_loop(self, camera: Camera | None) -> None:
        delay = self._backoff.initial
        while not self._closed.is_set():
            if camera is None:
                camera = self._reopen()
                if camera is None:
                    self._closed.wait(delay)
                    delay = min(delay * 2, self._backoff.maximum)
                    continue
            image = self._grab(camera)
            if image is not None:
                delay = self._backoff.initial
                # Fitted here, outside the lock, while the consumer classifies the last one.
                frame = self._make_frame(image, self.captured)
                with self._changed:
                    self._latest = frame
                    self.captured += 1
                    self._changed.notify_all()
                continue
            if camera.finished:
                break
            close_quietly(camera)
            camera = None
            self._closed.wait(delay)
            delay = min(delay * 2, self._backoff.maximum)
        if camera is not None:
            close_quietly(camera)
        with self._changed:
            self._ended = True
            self._changed.notify_all()

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

    def _reopen(self) -> Camera | None:
        try:
            camera = self._open_camera()
        except Exception as error:
            self.last_error = f"reconnect failed: {error}"
            return None
        self.reconnects += 1
        return camera


def _fitted(fit: Callable[[np.ndarray], np.ndarray] | None, image: np.ndarray) -> np.ndarray | None:
    if fit is None:
        return None
    # A capture thread must survive any image; the classifier reports a bad one when it
    # gets the full frame instead.
    try:
        return fit(image)
    except Exception:
        return None


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
