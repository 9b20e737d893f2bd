"""tledge.core.metrics against values worked out by hand (not the formulas re-derived).

Checked to fail: swapping precision and recall, dropping the epsilon clip, or counting
the confusion matrix column-major each fails a test below.
"""

from __future__ import annotations

import numpy as np
import pytest

from tledge.core import metrics

# 6 images, 3 classes: the middle image of class a is taken for b, the second b for c.
TRUTH = [0, 0, 0, 1, 1, 2]
PREDICTED = np.array([0, 0, 1, 1, 2, 2])


def test_accuracy_and_counts():
    assert metrics.correct_count(PREDICTED, TRUTH) == 4
    assert metrics.accuracy(PREDICTED, TRUTH) == pytest.approx(4 / 6)
    assert metrics.accuracy(np.zeros(0, int), []) == 0.0


def test_confusion_matrix_rows_are_true_classes():
    assert metrics.confusion_matrix(TRUTH, PREDICTED, 3).tolist() == [
        [2, 1, 0],
        [0, 1, 1],
        [0, 0, 1],
    ]


def test_per_class_precision_recall_f1_support():
    scores = metrics.per_class_scores(TRUTH, PREDICTED, ["a", "b", "c", "never"])
    assert scores["a"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert scores["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert scores["c"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
    assert scores["never"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_cross_entropy_of_known_probabilities_and_the_clip():
    probabilities = np.array([[0.5, 0.5], [0.75, 0.25]], np.float32)
    # -(ln 0.5 + ln 0.25) / 2 = 1.5 ln 2
    assert metrics.cross_entropy(probabilities, [0, 1]) == pytest.approx(1.0397208, rel=1e-6)
    # A true probability of 0 costs -ln(1e-7) = 16.118..., not infinity.
    zero = np.array([[1.0, 0.0]], np.float32)
    assert metrics.cross_entropy(zero, [1]) == pytest.approx(16.1180957, rel=1e-5)
    assert metrics.cross_entropy(np.zeros((0, 2)), []) == 0.0


def test_agreement_and_mean_absolute_difference():
    first = np.eye(3)[[0, 1, 2, 1]]
    second = np.eye(3)[[0, 2, 2, 1]]
    assert metrics.agreement(first, second) == 0.75
    # One row of 4 differs in two classes by 1: 2 / 12.
    assert metrics.mean_abs_difference(first, second) == pytest.approx(2 / 12)
    assert metrics.mean_abs_difference(np.array([[0.6, 0.4]]), np.array([[0.5, 0.5]])) == (
        pytest.approx(0.1)
    )


def test_top1_takes_the_first_of_equal_scores():
    assert metrics.top1(np.array([[0.2, 0.4, 0.4], [0.9, 0.05, 0.05]])).tolist() == [1, 0]
