"""Integration: `tledge train` on a small subset of the real food photos with real weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tledge.commands.train import train

WEIGHTS = "weights/mobilenet_v2_1.0_224_no_top.from_slim_npy.h5"


@pytest.mark.slow
@pytest.mark.integration
def test_food_subset_with_real_weights_is_far_above_chance(shared_data: Path, tmp_path: Path):
    food = shared_data / "food_mnist10"
    arguments = [
        "--data", str(food / "train"), "--test", str(food / "test"),
        "--weights", str(shared_data / WEIGHTS), "--image-size", "96", "96",
        "--train-fraction", "0.3", "--no-augment", "--epochs", "10", "--fine-tune-epochs", "0",
        "--learning-rate", "0.003", "--output", str(tmp_path), "--name", "food", "--quiet",
    ]  # fmt: skip
    result = CliRunner().invoke(train, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "food" / "metrics.json").read_text())
    assert metrics["num_test_images"] == 500
    # 10 classes: chance is 10%; ImageNet features on 180 small images reach ~50%.
    assert metrics["test_accuracy"] > 0.35
    assert "test accuracy:" in result.output and "run: " in result.output
