"""End-to-end training on tiny generated data: run folder, both phases, feature cache,
resume after SIGKILL, messy data, EfficientNetB0 and starting from an existing run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tledge.core.calibration import log_loss
from tledge.core.folders import list_class_folders
from tledge.core.run_folder import RunFolder
from tledge.trainer.config import TrainConfig
from tledge.trainer.training import train

pytestmark = pytest.mark.slow

TINY = dict(weights="none", alpha=0.35, image_size=(64, 64), batch_size=16, seed=1)
HISTORY_KEYS = {
    "epoch",
    "phase",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
}
METRIC_KEYS = {
    "test_accuracy",
    "test_loss",
    "num_test_images",
    "per_class",
    "best_val_accuracy",
    "train_seconds",
    "feature_extraction_test_accuracy",
    "before_refit_test_accuracy",
    "skipped_files",
}


def _predictions(run: RunFolder, folder: Path) -> np.ndarray:
    import keras

    from tledge.edge.images import fit_image, read_rgb

    model = keras.saving.load_model(run.model, safe_mode=True)
    paths = list_class_folders(folder).paths
    contract = run.read_input_contract()
    images = np.stack([fit_image(read_rgb(p), contract) for p in paths]).astype("float32")
    return model.predict(images, verbose=0)


def test_efficientnet_on_messy_data_writes_a_complete_run(messy_dataset: Path, tmp_path: Path):
    messages: list[str] = []
    config = TrainConfig(
        data=str(messy_dataset / "train"),
        test=str(messy_dataset / "test"),
        backbone="efficientnetb0",
        epochs=1,
        fine_tune_epochs=1,
        output=str(tmp_path),
        **TINY,
    )
    result = train(config, log=messages.append)
    run = result.run
    warning = next(m for m in messages if "skipped 4" in m)
    for name in ("empty.jpg", "notes.jpg", "truncated.jpg", "garbage.png"):
        assert name in warning

    assert run.read_labels() == ["circle", "square", "stripes", "triangle"]
    stored = run.read_config()
    assert stored.backbone == "efficientnetb0" and stored.image_size == (64, 64)
    assert stored.precision == "float32"
    history = json.loads(run.history.read_text())
    assert [(e["epoch"], e["phase"]) for e in history["epochs"]] == [
        (1, "feature_extraction"),
        (2, "fine_tuning"),
        (3, "refit_feature_extraction"),
        (4, "refit_fine_tuning"),
    ]
    assert all(set(e) == HISTORY_KEYS for e in history["epochs"])
    assert history["phase_boundaries"] == [1, 2, 3]
    # The refit trains on every good image (4 x 12 + 9 odd ones) without validation.
    assert any("refit: a fresh model on all 57 train + val images" in m for m in messages)
    assert [e["val_accuracy"] for e in history["epochs"][2:]] == [None, None]
    before_refit = run.read_metrics()["before_refit_test_accuracy"]
    assert isinstance(before_refit, float) and 0 <= before_refit <= 1
    metrics = run.read_metrics()
    assert set(metrics) >= METRIC_KEYS
    assert metrics["skipped_files"] == 4 and metrics["num_test_images"] == 16
    assert set(metrics["per_class"]) == set(run.read_labels())
    assert isinstance(metrics["feature_extraction_test_accuracy"], float)
    assert run.best_checkpoint.is_file() and any(run.logs.rglob("*.csv"))
    # The training used the 9 odd files too: 4 x 12 good + 9 odd, split 80/20.
    # converted/ also holds the check's verdicts (checked_images.sqlite).
    assert len(list((run.root / "converted").glob("*.png"))) == 8
    predictions = _predictions(run, messy_dataset / "test")
    assert predictions.shape == (16, 4)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-5)
    # T and the threshold come from the model chosen on val, and model.keras holds T.
    calibration = metrics["calibration"]
    assert calibration["fitted_on"] == "checkpoints/best.keras"
    assert calibration["val_images"] == 10 and 0 < calibration["unknown_threshold"] <= 1
    labels = list_class_folders(messy_dataset / "test").labels
    assert log_loss(predictions, labels) == pytest.approx(
        calibration["test_log_loss_after"], abs=0.02
    )
    assert RunFolder.open(run.root) == run


def test_feature_cache_matches_slow_path_and_fine_tunes_from_run(
    tiny_dataset: Path, tmp_path: Path
):
    common = dict(
        data=str(tiny_dataset / "train"),
        test=str(tiny_dataset / "test"),
        epochs=6,
        fine_tune_epochs=0,
        augment=False,
        dropout=0.0,
        patience=0,
        learning_rate=0.01,
        refit=False,
        output=str(tmp_path),
        **TINY,
    )
    messages: list[str] = []
    fast = train(TrainConfig(name="fast", **common), log=messages.append)
    slow = train(TrainConfig(name="slow", feature_cache=False, **common))
    assert any("cached backbone features" in m for m in messages)
    assert len(list((tmp_path / ".feature_cache").glob("*.npy"))) == 2
    fast_metrics, slow_metrics = fast.metrics, slow.metrics
    assert abs(fast_metrics["test_accuracy"] - slow_metrics["test_accuracy"]) <= 0.01
    np.testing.assert_allclose(
        _predictions(fast.run, tiny_dataset / "test"),
        _predictions(slow.run, tiny_dataset / "test"),
        atol=2e-3,
    )
    # Same data order, same start, same steps: the two paths train the same head.
    fast_history = json.loads(fast.run.history.read_text())["epochs"]
    slow_history = json.loads(slow.run.history.read_text())["epochs"]
    for fast_epoch, slow_epoch in zip(fast_history, slow_history, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert fast_epoch[key] == pytest.approx(slow_epoch[key], rel=1e-3, abs=1e-3), key
    assert fast_history[-1]["loss"] < fast_history[0]["loss"]

    tuned = train(
        TrainConfig(
            data=common["data"],
            test=common["test"],
            from_run=str(fast.run.root),
            fine_tune_epochs=1,
            epochs=0,
            name="tuned",
            output=str(tmp_path),
            **TINY,
        )
    )
    assert tuned.metrics["feature_extraction_test_accuracy"] == pytest.approx(
        fast_metrics["test_accuracy"]
    )
    history = json.loads(tuned.run.history.read_text())
    assert [e["phase"] for e in history["epochs"]] == ["fine_tuning"]


def _train_command(tiny_dataset: Path, output: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tledge",
        "train",
        "--data",
        str(tiny_dataset / "train"),
        "--weights",
        "none",
        "--alpha",
        "0.35",
        "--image-size",
        "64",
        "64",
        "--batch-size",
        "8",
        "--epochs",
        "1",
        "--fine-tune-epochs",
        "5",
        "--patience",
        "0",
        "--output",
        str(output),
        "--name",
        "killed",
    ]


def _kill_when(command: list[str], history_file: Path, phase: str, env: dict) -> int:
    """Start `command`, SIGKILL it once 2 epochs of `phase` are recorded; return the last epoch."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    # Generous: a loaded 2-core box once took longer than 240 s to reach the second epoch.
    deadline = time.monotonic() + 900
    finished_before_kill = 0
    while time.monotonic() < deadline and process.poll() is None:
        if history_file.is_file():
            epochs = json.loads(history_file.read_text())["epochs"]
            if sum(e["phase"] == phase for e in epochs) >= 2:
                finished_before_kill = epochs[-1]["epoch"]
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert finished_before_kill, f"training ended before it could be killed in {phase}"
    assert not history_file.with_name("metrics.json").exists()
    return finished_before_kill


def test_sigkill_during_fine_tuning_and_refit_resumes_at_last_epoch(
    tiny_dataset: Path, tmp_path: Path
):
    command = _train_command(tiny_dataset, tmp_path)
    history_file = tmp_path / "killed" / "history.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    in_phase_two = _kill_when(command, history_file, "fine_tuning", env)
    assert in_phase_two >= 3
    in_refit = _kill_when(command, history_file, "refit_fine_tuning", env)
    assert in_refit >= 9

    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming run" in rerun.stderr
    trained = [
        int(line.split()[1].split("/")[0])
        for line in rerun.stdout.splitlines()
        if line.startswith("Epoch ")
    ]
    # Epochs already backed up are not trained again (one more may have finished
    # between the last history write and the kill).
    assert trained and trained[0] >= in_refit
    history = json.loads(history_file.read_text())
    epochs = history["epochs"]
    assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
    assert trained[-1] == len(epochs)
    # The refit replays all 6 epochs (no early stopping: each phase kept its last).
    phases = [e["phase"] for e in epochs]
    assert (
        phases
        == ["feature_extraction"]
        + ["fine_tuning"] * 5
        + ["refit_feature_extraction"]
        + ["refit_fine_tuning"] * 5
    )
    assert [e["learning_rate"] for e in epochs[6:]] == [e["learning_rate"] for e in epochs[:6]]
    assert history["phase_boundaries"] == [1, 6, 7]
    assert (tmp_path / "killed" / "metrics.json").is_file()
