"""The unknown verdict every client reports (edge JSON lines, predict, the web view)."""

from __future__ import annotations

import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.edge.classification import is_unknown, unknown_threshold, verdict


def test_verdict_names_unknown_below_the_threshold_and_keeps_the_guess():
    scores = np.array([0.2, 0.75, 0.05], dtype=np.float32)
    assert verdict(scores, ["a", "b", "c"], None) == {}
    below = verdict(scores, ["a", "b", "c"], 0.8)
    assert below == {
        "label": "unknown",
        "unknown": True,
        "best_guess": "b",
        "score": 0.75,
        "unknown_threshold": 0.8,
    }
    assert verdict(scores, ["a", "b", "c"], 0.75)["label"] == "b"  # at the threshold: known
    assert is_unknown(scores, 0.76) and not is_unknown(scores, None)


def test_threshold_in_force():
    assert unknown_threshold(0.4, None, True) == 0.4
    assert unknown_threshold(0.4, 0.9, True) == 0.9
    assert unknown_threshold(None, None, True) is None
    assert unknown_threshold(0.4, 0.9, False) is None
    with pytest.raises(TledgeError, match="unknown-threshold"):
        unknown_threshold(None, 2.0, True)
