"""Frame sources: cameras, Picamera2, video files, image folders and network streams.

Every source has `read(timeout=None) -> Frame | None`, `close()`, `finished`, and works as
a context manager and an iterator. Two kinds behave differently on purpose:

- File sources (`VideoFileSource`, `ImageFolderSource`) return every frame in order and
  end cleanly; nothing is dropped, however slow the consumer.
- Live sources (`LiveSource`) read a camera in a background thread and keep only the
  newest frame, so a slow consumer always gets the latest image instead of one that
  waited in OpenCV's ~4-frame buffer. A failed read closes the camera and reopens it
  with exponential backoff; the thread never dies of a camera error.

Example:
    >>> with open_source("0") as source:
    ...     for frame in source:
    ...         print(frame.index, frame.image.shape)
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from tledge.edge.errors import TledgeError
from tledge.edge.images import is_image_file, list_images

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
PICAMERA2_HELP = (
    "on Raspberry Pi OS run `sudo apt install python3-picamera2` and create the venv with "
    "`python3 -m venv --system-site-packages` (see docs/raspberry-pi.md)"
)
PICAMERA2_NUMPY_HELP = (
    "run `pip install --force-reinstall simplejpeg` in the venv (see docs/raspberry-pi.md)"
)
# Enough for 224-pixel models; larger frames only cost capture and resize time.
PICAMERA2_SIZE = (640, 480)
# Network streams must not block the capture thread forever when the server goes away.
STREAM_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Frame:
    """One image from a source.

    Attributes:
        image: HxWx3 BGR uint8 pixels (OpenCV order); the consumer may draw on it.
        index: Position in the source: frame number in a file, or the count of frames
            the camera delivered so far (gaps mean a live source dropped stale frames).
        timestamp: `time.time()` when the frame was captured (read, for files).
        path: The image file it came from (image sources), else "".
    """

    image: np.ndarray
    index: int
    timestamp: float
    path: str = ""


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays of a live source: `initial` seconds, doubling up to `maximum`."""

    initial: float = 0.5
    maximum: float = 10.0


class Camera(Protocol):
    """What `LiveSource` reads: a device that blocks until its next image.

    `grab` returns a BGR image, or None when the read failed (the source reopens the
    camera) or when `finished` became True (a simulated camera out of frames).
    """

    finished: bool

    def grab(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class Source:
    """Shared behaviour: context manager and iteration over `read()` until it ends."""

    name: str = "source"
    is_live: bool = False
    fps: float | None = None

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
        self._capture = _open_capture(str(path))
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
        frame = Frame(image, self._index, time.time())
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
            return Frame(image, index, time.time(), str(path))
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
        >>> source = LiveSource(lambda: SimulatedCamera("clip.mp4", fps=30), "clip")
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
                with self._changed:
                    self._latest = Frame(image, self.captured, time.time())
                    self.captured += 1
                    self._changed.notify_all()
                continue
            if camera.finished:
                break
            _close_quietly(camera)
            camera = None
            self._closed.wait(delay)
            delay = min(delay * 2, self._backoff.maximum)
        if camera is not None:
            _close_quietly(camera)
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


class OpenCVCamera:
    """A USB/V4L2 camera (index or /dev/videoN) or network stream read with OpenCV.

    Raises:
        TledgeError: when the device or stream cannot be opened.
    """

    finished = False

    def __init__(self, target: int | str) -> None:
        self.target = target
        self._capture = _open_capture(target)
        if self._capture is None:
            kind = (
                "stream"
                if isinstance(target, str) and target.startswith(STREAM_PREFIXES)
                else "camera"
            )
            raise TledgeError(f"--source {target}: cannot open {kind} (check the device or URL)")
        # Where the backend supports it, a 1-frame buffer lowers latency further.
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        reported = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(reported) if reported and reported > 0 else None

    def grab(self) -> np.ndarray | None:
        """Block until the next frame; None when the read failed."""
        ok, image = self._capture.read()
        return image if ok else None

    def close(self) -> None:
        """Release the device."""
        self._capture.release()


class Picamera2Camera:
    """The Raspberry Pi camera through Picamera2 (imported only when this is created).

    Raises:
        TledgeError: when picamera2 is not installed or the camera cannot start.
    """

    finished = False

    def __init__(self, size: tuple[int, int] = PICAMERA2_SIZE) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise TledgeError(
                f"--source picamera2: picamera2 is not installed; {PICAMERA2_HELP}"
            ) from None
        except ValueError as error:
            # apt's simplejpeg is built for Debian's numpy 1.x; a venv with numpy 2 breaks it.
            raise TledgeError(
                f"--source picamera2: picamera2 failed to import ({error}); {PICAMERA2_NUMPY_HELP}"
            ) from None
        try:
            self._camera = Picamera2()
            # "RGB888" is stored B, G, R in memory: the order OpenCV uses.
            config = self._camera.create_video_configuration(
                main={"size": size, "format": "RGB888"}
            )
            self._camera.configure(config)
            self._camera.start()
        except Exception as error:  # libcamera raises many types
            raise TledgeError(f"--source picamera2: camera did not start ({error})") from None
        self.fps = None

    def grab(self) -> np.ndarray | None:
        """Block until the next frame."""
        return self._camera.capture_array("main")

    def close(self) -> None:
        """Stop and release the camera."""
        self._camera.stop()
        self._camera.close()


class SimulatedCamera:
    """Plays frames at a fixed rate, like a camera: for tests and pipeline benchmarks.

    `grab` sleeps until the next frame is due, so wrapped in a `LiveSource` it behaves
    like a real camera producing `fps` frames per second whatever the consumer does.

    Args:
        frames: A video file, or a list of BGR images.
        fps: Frames per second to produce.
        loop: Start again after the last frame; otherwise `finished` becomes True.
    """

    def __init__(
        self, frames: str | os.PathLike | Sequence[np.ndarray], fps: float, loop: bool = True
    ) -> None:
        if fps <= 0:
            raise TledgeError(f"simulated camera: fps must be > 0, got {fps}")
        self.fps = float(fps)
        self.loop = loop
        self.finished = False
        if isinstance(frames, (str, os.PathLike)):
            images = [frame.image for frame in VideoFileSource(frames)]
        else:
            images = list(frames)
        if not images:
            raise TledgeError("simulated camera: no frames to play")
        self._images = images
        self._position = 0
        self._next_due = time.monotonic()

    def grab(self) -> np.ndarray | None:
        """Wait until the next frame is due and return a copy of it."""
        if self._position >= len(self._images):
            if not self.loop:
                self.finished = True
                return None
            self._position = 0
        delay = self._next_due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        # Schedule from the due time, not from now, so the rate does not drift.
        self._next_due = max(self._next_due + 1.0 / self.fps, time.monotonic() - 1.0 / self.fps)
        image = self._images[self._position].copy()
        self._position += 1
        return image

    def close(self) -> None:
        """Nothing to release."""


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
    return LiveSource(lambda: SimulatedCamera(frames, fps, loop), name="simulated", backoff=backoff)


def open_source(spec: str, backoff: Backoff = Backoff()) -> Source:
    """Open a source from its command-line spelling.

    Args:
        spec: A camera index ("0"), a device path ("/dev/video0"), "picamera2" (or
            "picamera2:1280x720"), a video file, an image file, a folder of images, or a
            stream URL (rtsp://, http://, ...).
        backoff: Reconnect delays for live sources.

    Raises:
        TledgeError: when the spec names nothing that exists or can be opened.
    """
    text = spec.strip()
    if text.isdigit():
        return LiveSource(lambda: OpenCVCamera(int(text)), name=text, backoff=backoff)
    if text.lower().startswith("picamera2"):
        size = _picamera2_size(text)
        return LiveSource(lambda: Picamera2Camera(size), name=text, backoff=backoff)
    if text.startswith(STREAM_PREFIXES) or text.startswith("/dev/video"):
        return LiveSource(lambda: OpenCVCamera(text), name=text, backoff=backoff)
    path = Path(text)
    if path.is_dir():
        return ImageFolderSource.from_folder(path)
    if path.is_file():
        if is_image_file(path):
            return ImageFolderSource([path], name=str(path))
        return VideoFileSource(path)
    raise TledgeError(
        f"--source {spec}: no such file, folder or camera; use a camera index (0), "
        "/dev/videoN, picamera2, a video file, an image folder or an rtsp:// URL"
    )


def _picamera2_size(spec: str) -> tuple[int, int]:
    """(width, height) from "picamera2" or "picamera2:WIDTHxHEIGHT"."""
    _, _, size = spec.partition(":")
    if not size:
        return PICAMERA2_SIZE
    width, _, height = size.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise TledgeError(f"--source {spec}: expected picamera2 or picamera2:WIDTHxHEIGHT")
    return int(width), int(height)


def _open_capture(target: int | str) -> cv2.VideoCapture | None:
    """Open an OpenCV capture quietly; None when it does not open."""
    with _quiet_opencv():
        if isinstance(target, str) and target.startswith(STREAM_PREFIXES):
            timeouts = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                STREAM_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                STREAM_TIMEOUT_MS,
            ]
            capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG, timeouts)
        else:
            capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        capture.release()
        return None
    return capture


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    # OpenCV logs every backend it tried when a capture fails to open; the caller turns
    # the failure into one clear message instead.
    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def _close_quietly(camera: Camera) -> None:
    with contextlib.suppress(Exception):
        camera.close()
