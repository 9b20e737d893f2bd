"""Calibration arithmetic: known values, not the formulas re-derived.

Checked to fail: with the golden-section comparison reversed `fit_temperature` runs to a
bound (the two temperature tests fail); without the abs() in the ECE the known-value
ECE test fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from tledge.core.calibration import (
    accuracy_coverage,
    auroc,
    expected_calibration_error,
    fit_temperature,
    log_loss,
    rejection_report,
    reliability_bins,
    softmax,
    temperature_scaled,
    threshold_for_acceptance,
)
from tledge.core.errors import TledgeError


def overconfident(temperature: float, rows: int = 20000, seed: int = 0):
    """Labels drawn from softmax(z); the model says softmax(z * temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (rows, 5))
    true_p = softmax(logits)
    labels = (rng.random(rows)[:, None] > true_p.cumsum(axis=1)).sum(axis=1)
    return softmax(logits * temperature).astype(np.float32), labels


def test_fit_temperature_recovers_overconfidence():
    probs, labels = overconfident(3.0)
    assert fit_temperature(probs, labels) == pytest.approx(3.0, rel=0.05)
    probs, labels = overconfident(0.5)
    assert fit_temperature(probs, labels) == pytest.approx(0.5, rel=0.05)


def test_temperature_lowers_log_loss_and_ece_and_keeps_argmax():
    probs, labels = overconfident(3.0)
    scaled = temperature_scaled(probs, fit_temperature(probs, labels))
    assert log_loss(scaled, labels) < log_loss(probs, labels)
    assert expected_calibration_error(scaled, labels) < 0.02
    assert expected_calibration_error(probs, labels) > 0.1
    assert (scaled.argmax(axis=1) == probs.argmax(axis=1)).all()


def test_temperature_scaled_known_value():
    # logits log(0.8), log(0.2) halved: softmax gives sqrt(.8)/(sqrt(.8)+sqrt(.2)) = 2/3.
    np.testing.assert_allclose(temperature_scaled(np.array([[0.8, 0.2]]), 2.0), [[2 / 3, 1 / 3]])
    assert np.isfinite(temperature_scaled(np.array([[1.0, 0.0]]), 0.5)).all()


def test_ece_known_values():
    assert expected_calibration_error(np.array([[0.9, 0.1], [0.9, 0.1]]), [0, 1]) == (
        pytest.approx(0.4)
    )
    bins = reliability_bins(np.array([[0.1, 0.9], [1.0, 0.0], [0.5, 0.5]]), [1, 0, 1])
    assert bins.counts[13] == 1 and bins.counts[14] == 1 and bins.counts[7] == 1
    assert bins.accuracy[7] == 0.0 and bins.confidence[13] == pytest.approx(0.9)
    assert expected_calibration_error(np.array([[1.0, 0.0]]), [0]) == 0.0


def test_auroc_known_values():
    assert auroc(np.array([0.9, 0.8]), np.array([0.8, 0.1])) == pytest.approx(0.875)
    assert auroc(np.array([1.0, 2.0]), np.array([0.0])) == 1.0
    assert auroc(np.array([0.5]), np.array([0.5])) == 0.5
    with pytest.raises(TledgeError):
        auroc(np.array([0.5]), np.array([]))


def test_threshold_accepts_at_least_the_rate():
    scores = np.arange(100) / 100
    threshold = threshold_for_acceptance(scores, 0.95)
    assert threshold == pytest.approx(0.05)
    assert np.mean(scores >= threshold) == pytest.approx(0.95)
    assert threshold_for_acceptance(scores, 1.0) == 0.0
    with pytest.raises(TledgeError, match="accept-rate"):
        threshold_for_acceptance(scores, 1.5)


def test_rejection_report_and_coverage():
    known = np.array([[0.9, 0.1], [0.6, 0.4], [0.55, 0.45]])
    unknown = np.array([[0.5, 0.5], [0.7, 0.3]])
    report = rejection_report(known, [0, 1, 0], unknown, threshold=0.58)
    assert report.known_accepted == pytest.approx(2 / 3)
    assert report.unknown_accepted == pytest.approx(0.5)
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.accepted_accuracy == pytest.approx(0.5)
    assert report.auroc == pytest.approx(4 / 6)
    coverage, accuracy = accuracy_coverage(known, [0, 1, 0])
    np.testing.assert_allclose(coverage, [1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(accuracy, [1, 0.5, 2 / 3])
