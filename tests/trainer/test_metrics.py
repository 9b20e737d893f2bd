"""The test part of metrics.json (the numbers themselves: tests/core/test_metrics.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tledge.trainer.scoring import classification_metrics


def test_per_class_precision_recall_f1() -> None:
    # truth: a a a b b c ; predicted: a a b b b a
    probabilities = np.eye(3)[[0, 0, 1, 1, 1, 0]] * 0.7 + 0.1
    metrics = classification_metrics(probabilities, [0, 0, 0, 1, 1, 2], ["a", "b", "c"])
    assert metrics["test_accuracy"] == pytest.approx(4 / 6)
    assert metrics["num_test_images"] == 6
    a, b, c = (metrics["per_class"][name] for name in "abc")
    assert (a["precision"], a["recall"], a["support"]) == (
        pytest.approx(2 / 3),
        pytest.approx(2 / 3),
        3,
    )
    assert (b["precision"], b["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert b["f1"] == pytest.approx(0.8)
    assert c == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # True-class probabilities 0.8 0.8 0.1 0.8 0.8 0.1: -(4 ln 0.8 + 2 ln 0.1) / 6.
    # Checked that it fails: with the predicted class's probability picked instead.
    assert metrics["test_loss"] == pytest.approx(0.9162907, rel=1e-6)
