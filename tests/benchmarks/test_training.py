"""The training benchmark on a tiny generated dataset (random init, 32 px, 2 epochs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tledge.benchmarks import training
from tledge.cli import cli


@pytest.mark.slow
def test_training_script_compares_naive_and_cached(tiny_dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    arguments = ["--data", str(tiny_dataset / "train"), "--test", str(tiny_dataset / "test")]
    arguments += ["--alpha", "0.35", "--image-size", "32", "--per-class", "4", "--epochs", "2"]
    result = CliRunner().invoke(cli, ["bench", "training", *arguments, "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "training.json").read_text())
    section = report["training"]
    naive, cold, warm = section["rows"]
    assert section["num_train_images"] == 16 and section["num_test_images"] == 32
    assert all(row["epochs"] == 2 and row["seconds"] > 0 for row in section["rows"])
    assert all(0 <= row["accuracy"] <= 1 for row in section["rows"])
    assert section["speedup"] == pytest.approx(naive["seconds"] / cold["seconds"])
    assert warm["speedup"] == pytest.approx(naive["seconds"] / warm["seconds"])
    # Same seed, same features: the warm rerun trains the same head as the cold run.
    assert warm["accuracy"] == cold["accuracy"]
    assert "skipped" in section["precision"] or section["precision"]["images_per_s"]
    markdown = (tmp_path / "training.md").read_text()
    assert "| naive fit (frozen backbone) | 2 |" in markdown and "Cached features" in markdown


@pytest.mark.slow
def test_precision_throughput_runs_when_forced(tiny_dataset: Path) -> None:
    pytest.importorskip("tensorflow")
    setup = training.TrainingSetup(data="", test="", alpha=0.35, image_size=(32, 32), batch_size=4)
    result = training.measure_precision_throughput(setup, steps=1, force=True)
    assert set(result["images_per_s"]) == {"float32", "mixed_float16"}
    assert result["mixed_speedup"] == pytest.approx(
        result["images_per_s"]["mixed_float16"] / result["images_per_s"]["float32"]
    )
