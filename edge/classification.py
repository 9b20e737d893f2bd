"""The answer of one classification: ranked labels, every score, and where the time went."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# `rank` sorts up to this many scores in plain Python, more with numpy.
PYTHON_RANK_MAX = 64


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each step of one classification."""

    preprocess_ms: float
    invoke_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        """Sum of the three steps."""
        return self.preprocess_ms + self.invoke_ms + self.postprocess_ms


@dataclass(frozen=True)
class Classification:
    """The answer for one image.

    Attributes:
        top_k: (label, score) pairs, best first; only scores >= the threshold asked for.
        scores: Probability of every label, in label order (float32).
        timings: Time spent preprocessing, invoking and postprocessing.
    """

    top_k: tuple[tuple[str, float], ...]
    scores: np.ndarray
    timings: Timings

    @property
    def label(self) -> str | None:
        """Best label, or None when no score passed the threshold."""
        return self.top_k[0][0] if self.top_k else None

    @property
    def score(self) -> float | None:
        """Score of the best label, or None when no score passed the threshold."""
        return self.top_k[0][1] if self.top_k else None


def rank(
    scores: np.ndarray, labels: Sequence[str], top_k: int = 5, threshold: float = 0.0
) -> tuple[tuple[str, float], ...]:
    """Return the `top_k` best (label, score) pairs with score >= `threshold`, best first.

    Example:
        >>> rank(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], top_k=2)
        (('b', 0.7...), ('c', 0.2...))
    """
    count = min(max(top_k, 0), scores.size)
    if count == 0:
        return ()
    values = scores.tolist()
    if len(values) <= PYTHON_RANK_MAX:
        # A few numpy calls cost more than sorting ten floats in Python. `sorted` is
        # stable with reverse=True too, so ties keep label order as below.
        best = sorted(range(len(values)), key=values.__getitem__, reverse=True)[:count]
    else:
        # A stable sort is fast on quantized scores (mostly exact ties at 0), where
        # argpartition degrades, and breaks ties by label order.
        best = np.argsort(-scores, kind="stable")[:count].tolist()
    return tuple((labels[i], values[i]) for i in best if values[i] >= threshold)
