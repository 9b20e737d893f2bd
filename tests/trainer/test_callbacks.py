"""history.json recording, best checkpoint and learning-rate schedules."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from tledge.trainer.callbacks import BestCheckpoint, HistoryRecorder, lr_schedule_callback


def _tiny_model(lr: float = 0.01):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def test_history_replaces_epochs_trained_again(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    model = _tiny_model()
    recorder = HistoryRecorder(path, "fine_tuning", [2])
    recorder.set_model(model)
    for epoch in (2, 3, 4, 3):  # a resume re-runs epoch index 3
        recorder.on_epoch_begin(epoch)
        recorder.on_epoch_end(
            epoch,
            {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4 + epoch / 100},
        )
    history = json.loads(path.read_text())
    assert [e["epoch"] for e in history["epochs"]] == [3, 4]
    entry = history["epochs"][-1]
    assert set(entry) == {
        "epoch",
        "phase",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "seconds",
        "steady_step_seconds",
        "steady_step_cpu_seconds",
    }
    assert entry["phase"] == "fine_tuning" and entry["learning_rate"] == pytest.approx(0.01)
    assert history["phase_boundaries"] == [2]


def test_best_checkpoint_saves_only_improvements() -> None:
    saved: list[int] = []
    callback = BestCheckpoint(lambda: saved.append(1), best=0.5)
    for value in (0.4, 0.6, 0.6, 0.7):
        callback.on_epoch_end(0, {"val_accuracy": value})
    assert len(saved) == 2 and callback.best == 0.7


def test_cosine_schedule_spans_the_phase() -> None:
    """Known values, worked by hand: over 4 epochs the rate is 0.1 * (1 + cos(k * 45°)) / 2,
    0.1, 0.0854, 0.05, 0.0146, and it starts counting at the phase's first epoch (5).

    Checked that it fails: with the cosine's progress counted from epoch 0 instead of the
    phase's first epoch, and with the half-period (pi) replaced by a full one (2 pi)."""
    schedule = lr_schedule_callback("cosine", 0.1, first_epoch=5, epochs=4)
    rates = [schedule.schedule(epoch, 0.0) for epoch in range(5, 9)]
    np.testing.assert_allclose(rates, [0.1, 0.085355339, 0.05, 0.014644661], rtol=1e-7)
    assert lr_schedule_callback("constant", 0.1, 0, 4) is None
    assert isinstance(lr_schedule_callback("plateau", 0.1, 0, 4), keras.callbacks.ReduceLROnPlateau)


def test_warmup_epoch_then_cosine() -> None:
    schedule = lr_schedule_callback("cosine", 0.1, first_epoch=2, epochs=3, warmup_epochs=1)
    rates = [schedule.schedule(epoch, 0.0) for epoch in range(2, 5)]
    np.testing.assert_allclose(rates, [0.01, 0.1, 0.05])
    constant = lr_schedule_callback("constant", 0.1, first_epoch=0, epochs=3, warmup_epochs=1)
    assert [constant.schedule(epoch, 0.0) for epoch in range(3)] == [pytest.approx(0.01), 0.1, 0.1]
