"""`tledge bench scale | mixed-precision | unknowns | mediapipe`: options, one-line errors,
and the mixed-precision comparison end to end on a tiny dataset (CPU, forced)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tledge.cli import cli


def _bench(*args: str):
    return CliRunner().invoke(cli, ["bench", *args])


def test_scale_refuses_bad_sizes_in_one_line(tmp_path: Path) -> None:
    result = _bench("scale", "--root", str(tmp_path), "--sizes", "10,1000")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: --sizes: give image counts of at least 20, e.g. 1000,5000"
    ]
    result = _bench("scale", "--root", str(tmp_path), "--sizes", "1k")
    assert result.exit_code == 2 and "give comma-separated image counts" in result.output


def test_unknowns_names_a_missing_run(tmp_path: Path) -> None:
    result = _bench("unknowns", "--run", str(tmp_path / "nope"), "--near", str(tmp_path))
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "nope" in result.output


def test_mediapipe_help_lists_its_options() -> None:
    result = _bench("mediapipe", "--help")
    assert result.exit_code == 0
    for option in ("MODELS...", "--images", "--mediapipe-python", "--threads", "--output"):
        assert option in result.output
    assert "TLEDGE_MEDIAPIPE_PYTHON" in result.output


def _mediapipe_error(tmp_path: Path, *python: str) -> str:
    model = tmp_path / "model.tflite"
    model.write_bytes(b"checked after the MediaPipe Python")
    result = _bench("mediapipe", str(model), "--images", str(tmp_path), *python)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_mediapipe_without_its_python_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TLEDGE_MEDIAPIPE_PYTHON", raising=False)
    line = _mediapipe_error(tmp_path)
    assert line.startswith("Error: --mediapipe-python:") and "TLEDGE_MEDIAPIPE_PYTHON" in line
    monkeypatch.setenv("TLEDGE_MEDIAPIPE_PYTHON", str(tmp_path / "nope" / "python"))
    line = _mediapipe_error(tmp_path)
    assert "nope/python: cannot run it" in line


def test_mediapipe_python_without_mediapipe_is_one_line(tmp_path: Path) -> None:
    if importlib.util.find_spec("mediapipe") is not None:
        pytest.skip("this Python has mediapipe")
    line = _mediapipe_error(tmp_path, "--mediapipe-python", sys.executable)
    assert line == (
        f"Error: --mediapipe-python {sys.executable}: it cannot import mediapipe; install it "
        f"there ({sys.executable} -m pip install mediapipe)"
    )


@pytest.mark.slow
def test_mixed_precision_compares_both_policies(tiny_dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    result = _bench(
        "mixed-precision",
        "--data", str(tiny_dataset / "train"), "--test", str(tiny_dataset / "test"),
        "--weights", "none", "--image-size", "32", "--epochs", "1", "--fine-tune-epochs", "1",
        "--batch-size", "8", "--force-precision", "--output", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "mixed_precision.json").read_text())
    rows = report["mixed_precision"]["rows"]
    assert [row["precision"] for row in rows] == ["float32", "mixed_float16"]
    for row in rows:
        assert 0 <= row["test_accuracy"] <= 1
        # 77 training images in batches of 8: enough steps for a steady rate.
        assert row["images_per_second"]["feature_extraction"] > 0
        assert row["images_per_second"]["fine_tuning"] > 0
    assert "bench mixed-precision" in report["command"]
    assert "| float32 |" in (tmp_path / "mixed_precision.md").read_text()
