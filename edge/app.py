"""The edge client's run loop: read a frame, classify, smooth, draw, hand to the outputs.

Classification runs one frame ahead in a worker thread (`ClassifyAhead`), so `invoke()`
of frame N+1 overlaps the smoothing, drawing and outputs of frame N. Sources fit each
frame to the model input where they read it (a camera's capture thread, the file
read-ahead), so the worker only quantizes and invokes; the full frame is drawn and saved.

`run_edge` is what `tledge edge` calls; the outputs (JSON lines, video file, web view,
window) are opened from `EdgeOptions` and all closed, finalized, however the loop ends:
end of file, `--max-frames`, Ctrl-C / SIGTERM, or `q` in the window.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tledge.core.errors import TledgeError
from tledge.edge.classification import (
    Timings,
    rank,
    unknown_threshold,
    verdict,
)
from tledge.edge.classifier import Classifier
from tledge.edge.classify_ahead import ClassifyAhead
from tledge.edge.collect import CollectOptions, Collector
from tledge.edge.model_version import FixedModel, LoadedModel, ModelSource
from tledge.edge.outputs import AnnotatedVideoWriter, JsonlWriter
from tledge.edge.overlay import draw_overlay
from tledge.edge.server import PreviewServer
from tledge.edge.smoothing import ScoreSmoother
from tledge.edge.sources import Frame, Source
from tledge.edge.stopping import stop_on_signals
from tledge.edge.web_access import ServeOptions
from tledge.edge.window import Window, display_available

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
        unknown_threshold: Replaces the model's unknown threshold; None keeps it.
        detect_unknown: Report frames below the unknown threshold as "unknown".
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
    unknown_threshold: float | None = None
    detect_unknown: bool = True
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
        ahead = stack.enter_context(ClassifyAhead(models, source, options.max_frames))
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
            record.update(
                verdict(
                    scores,
                    model.classifier.labels,
                    unknown_threshold(
                        model.classifier.contract.unknown_threshold,
                        options.unknown_threshold,
                        options.detect_unknown,
                    ),
                )
            )
            if jsonl is not None and not jsonl.write(record):
                reason = "output-closed"
                break
            if collector is not None:
                collector.offer_record(frame, result.scores, model.classifier.labels, record)
            if video is None and server is None and window is None:
                continue
            annotated = draw_overlay(
                frame.image, top_k, result.timings.invoke_ms, fps, record.get("unknown", False)
            )
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
) -> tuple[JsonlWriter | None, AnnotatedVideoWriter | None, PreviewServer | None, Window | None]:
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
        window = Window()
        stack.callback(window.close)
    return jsonl, video, server, window
