"""What `tledge edge --collect` costs: CPU per frame on the inference thread, per kept frame.

Two numbers, both process CPU time (all threads), so other programs on a busy machine
do not inflate them the way they inflate wall time:

- `Collector.offer` per frame, for sure frames (judged, not kept) and doubtful frames
  inside the rate limit (the usual case in a doubtful scene), at 10 and 1001 classes;
- per kept camera-sized frame: the copy, JPEG encoding and the two atomic writes.

    python -m tledge.benchmarks.collect_cost --images ../shared/data/food_mnist10/test/apple_pie
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from tledge.benchmarks.frames import CAMERA_SIZE, camera_frames, images_in
from tledge.edge.collect import CollectOptions, Collector

MODEL = {"version": "benchmark", "sha": "0"}


def offer_cost_us(classes: int, doubtful: bool, frames: int = 20000) -> float:
    """Microseconds of CPU per `offer` call (nothing is written after the first keep)."""
    if doubtful:
        scores = np.full(classes, 1.0 / classes, np.float32)
    else:
        scores = np.full(classes, 0.05 / (classes - 1), np.float32)
        scores[0] = 0.95
    labels = [str(i) for i in range(classes)]
    image = np.zeros((*CAMERA_SIZE, 3), np.uint8)
    with tempfile.TemporaryDirectory() as scratch:
        options = CollectOptions(Path(scratch), confident_sample=0.0, min_interval_s=3600.0)
        with Collector(options) as collector:
            start = time.process_time()
            for index in range(frames):
                collector.offer(image, index, 1.7e9, scores, labels, MODEL)
            return 1e6 * (time.process_time() - start) / frames


def kept_frame_cost_ms(photos: list[np.ndarray], frames: int = 48) -> float:
    """Milliseconds of CPU per kept frame (copy, JPEG, image and sidecar written)."""
    scores = np.full(10, 0.1, np.float32)
    labels = [str(i) for i in range(10)]
    with tempfile.TemporaryDirectory() as scratch:
        options = CollectOptions(Path(scratch), min_interval_s=0.0, duplicate_level=-1.0)
        with Collector(options) as collector:
            start = time.process_time()
            for index in range(frames):
                collector.offer(photos[index % len(photos)], index, 1.7e9, scores, labels, MODEL)
                while collector.written <= index and not collector.error:
                    time.sleep(0.001)
            return 1e3 * (time.process_time() - start) / frames


def main(argv: list[str] | None = None) -> None:
    """Command line: print both costs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="Photos for the kept frames.")
    args = parser.parse_args(argv)
    for classes in (10, 1001):
        sure = offer_cost_us(classes, doubtful=False)
        doubtful = offer_cost_us(classes, doubtful=True)
        print(f"offer, {classes} classes: {sure:.1f} us sure frame, {doubtful:.1f} us doubtful")
    photos = camera_frames(images_in(args.images), CAMERA_SIZE, count=24)
    height, width = CAMERA_SIZE
    print(f"kept {width}x{height} frame: {kept_frame_cost_ms(photos):.1f} ms CPU")


if __name__ == "__main__":
    main()
