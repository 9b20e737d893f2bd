"""The ECE noise measures of the unknowns benchmark.

Checked to fail: drawing the labels uniformly instead of from the model's probabilities
lifts the floor's upper end to 0.46 (test 1 fails).
"""

from __future__ import annotations

import numpy as np

from tledge.benchmarks.unknowns import bootstrap_ece_interval, calibrated_ece_floor
from tledge.core.calibration import expected_calibration_error, softmax


def _calibrated(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    probabilities = softmax(rng.normal(scale=2.0, size=(count, 8)))
    labels = np.array([rng.choice(8, p=row) for row in probabilities])
    return probabilities, labels


def test_a_calibrated_model_scores_inside_the_floor_and_the_floor_shrinks_with_more_photos():
    probabilities, labels = _calibrated(400, seed=0)
    mean, low, high = calibrated_ece_floor(probabilities, draws=300)
    assert 0 < low < mean < high < 0.1
    assert low <= expected_calibration_error(probabilities, labels) <= high
    bigger, _ = _calibrated(4000, seed=1)
    assert calibrated_ece_floor(bigger, draws=100)[0] < mean / 2


def test_bootstrap_interval_holds_the_measured_ece():
    probabilities, labels = _calibrated(300, seed=2)
    low, high = bootstrap_ece_interval(probabilities, labels, draws=300)
    assert low < expected_calibration_error(probabilities, labels) < high
