"""Choosing the self-test examples that `tledge export` embeds (`exporter/golden.py`)."""

from __future__ import annotations

import numpy as np

from tledge.edge.golden import decode_golden
from tledge.exporter.golden import golden_examples, pick_golden


def test_picks_clear_answers_one_class_at_a_time_least_confident_first():
    scores = np.array(
        [
            [0.98, 0.01, 0.01],  # 0: class 0, very sure
            [0.50, 0.45, 0.05],  # 1: too close to call: never picked
            [0.70, 0.20, 0.10],  # 2: class 0, clear
            [0.10, 0.85, 0.05],  # 3: class 1
            [0.05, 0.15, 0.80],  # 4: class 2
            [0.10, 0.60, 0.30],  # 5: class 1, clear, less sure than 3
        ]
    )
    # Classes in the order of their least confident clear image; each class in turn.
    assert pick_golden(scores, count=6) == [5, 2, 4, 3, 0]
    assert pick_golden(scores, count=2) == [5, 2]
    assert pick_golden(np.full((4, 3), 1 / 3)) == []


def test_examples_carry_the_answer_and_the_exact_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 6, 5, 3), dtype=np.uint8)
    scores = np.array([[0.1, 0.9], [0.55, 0.45], [0.8, 0.2]])
    examples, pngs = golden_examples(images, scores, ("cat", "dog"))
    assert [(e.image, e.label, e.score) for e in examples] == [
        ("tledge_golden_0.png", "cat", 0.8),
        ("tledge_golden_1.png", "dog", 0.9),
    ]
    decoded = decode_golden(pngs["tledge_golden_1.png"], "x.png", (6, 5))
    np.testing.assert_array_equal(decoded[..., ::-1], images[0])
