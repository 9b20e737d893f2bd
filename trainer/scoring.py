"""Scoring a model on the test split, and the metrics.json that marks a run finished."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tledge.core import metrics as core_metrics
from tledge.trainer.data import DatasetSplits

# Decimals of the per-class scores in metrics.json.
PER_CLASS_DECIMALS = 6


def classification_metrics(
    probabilities: np.ndarray, labels: Sequence[int], class_names: Sequence[str]
) -> dict[str, Any]:
    """Compute the test part of metrics.json from predicted probabilities.

    Args:
        probabilities: (N, C) softmax outputs.
        labels: True class index of each row.
        class_names: Label of each class index.

    Returns:
        {"test_accuracy", "test_loss" (cross-entropy, no label smoothing),
        "num_test_images", "per_class": {label: {precision, recall, f1, support}}}.

    Example:
        >>> classification_metrics(np.array([[0.9, 0.1]]), [0], ["a", "b"])["test_accuracy"]
        1.0
    """
    truth = np.asarray(labels, dtype=np.int64)
    predicted = core_metrics.top1(probabilities)
    per_class = {
        name: {
            key: value if key == "support" else round(value, PER_CLASS_DECIMALS)
            for key, value in scores.items()
        }
        for name, scores in core_metrics.per_class_scores(truth, predicted, class_names).items()
    }
    return {
        "test_accuracy": core_metrics.accuracy(predicted, truth),
        "test_loss": core_metrics.cross_entropy(probabilities, truth),
        "num_test_images": len(truth),
        "per_class": per_class,
    }


class ModelScorer:
    """Scores models on the test split, building its dataset once.

    Args:
        splits: The run's splits (`splits.test` may be None: then nothing is scored).
        images: Builds a (non-training) dataset of a split (`Trainer.images`).
    """

    def __init__(self, splits: DatasetSplits, images):
        self.test = splits.test
        self.class_names = splits.class_names
        self._images = images
        self._data = None

    def metrics(self, model) -> dict[str, Any]:
        """The test part of metrics.json for `model` (see `classification_metrics`)."""
        if self._data is None:
            self._data = self._images(self.test, training=False)
        probabilities = model.predict(self._data, verbose=0)
        return classification_metrics(probabilities, self.test.labels, self.class_names)

    def accuracy(self, model) -> float | None:
        """Test accuracy of `model`, or None without a test split."""
        if self.test is None:
            return None
        return self.metrics(model)["test_accuracy"]


def run_metrics(
    test_metrics: dict[str, Any] | None,
    history: dict,
    state: dict[str, Any],
    skipped_files: Any,
    precision: str,
) -> dict[str, Any]:
    """The contents of metrics.json.

    Args:
        test_metrics: `ModelScorer.metrics` of the final model, or None without a test split.
        history: history.json contents.
        state: state.json contents.
        skipped_files: The files the data loader skipped (`DatasetSplits.skipped`).
        precision: The run's dtype policy.
    """
    val_accuracies = [e["val_accuracy"] for e in history["epochs"] if e["val_accuracy"]]
    metrics: dict[str, Any] = {
        "test_accuracy": None,
        "test_loss": None,
        "num_test_images": 0,
        "per_class": {},
    }
    if test_metrics is not None:
        metrics.update(test_metrics)
    seconds = state["phase_seconds"]
    metrics.update(
        best_val_accuracy=max(val_accuracies, default=None),
        train_seconds=round(sum(seconds.values()), 3),
        feature_extraction_test_accuracy=state.get("feature_extraction_test_accuracy"),
        before_refit_test_accuracy=state.get("before_refit_test_accuracy"),
        skipped_files=skipped_files,
        phase_seconds=seconds,
        precision=precision,
    )
    return metrics
