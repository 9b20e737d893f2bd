"""Drift numbers between a reference and a converted model's probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from tledge.exporter.drift import measure_drift, top1_accuracy


def one_hot(indices: list[int], classes: int = 3, confidence: float = 0.8) -> np.ndarray:
    rest = (1.0 - confidence) / (classes - 1)
    scores = np.full((len(indices), classes), rest)
    scores[np.arange(len(indices)), indices] = confidence
    return scores


def test_identical_predictions_do_not_drift():
    labels = np.array([0, 1, 2, 2])
    scores = one_hot([0, 1, 2, 1])
    drift = measure_drift(scores, scores.copy(), labels, ["a", "b", "c"])
    assert drift.accuracy == drift.reference_accuracy == 0.75
    assert drift.top1_drift_pp == 0.0
    assert drift.agreement == 1.0
    assert drift.mean_abs_prob_diff == 0.0
    assert drift.per_class_accuracy_delta == {"a": 0.0, "b": 0.0, "c": 0.0}
    assert drift.num_images == 4


def test_one_flipped_answer_out_of_four():
    labels = np.array([0, 1, 2, 2])
    reference = one_hot([0, 1, 2, 2])
    converted = one_hot([0, 1, 2, 0])
    drift = measure_drift(reference, converted, labels, ["a", "b", "c"])
    assert drift.reference_accuracy == 1.0
    assert drift.accuracy == 0.75
    assert drift.top1_drift_pp == pytest.approx(25.0)
    assert drift.agreement == 0.75
    # one row of three classes moved by 0.7, 0, 0.7 (0.8 <-> 0.1)
    assert drift.mean_abs_prob_diff == pytest.approx(1.4 / 12)
    assert drift.per_class_accuracy_delta == pytest.approx({"a": 0.0, "b": 0.0, "c": -0.5})


def test_a_converted_model_can_be_better_and_empty_classes_count_zero():
    labels = np.array([0, 0])
    drift = measure_drift(one_hot([1, 1]), one_hot([0, 1]), labels, ["a", "b", "c"])
    assert drift.top1_drift_pp == pytest.approx(-50.0)
    assert drift.per_class_accuracy_delta == pytest.approx({"a": 0.5, "b": 0.0, "c": 0.0})


def test_top1_accuracy_of_nothing_is_zero():
    assert top1_accuracy(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 0.0


def test_drift_from_counts_is_exact_at_the_default_gate():
    labels = np.zeros(500, dtype=int)
    reference = one_hot([0] * 400 + [1] * 100)
    converted = one_hot([0] * 395 + [1] * 105)
    drift = measure_drift(reference, converted, labels, ["a", "b", "c"])
    assert drift.top1_drift_pp == 1.0
    assert (drift.reference_accuracy, drift.accuracy) == (0.8, 0.79)
