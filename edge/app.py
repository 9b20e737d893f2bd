"""The edge client's run loop: read a frame, classify, smooth, draw, hand to the outputs.

Classification runs one frame ahead in a worker thread (`_ClassifyAhead`), so `invoke()`
of frame N+1 overlaps the smoothing, drawing and outputs of frame N. Sources fit each
frame to the model input where they read it (a camera's capture thread, the file
read-ahead), so the worker only quantizes and invokes; the full frame is drawn and saved.

`run_edge` is what `tledge edge` calls; the outputs (JSON lines, video file, web view,
window) are opened from `EdgeOptions` and all closed, finalized, however the loop ends:
end of file, `--max-frames`, Ctrl-C / SIGTERM, or `q` in the window.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tledge.core.errors import TledgeError
from tledge.edge.classification import Classification, Timings, rank
from tledge.edge.classifier import Classifier
from tledge.edge.collect import CollectOptions, Collector
from tledge.edge.model_version import FixedModel, LoadedModel, ModelSource
from tledge.edge.outputs import AnnotatedVideoWriter, JsonlWriter
from tledge.edge.overlay import draw_overlay
from tledge.edge.server import PreviewServer
from tledge.edge.smoothing import ScoreSmoother
from tledge.edge.sources import Frame, Source
from tledge.edge.stopping import stop_on_signals
from tledge.edge.web_access import ServeOptions

WINDOW_NAME = "tledge edge"
FPS_WINDOW = 30
# How long a read waits before checking for a stop request again.
READ_TIMEOUT_S = 0.25


@dataclass(frozen=True)
class EdgeOptions:
    """What to do with each frame.

    Attributes:
        top_k: Labels reported per frame.
        threshold: Labels scoring below this are left out.
        smooth: Average scores over this many frames (1 = no smoothing).
        display: Show an OpenCV window (needs a display and OpenCV with GUI support).
        jsonl: Path for one JSON line per frame, "-" for stdout, None for none.
        save: Path of an annotated video to write, None for none.
        serve: The live web view (`ServeOptions`, or just its "[HOST:]PORT"), None for none.
        max_frames: Stop after this many classified frames; None runs to the end.
        collect: Keep doubtful frames for review (`--collect`), None for no.
    """

    top_k: int = 5
    threshold: float = 0.0
    smooth: int = 1
    display: bool = False
    jsonl: str | None = None
    save: str | None = None
    serve: ServeOptions | str | None = None
    max_frames: int | None = None
    collect: CollectOptions | None = None


@dataclass(frozen=True)
class RunSummary:
    """How a run went.

    Attributes:
        frames: Frames classified.
        seconds: Wall time from the first read to the end.
        mean_fps: frames / seconds.
        mean_invoke_ms: Mean `invoke()` time.
        mean_classify_ms: Mean time of the whole classify call.
        dropped: Live frames skipped because a newer one arrived (0 for files).
        reconnects: Times a live source reopened its camera.
        skipped: Unreadable files an image-folder source skipped.
        stop_reason: "end", "max-frames", "stop" (signal or `stop.set()`), "window",
            "output-closed" (the reader of `--jsonl -` went away), or "source-lost" (a
            live source had no frames for longer than it may wait).
        lost: Why the live source gave up, "" when it did not.
        collected: Frames kept by `--collect`.
        collect_error: Why `--collect` stopped early (e.g. disk full), "" when it did not.
    """

    frames: int
    seconds: float
    mean_fps: float
    mean_invoke_ms: float
    mean_classify_ms: float
    dropped: int = 0
    reconnects: int = 0
    skipped: tuple[Path, ...] = ()
    stop_reason: str = "end"
    lost: str = ""
    collected: int = 0
    collect_error: str = ""

    def describe(self) -> str:
        """One line for people, e.g. "120 frames in 4.1 s: 29.3 FPS, invoke 4.2 ms"."""
        text = (
            f"{self.frames} frames in {self.seconds:.1f} s: {self.mean_fps:.1f} FPS, "
            f"invoke {self.mean_invoke_ms:.1f} ms, classify {self.mean_classify_ms:.1f} ms"
        )
        extras = [
            f"{count} {name}"
            for count, name in (
                (self.dropped, "stale frames dropped"),
                (self.reconnects, "reconnects"),
                (len(self.skipped), "unreadable files skipped"),
                (self.collected, "frames collected"),
            )
            if count
        ]
        if self.collect_error:
            extras.append(f"collecting stopped: {self.collect_error}")
        return ", ".join([text, *extras]) + f" (stopped: {self.stop_reason})"


@dataclass
class FpsMeter:
    """Frames per second over the last `window` frames."""

    window: int = FPS_WINDOW
    _stamps: deque = field(default_factory=deque)

    def tick(self, now: float | None = None) -> float | None:
        """Record a frame; return the current rate, None until two frames were seen."""
        self._stamps.append(time.monotonic() if now is None else now)
        if len(self._stamps) > self.window:
            self._stamps.popleft()
        span = self._stamps[-1] - self._stamps[0]
        return (len(self._stamps) - 1) / span if span > 0 else None


def run_edge(
    classifier: Classifier | ModelSource,
    source: Source,
    options: EdgeOptions,
    stop: threading.Event | None = None,
    on_serve: Callable[[str], None] | None = None,
) -> RunSummary:
    """Classify frames from `source` until it ends, `max_frames`, or a stop request.

    SIGINT and SIGTERM (when called from the main thread; see `stop_on_signals`) and
    `stop.set()` from another thread end the loop after the current frame; every output
    is then finalized.

    Args:
        classifier: The model; a worker thread calls it, so leave it alone while this runs.
            A `ModelSource` (e.g. `tledge.edge.model_dir.ModelWatcher`) instead may change
            the model between two frames; each frame is classified by one model.
        source: Frames to classify; closed at the end.
        options: Outputs and per-frame settings.
        stop: Set it to stop the loop from another thread.
        on_serve: Called with the web view's URL once it listens.

    Returns:
        A `RunSummary`.

    Raises:
        TledgeError: when an output cannot be opened.
    """
    stop = stop or threading.Event()
    models = FixedModel(classifier) if isinstance(classifier, Classifier) else classifier
    last_model: LoadedModel | None = None
    smoother = ScoreSmoother(options.smooth)
    meter = FpsMeter()
    frames, invoke_total, classify_total, reason = 0, 0.0, 0.0, "end"
    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        jsonl, video, server, window = _open_outputs(options, source, stack)
        collector = None
        if options.collect is not None:
            collector = stack.enter_context(Collector(options.collect, source.name))
        if server is not None and on_serve is not None:
            on_serve(server.url)
        stack.enter_context(stop_on_signals(stop))
        ahead = stack.enter_context(_ClassifyAhead(models, source, options.max_frames))
        started = time.monotonic()
        while not stop.is_set():
            if options.max_frames is not None and frames >= options.max_frames:
                reason = "max-frames"
                break
            # The classifier already works on the next frame while this one is handled.
            done = ahead.next(timeout=READ_TIMEOUT_S)
            if done is None:
                if ahead.finished:
                    break
                continue
            frame, result, model = done
            if last_model is not None and model is not last_model:
                smoother.reset()  # scores of two models are not averaged together
            last_model = model
            scores = smoother.update(result.scores)
            top_k = rank(scores, model.classifier.labels, options.top_k, options.threshold)
            fps = meter.tick()
            frames += 1
            invoke_total += result.timings.invoke_ms
            classify_total += result.timings.total_ms
            record = _record(frame, top_k, result.timings, fps, model)
            if jsonl is not None and not jsonl.write(record):
                reason = "output-closed"
                break
            if collector is not None:
                collector.offer_record(frame, result.scores, model.classifier.labels, record)
            if video is None and server is None and window is None:
                continue
            annotated = draw_overlay(frame.image, top_k, result.timings.invoke_ms, fps)
            if video is not None:
                video.write(annotated, frame.timestamp)
            if server is not None:
                server.publish(annotated, record)
            if window is not None and not window.show(annotated):
                reason = "window"
                break
        else:
            reason = "stop"
        seconds = time.monotonic() - started
    stats = source.stats()
    return RunSummary(
        frames=frames,
        seconds=seconds,
        mean_fps=frames / seconds if seconds > 0 else 0.0,
        mean_invoke_ms=invoke_total / frames if frames else 0.0,
        mean_classify_ms=classify_total / frames if frames else 0.0,
        dropped=stats.dropped,
        reconnects=stats.reconnects,
        skipped=stats.skipped,
        stop_reason="source-lost" if stats.lost else reason,
        lost=stats.lost,
        collected=collector.written if collector is not None else 0,
        collect_error=collector.error if collector is not None else "",
    )


def display_available() -> bool:
    """True when a window can be shown: a display exists and OpenCV has GUI support."""
    has_screen = sys.platform in ("win32", "darwin") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    return has_screen and opencv_has_gui()


def opencv_has_gui() -> bool:
    """False for opencv-python-headless and other builds without a GUI backend."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "")
    return False


def _record(
    frame: Frame,
    top_k: tuple[tuple[str, float], ...],
    timings: Timings,
    fps: float | None,
    model: LoadedModel,
) -> dict:
    record = {
        "timestamp": round(frame.timestamp, 6),
        "frame": frame.index,
        "top_k": [{"label": label, "score": round(score, 5)} for label, score in top_k],
        "timings_ms": {
            "preprocess": round(timings.preprocess_ms, 3),
            "invoke": round(timings.invoke_ms, 3),
            "postprocess": round(timings.postprocess_ms, 3),
        },
        "fps": round(fps, 2) if fps else None,
        "model": model.version.as_record(),
        # Seconds from capture to this result: how old the answer is when it is used.
        "age_s": round(max(0.0, time.time() - frame.timestamp), 3),
    }
    if frame.path:
        record["path"] = frame.path
    return record


def _open_outputs(
    options: EdgeOptions, source: Source, stack: contextlib.ExitStack
) -> tuple[JsonlWriter | None, AnnotatedVideoWriter | None, PreviewServer | None, _Window | None]:
    jsonl = video = server = window = None
    if options.jsonl is not None:
        jsonl = JsonlWriter(options.jsonl)
        stack.callback(jsonl.close)
    if options.save is not None:
        # File sources are saved at their own rate; live ones at the measured rate.
        video = AnnotatedVideoWriter(options.save, fps=None if source.is_live else source.fps)
        stack.callback(video.close)
    if options.serve is not None:
        server = PreviewServer(options.serve)
        stack.callback(server.close)
    if options.display:
        if not display_available():
            raise TledgeError(
                "--display: no display or OpenCV without GUI support (opencv-python-headless); "
                "use --no-display with --serve or --jsonl, or install opencv-python"
            )
        window = _Window()
        stack.callback(window.close)
    return jsonl, video, server, window


class _ClassifyAhead:
    """Classifies one frame in a worker thread while the caller handles the one before.

    `next` waits for the frame in flight, hands the worker the next frame, and returns
    the finished one, so `invoke()` runs while the caller draws and writes outputs.
    TFLite's `invoke()` and OpenCV release the GIL, so the two really overlap. File
    frames are read ahead (decoding overlaps classification too) and all classified in
    order; a live source is read only once the worker is free, so it gets the newest
    frame and a result is never older than the one frame in flight. The source fits
    frames to the model input as it reads them (`Source.fit_frames`), so the resize runs
    in the capture thread or during the read-ahead, not in the worker.

    Args:
        models: `models.current` is read once per frame, so a swap takes effect from
            the next frame started; its classifier is then used by the worker only.
        source: Frames to classify.
        limit: Classify at most this many frames; None for no limit.
    """

    def __init__(self, models: ModelSource, source: Source, limit: int | None) -> None:
        self._models = models
        self._source = source
        self._left = limit
        # A swapped-in model fits frames the same way (`model_check` refuses others).
        source.fit_frames(models.current.classifier.fit_to_input)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify")
        self._in_flight: tuple[Frame, Future[Classification], LoadedModel] | None = None
        self._read_ahead: Frame | None = None

    @property
    def finished(self) -> bool:
        """True once every frame that will be classified has been returned."""
        idle = self._in_flight is None and self._read_ahead is None
        return idle and (self._left == 0 or self._source.finished)

    def next(self, timeout: float) -> tuple[Frame, Classification, LoadedModel] | None:
        """Return the next (frame, classification, model that classified it).

        None when no frame came within `timeout`.
        """
        if self._in_flight is None:
            self._start(self._read(timeout))
            if self._in_flight is None:
                return None
        if not self._source.is_live and self._read_ahead is None:
            self._read_ahead = self._read(timeout)
        frame, future, model = self._in_flight
        result = future.result()
        self._in_flight = None
        if self._source.is_live:
            self._start(self._read(timeout=0.0))
        else:
            self._start(self._read_ahead)
            self._read_ahead = None
        return frame, result, model

    def close(self) -> None:
        """Wait for the frame in flight (its result is dropped) and stop the worker."""
        self._worker.shutdown(wait=True)

    def __enter__(self) -> _ClassifyAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self, timeout: float) -> Frame | None:
        return self._source.read(timeout=timeout) if self._left != 0 else None

    def _start(self, frame: Frame | None) -> None:
        if frame is None:
            return
        # Ranking waits for smoothing, so the classifier itself ranks nothing. A frame
        # read before fitting was switched on goes in whole; the answer is the same.
        model = self._models.current
        if frame.fitted is not None:
            future = self._worker.submit(
                model.classifier.classify, frame.fitted, top_k=0, fitted=True
            )
        else:
            future = self._worker.submit(model.classifier.classify, frame.image, top_k=0)
        self._in_flight = (frame, future, model)
        if self._left is not None:
            self._left -= 1


class _Window:
    """The OpenCV window; `show` returns False once the user wants to stop."""

    def __init__(self) -> None:
        cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_NORMAL)
        self._was_visible = False

    def show(self, image: np.ndarray) -> bool:
        """Show the frame; False after q or Esc, or when the window was closed."""
        cv2.imshow(WINDOW_NAME, image)
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(WINDOW_NAME, cv2.WND_PROP_VISIBLE) >= 1
        # Some backends map the window a few frames late: only a window that was
        # visible and is gone now counts as closed by the user.
        closed = self._was_visible and not visible
        self._was_visible = self._was_visible or visible
        return key not in (ord("q"), 27) and not closed

    def close(self) -> None:
        """Destroy the window."""
        cv2.destroyAllWindows()
