"""Test-set metrics of a trained model: accuracy, loss and per-class precision/recall/F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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
    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(truth)), truth]
    per_class = {}
    for index, name in enumerate(class_names):
        true_positive = int(np.sum((predicted == index) & (truth == index)))
        predicted_count = int(np.sum(predicted == index))
        support = int(np.sum(truth == index))
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 6),
            "recall": round(recall, 6),
            "f1": round(f1, 6),
            "support": support,
        }
    return {
        "test_accuracy": float(np.mean(predicted == truth)),
        "test_loss": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
        "num_test_images": len(truth),
        "per_class": per_class,
    }
