"""The --collect cost benchmark runs the real Collector and reports positive costs."""

from __future__ import annotations

import numpy as np

from tledge.benchmarks import collect_cost


def test_costs_are_measured() -> None:
    assert collect_cost.offer_cost_us(10, doubtful=False, frames=200) > 0
    assert collect_cost.offer_cost_us(1001, doubtful=True, frames=200) > 0
    photos = [np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)]
    assert collect_cost.kept_frame_cost_ms(photos, frames=3) > 0
