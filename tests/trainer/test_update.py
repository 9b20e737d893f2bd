"""`tledge train --from-run RUN --add-data DIR`: head-only update on cached features.

Checked to fail: with the head weights not copied back into the model (`copy_head`
removed), the saved model's test accuracy differed from the reported one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tledge.cli import cli
from tledge.core.folders import list_class_folders
from tledge.core.run_folder import RunFolder

TINY = ["--weights", "none", "--alpha", "0.35", "--image-size", "64", "64"]
TINY += ["--batch-size", "16", "--seed", "1", "--patience", "0", "--no-refit", "--quiet"]


def run_cli(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result


def test_add_data_needs_from_run(tmp_path):
    result = run_cli("train", "--add-data", str(tmp_path))
    assert result.exit_code == 1
    assert "--add-data needs --from-run RUN" in result.output
    assert "--data is required" in run_cli("train").output


@pytest.mark.slow
def test_head_update_adds_photos_and_caches_features(tiny_dataset: Path, tmp_path: Path):
    import keras

    runs = tmp_path / "runs"
    trained = run_cli(
        "train", "--data", str(tiny_dataset / "train"), "--test", str(tiny_dataset / "test"),
        *TINY, "--epochs", "3", "--fine-tune-epochs", "0", "--no-augment",
        "--output", str(runs), "--name", "base",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    new = tmp_path / "new"
    for folder in (tiny_dataset / "test").iterdir():
        (new / folder.name).mkdir(parents=True)
        for photo in sorted(folder.iterdir())[:2]:
            shutil.copy(photo, new / folder.name / photo.name)
    update = ["train", "--from-run", str(runs / "base"), "--add-data", str(new)]
    update += ["--epochs", "5", "--output", str(runs)]
    first = run_cli(*update, "--name", "v2")
    assert first.exit_code == 0, first.output
    assert "added photos: 8" in first.output and "after the update" in first.output
    cached = list((runs / "base" / "features").glob("*.npy"))
    assert len(cached) == 3  # old training photos, new photos, test photos
    second = run_cli(*update)  # default name, features all from the cache
    assert second.exit_code == 0 and "run: " in second.output
    assert (runs / "base-update-1").is_dir()
    assert len(list((runs / "base" / "features").glob("*.npy"))) == 3

    run = RunFolder.open(runs / "v2")
    metrics = json.loads(run.metrics.read_text())
    assert metrics["added_images"] == 8 and "test_accuracy_before_update" in metrics
    config = json.loads(run.config.read_text())
    assert config["update"] == "head" and config["from_run"] == str(runs / "base")
    # The saved model is the updated one: its own test accuracy is the reported one.
    model = keras.saving.load_model(run.model)
    test = list_class_folders(tiny_dataset / "test", run.read_labels())
    load = keras.utils.load_img  # the tiny photos are 64x64 already: no resize
    images = np.stack([keras.utils.img_to_array(load(path)) for path in test.paths])
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    assert np.mean(predicted == np.asarray(test.labels)) == pytest.approx(
        metrics["test_accuracy"], abs=0.04
    )
    unknown = tmp_path / "unknown"
    shutil.copytree(new, unknown)
    (unknown / "hexagon").mkdir()
    refused = run_cli("train", "--from-run", str(runs / "base"), "--add-data", str(unknown))
    assert refused.exit_code == 1 and "a new class needs a full `tledge train`" in refused.output
