"""Which epochs the refit replays."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tledge.trainer.phases import FINE_TUNING, PhasePlan, early_stopping
from tledge.trainer.refit import chosen_learning_rates


def _epoch(number: int, phase: str, val_accuracy: float | None, rate: float) -> dict:
    return {"epoch": number, "phase": phase, "val_accuracy": val_accuracy, "learning_rate": rate}


HISTORY = {
    "epochs": [
        _epoch(1, "feature_extraction", 0.5, 1e-3),
        _epoch(2, "feature_extraction", 0.7, 8e-4),
        _epoch(3, "feature_extraction", 0.7, 5e-4),
        _epoch(4, "feature_extraction", 0.6, 2e-4),
        _epoch(5, "fine_tuning", 0.6, 1e-5),
        _epoch(6, "fine_tuning", 0.8, 1e-4),
        _epoch(7, "fine_tuning", 0.75, 5e-5),
    ],
    "phase_boundaries": [4],
}


def test_replays_each_phase_up_to_its_first_best_val_epoch() -> None:
    chosen = chosen_learning_rates(HISTORY, up_to_best=True)
    # Fine-tuning ran only its 3 settling epochs, which early stopping does not judge:
    # the phase keeps its last epoch.
    assert chosen == {"feature_extraction": (1e-3, 8e-4), "fine_tuning": (1e-5, 1e-4, 5e-5)}


def test_fine_tuning_is_judged_after_its_settling_epochs() -> None:
    scores = [0.74, 0.66, 0.70, 0.72, 0.73, 0.71, 0.70, 0.69]  # best of all: the warm-up
    history = {
        "epochs": [
            _epoch(10 + i, "fine_tuning", score, 1e-4 / (i + 1)) for i, score in enumerate(scores)
        ],
        "phase_boundaries": [9],
    }
    chosen = chosen_learning_rates(history, up_to_best=True)["fine_tuning"]
    assert len(chosen) == 5  # the best of epochs 4.. is the 5th


@pytest.mark.parametrize(
    "scores",
    [
        [0.74, 0.66, 0.70, 0.72, 0.73, 0.71, 0.70, 0.69, 0.68],
        [0.60, 0.55, 0.58, 0.70, 0.70, 0.75, 0.74, 0.74, 0.74, 0.74, 0.74],
        [0.74, 0.66],
        [0.70, 0.60, 0.65, 0.80, 0.79, 0.78, 0.77, 0.76, 0.90],
    ],
)
def test_refit_replays_the_epochs_early_stopping_keeps(scores: list[float]) -> None:
    first = 10
    plan = PhasePlan(FINE_TUNING, first, len(scores), 1e-4, "cosine", 0.0, 4, (first,))
    callback = early_stopping(plan)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    callback.set_model(model)
    callback.on_train_begin()
    finished = 0
    for index, score in enumerate(scores):
        model.layers[0].kernel.assign(np.full((1, 1), index, "float32"))  # marks the epoch
        callback.on_epoch_end(first + index, {"val_accuracy": score})
        finished = index + 1
        if getattr(model, "stop_training", False):
            break
    callback.on_train_end()
    kept = int(model.layers[0].kernel.numpy()[0, 0]) + 1  # epochs in the restored model
    history = {
        "epochs": [
            _epoch(first + 1 + i, "fine_tuning", score, float(i))
            for i, score in enumerate(scores[:finished])
        ],
        "phase_boundaries": [first],
    }
    assert len(chosen_learning_rates(history, up_to_best=True)["fine_tuning"]) == kept


def test_without_early_stopping_replays_every_epoch() -> None:
    chosen = chosen_learning_rates(HISTORY, up_to_best=False)
    assert chosen["feature_extraction"] == (1e-3, 8e-4, 5e-4, 2e-4)
    assert chosen["fine_tuning"] == (1e-5, 1e-4, 5e-5)


def test_a_skipped_phase_replays_nothing() -> None:
    history = {"epochs": HISTORY["epochs"][:4], "phase_boundaries": []}
    assert chosen_learning_rates(history, up_to_best=True)["fine_tuning"] == ()
