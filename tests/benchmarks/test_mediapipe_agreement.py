"""The MediaPipe agreement benchmark's own arithmetic (the MediaPipe runs are measured, not
tested: they need a MediaPipe venv and minutes)."""

from __future__ import annotations

import numpy as np

from tledge.benchmarks.mediapipe_agreement import compare, corner_mapped_resize
from tledge.core.input_contract import InputContract
from tledge.edge.images import fit_image


def test_corner_mapping_samples_where_mediapipe_does_and_tledge_does_not():
    """A 4-pixel ramp halved: corner to corner samples source x = 0 and 2 (the pixels
    themselves); tledge's half-pixel centres sample x = 0.5 and 2.5 (averages)."""
    ramp = np.repeat(np.array([0, 40, 80, 120], np.uint8)[None, :, None], 3, axis=2)
    ramp = np.repeat(ramp, 2, axis=0)  # 2 rows x 4 columns
    corner = corner_mapped_resize(ramp, (2, 2))
    np.testing.assert_array_equal(corner[0, :, 0], [0, 80])
    tledge = fit_image(ramp, InputContract.raw_rgb_stretch((2, 2)))
    np.testing.assert_array_equal(tledge[0, :, 0], [20, 100])


def test_compare_counts_top1_agreement_and_the_reference_top1_score_gap():
    reference = np.array([[0.9, 0.1], [0.3, 0.7]])
    other = np.array([[0.6, 0.4], [0.8, 0.2]])
    result = compare(reference, other)
    assert result["agreement"] == 0.5
    assert np.isclose(result["mean_abs_score_diff"], (0.3 + 0.5) / 2)
    assert np.isclose(result["max_abs_score_diff"], 0.5)
