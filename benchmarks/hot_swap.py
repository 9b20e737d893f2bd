"""Hot swap latency: a model file's arrival in a `--model-dir` folder -> its first result.

A simulated 30 fps camera is classified by `run_edge` with a `ModelWatcher`; every second a
new version (the same network with a few bytes appended, so a new sha) is renamed into
the folder, and the time until the first JSON line naming it is measured. The golden
self-test runs on the given images, so the number includes loading and self-testing.

    python -m tledge.benchmarks.hot_swap ../shared/data/tflite/mobilenet_v2_1.0_224_quant.tflite \\
        --labels ../shared/data/tflite/imagenet_labels.txt \\
        --golden ../shared/data/tflite/sanity_images --threads 2 --swaps 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import cv2

from tledge.core.folders import list_images
from tledge.edge.app import EdgeOptions, run_edge
from tledge.edge.classifier import Classifier
from tledge.edge.live_source import simulated_live_source
from tledge.edge.model_dir import ModelWatcher
from tledge.exporter.metadata import embed_metadata

CAMERA_FPS = 30
TIMEOUT_S = 60.0


def measure_swaps(
    model: Path, labels: Path | None, golden: Path, threads: int | None, swaps: int
) -> list[float]:
    """Seconds from each new version's rename into the folder to its first result."""
    contract = Classifier(model, labels=labels).contract
    body = embed_metadata(model.read_bytes(), contract, share_zero_points=False)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "models"
        (folder / "golden").mkdir(parents=True)
        for path in list_images(golden):
            shutil.copy(path, folder / "golden" / path.name)
        (folder / "v1.tflite").write_bytes(body)
        frames = [cv2.imread(str(path)) for path in list_images(golden)]
        jsonl = Path(scratch) / "frames.jsonl"
        delays = []
        load = lambda path: Classifier(path, num_threads=threads)  # noqa: E731
        with ModelWatcher(folder, load) as models:
            stop = threading.Event()
            source = simulated_live_source(frames, fps=CAMERA_FPS)
            options = EdgeOptions(jsonl=str(jsonl))
            loop = threading.Thread(target=run_edge, args=(models, source, options, stop))
            loop.start()
            try:
                for index in range(2, swaps + 2):
                    time.sleep(1.0)
                    staging = folder / f".v{index}.partial"
                    staging.write_bytes(body + bytes(index))
                    arrived = time.monotonic()
                    os.replace(staging, folder / f"v{index}.tflite")
                    marker = f'"version":"v{index}"'
                    while (
                        marker not in jsonl.read_text() and time.monotonic() - arrived < TIMEOUT_S
                    ):
                        time.sleep(0.005)
                    delays.append(time.monotonic() - arrived)
            finally:
                stop.set()
                loop.join()
    return delays


def main(argv: list[str] | None = None) -> None:
    """Command line: print the arrival -> first result delay of each swap."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--golden", type=Path, required=True, help="Folder of golden images.")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--swaps", type=int, default=5)
    args = parser.parse_args(argv)
    delays = measure_swaps(args.model, args.labels, args.golden, args.threads, args.swaps)
    shown = ", ".join(f"{delay:.2f}" for delay in delays)
    print(
        f"arrival -> first result: {shown} s (median {statistics.median(delays):.2f}, "
        f"max {max(delays):.2f})"
    )


if __name__ == "__main__":
    main()
