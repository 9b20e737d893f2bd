"""What the refit replays: the learning rates of the epochs that made each phase's model."""

from __future__ import annotations

from tledge.trainer.phases import FEATURE_EXTRACTION, FINE_TUNING, SETTLING_EPOCHS


def chosen_learning_rates(history: dict, up_to_best: bool) -> dict[str, tuple[float, ...]]:
    """The learning rates of the epochs that made each phase's final model.

    Early stopping (patience > 0) restores each phase's best val_accuracy epoch (the
    first of equal ones) after its `SETTLING_EPOCHS`, or keeps the last epoch when the
    phase ran no further; without early stopping a phase ends with its last epoch.

    Args:
        history: history.json contents.
        up_to_best: Stop each phase at its best val_accuracy epoch.

    Returns:
        {FEATURE_EXTRACTION: rates, FINE_TUNING: rates}; a phase that did not run has ().
    """
    chosen: dict[str, tuple[float, ...]] = {}
    for phase in (FEATURE_EXTRACTION, FINE_TUNING):
        epochs = [e for e in history["epochs"] if e["phase"] == phase]
        settling = SETTLING_EPOCHS.get(phase, 0)
        scores = [e["val_accuracy"] if e["val_accuracy"] is not None else -1.0 for e in epochs]
        judged = scores[settling:]
        last = settling + judged.index(max(judged)) + 1 if judged and up_to_best else len(epochs)
        chosen[phase] = tuple(e["learning_rate"] for e in epochs[:last])
    return chosen


def refit_boundaries(earlier: list[int], first: int) -> tuple[int, ...]:
    """The history's phase boundaries for a refit phase starting at epoch `first`.

    A resumed phase finds its own start among `earlier` already, so it is not repeated.
    """
    return (*(epoch for epoch in earlier if epoch < first), first)
