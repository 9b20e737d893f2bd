"""`open_source`: the source a `--source` spelling names (camera, stream, file or folder)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tledge.core.errors import TledgeError
from tledge.core.folders import is_image_file
from tledge.edge.cameras import PICAMERA2_SIZE, STREAM_PREFIXES, OpenCVCamera, Picamera2Camera
from tledge.edge.live_source import Backoff, LiveSource
from tledge.edge.sources import ImageFolderSource, Source, VideoFileSource


def open_source(
    spec: str, backoff: Backoff = Backoff(), on_event: Callable[[str], None] | None = None
) -> Source:
    """Open a source from its command-line spelling.

    Args:
        spec: A camera index ("0"), a device path ("/dev/video0"), "picamera2" (or
            "picamera2:1280x720"), a video file, an image file, a folder of images, or a
            stream URL (rtsp://, http://, ...).
        backoff: Reconnect policy of live sources (files never retry).
        on_event: Gets one line per reconnect attempt and recovery of a live source.

    Raises:
        TledgeError: when the spec names nothing that exists or can be opened.
    """
    text = spec.strip()
    if text.isdigit():
        return LiveSource(
            lambda: OpenCVCamera(int(text)), name=text, backoff=backoff, on_event=on_event
        )
    if text.lower().startswith("picamera2"):
        size = _picamera2_size(text)
        return LiveSource(
            lambda: Picamera2Camera(size), name=text, backoff=backoff, on_event=on_event
        )
    if text.startswith(STREAM_PREFIXES) or text.startswith("/dev/video"):
        return LiveSource(lambda: OpenCVCamera(text), name=text, backoff=backoff, on_event=on_event)
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
