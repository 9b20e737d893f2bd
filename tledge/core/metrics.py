"""Classification metrics from predicted probabilities: the one place they are computed.

Training (metrics.json), `tledge evaluate` and the exporter's drift gate all call these,
so a number means the same thing wherever it is printed. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Keras clips probabilities to this epsilon in its cross-entropy; the loss matches it.
CROSS_ENTROPY_EPSILON = 1e-7


def top1(probabilities: np.ndarray) -> np.ndarray:
    """The predicted class index of each row of an (N, C) array of scores."""
    return np.argmax(probabilities, axis=1)


def correct_count(predicted: np.ndarray, truth: Sequence[int] | np.ndarray) -> int:
    """How many predicted class indices equal the true ones."""
    return int(np.sum(np.asarray(predicted) == np.asarray(truth)))


def accuracy(predicted: np.ndarray, truth: Sequence[int] | np.ndarray) -> float:
    """Fraction of predicted class indices equal to the true ones; 0.0 for no images.

    Example:
        >>> accuracy(np.array([0, 1, 1]), [0, 1, 0])  # 2 of 3
        0.6666666666666666
    """
    truth = np.asarray(truth)
    return correct_count(predicted, truth) / len(truth) if len(truth) else 0.0


def cross_entropy(
    probabilities: np.ndarray,
    truth: Sequence[int] | np.ndarray,
    epsilon: float = CROSS_ENTROPY_EPSILON,
) -> float:
    """Mean categorical cross-entropy of the true classes (no label smoothing); 0.0 for none.

    Example:
        >>> cross_entropy(np.array([[0.5, 0.5]]), [0])  # -ln(0.5)
        0.6931...
    """
    truth = np.asarray(truth, dtype=np.int64)
    if not len(truth):
        return 0.0
    picked = probabilities[np.arange(len(truth)), truth]
    return float(-np.mean(np.log(np.clip(picked, epsilon, 1.0))))


def confusion_matrix(
    truth: Sequence[int] | np.ndarray, predicted: np.ndarray, num_classes: int
) -> np.ndarray:
    """(num_classes, num_classes) counts; row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, dtype=np.int64), np.asarray(predicted)), 1)
    return matrix


def per_class_scores(
    truth: Sequence[int] | np.ndarray, predicted: np.ndarray, class_names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support of every class; 0.0 where a ratio is undefined.

    Returns:
        {label: {"precision", "recall", "f1", "support"}}, in label order.
    """
    matrix = confusion_matrix(truth, predicted, len(class_names))
    hits = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    scores: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(class_names):
        hit, chosen, present = int(hits[index]), int(predicted_count[index]), int(support[index])
        precision = hit / chosen if chosen else 0.0
        recall = hit / present if present else 0.0
        total = precision + recall
        scores[name] = {
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / total if total else 0.0,
            "support": present,
        }
    return scores


def agreement(first: np.ndarray, second: np.ndarray) -> float:
    """Fraction of rows where two models' (N, C) scores pick the same class."""
    return float(np.mean(top1(first) == top1(second)))


def mean_abs_difference(first: np.ndarray, second: np.ndarray) -> float:
    """Mean over rows and classes of |first - second| (two models' probabilities)."""
    return float(np.mean(np.abs(first - second)))
