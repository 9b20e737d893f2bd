"""Client overhead: the edge client's `Classifier.classify` against raw `interpreter.invoke()`.

Both use the SAME interpreter on the SAME frames in one process, interleaved call by call
(alternating which goes first) so that load from other processes hits both sides alike;
medians are compared, and 10th percentiles, which preemption disturbs less.

- raw: `interpreter.invoke()` alone, input tensor already set (what `tledge bench` times).
- client: one whole `classify` call as a caller sees it: preprocessing (BGR->RGB, resize,
  quantize), set_tensor, invoke, dequantize, softmax, top-k.

Three inputs are reported per model and thread count:
- a frame already at the model's size: the client's own overhead (copying and quantizing
  pixels, reading the answer);
- a 640x480 camera frame classified whole: the crop/resize runs inside `classify`, on the
  inference thread;
- the same frame fitted first by `Classifier.fit_to_input`, as `tledge edge` sources do
  in the capture thread (or the file read-ahead), then `classify(..., fitted=True)`. The
  fit itself is timed in the same loop (just before the classify call, so as cold as in
  a capture thread) and reported separately as `fit_ms`: capture-thread work that no
  longer delays the result.

    tledge bench client-overhead model_int8.tflite --threads 2 --runs 300
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tledge.benchmarks.frames import CAMERA_SIZE, camera_frames, images_in
from tledge.benchmarks.report import BenchmarkOutput, Log, build_report, write_report

TARGET_RATIO = 1.10
FITTED_INPUT = "fitted by capture thread"
METHOD_NOTE = (
    "Client overhead: raw = interpreter.invoke() with the input set; client = one whole "
    "classify() call (preprocess, set_tensor, invoke, dequantize, softmax, top-k) on the same "
    "interpreter, interleaved call by call (alternating which goes first); ratio = client / "
    "raw of the medians, ratio p10 = the same of the 10th percentiles (less disturbed by "
    "preemption). Inputs: 'BGR (no resize)' = a frame already at the size the model is fed "
    "without resizing; 'BGR frame' = a 640x480 camera frame classified whole (crop/resize "
    "inside classify, on the inference thread, as a plain classify() caller gets it); "
    f"'{FITTED_INPUT}' = the same frame fitted to the model input by "
    "Classifier.fit_to_input first, then classify(fitted=True), as tledge edge runs it "
    "(its sources fit frames in the capture thread / file read-ahead); the results are bit "
    "for bit those of the whole frame. 'capture fit ms' = median of that fit_to_input call: "
    "capture-thread work, not part of the client ms."
)


@dataclass(frozen=True)
class ClientOverheadResult:
    """Median per-image time of the client against raw invoke() for one input kind.

    Attributes:
        model: File stem of the model.
        threads: Interpreter threads.
        input: What was classified, e.g. "640x480 BGR frame".
        runs: Timed calls on each side.
        raw_ms: Median of `interpreter.invoke()`.
        client_ms: Median of a whole `classify` call.
        ratio: client_ms / raw_ms.
        target: The ratio the client should stay under.
        preprocess_ms, invoke_ms, postprocess_ms: Medians of the client's own timings.
        raw_p10_ms, client_p10_ms, ratio_p10: The same at the 10th percentile, which
            preemption by other processes disturbs less than the median.
        fit_ms: Median of `Classifier.fit_to_input` on the camera frame, for the input
            fitted before classify (work of the capture thread, not in client_ms); None
            for the other inputs.
    """

    model: str
    threads: int
    input: str
    runs: int
    raw_ms: float
    client_ms: float
    ratio: float
    target: float
    preprocess_ms: float
    invoke_ms: float
    postprocess_ms: float
    raw_p10_ms: float
    client_p10_ms: float
    ratio_p10: float
    fit_ms: float | None = None


def measure_client_overhead(
    model_path: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    threads: Sequence[int] = (2,),
    runs: int = 200,
    warmup: int = 20,
    frames: Sequence[np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ClientOverheadResult]:
    """Measure classify vs invoke per thread count on three inputs (see the module doc).

    The inputs are a model-size frame, a camera frame classified whole, and the camera
    frame fitted by `fit_to_input` first (rows in that order per thread count).

    Args:
        model_path: The .tflite file.
        labels: Labels for a plain .tflite (a tledge model has them embedded).
        threads: Interpreter thread counts; one Classifier each.
        runs: Timed calls per side and input kind.
        warmup: Untimed calls of each side first.
        frames: BGR camera frames (default: synthetic 640x480 frames).
        progress: Called with a description before each measurement.

    Example:
        >>> rows = measure_client_overhead("model_int8.tflite", threads=[2])
        >>> rows[2].ratio, rows[2].fit_ms
        (1.05, 0.27)
    """
    from tledge.edge.classifier import Classifier

    camera = list(frames) if frames is not None else camera_frames()
    results = []
    for count in threads:
        classifier = Classifier(model_path, labels=labels, num_threads=count)
        height, width = native_size(classifier.contract)
        # Frames the client can feed without resizing: only its own overhead remains.
        native = [_resize_bgr(frame, (height, width)) for frame in camera]
        frame_height, frame_width = camera[0].shape[:2]
        for name, inputs, fit in (
            (f"{width}x{height} BGR (no resize)", native, False),
            (f"{frame_width}x{frame_height} BGR frame", camera, False),
            (f"{frame_width}x{frame_height} {FITTED_INPUT}", camera, True),
        ):
            if progress is not None:
                progress(f"{Path(model_path).stem} threads={count} {name}")
            results.append(_compare(classifier, inputs, runs, warmup, name, count, fit))
    return results


def native_size(contract) -> tuple[int, int]:
    """(height, width) of a frame the contract feeds to the model without resizing.

    For "center_crop" that is the model size divided by the crop fraction (256x256 for
    224 at 0.875), so the centred crop is exactly the model input.
    """
    height, width = contract.input_size
    if contract.resize != "center_crop":
        return height, width
    side = round(max(height, width) / contract.crop_fraction)
    if height == width and round(side * contract.crop_fraction) == height:
        return side, side
    return height, width


def _compare(classifier, inputs, runs, warmup, name, threads, fit) -> ClientOverheadResult:
    """Time raw invoke() against classify() on `inputs`.

    With `fit`, each frame is first fitted by `fit_to_input` (timed apart, as capture
    thread work) and classified with fitted=True.
    """
    interpreter = classifier.interpreter
    input_index = interpreter.get_input_details()[0]["index"]
    prepared = [classifier.preprocess(frame).copy() for frame in inputs]

    def raw_call(index: int) -> float:
        interpreter.set_tensor(input_index, prepared[index])
        start = time.perf_counter()
        interpreter.invoke()
        return (time.perf_counter() - start) * 1e3

    def client_call(index: int):
        fit_ms = None
        image = inputs[index]
        if fit:
            start = time.perf_counter()
            image = classifier.fit_to_input(image)
            fit_ms = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        result = classifier.classify(image, fitted=fit)
        return (time.perf_counter() - start) * 1e3, result.timings, fit_ms

    raw, client, timings, fits = [], [], [], []
    for step in range(warmup + runs):
        index = step % len(inputs)
        # Alternate which side goes first, so neither always follows the other.
        if step % 2:
            raw_ms = raw_call(index)
            client_ms, timing, fit_ms = client_call(index)
        else:
            client_ms, timing, fit_ms = client_call(index)
            raw_ms = raw_call(index)
        if step >= warmup:
            raw.append(raw_ms)
            client.append(client_ms)
            timings.append(timing)
            fits.append(fit_ms)
    raw_median, client_median = statistics.median(raw), statistics.median(client)
    raw_p10, client_p10 = _p10(raw), _p10(client)
    return ClientOverheadResult(
        model=classifier.model_path.stem,
        threads=threads,
        input=name,
        runs=runs,
        raw_ms=raw_median,
        client_ms=client_median,
        ratio=client_median / raw_median,
        target=TARGET_RATIO,
        preprocess_ms=statistics.median(t.preprocess_ms for t in timings),
        invoke_ms=statistics.median(t.invoke_ms for t in timings),
        postprocess_ms=statistics.median(t.postprocess_ms for t in timings),
        raw_p10_ms=raw_p10,
        client_p10_ms=client_p10,
        ratio_p10=client_p10 / raw_p10,
        fit_ms=statistics.median(fits) if fit else None,
    )


def _p10(values: list[float]) -> float:
    return float(np.percentile(values, 10))


def _resize_bgr(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    height, width = size
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def client_overhead_benchmark(
    models: Sequence[Path],
    thread_counts: Sequence[int],
    output: Path,
    labels: Path | None = None,
    runs: int = 200,
    images: Path | None = None,
    command: str = "",
    log: Log = lambda text: None,
) -> BenchmarkOutput:
    """Measure `classify()` against raw `invoke()` for each model; write client_overhead.*.

    Args:
        models: .tflite files.
        thread_counts: Interpreter thread counts.
        output: Folder for client_overhead.{json,md}.
        labels: Labels of plain .tflite files.
        runs: Timed calls per input and thread count.
        images: Folder of photos made into camera frames (default: synthetic frames).
        command: The command line, recorded in the report.
        log: Called with progress lines.
    """
    frames = camera_frames(images_in(images), CAMERA_SIZE)
    rows: list[ClientOverheadResult] = []
    for model in models:
        rows += measure_client_overhead(
            model,
            labels,
            list(thread_counts),
            runs,
            frames=frames,
            progress=lambda text: log(f"timing {text}"),
        )
    source = f"photos from {images}" if images else "synthetic frames"
    notes = [f"Camera frames: {source}, {CAMERA_SIZE[1]}x{CAMERA_SIZE[0]}.", METHOD_NOTE]
    report = build_report(command, notes=notes, client_overhead={"rows": rows})
    return BenchmarkOutput(report, write_report(report, output, "client_overhead"))
