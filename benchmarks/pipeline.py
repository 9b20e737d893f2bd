"""The camera pipeline end to end: time per stage, achieved FPS, and FPS against 1/invoke.

Two loops are measured:

- a sequential loop timed stage by stage (`run_pipeline`): read a frame,
  `Classifier.classify` it, draw the overlay, and (when serving or saving) JPEG-encode
  it, one after the other; it says where the CPU time per frame goes;
- the real `tledge edge` loop (`run_edge_loop`, calling `tledge.edge.app.run_edge` with
  a JSON-lines output), which classifies the next frame in a worker thread while the
  current one is handled; its FPS is what a user gets.

Two sources are measured:

- a video file (`VideoFileSource`): every frame decoded and classified in order, so
  decoding ("capture") is on the main thread;
- a simulated live camera (`simulated_live_source`) producing frames faster than the
  model can classify them: its capture thread keeps only the newest frame, and
  "capture" is the wait for a frame the model has not seen.

The ideal is FPS = 1 / invoke time: everything else (capture, pre/postprocessing,
drawing) costs frames. `fps_fraction` is achieved FPS * mean invoke seconds.

    tledge bench pipeline model_int8.tflite --threads 2 --frames 300
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from tledge.benchmarks.frames import CAMERA_SIZE, camera_frames, images_in
from tledge.benchmarks.report import BenchmarkOutput, Log, build_report, write_report
from tledge.core.errors import TledgeError

STAGES = ("capture", "preprocess", "invoke", "postprocess", "draw", "encode")
TARGET_FRACTION = 0.9
JPEG_QUALITY = 80
WARMUP_FRAMES = 10
# The edge loop runs this many times with and without `--collect`, alternating, and
# each side reports its median: a few percent is below one run's noise on a busy box.
COLLECT_REPEATS = 3
PIPELINE_NOTES = (
    "Stage columns, FPS, 1/invoke, fraction: CPU time per stage of a sequential "
    f"read -> classify -> draw -> encode loop; {WARMUP_FRAMES} warm-up frames not timed.",
    "edge loop FPS / fraction: the real `tledge edge` loop (`run_edge`: classifies one frame "
    "ahead in a worker thread, writes JSON lines, no drawing) on a fresh source; from its "
    f"RunSummary, {WARMUP_FRAMES} warm-up frames included; median of {COLLECT_REPEATS} runs.",
    "with --collect FPS: the same loop keeping doubtful frames (default `--collect` "
    f"settings, into a temporary folder), median of {COLLECT_REPEATS} runs alternated with "
    "the runs without; collect overhead = 1 - with / without (FPS), and CPU ms per frame "
    "with / without - 1 (all threads; stable on a busy machine, where FPS is not).",
    "fraction = FPS * mean invoke ms / 1000 (FPS against 1/invoke); "
    f"target >= {TARGET_FRACTION} for the live camera.",
)


@dataclass(frozen=True)
class PipelineResult:
    """One pipeline measurement.

    Attributes:
        source: What fed the loop, e.g. "video file" or "live (simulated 400 fps)".
        frames: Frames classified in the timed part.
        seconds: Wall time of the timed part.
        fps: frames / seconds.
        stage_ms: Mean milliseconds per frame in each of `STAGES` (0 for a stage not run).
        invoke_fps: 1000 / mean invoke ms: the rate if everything else were free.
        fps_fraction: fps / invoke_fps.
        target: The fraction the live pipeline should reach.
        captured: Frames the camera produced (live sources), else None.
        camera_fps: Rate of the simulated camera, else None.
        edge_loop_fps: FPS of the real `tledge edge` loop on the same kind of source
            (warm-up included), None where not measured.
        edge_loop_fraction: edge_loop_fps * its mean invoke ms / 1000.
        edge_loop_cpu_ms: CPU time of the edge loop per frame (all threads).
        edge_loop_collect_fps: FPS of the same loop with `--collect`, None where not run.
        edge_loop_collect_cpu_ms: Its CPU time per frame.
    """

    source: str
    frames: int
    seconds: float
    fps: float
    stage_ms: dict[str, float]
    invoke_fps: float
    fps_fraction: float
    target: float
    captured: int | None = None
    camera_fps: float | None = None
    edge_loop_fps: float | None = None
    edge_loop_fraction: float | None = None
    edge_loop_cpu_ms: float | None = None
    edge_loop_collect_fps: float | None = None
    edge_loop_collect_cpu_ms: float | None = None

    @property
    def camera_bound(self) -> bool:
        """True when the camera, not the model, limited the rate (fraction then says little)."""
        return self.camera_fps is not None and self.fps >= 0.95 * self.camera_fps


def run_edge_loop(
    classifier, source, frames: int, name: str, collect: bool = False
) -> tuple[float, float, float]:
    """Run `tledge edge`'s loop (`run_edge`, top 3, JSON lines to a temp file) on `source`.

    Args:
        classifier: A `tledge.edge.classifier.Classifier`.
        source: A fresh `tledge.edge.sources.Source`; `run_edge` closes it.
        frames: Frames after the warm-up; the run classifies `WARMUP_FRAMES` + `frames`.
        name: Label of the source in the result.
        collect: Also keep doubtful frames (`--collect` defaults) in a temp folder.

    Returns:
        (mean FPS, FPS fraction = mean FPS * mean invoke ms / 1000, CPU ms per frame):
        the first two from its `RunSummary`, warm-up frames included; the CPU time is
        the whole process's (every thread), which other programs on a busy machine do
        not inflate the way they inflate wall time.

    Raises:
        TledgeError: when the source ends before all frames are classified.
    """
    from tledge.edge.app import EdgeOptions, run_edge
    from tledge.edge.collect import CollectOptions

    with tempfile.TemporaryDirectory() as scratch:
        options = EdgeOptions(
            top_k=3,
            max_frames=WARMUP_FRAMES + frames,
            jsonl=str(Path(scratch) / "frames.jsonl"),
            collect=CollectOptions(Path(scratch) / "collected") if collect else None,
        )
        cpu_start = time.process_time()
        summary = run_edge(classifier, source, options)
        cpu_ms = 1000 * (time.process_time() - cpu_start) / max(summary.frames, 1)
    if summary.frames < WARMUP_FRAMES + frames:
        raise TledgeError(f"{name}: ended after {summary.frames} frames; give a longer video")
    return summary.mean_fps, summary.mean_fps * summary.mean_invoke_ms / 1000, cpu_ms


def run_pipeline(
    classifier,
    source,
    frames: int,
    encode: bool = False,
    name: str = "",
) -> PipelineResult:
    """Run the classify loop on `source` for `frames` frames after a short warm-up.

    Args:
        classifier: A `tledge.edge.classifier.Classifier`.
        source: A `tledge.edge.sources.Source` (file or live).
        frames: Frames to time (the source must have `WARMUP_FRAMES` more).
        encode: JPEG-encode each drawn frame, as `--serve` and `--save` do.
        name: Label of the source in the result.

    Raises:
        TledgeError: when the source ends before the warm-up and `frames` are done.
    """
    from tledge.edge.overlay import draw_overlay

    totals = dict.fromkeys(STAGES, 0.0)
    invoke_times = []
    fps = 0.0
    done = 0
    start = time.perf_counter()
    previous = start
    for step in range(WARMUP_FRAMES + frames):
        if step == WARMUP_FRAMES:
            totals = dict.fromkeys(STAGES, 0.0)
            invoke_times.clear()
            start = time.perf_counter()
            captured_at_start = source.stats().captured
        t0 = time.perf_counter()
        frame = source.read()
        t1 = time.perf_counter()
        if frame is None:
            raise TledgeError(
                f"{name or 'source'}: ended after {step} of "
                f"{WARMUP_FRAMES + frames} frames; give a longer video"
            )
        result = classifier.classify(frame.image, top_k=3)
        t2 = time.perf_counter()
        draw_overlay(frame.image, result.top_k, result.timings.invoke_ms, fps)
        t3 = time.perf_counter()
        if encode:
            cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            t4 = time.perf_counter()
        else:
            t4 = t3
        fps = 1.0 / max(t4 - previous, 1e-9)
        previous = t4
        timings = result.timings
        for stage, seconds in (
            ("capture", t1 - t0),
            ("preprocess", timings.preprocess_ms / 1e3),
            ("invoke", timings.invoke_ms / 1e3),
            ("postprocess", timings.postprocess_ms / 1e3),
            ("draw", t3 - t2),
            ("encode", t4 - t3),
        ):
            totals[stage] += seconds
        invoke_times.append(timings.invoke_ms)
        done = step + 1 - WARMUP_FRAMES
    seconds = time.perf_counter() - start
    achieved = done / seconds
    invoke_fps = 1000.0 / statistics.fmean(invoke_times)
    captured = source.stats().captured
    return PipelineResult(
        source=name or source.name,
        frames=done,
        seconds=seconds,
        fps=achieved,
        stage_ms={stage: 1e3 * total / done for stage, total in totals.items()},
        invoke_fps=invoke_fps,
        fps_fraction=achieved / invoke_fps,
        target=TARGET_FRACTION,
        captured=None if captured is None else captured - captured_at_start,
        camera_fps=source.fps if captured is not None else None,
    )


def write_video(
    path: str | os.PathLike, frames: Sequence[np.ndarray], count: int, fps: float = 30.0
) -> Path:
    """Write `count` frames (cycling through `frames`) as an MP4 (mp4v) file.

    Raises:
        TledgeError: when OpenCV has no MP4 writer.
    """
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise TledgeError(f"{path}: OpenCV cannot write MP4 video here")
    for index in range(count):
        writer.write(frames[index % len(frames)])
    writer.release()
    return Path(path)


def measure_pipeline(
    model_path: str | os.PathLike,
    video: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    threads: int = 2,
    frames: int = 300,
    camera_fps: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[PipelineResult]:
    """Measure both loops: the sequential one stage by stage, and `tledge edge`'s.

    The sequential loop runs on a video file, a live camera, and a live camera with JPEG
    encoding; the `tledge edge` loop on a fresh video file and live camera, filling the
    first two rows' `edge_loop_*` fields.

    Args:
        model_path: The .tflite file.
        video: A video with at least `frames` + warm-up frames.
        labels: Labels for a plain .tflite.
        threads: Interpreter threads.
        frames: Frames to time per measurement.
        camera_fps: Rate of the simulated camera; default 1.5x the model's invoke rate,
            so the camera is faster than inference, as on a Raspberry Pi.
        progress: Called with a description before each measurement.

    """
    from tledge.edge.classifier import Classifier
    from tledge.edge.live_source import simulated_live_source
    from tledge.edge.sources import VideoFileSource

    classifier = Classifier(model_path, labels=labels, num_threads=threads)
    if camera_fps is None:
        camera_fps = round(1.5 * _invoke_rate(classifier), -1)
    results = []
    if progress is not None:
        progress("video file")
    with VideoFileSource(video) as source:
        results.append(run_pipeline(classifier, source, frames, name="video file"))
    for encode in (False, True):
        name = f"live camera ({camera_fps:.0f} fps)" + (" + JPEG encode" if encode else "")
        if progress is not None:
            progress(name)
        with simulated_live_source(video, fps=camera_fps, loop=True) as source:
            results.append(run_pipeline(classifier, source, frames, encode, name))
    edge_sources = (
        lambda: VideoFileSource(video),
        lambda: simulated_live_source(video, fps=camera_fps, loop=True),
    )
    for index, open_source in enumerate(edge_sources):
        name = results[index].source
        if progress is not None:
            progress(f"tledge edge loop: {name}")
        runs = {False: [], True: []}
        for _ in range(COLLECT_REPEATS):
            for collect in (False, True):
                runs[collect].append(
                    run_edge_loop(classifier, open_source(), frames, name, collect)
                )

        results[index] = replace(
            results[index],
            edge_loop_fps=_median(runs[False], 0),
            edge_loop_fraction=_median(runs[False], 1),
            edge_loop_cpu_ms=_median(runs[False], 2),
            edge_loop_collect_fps=_median(runs[True], 0),
            edge_loop_collect_cpu_ms=_median(runs[True], 2),
        )
    return results


def _median(runs: list[tuple[float, ...]], field: int) -> float:
    return statistics.median(run[field] for run in runs)


def _invoke_rate(classifier, runs: int = 30) -> float:
    for _ in range(5):
        classifier.interpreter.invoke()
    start = time.perf_counter()
    for _ in range(runs):
        classifier.interpreter.invoke()
    return runs / (time.perf_counter() - start)


def pipeline_benchmark(
    model: Path,
    output: Path,
    labels: Path | None = None,
    threads: int = 2,
    frames: int = 300,
    video: Path | None = None,
    images: Path | None = None,
    camera_fps: float | None = None,
    command: str = "",
    log: Log = lambda text: None,
) -> BenchmarkOutput:
    """Measure the camera loop on a video file and a simulated camera; write pipeline.*.

    Args:
        model: A .tflite file.
        output: Folder for pipeline.{json,md} and stages.png.
        labels: Labels of a plain .tflite.
        threads: Interpreter threads.
        frames: Timed frames per source.
        video: Video file to read (default: one made from `images`).
        images: Photos for the generated video (default: synthetic frames).
        camera_fps: Rate of the simulated camera (default: 1.5x the model's invoke rate).
        command: The command line, recorded in the report.
        log: Called with progress lines.
    """
    from tledge.benchmarks.plots import stage_breakdown_plot

    with tempfile.TemporaryDirectory() as scratch:
        if video is None:
            photos = camera_frames(images_in(images), CAMERA_SIZE, count=24)
            video = write_video(Path(scratch) / "clip.mp4", photos, frames + 2 * WARMUP_FRAMES)
        rows = measure_pipeline(
            model,
            video,
            labels,
            threads,
            frames,
            camera_fps,
            progress=lambda text: log(f"timing {text}"),
        )
    notes = [
        f"Model {model.name}, {threads} interpreter threads, "
        f"{CAMERA_SIZE[1]}x{CAMERA_SIZE[0]} frames, {frames} timed frames each.",
        *PIPELINE_NOTES,
    ]
    notes += [
        f"{row.source}: limited by the camera rate, not the model; rerun with a higher "
        "--camera-fps to measure the pipeline."
        for row in rows
        if row.camera_bound
    ]
    report = build_report(command, notes=notes, pipeline={"stages": list(STAGES), "rows": rows})
    written = write_report(report, output, "pipeline")
    written.append(stage_breakdown_plot(report["pipeline"]["rows"], STAGES, output / "stages.png"))
    return BenchmarkOutput(report, written)
