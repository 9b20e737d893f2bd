"""Which epochs the refit replays."""

from __future__ import annotations

from tledge.trainer.training import chosen_learning_rates


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
    assert chosen == {"feature_extraction": (1e-3, 8e-4), "fine_tuning": (1e-5, 1e-4)}


def test_without_early_stopping_replays_every_epoch() -> None:
    chosen = chosen_learning_rates(HISTORY, up_to_best=False)
    assert chosen["feature_extraction"] == (1e-3, 8e-4, 5e-4, 2e-4)
    assert chosen["fine_tuning"] == (1e-5, 1e-4, 5e-5)


def test_a_skipped_phase_replays_nothing() -> None:
    history = {"epochs": HISTORY["epochs"][:4], "phase_boundaries": []}
    assert chosen_learning_rates(history, up_to_best=True)["fine_tuning"] == ()
