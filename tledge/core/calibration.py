"""Calibration and unknown-rejection arithmetic on predicted probabilities (numpy only).

Everything here works from the probability vectors a model outputs, so the same code
serves a Keras model, every exported .tflite and the device. Temperature scaling needs
no logits: `log p = z - logsumexp(z)` differs from the logits `z` by one constant per
row, and softmax ignores such a constant, so `softmax(log p / T) == softmax(z / T)`.

The unknown score is the calibrated maximum probability: the device computes it from the
model's own output, with no extra tensor and no client change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.metrics import cross_entropy

ECE_BINS = 15
# Temperatures outside this range mean the validation set says nothing useful.
TEMPERATURE_BOUNDS = (0.05, 20.0)
DEFAULT_ACCEPT_RATE = 0.95
# float32 softmax outputs can be exactly 0; log needs a floor.
_TINY = 1e-30


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Natural log of (N, C) probabilities, floored so that zeros stay finite."""
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), _TINY, None))


def softmax(values: np.ndarray) -> np.ndarray:
    """Row-wise softmax of an (N, C) array, computed stably in float64."""
    shifted = values - values.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def temperature_scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities the model gives once its logits are divided by `temperature`.

    Example:
        >>> temperature_scaled(np.array([[0.8, 0.2]]), 2.0).round(3)
        array([[0.667, 0.333]])
    """
    return softmax(log_probabilities(probabilities) / temperature)


def log_loss(probabilities: np.ndarray, labels: Sequence[int]) -> float:
    """Mean negative log-likelihood of the true classes (natural log), in float64.

    The metrics module's `cross_entropy`, computed in double precision so that the
    temperature search sees smooth differences.
    """
    return cross_entropy(np.asarray(probabilities, dtype=np.float64), labels)


def fit_temperature(probabilities: np.ndarray, labels: Sequence[int]) -> float:
    """The temperature that minimizes the log loss of `probabilities` on `labels`.

    The log loss is convex in 1/T, so it has one minimum on the bounded range
    `TEMPERATURE_BOUNDS`; a golden-section search on log T finds it without gradients.

    Args:
        probabilities: (N, C) predicted probabilities (held-out images).
        labels: True class index of each row.

    Returns:
        T > 0; T > 1 softens over-confident predictions, T < 1 sharpens timid ones.

    Raises:
        TledgeError: when there are no rows.
    """
    truth = np.asarray(labels, dtype=np.int64)
    if not len(truth):
        raise TledgeError("temperature: no validation images to fit it on")
    log_p = log_probabilities(probabilities)
    rows = np.arange(len(truth))

    def loss(log_t: float) -> float:
        scaled = log_p / math.exp(log_t)
        top = scaled.max(axis=1)
        lse = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
        return float(np.mean(lse - scaled[rows, truth]))

    low, high = (math.log(b) for b in TEMPERATURE_BOUNDS)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    while high - low > 1e-6:
        if loss_a < loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = loss(b)
    return math.exp((low + high) / 2)


@dataclass(frozen=True)
class ReliabilityBins:
    """Equal-width confidence bins: the data of a reliability diagram.

    Attributes:
        edges: Bin edges, length bins + 1, from 0 to 1.
        counts: Images whose confidence falls in each bin.
        confidence: Mean confidence in each bin (0 where empty).
        accuracy: Fraction right in each bin (0 where empty).
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def expected_calibration_error(self) -> float:
        """Count-weighted mean |accuracy - confidence| over the bins."""
        total = self.counts.sum()
        if not total:
            return 0.0
        return float(np.sum(self.counts * np.abs(self.accuracy - self.confidence)) / total)


def reliability_bins(
    probabilities: np.ndarray, labels: Sequence[int], bins: int = ECE_BINS
) -> ReliabilityBins:
    """Bin the top-1 confidences into `bins` equal-width bins (right-closed, as Guo et al.)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(labels, dtype=np.int64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts, np.bincount(index, confidence, bins) / counts, 0.0)
        accuracy = np.where(counts, np.bincount(index, correct.astype(float), bins) / counts, 0.0)
    return ReliabilityBins(edges, counts, mean_conf, accuracy)


def expected_calibration_error(
    probabilities: np.ndarray, labels: Sequence[int], bins: int = ECE_BINS
) -> float:
    """Expected calibration error of the top-1 confidence over `bins` equal-width bins.

    Example:
        >>> expected_calibration_error(np.array([[0.9, 0.1], [0.9, 0.1]]), [0, 1])
        0.4
    """
    return reliability_bins(probabilities, labels, bins).expected_calibration_error


def unknown_score(probabilities: np.ndarray) -> np.ndarray:
    """The score that separates known from unknown inputs: the top probability.

    Higher means more like the training classes. On a temperature-calibrated model it
    reads as the chance that the top label is right.
    """
    return np.asarray(probabilities, dtype=np.float64).max(axis=-1)


def auroc(known_scores: np.ndarray, unknown_scores: np.ndarray) -> float:
    """Area under the ROC curve of telling known (higher score) from unknown inputs.

    The chance that a random known input scores above a random unknown one, ties
    counting half (Mann-Whitney U).

    Example:
        >>> auroc(np.array([0.9, 0.8]), np.array([0.8, 0.1]))
        0.875
    """
    known = np.asarray(known_scores, dtype=np.float64)
    unknown = np.asarray(unknown_scores, dtype=np.float64)
    if not len(known) or not len(unknown):
        raise TledgeError("AUROC needs both known and unknown images")
    combined = np.concatenate([known, unknown])
    order = np.argsort(combined, kind="mergesort")
    ranks = np.empty(len(combined))
    sorted_values = combined[order]
    # Average ranks over ties.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(combined)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    u = ranks[: len(known)].sum() - len(known) * (len(known) + 1) / 2
    return float(u / (len(known) * len(unknown)))


def threshold_for_acceptance(scores: np.ndarray, accept_rate: float) -> float:
    """The highest threshold that accepts at least `accept_rate` of `scores` (score >= it).

    Raises:
        TledgeError: for a rate outside (0, 1] or no scores.
    """
    if not 0 < accept_rate <= 1:
        raise TledgeError(f"--accept-rate {accept_rate}: must be in (0, 1], e.g. 0.95")
    values = np.sort(np.asarray(scores, dtype=np.float64))
    if not len(values):
        raise TledgeError("unknown threshold: no validation images to choose it on")
    rejected = math.floor((1 - accept_rate) * len(values) + 1e-9)
    return float(values[min(rejected, len(values) - 1)])


@dataclass(frozen=True)
class RejectionReport:
    """How a threshold on the unknown score does on known and unknown images.

    Attributes:
        threshold: Inputs scoring below it are reported unknown.
        auroc: Area under the ROC curve, known vs unknown (None without unknowns).
        known_accepted: Fraction of known images accepted.
        unknown_accepted: Fraction of unknown images accepted (false acceptance).
        accuracy: Top-1 accuracy on all known images.
        accepted_accuracy: Top-1 accuracy on the accepted known images (None if none).
    """

    threshold: float
    auroc: float | None
    known_accepted: float
    unknown_accepted: float | None
    accuracy: float
    accepted_accuracy: float | None

    def as_dict(self) -> dict[str, float | None]:
        """JSON-ready fields."""
        return dict(self.__dict__)


def rejection_report(
    known_probabilities: np.ndarray,
    labels: Sequence[int],
    unknown_probabilities: np.ndarray | None,
    threshold: float,
) -> RejectionReport:
    """Measure `threshold` on known images (with labels) and optional unknown images."""
    truth = np.asarray(labels, dtype=np.int64)
    known_scores = unknown_score(known_probabilities)
    correct = np.asarray(known_probabilities).argmax(axis=1) == truth
    accepted = known_scores >= threshold
    unknown_rate = area = None
    if unknown_probabilities is not None and len(unknown_probabilities):
        unknown_scores = unknown_score(unknown_probabilities)
        unknown_rate = float(np.mean(unknown_scores >= threshold))
        area = auroc(known_scores, unknown_scores)
    return RejectionReport(
        threshold=float(threshold),
        auroc=area,
        known_accepted=float(accepted.mean()),
        unknown_accepted=unknown_rate,
        accuracy=float(correct.mean()),
        accepted_accuracy=float(correct[accepted].mean()) if accepted.any() else None,
    )


def accuracy_coverage(
    probabilities: np.ndarray, labels: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy on the most confident fraction of images, for every fraction.

    Returns:
        (coverage, accuracy): coverage k/N and the accuracy of the k highest-scoring
        images, for k = 1..N.
    """
    truth = np.asarray(labels, dtype=np.int64)
    correct = np.asarray(probabilities).argmax(axis=1) == truth
    order = np.argsort(-unknown_score(probabilities), kind="stable")
    hits = np.cumsum(correct[order])
    counts = np.arange(1, len(truth) + 1)
    return counts / len(truth), hits / counts
