"""How far a converted model's answers drift from the Keras model's on held-out images.

The numbers are computed by `tledge.core.metrics`, as training and `tledge evaluate` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tledge.core import metrics


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
    return metrics.accuracy(metrics.top1(probabilities), labels)


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
    reference_top1 = metrics.top1(reference)
    converted_top1 = metrics.top1(converted)
    reference_scores = metrics.per_class_scores(labels, reference_top1, class_names)
    converted_scores = metrics.per_class_scores(labels, converted_top1, class_names)
    # Per-class accuracy is the class's recall; 0.0 - 0.0 for a class without images.
    deltas = {
        name: converted_scores[name]["recall"] - reference_scores[name]["recall"]
        for name in class_names
    }
    reference_correct = metrics.correct_count(reference_top1, labels)
    converted_correct = metrics.correct_count(converted_top1, labels)
    count = max(len(labels), 1)
    return Drift(
        accuracy=converted_correct / count,
        reference_accuracy=reference_correct / count,
        # From counts, so 5 of 500 images is exactly 1.0 pp and passes a 1.0 pp gate.
        top1_drift_pp=100.0 * (reference_correct - converted_correct) / count,
        agreement=metrics.agreement(reference, converted),
        mean_abs_prob_diff=metrics.mean_abs_difference(reference, converted),
        per_class_accuracy_delta=deltas,
        num_images=len(labels),
    )
