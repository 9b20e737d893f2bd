"""`tledge capture`: photograph training images with the device's own camera.

Two ways to label what the camera sees:

- the web page (`--serve`, the live view's server): the stream, one button per class
  (keys 1-9), a field for a new class, and the count per class; a button saves the
  current full-resolution frame;
- headless (`--label pizza --every 2s --count 50`): a photo every interval until the
  count is reached.

Photos go to `DATA/<class>/<UTC time>.jpg` (a class-per-folder dataset that `tledge
train` and `--add-data` read), each written atomically: a full disk stops the capture
with one line and leaves no partial file.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tledge.core.atomic import atomic_write_bytes
from tledge.core.errors import TledgeError
from tledge.core.folders import list_images
from tledge.edge.capture_page import CAPTURE_PAGE
from tledge.edge.server import PreviewServer
from tledge.edge.sources import Source
from tledge.edge.stopping import stop_on_signals
from tledge.edge.web_access import ServeOptions

JPEG_QUALITY = 95
CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,63}$")
READ_TIMEOUT_S = 0.25


class CaptureStopped(TledgeError):
    """A photo could not be written (disk full, read-only): capturing must stop."""


def check_class_name(name: str) -> str:
    """Return `name` stripped when it is a safe class folder name.

    Raises:
        TledgeError: for names with slashes, leading dots, or other characters.
    """
    name = name.strip()
    if not CLASS_NAME.match(name):
        raise TledgeError(
            f"class name {name!r}: use letters, digits, space, '_', '-' or '.', "
            "starting with a letter or digit (at most 64)"
        )
    return name


class PhotoStore:
    """A class-per-folder dataset that photos are added to.

    Args:
        root: The dataset folder (created when missing).
        classes: Class names to offer even before they have photos.

    Raises:
        TledgeError: for a bad class name or a folder that cannot be created.
    """

    def __init__(self, root: str | os.PathLike, classes: tuple[str, ...] = ()) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TledgeError(f"{self.root}: cannot create ({error.strerror})") from None
        self._lock = threading.Lock()
        self._counts = {check_class_name(name): 0 for name in classes}
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and CLASS_NAME.match(folder.name):
                self._counts[folder.name] = len(list_images(folder))

    def counts(self) -> dict[str, int]:
        """Photos per class, in the order classes were first seen."""
        with self._lock:
            return dict(self._counts)

    def save(self, label: str, image: np.ndarray) -> Path:
        """Write `image` (BGR) as a new photo of `label` and return its path.

        Raises:
            TledgeError: for a bad class name.
            CaptureStopped: when the disk is full or not writable (one line; no partial
                file is left).
        """
        label = check_class_name(label)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise TledgeError("frame could not be encoded as JPEG")
        with self._lock:
            folder = self.root / label
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
            path = folder / f"{stamp}.jpg"
            suffix = 1
            while path.exists():
                path = folder / f"{stamp}-{suffix}.jpg"
                suffix += 1
            try:
                atomic_write_bytes(path, encoded.tobytes())
            except OSError as error:
                full = error.errno in (errno.ENOSPC, errno.EDQUOT)
                why = "disk full" if full else error.strerror or str(error)
                raise CaptureStopped(
                    f"{self.root}: {why}; capture stopped after "
                    f"{sum(self._counts.values())} photos, nothing half-written"
                ) from None
            self._counts[label] = self._counts.get(label, 0) + 1
        return path


@dataclass(frozen=True)
class CaptureOptions:
    """How `tledge capture` runs.

    Attributes:
        serve: The capture page (`ServeOptions` with its access rules, or just
            "[HOST:]PORT"), None for headless.
        label: Headless: the class every photo goes to.
        every_s: Headless: seconds between two photos.
        count: Headless: photos to take; None runs until stopped.
    """

    serve: ServeOptions | str | None = None
    label: str | None = None
    every_s: float = 2.0
    count: int | None = None

    def __post_init__(self) -> None:
        if (self.serve is None) == (self.label is None):
            raise TledgeError("tledge capture: give --serve for the page or --label for headless")
        if self.label is not None:
            check_class_name(self.label)


class _LatestFrame:
    """The newest full-resolution frame, handed from the loop to the web handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.image: np.ndarray | None = None

    def set(self, image: np.ndarray) -> None:
        with self._lock:
            self.image = image

    def get(self) -> np.ndarray | None:
        with self._lock:
            return self.image


def run_capture(
    source: Source,
    store: PhotoStore,
    options: CaptureOptions,
    stop: threading.Event | None = None,
    on_serve: Callable[[str], None] | None = None,
    on_photo: Callable[[Path], None] | None = None,
) -> int:
    """Show the source and save photos until stopped, the count is reached, or disk full.

    Args:
        source: The camera (any source works; a file ends the capture at its end).
        store: Where photos go.
        options: Web page or headless.
        stop: Set it to stop from another thread.
        on_serve: Called with the page's URL once it listens.
        on_photo: Called with each saved photo's path.

    Returns:
        Photos saved.

    Raises:
        TledgeError: when the disk is full (after stopping) or the server cannot listen.
    """
    stop = stop or threading.Event()
    latest = _LatestFrame()
    failure: list[CaptureStopped] = []
    saved = 0

    def save(label: str) -> Path:
        nonlocal saved
        image = latest.get()
        if image is None:
            raise TledgeError("no frame from the camera yet")
        try:
            path = store.save(label, image)
        except CaptureStopped as error:
            failure.append(error)
            stop.set()
            raise
        saved += 1
        if on_photo is not None:
            on_photo(path)
        return path

    def answer(path: str, body: Any) -> tuple[int, dict[str, Any]]:
        if path != "/capture" or not isinstance(body, dict) or "label" not in body:
            return 404, {"error": 'POST /capture with {"label": NAME}'}
        try:
            saved_path = save(str(body["label"]))
        except TledgeError as error:
            return 507 if failure else 400, {"error": str(error), "counts": store.counts()}
        return 200, {"saved": saved_path.name, "counts": store.counts()}

    server = None
    if options.serve is not None:
        server = PreviewServer(options.serve, page=CAPTURE_PAGE, post_handler=answer)
        if on_serve is not None:
            on_serve(server.url)
    next_shot = time.monotonic()
    # Ctrl-C and SIGTERM (from the main thread) end the loop; camera and page then close.
    with stop_on_signals(stop):
        try:
            while not stop.is_set():
                frame = source.read(timeout=READ_TIMEOUT_S)
                if frame is None:
                    if source.finished:
                        break
                    continue
                latest.set(frame.image)
                if server is not None:
                    server.publish(frame.image, {"frame": frame.index, "counts": store.counts()})
                    continue
                if time.monotonic() >= next_shot:
                    save(options.label)
                    next_shot = time.monotonic() + options.every_s
                    if options.count is not None and saved >= options.count:
                        break
        except CaptureStopped:
            pass  # raised below, after the server and camera are closed
        finally:
            if server is not None:
                server.close()
            source.close()
    if failure:
        raise failure[0]
    return saved


def parse_interval(text: str) -> float:
    """Seconds in "2s", "500ms", "1.5" or "1m".

    Raises:
        TledgeError: for anything else.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m)?\s*", text)
    if match is None:
        raise TledgeError(f"--every {text}: expected e.g. 2s, 500ms or 1m")
    value = float(match.group(1))
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
