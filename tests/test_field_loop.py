"""The field loop end to end on loopback, a video file standing in for the camera.

collect on the "device" (`run_edge` with `--collect`, `--model-dir`, `--serve` on
127.0.0.1) -> copy the frames to the "training machine" -> review them (the app's
`ReviewQueue`, filing each frame under its true class) -> update the first run's head
with the reviewed photos (`--add-data`) -> export with the drift gate -> copy the model into the
device's model folder by an atomic rename -> the running client swaps it in. The
commands are those of docs/field-loop.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import pytest

from tledge.app.review import ReviewQueue
from tledge.core.folders import list_class_folders
from tledge.edge.app import EdgeOptions, run_edge
from tledge.edge.classifier import Classifier
from tledge.edge.collect import CollectOptions
from tledge.edge.live_source import simulated_live_source
from tledge.edge.model_dir import ModelWatcher

TRAIN = ["--weights", "none", "--alpha", "0.35", "--image-size", "64", "64"]
TRAIN += ["--batch-size", "16", "--patience", "0", "--no-refit", "--quiet"]
WAIT_S = 120


def tledge(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tledge", *args], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout + result.stderr


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def copy_into_model_dir(model: Path, folder: Path, version: str) -> None:
    """What `rsync` or `scp` + `mv` does: a hidden partial file, then one rename."""
    partial = folder / f".{version}.tflite.partial"
    shutil.copyfile(model, partial)
    os.replace(partial, folder / f"{version}.tflite")


@pytest.mark.slow
def test_collect_review_retrain_export_and_swap(tiny_dataset: Path, tmp_path: Path) -> None:
    laptop, device = tmp_path / "laptop", tmp_path / "device"
    runs = laptop / "runs"
    train, test = tiny_dataset / "train", tiny_dataset / "test"
    tledge("train", "--data", str(train), "--test", str(test), *TRAIN, "--epochs", "3",
           "--fine-tune-epochs", "0", "--output", str(runs), "--name", "v1")  # fmt: skip
    tledge("export", str(runs / "v1"), "--fp32")
    models = device / "models"
    models.mkdir(parents=True)
    copy_into_model_dir(runs / "v1" / "export" / "model_fp32.tflite", models, "v1")

    # The camera: the test photos, in a loop, as a 160x120 video.
    photos = list_class_folders(test)
    truth = [photos.class_names[label] for label in photos.labels]
    video = device / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    for path in photos.paths:
        writer.write(cv2.resize(cv2.imread(str(path)), (160, 120)))
    writer.release()

    jsonl = device / "frames.jsonl"
    collect = CollectOptions(device / "collected", min_interval_s=0.05, duplicate_level=-1.0)
    options = EdgeOptions(jsonl=str(jsonl), serve="127.0.0.1:0", collect=collect)
    stop, urls, events = threading.Event(), [], []
    with ModelWatcher(models, Classifier, on_event=events.append) as watcher:
        source = simulated_live_source(video, fps=30, loop=True)
        loop = threading.Thread(target=run_edge, args=(watcher, source, options, stop, urls.append))
        loop.start()
        try:
            wait_for(lambda: len(list(collect.folder.glob("*.json"))) >= 12, "12 collected frames")
            shutil.copytree(
                collect.folder, laptop / "collected", ignore=shutil.ignore_patterns(".*")
            )

            queue = ReviewQueue(laptop / "collected", laptop / "new_photos")
            for frame in queue.pending():
                queue.file(frame, truth[frame.info["frame"] % len(truth)])
            tledge("train", "--from-run", str(runs / "v1"), "--add-data",
                   str(laptop / "new_photos"), "--epochs", "5", "--output", str(runs),
                   "--name", "v2")  # fmt: skip
            tledge("export", str(runs / "v2"), "--fp32")

            copy_into_model_dir(runs / "v2" / "export" / "model_fp32.tflite", models, "v2")
            wait_for(lambda: '"version":"v2"' in jsonl.read_text(), "a result of v2")
            live = json.loads(urllib.request.urlopen(urls[0] + "predictions.json").read())
            assert live["model"]["version"] == "v2"
        finally:
            stop.set()
            loop.join(timeout=30)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    versions = [record["model"]["version"] for record in records]
    first_v2 = versions.index("v2")
    assert set(versions[:first_v2]) == {"v1"} and set(versions[first_v2:]) == {"v2"}
    assert any("now running v2" in line for line in events), events
    frames = [record["frame"] for record in records]
    assert frames == sorted(set(frames))  # no frame twice, none out of order
