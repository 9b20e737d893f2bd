"""Where per-frame results go: JSON lines (`--jsonl`) and an annotated video (`--save`)."""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from tledge.core.atomic import FILE_MODE
from tledge.core.errors import TledgeError

# fourcc per container; both play back with OpenCV's bundled FFmpeg and common players.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
# Marks the hidden file a video is written to until it is complete.
PARTIAL_MARK = ".partial"
# Live sources have no trustworthy frame rate; the first frames measure it.
FPS_PROBE_FRAMES = 10


class JsonlWriter:
    """Writes one JSON object per line to a file or to stdout ("-").

    Lines are flushed as they are written so `tail -f` or a pipe sees each frame at once.
    This is a log that grows while the client runs, not a document, so it is appended in
    place rather than written atomically.

    Raises:
        TledgeError: when the file cannot be opened.
    """

    def __init__(self, target: str | os.PathLike) -> None:
        self.target = str(target)
        if self.target == "-":
            self._stream: IO[str] = sys.stdout
            self._owned = False
        else:
            try:
                Path(self.target).parent.mkdir(parents=True, exist_ok=True)
                self._stream = open(self.target, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as error:
                raise TledgeError(f"--jsonl {target}: cannot write ({error.strerror})") from None
            self._owned = True

    def write(self, record: dict[str, Any]) -> bool:
        """Append `record` as one line and flush; False once the reader of a pipe left.

        `tledge edge ... --jsonl - | head -5` must end quietly when `head` exits.
        """
        try:
            self._stream.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._stream.flush()
        except BrokenPipeError:
            if not self._owned:
                # Python flushes stdout again at exit; point it at /dev/null so that
                # flush cannot fail a second time with a traceback.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            return False
        return True

    def close(self) -> None:
        """Close the file (stdout stays open)."""
        if self._owned:
            self._stream.close()


class AnnotatedVideoWriter:
    """Writes frames to a video that appears at `path` only once it is complete.

    Frames go to a hidden partial file beside `path` (see `partial_path`); `close()`
    finalizes the container and renames it, so an interrupted run (Ctrl-C, SIGTERM)
    still leaves a playable video, and a crash leaves no half-written one. A partial file
    left by a killed run (`kill -9`, power loss) is removed by the next run that saves
    to the same path.

    Args:
        path: Output video; the suffix picks the codec (.mp4/.mov: mp4v, .avi/.mkv: MJPG).
        fps: Playback rate; None measures it from the timestamps of the first frames
            (for live sources, whose rate is the classification rate).

    Raises:
        TledgeError: for an unsupported suffix or when OpenCV cannot create the file.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise TledgeError(f"--save {path}: use one of {', '.join(VIDEO_CODECS)}")
        self.fps = fps
        self.frames_written = 0
        self._fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[suffix])
        self._tmp = partial_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_partials(self.path)
            # Created now, so an unwritable place is reported before the run starts.
            self._tmp.touch()
        except OSError as error:
            raise TledgeError(
                f"--save {path}: cannot write there ({error.strerror or error})"
            ) from None
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._pending: list[tuple[np.ndarray, float]] = []

    def write(self, image: np.ndarray, timestamp: float) -> None:
        """Add one BGR frame captured at `timestamp` (seconds)."""
        if self._writer is None and self.fps is None:
            self._pending.append((image.copy(), timestamp))
            if len(self._pending) >= FPS_PROBE_FRAMES:
                self._flush_pending()
            return
        self._encode(image)

    def close(self) -> None:
        """Finish the file and move it to `path`; safe to call twice."""
        if self._pending:
            self._flush_pending()
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.frames_written and self._tmp.exists():
            os.chmod(self._tmp, FILE_MODE)
            os.replace(self._tmp, self.path)
        else:
            # Nothing was written: drop the temporary file instead of leaving an empty video.
            self._tmp.unlink(missing_ok=True)

    def _flush_pending(self) -> None:
        stamps = [stamp for _, stamp in self._pending]
        span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
        measured = (len(stamps) - 1) / span if span > 0 else 30.0
        # A whole rate: MPEG-4 rejects time bases like 1000/71179 that a raw float makes.
        self.fps = float(max(1, round(measured)))
        pending, self._pending = self._pending, []
        for image, _ in pending:
            self._encode(image)

    def _encode(self, image: np.ndarray) -> None:
        if self._writer is None:
            height, width = image.shape[:2]
            self._size = (width, height)
            self._writer = cv2.VideoWriter(str(self._tmp), self._fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                raise TledgeError(f"--save {self.path}: OpenCV cannot write this video format")
        if (image.shape[1], image.shape[0]) != self._size:
            # A camera that reconnected at another resolution must not break the file.
            image = cv2.resize(image, self._size)
        self._writer.write(image)
        self.frames_written += 1


def partial_path(path: Path) -> Path:
    """The hidden file a video is written to first: ".NAME.PID.partial.SUFFIX" beside it."""
    return path.with_name(f".{path.name}.{os.getpid()}{PARTIAL_MARK}{path.suffix}")


def remove_stale_partials(path: Path) -> None:
    """Delete partial files of `path` whose writing process no longer exists."""
    for partial in path.parent.glob(f".{glob.escape(path.name)}.*{PARTIAL_MARK}{path.suffix}"):
        pid = partial.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _process_exists(int(pid)):
            partial.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
