"""Frame sources: live cameras and streams, video files and image folders.

Every source has `read(timeout=None) -> Frame | None`, `close()`, `finished`, and works as
a context manager and an iterator. `fit_frames(classifier.fit_to_input)` makes each frame
also carry the model-sized image (`Frame.fitted`), computed where the frame is read, so
the inference thread does not spend time resizing. Two kinds behave differently on purpose:

- File sources (`VideoFileSource`, `ImageFolderSource`) return every frame in order and
  end cleanly; nothing is dropped, however slow the consumer.
- Live sources (`tledge.edge.live_source.LiveSource`) read a camera in a background
  thread and keep only the newest frame, and reconnect after failures.

`tledge.edge.source_spec.open_source` opens one from its command-line spelling.

Example:
    >>> with open_source("0") as source:
    ...     for frame in source:
    ...         print(frame.index, frame.image.shape)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.folders import list_images
from tledge.edge.cameras import open_capture


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
class SourceStats:
    """What a source counted while it ran.

    Attributes:
        captured: Frames a live camera delivered; None for file sources.
        delivered: Frames returned by `read`.
        reconnects: Times a live source reopened its camera after a failure.
        skipped: Unreadable files an image-folder source skipped.
        lost: Why a live source gave up (no frames for longer than it may wait), else "".
    """

    captured: int | None = None
    delivered: int = 0
    reconnects: int = 0
    skipped: tuple[Path, ...] = ()
    lost: str = ""

    @property
    def dropped(self) -> int:
        """Live frames never returned because a newer one arrived first."""
        return 0 if self.captured is None else max(0, self.captured - self.delivered)


class Source:
    """Shared behaviour: context manager and iteration over `read()` until it ends.

    Attributes:
        name: Shown in messages: the file, folder, device or URL.
        is_live: True for cameras and streams (newest frame only), False for files.
        fps: The rate the source reports, None when unknown.
    """

    def __init__(self, name: str, is_live: bool = False, fps: float | None = None) -> None:
        self.name = name
        self.is_live = is_live
        self.fps = fps
        self._fit: Callable[[np.ndarray], np.ndarray] | None = None

    def stats(self) -> SourceStats:
        """What the source counted so far."""
        return SourceStats()

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
        capture = open_capture(str(path))
        if capture is None:
            raise TledgeError(f"--source {path}: cannot open as a video (unsupported or corrupt)")
        reported = capture.get(cv2.CAP_PROP_FPS)
        super().__init__(str(path), fps=float(reported) if reported and reported > 0 else None)
        self._capture = capture
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
        super().__init__(name)
        self.paths = [Path(p) for p in paths]
        self.skipped: list[Path] = []
        self._next = 0
        self._delivered = 0

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
            self._delivered += 1
            return self._make_frame(image, index, str(path))
        return None

    def stats(self) -> SourceStats:
        """Images returned and the unreadable files skipped so far."""
        return SourceStats(delivered=self._delivered, skipped=tuple(self.skipped))

    def close(self) -> None:
        self._next = len(self.paths)


def _fitted(fit: Callable[[np.ndarray], np.ndarray] | None, image: np.ndarray) -> np.ndarray | None:
    if fit is None:
        return None
    # A capture thread must survive any image; the classifier reports a bad one when it
    # gets the full frame instead.
    try:
        return fit(image)
    except Exception:
        return None
