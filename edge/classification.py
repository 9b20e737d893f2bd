"""The answer of one classification: ranked labels, every score, and where the time went."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tledge.core.errors import TledgeError

# `rank` sorts up to this many scores in plain Python, more with numpy.
PYTHON_RANK_MAX = 64
# What a frame is called when its top probability is below the unknown threshold.
UNKNOWN_LABEL = "unknown"


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


def is_unknown(scores: np.ndarray, threshold: float | None) -> bool:
    """True when the top probability is below `threshold` (never when it is None).

    The score is the model's calibrated top probability, so the check needs nothing but
    the output vector (see `tledge.core.calibration.unknown_score`).
    """
    return threshold is not None and float(scores.max()) < threshold


def unknown_threshold(
    contract_threshold: float | None, override: float | None, enabled: bool
) -> float | None:
    """The threshold in force: `override` if given, else the contract's; None when off.

    Raises:
        TledgeError: for an override outside [0, 1].
    """
    if not enabled:
        return None
    if override is not None:
        if not 0 <= override <= 1:
            raise TledgeError(f"--unknown-threshold {override}: must be in [0, 1]")
        return override
    return contract_threshold


def verdict(scores: np.ndarray, labels: Sequence[str], threshold: float | None) -> dict:
    """The JSON fields that say whether a frame is unknown; {} when no threshold applies.

    Example:
        >>> verdict(np.array([0.3, 0.7]), ["a", "b"], 0.8)
        {'label': 'unknown', 'unknown': True, 'best_guess': 'b', 'score': 0.7, ...}
    """
    if threshold is None:
        return {}
    best = int(scores.argmax())
    unknown = is_unknown(scores, threshold)
    return {
        "label": UNKNOWN_LABEL if unknown else labels[best],
        "unknown": unknown,
        "best_guess": labels[best],
        "score": round(float(scores[best]), 5),
        "unknown_threshold": round(threshold, 5),
    }
