"""`tledge edge --collect`: which frames are kept, the sidecars, the size cap, disk full.

Checked to fail: with the eviction loop removed the cap test failed; with the rate limit
removed the near-duplicate test failed; with the sidecar-failure cleanup removed the
disk-full test found an orphan image.
"""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tledge.cli import cli
from tledge.edge import collect
from tledge.edge.app import EdgeOptions, run_edge
from tledge.edge.classifier import Classifier
from tledge.edge.collect import CollectOptions, Collector, doubt_of
from tledge.edge.sources import ImageFolderSource

LABELS = ("red", "green", "blue")
MODEL = {"version": "v1", "sha": "0123456789"}
UNSURE = np.array([0.4, 0.35, 0.25], np.float32)
SURE = np.array([0.9, 0.06, 0.04], np.float32)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def image(level: int, seed: int | None = None) -> np.ndarray:
    if seed is not None:
        return np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return np.full((48, 64, 3), level, np.uint8)


def wait_written(collector: Collector, count: int) -> None:
    deadline = time.monotonic() + 20
    while collector.written < count and not collector.error and time.monotonic() < deadline:
        time.sleep(0.005)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


def test_doubt_of_known_scores():
    options = CollectOptions(Path("unused"), min_confidence=0.6, min_margin=0.2)
    unsure = doubt_of(UNSURE, options)
    assert unsure.score == pytest.approx(0.95) and unsure.reasons == (
        "low-confidence",
        "small-margin",
    )
    sure = doubt_of(SURE, options)
    assert sure.score == pytest.approx(0.16) and sure.reasons == ()
    assert doubt_of(SURE, options, unknown=True).reasons == ("unknown",)
    close_call = doubt_of(np.array([0.62, 0.38, 0.0]), options)
    assert close_call.reasons == ()  # margin 0.24, top 0.62: sure enough
    assert doubt_of(np.array([0.61, 0.45, 0.0]), options).reasons == ("small-margin",)


def test_keeps_doubtful_frames_a_sample_of_sure_ones_and_writes_sidecars(tmp_path):
    clock = FakeClock()
    options = CollectOptions(tmp_path / "doubts", confident_sample=0.0, min_interval_s=0.0)
    with Collector(options, source_name="cam0", clock=clock) as collector:
        assert not collector.offer(image(0, seed=1), 1, 1.7e9, SURE, LABELS, MODEL)
        assert collector.offer(image(0, seed=2), 2, 1.7e9, UNSURE, LABELS, MODEL)
    files = sorted(p.name for p in options.folder.iterdir())
    assert len(files) == 2 and files[0].endswith("-0000002.jpg") and files[1].endswith(".json")
    sidecar = json.loads((options.folder / files[1]).read_text())
    assert sidecar["model"] == MODEL and sidecar["source"] == "cam0" and sidecar["frame"] == 2
    assert sidecar["time"].startswith("2023-11-14T22:13:20")
    assert sidecar["top_k"][0] == {"label": "red", "score": 0.4}
    assert sidecar["scores"] == {"red": 0.4, "green": 0.35, "blue": 0.25}
    assert sidecar["reasons"] == ["low-confidence", "small-margin"]
    assert cv2.imread(str(options.folder / files[0])).shape == (48, 64, 3)
    sampled = CollectOptions(tmp_path / "sampled", confident_sample=1.0, min_interval_s=0.0)
    with Collector(sampled, clock=clock) as collector:
        assert collector.offer(image(0, seed=1), 1, 1.7e9, SURE, LABELS, MODEL)
    sidecar = json.loads(next(sampled.folder.glob("*.json")).read_text())
    assert sidecar["reasons"] == ["sample"]


def test_rate_limit_and_near_duplicates(tmp_path):
    clock = FakeClock()
    options = CollectOptions(
        tmp_path / "doubts", min_interval_s=1.0, duplicate_level=6.0, max_duplicate_s=30.0
    )
    with Collector(options, clock=clock) as collector:
        offer = lambda picture: collector.offer(picture, 0, 1.7e9, UNSURE, LABELS, MODEL)  # noqa: E731
        assert offer(image(100))
        clock.now = 0.5
        assert not offer(image(200))  # too soon after the last one
        clock.now = 2.0
        assert not offer(image(103))  # looks like the last kept frame
        assert offer(image(200))  # a different scene
        clock.now = 40.0
        assert offer(image(200))  # the same scene again, but long after
    assert collector.kept == 3


def test_the_folder_never_exceeds_its_cap_and_oldest_go_first(tmp_path):
    folder = tmp_path / "doubts"
    folder.mkdir()
    (folder / "00000000T000000_000000Z-0000000.jpg").write_bytes(b"x" * 5000)
    (folder / "00000000T000000_000000Z-0000000.json").write_text("{}")
    cap_mb = 0.04
    options = CollectOptions(folder, max_mb=cap_mb, min_interval_s=0.0, duplicate_level=-1.0)
    clock = FakeClock()
    with Collector(options, clock=clock) as collector:
        for index in range(12):
            assert collector.offer(
                image(0, seed=index), index, 1.7e9 + index, UNSURE, LABELS, MODEL
            )
            wait_written(collector, index + 1)
            assert folder_bytes(folder) <= cap_mb * 1e6
    assert collector.written == 12 and collector.evicted > 1
    names = sorted(p.name for p in folder.iterdir())
    assert not names[0].startswith("00000000")  # the old frame went first
    assert names[-1].endswith("-0000011.json")
    assert all(p.with_suffix(".jpg").exists() for p in folder.glob("*.json"))


def test_disk_full_stops_collecting_without_half_written_frames(tmp_path, monkeypatch):
    real_write = collect.atomic_write_bytes

    def full_disk_on_sidecars(path, data):
        if Path(path).suffix == ".json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(collect, "atomic_write_bytes", full_disk_on_sidecars)
    options = CollectOptions(tmp_path / "doubts", min_interval_s=0.0, duplicate_level=-1.0)
    with Collector(options) as collector:
        collector.offer(image(0, seed=1), 1, 1.7e9, UNSURE, LABELS, MODEL)
        wait_written(collector, 1)
        assert not collector.offer(image(0, seed=2), 2, 1.7e9, UNSURE, LABELS, MODEL)
    assert collector.error == f"--collect {options.folder}: No space left on device"
    assert list(options.folder.iterdir()) == []


def test_edge_loop_collects_only_the_doubtful_frames(color_model, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(12):
        level = (128, 128, 128) if index % 3 == 0 else (0, 0, 255)  # gray is a 3-way tie
        cv2.imwrite(str(frames / f"{index:02d}.png"), np.full((24, 32, 3), level, np.uint8))
    options = EdgeOptions(
        jsonl=str(tmp_path / "out.jsonl"),
        collect=CollectOptions(
            tmp_path / "doubts", min_interval_s=0.0, duplicate_level=-1.0, confident_sample=0.0
        ),
    )
    source = ImageFolderSource(sorted(frames.iterdir()))
    summary = run_edge(Classifier(color_model, labels=list(LABELS)), source, options)
    kept = sorted(json.loads(p.read_text())["frame"] for p in (tmp_path / "doubts").glob("*.json"))
    assert kept == [0, 3, 6, 9] and summary.collected == 4
    assert "4 frames collected" in summary.describe()


def test_edge_command_collect_option(color_model, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "gray.png"), np.full((8, 8, 3), 128, np.uint8))
    result = CliRunner().invoke(
        cli,
        [
            "edge", str(color_model), "--labels", str(_labels(tmp_path)), "--source", str(frames),
            "--no-display", "--jsonl", str(tmp_path / "o.jsonl"), "--collect", str(tmp_path / "c"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 frames collected" in result.output
    assert len(list((tmp_path / "c").glob("*.jpg"))) == 1


def _labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n")
    return path
