"""How far a converted model's answers drift from the Keras model's on held-out images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Drift:
    """Accuracy of a converted model next to the Keras model it came from.

    Attributes:
        accuracy: Top-1 accuracy of the converted model (fraction).
        reference_accuracy: Top-1 accuracy of the Keras model on the same images.
        top1_drift_pp: Top-1 accuracy lost, in percentage points (positive = worse).
        agreement: Fraction of images where both models pick the same class.
        mean_abs_prob_diff: Mean over images and classes of |p_keras - p_converted|.
        per_class_accuracy_delta: Per label, converted minus Keras accuracy (fraction);
            0.0 for a class without images.
        num_images: Number of images compared.
    """

    accuracy: float
    reference_accuracy: float
    top1_drift_pp: float
    agreement: float
    mean_abs_prob_diff: float
    per_class_accuracy_delta: dict[str, float]
    num_images: int


def top1_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose highest score is at the true label."""
    return float(np.mean(np.argmax(probabilities, axis=1) == labels)) if len(labels) else 0.0


def measure_drift(
    reference: np.ndarray,
    converted: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
) -> Drift:
    """Compare a converted model's probabilities with the reference (Keras) ones.

    Args:
        reference: Keras probabilities [N, classes].
        converted: Converted-model probabilities [N, classes], same images and order.
        labels: True class index of each image [N].
        class_names: Labels in output order.

    Example:
        >>> drift = measure_drift(keras_probs, int8_probs, labels, ["cat", "dog"])
        >>> drift.top1_drift_pp <= 1.0
    """
    reference_top1 = np.argmax(reference, axis=1)
    converted_top1 = np.argmax(converted, axis=1)
    deltas = {}
    for index, name in enumerate(class_names):
        members = labels == index
        if not members.any():
            deltas[name] = 0.0
            continue
        deltas[name] = float(
            np.mean(converted_top1[members] == index) - np.mean(reference_top1[members] == index)
        )
    reference_correct = int(np.sum(reference_top1 == labels))
    converted_correct = int(np.sum(converted_top1 == labels))
    count = max(len(labels), 1)
    return Drift(
        accuracy=converted_correct / count,
        reference_accuracy=reference_correct / count,
        # From counts, so 5 of 500 images is exactly 1.0 pp and passes a 1.0 pp gate.
        top1_drift_pp=100.0 * (reference_correct - converted_correct) / count,
        agreement=float(np.mean(reference_top1 == converted_top1)),
        mean_abs_prob_diff=float(np.mean(np.abs(reference - converted))),
        per_class_accuracy_delta=deltas,
        num_images=len(labels),
    )
