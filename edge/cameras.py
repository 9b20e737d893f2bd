"""Camera devices that `LiveSource` reads: OpenCV (USB/V4L2, network streams), Picamera2,
and a simulated camera that plays a video or images at a fixed rate.

Each has `grab() -> BGR image | None`, `finished` and `close()` (the `Camera` protocol).
Picamera2 is imported only when one is opened, so a machine without it never pays.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import cv2
import numpy as np

from tledge.core.errors import TledgeError

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
# cv::utils::logging::LOG_LEVEL_SILENT, the same in OpenCV 4 and 5.
OPENCV_LOG_SILENT = 0


class CameraUnavailable(TledgeError):
    """The device or stream did not open or start; it may come back, so it is retried."""


class Camera(Protocol):
    """What `LiveSource` reads: a device that blocks until its next image.

    `grab` returns a BGR image, or None when the read failed (the source reopens the
    camera) or when `finished` became True (a simulated camera out of frames).
    """

    finished: bool

    def grab(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class OpenCVCamera:
    """A USB/V4L2 camera (index or /dev/videoN) or network stream read with OpenCV.

    Raises:
        TledgeError: when the device or stream cannot be opened.
    """

    def __init__(self, target: int | str) -> None:
        self.target = target
        self.finished = False
        self._capture = open_capture(target)
        if self._capture is None:
            kind = (
                "stream"
                if isinstance(target, str) and target.startswith(STREAM_PREFIXES)
                else "camera"
            )
            raise CameraUnavailable(
                f"--source {target}: cannot open {kind} (check the device or URL)"
            )
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

    def __init__(self, size: tuple[int, int] = PICAMERA2_SIZE) -> None:
        self.finished = False
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
            raise CameraUnavailable(f"--source picamera2: camera did not start ({error})") from None
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
        frames: BGR images (`simulated_live_source` also takes a video file).
        fps: Frames per second to produce.
        loop: Start again after the last frame; otherwise `finished` becomes True.
    """

    def __init__(self, frames: Sequence[np.ndarray], fps: float, loop: bool = True) -> None:
        if fps <= 0:
            raise TledgeError(f"simulated camera: fps must be > 0, got {fps}")
        self.fps = float(fps)
        self.loop = loop
        self.finished = False
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


def open_capture(target: int | str) -> cv2.VideoCapture | None:
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
    get_level, set_level = _opencv_log_level_functions()
    previous = get_level()
    set_level(OPENCV_LOG_SILENT)
    try:
        yield
    finally:
        set_level(previous)


def _opencv_log_level_functions() -> tuple[Callable[[], int], Callable[[int], object]]:
    # OpenCV 5 has them in cv2.utils.logging; OpenCV 4 (4.10 is the last release built
    # for numpy 1, which tflite-runtime needs) only at the top level.
    logging = getattr(cv2.utils, "logging", None)
    if logging is not None:
        return logging.getLogLevel, logging.setLogLevel
    return cv2.getLogLevel, cv2.setLogLevel


def close_quietly(camera: Camera) -> None:
    with contextlib.suppress(Exception):
        camera.close()
