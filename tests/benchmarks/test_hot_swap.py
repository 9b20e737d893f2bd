"""The hot swap benchmark on the published 128 px model: one swap, measured end to end."""

from __future__ import annotations

import pytest

from tledge.benchmarks import hot_swap


@pytest.mark.slow
@pytest.mark.integration
def test_one_swap_is_measured(shared_data) -> None:
    delays = hot_swap.measure_swaps(
        shared_data / "tflite/mobilenet_v1_0.25_128_quant.tflite",
        shared_data / "tflite/imagenet_labels.txt",
        shared_data / "tflite/sanity_images",
        threads=1,
        swaps=1,
    )
    # Under TIMEOUT_S means the new version's result arrived (the loop waited for it).
    assert len(delays) == 1 and delays[0] < hot_swap.TIMEOUT_S
