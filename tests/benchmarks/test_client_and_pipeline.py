"""Client-overhead and pipeline benchmarks on the published 128 px model, tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tledge.benchmarks import client_overhead, pipeline
from tledge.benchmarks.frames import camera_frames
from tledge.cli import cli
from tledge.edge.contract import ModelContract

SMALL_MODEL = "tflite/mobilenet_v1_0.25_128_quant.tflite"
LABELS = "tflite/imagenet_labels.txt"


def test_native_size_undoes_the_center_crop() -> None:
    crop = ModelContract(
        labels=("a", "b"), input_size=(224, 224), resize="center_crop", crop_fraction=0.875
    )
    assert client_overhead.native_size(crop) == (256, 256)
    stretch = ModelContract(labels=("a", "b"), input_size=(96, 128))
    assert client_overhead.native_size(stretch) == (96, 128)


def test_camera_frames_are_camera_sized_bgr() -> None:
    frames = camera_frames(count=3)
    assert len(frames) == 3
    assert all(frame.shape == (480, 640, 3) and frame.dtype == "uint8" for frame in frames)


@pytest.mark.integration
def test_client_overhead_script(shared_data: Path, tmp_path: Path) -> None:
    arguments = [str(shared_data / SMALL_MODEL), "--labels", str(shared_data / LABELS)]
    arguments += ["--threads", "1", "--runs", "10", "--output", str(tmp_path)]
    arguments += ["--images", str(shared_data / "tflite" / "sanity_images")]
    result = CliRunner().invoke(cli, ["bench", "client-overhead", *arguments])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "client_overhead.json").read_text())
    rows = report["client_overhead"]["rows"]
    assert [row["input"] for row in rows] == [
        "146x146 BGR (no resize)",
        "640x480 BGR frame",
        "640x480 fitted by capture thread",
    ]
    assert [row["fit_ms"] is None for row in rows] == [True, True, False]
    assert rows[2]["fit_ms"] > 0
    for row in rows:
        assert row["raw_ms"] > 0 and row["client_ms"] > 0 and row["invoke_ms"] > 0
        assert row["ratio"] == pytest.approx(row["client_ms"] / row["raw_ms"])
        assert (
            0 < row["raw_p10_ms"] <= row["raw_ms"] and 0 < row["client_p10_ms"] <= row["client_ms"]
        )
        assert row["runs"] == 10 and row["target"] == 1.10
    table = (tmp_path / "client_overhead.md").read_text()
    assert "| mobilenet_v1_0.25_128_quant | 1 | 640x480 BGR frame |" in table
    assert "| capture fit ms |" in table


@pytest.mark.integration
def test_pipeline_script(shared_data: Path, tmp_path: Path) -> None:
    arguments = [str(shared_data / SMALL_MODEL), "--labels", str(shared_data / LABELS)]
    arguments += ["--threads", "1", "--frames", "20", "--output", str(tmp_path)]
    result = CliRunner().invoke(cli, ["bench", "pipeline", *arguments])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "pipeline.json").read_text())
    section = report["pipeline"]
    assert section["stages"] == list(pipeline.STAGES)
    video, live, encoded = section["rows"]
    assert video["source"] == "video file" and video["captured"] is None
    assert live["captured"] >= live["frames"] == 20
    assert live["stage_ms"]["encode"] == 0 < encoded["stage_ms"]["encode"]
    # The real `tledge edge` loop ran on the video and the live camera, not with encoding;
    # one interpreter cannot classify faster than 1/invoke, so its fraction stays <= 1.
    for row in (video, live):
        assert row["edge_loop_fps"] > 0 and 0 < row["edge_loop_fraction"] <= 1.05
        assert row["edge_loop_collect_fps"] > 0
        assert row["edge_loop_cpu_ms"] > 0 and row["edge_loop_collect_cpu_ms"] > 0
    assert encoded["edge_loop_fps"] is None and encoded["edge_loop_fraction"] is None
    assert encoded["edge_loop_collect_fps"] is None
    for row in section["rows"]:
        assert row["fps"] == pytest.approx(row["frames"] / row["seconds"])
        assert row["fps_fraction"] == pytest.approx(row["fps"] / row["invoke_fps"])
        # The stages cover the whole loop: their sum is the time per frame.
        per_frame_ms = 1000 / row["fps"]
        assert 0.6 * per_frame_ms < sum(row["stage_ms"].values()) <= 1.05 * per_frame_ms
    assert (tmp_path / "stages.png").read_bytes().startswith(b"\x89PNG")
    markdown = (tmp_path / "pipeline.md").read_text()
    assert "| video file | 20 |" in markdown
    assert (
        "| edge loop FPS | edge loop fraction | with --collect FPS | collect overhead |" in markdown
    )
    assert "real `tledge edge` loop" in markdown
