"""Collected frames made by the real `Collector`, for the review tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tledge.edge.collect import CollectOptions, Collector

LABELS = ("pizza", "salad", "soup")
# (frame, scores): doubt = 1 - (top-1 - top-2): 0.95, 0.5, 0.75.
FRAMES = (
    (1, (0.40, 0.35, 0.25)),
    (2, (0.70, 0.10, 0.20)),
    (3, (0.05, 0.60, 0.35)),
)


@pytest.fixture
def collected(tmp_path: Path) -> Path:
    """A --collect folder with three frames of known doubt."""
    folder = tmp_path / "collected"
    options = CollectOptions(folder, min_interval_s=0.0, duplicate_level=-1.0, min_confidence=1.0)
    with Collector(options, source_name="test") as collector:
        for index, scores in FRAMES:
            image = np.full((40, 60, 3), 40 * index, np.uint8)
            collector.offer(
                image, index, 1.7e9 + index, np.array(scores, np.float32), LABELS, {"version": "v1"}
            )
    return folder
