"""Client overhead: the edge client's `Classifier.classify` against raw `interpreter.invoke()`.

Both use the SAME interpreter on the SAME frames in one process, interleaved call by call
(alternating which goes first) so that load from other processes hits both sides alike;
medians are compared, and 10th percentiles, which preemption disturbs less.

- raw: `interpreter.invoke()` alone, input tensor already set (what `tledge bench` times).
- client: one whole `classify` call as a caller sees it: preprocessing (BGR->RGB, resize,
  quantize), set_tensor, invoke, dequantize, softmax, top-k.

Two inputs are reported: a frame already at the model's size (the client's own overhead:
copying and quantizing pixels, reading the answer) and a 640x480 camera frame (adds the
resize any camera pipeline needs, whatever client it uses).

    python -m tledge.benchmarks.client_overhead model_int8.tflite --threads 2 --runs 300
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tledge.benchmarks.frames import CAMERA_SIZE, camera_frames, images_in

TARGET_RATIO = 1.10
METHOD_NOTE = (
    "Client overhead: raw = interpreter.invoke() with the input set; client = one whole "
    "classify() call (preprocess, set_tensor, invoke, dequantize, softmax, top-k) on the same "
    "interpreter, interleaved call by call (alternating which goes first); ratio of medians, "
    "and of 10th percentiles (less disturbed by preemption)."
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


def measure_client_overhead(
    model_path: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    threads: Sequence[int] = (2,),
    runs: int = 200,
    warmup: int = 20,
    frames: Sequence[np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ClientOverheadResult]:
    """Measure classify vs invoke for a model-size frame and a camera frame per thread count.

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
        >>> rows[1].ratio
        1.04
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
        for name, inputs in (
            (f"{width}x{height} BGR (no resize)", native),
            (f"{frame_width}x{frame_height} BGR frame", camera),
        ):
            if progress is not None:
                progress(f"{Path(model_path).stem} threads={count} {name}")
            results.append(_compare(classifier, inputs, runs, warmup, name, count))
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


def _compare(classifier, inputs, runs, warmup, name, threads) -> ClientOverheadResult:
    interpreter = classifier.interpreter
    input_index = interpreter.get_input_details()[0]["index"]
    prepared = [classifier.preprocess(frame).copy() for frame in inputs]

    def raw_call(index: int) -> float:
        interpreter.set_tensor(input_index, prepared[index])
        start = time.perf_counter()
        interpreter.invoke()
        return (time.perf_counter() - start) * 1e3

    def client_call(index: int):
        start = time.perf_counter()
        result = classifier.classify(inputs[index])
        return (time.perf_counter() - start) * 1e3, result.timings

    raw, client, timings = [], [], []
    for step in range(warmup + runs):
        index = step % len(inputs)
        # Alternate which side goes first, so neither always follows the other.
        if step % 2:
            raw_ms = raw_call(index)
            client_ms, timing = client_call(index)
        else:
            client_ms, timing = client_call(index)
            raw_ms = raw_call(index)
        if step >= warmup:
            raw.append(raw_ms)
            client.append(client_ms)
            timings.append(timing)
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
    )


def _p10(values: list[float]) -> float:
    return float(np.percentile(values, 10))


def _resize_bgr(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    height, width = size
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure one or more models and write client_overhead.{json,md}."""
    from tledge.benchmarks.latency import parse_threads
    from tledge.benchmarks.report import build_report, client_overhead_table, write_report

    parser = argparse.ArgumentParser(prog="python -m tledge.benchmarks.client_overhead")
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--labels", type=Path, help="labels for plain .tflite files")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--images", type=Path, help="folder of photos used as camera frames")
    parser.add_argument("--output", type=Path, default=Path("tledge-bench"))
    args = parser.parse_args(argv)

    frames = camera_frames(images_in(args.images), CAMERA_SIZE)
    rows: list[ClientOverheadResult] = []
    for model in args.models:
        rows += measure_client_overhead(
            model,
            args.labels,
            parse_threads(args.threads),
            args.runs,
            frames=frames,
            progress=lambda text: print(f"timing {text}", file=sys.stderr),
        )
    source = f"photos from {args.images}" if args.images else "synthetic frames"
    notes = [
        f"Camera frames: {source}, {CAMERA_SIZE[1]}x{CAMERA_SIZE[0]}.",
        METHOD_NOTE,
    ]
    command = " ".join(["python -m tledge.benchmarks.client_overhead", *sys.argv[1:]])
    report = build_report(command, notes=notes, client_overhead={"rows": rows})
    written = write_report(report, args.output, "client_overhead")
    print(client_overhead_table(report["client_overhead"]))
    print("Wrote " + ", ".join(map(str, written)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
