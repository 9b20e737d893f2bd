"""Temperature calibration and the unknown threshold of a trained classifier.

After training, a temperature T is fitted on the validation predictions of the model
chosen on validation (by log loss), and the unknown threshold is set so that
`accept_rate` of the validation images score at or above it (score: the calibrated top
probability, see `tledge.core.calibration`). T is then folded into the classification
layer (kernel and bias divided by T), so the model computes softmax(logits / T) with no
extra layer: every exported file, int8 included, and every client that reads a
probability vector (MediaPipe Tasks too) gets calibrated probabilities unchanged.

After a refit, the final model trained on the validation images too, so its own
validation predictions would be over-confident. T and the threshold are therefore
fitted on the model chosen on validation (checkpoints/best.keras), which never trained
on those images, and carried over to the refit model; the test set checks that they
still hold (`test_*` fields).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tledge.core.calibration import (
    expected_calibration_error,
    fit_temperature,
    log_loss,
    rejection_report,
    temperature_scaled,
    threshold_for_acceptance,
    unknown_score,
)
from tledge.trainer.data import Split
from tledge.trainer.model import CLASSIFIER_NAME


@dataclass(frozen=True)
class Calibration:
    """What calibration chose, and how well it did on validation.

    Attributes:
        temperature: T folded into the model (logits divided by T before the softmax).
        unknown_threshold: Calibrated top probability below which an input is unknown.
        accept_rate: Fraction of validation images the threshold accepts (the target).
        fitted_on: Which model's validation predictions T and the threshold came from.
        val_images: How many validation images they were fitted on.
        val_ece_before: ECE (15 bins) of those predictions before scaling.
        val_ece_after: The same after scaling.
        val_log_loss_before: Log loss before scaling.
        val_log_loss_after: Log loss after scaling.
    """

    temperature: float
    unknown_threshold: float
    accept_rate: float
    fitted_on: str
    val_images: int
    val_ece_before: float
    val_ece_after: float
    val_log_loss_before: float
    val_log_loss_after: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (as metrics.json's "calibration" holds them)."""
        return asdict(self)


def fit_calibration(
    val_probabilities: np.ndarray, val_labels: Sequence[int], accept_rate: float, fitted_on: str
) -> Calibration:
    """Fit T and the unknown threshold on a model's validation predictions.

    Args:
        val_probabilities: (N, C) probabilities of the uncalibrated model on validation.
        val_labels: True class of each validation image.
        accept_rate: Fraction of validation images the threshold must accept, e.g. 0.95.
        fitted_on: Name of the model the predictions came from (recorded).

    Raises:
        TledgeError: with no validation images or a rate outside (0, 1].
    """
    temperature = fit_temperature(val_probabilities, val_labels)
    scaled = temperature_scaled(val_probabilities, temperature)
    return Calibration(
        temperature=round(temperature, 6),
        unknown_threshold=threshold_for_acceptance(unknown_score(scaled), accept_rate),
        accept_rate=accept_rate,
        fitted_on=fitted_on,
        val_images=len(val_labels),
        val_ece_before=expected_calibration_error(val_probabilities, val_labels),
        val_ece_after=expected_calibration_error(scaled, val_labels),
        val_log_loss_before=log_loss(val_probabilities, val_labels),
        val_log_loss_after=log_loss(scaled, val_labels),
    )


def test_calibration_metrics(
    test_probabilities: np.ndarray, test_labels: Sequence[int], calibration: Calibration
) -> dict[str, float | None]:
    """ECE, log loss and acceptance on the test images, before and after scaling.

    Args:
        test_probabilities: (N, C) probabilities of the final model before T is folded in.
        test_labels: True class of each test image.
        calibration: From `fit_calibration`.
    """
    scaled = temperature_scaled(test_probabilities, calibration.temperature)
    report = rejection_report(scaled, test_labels, None, calibration.unknown_threshold)
    return {
        "test_ece_before": expected_calibration_error(test_probabilities, test_labels),
        "test_ece_after": expected_calibration_error(scaled, test_labels),
        "test_log_loss_before": log_loss(test_probabilities, test_labels),
        "test_log_loss_after": log_loss(scaled, test_labels),
        "test_accepted": report.known_accepted,
        "test_accepted_accuracy": report.accepted_accuracy,
    }


def fold_temperature(model, temperature: float) -> None:
    """Divide the classification layer's kernel and bias by `temperature`, in place.

    softmax((x W + b) / T) == softmax(x (W / T) + b / T): the model keeps its layers
    (Dense, then softmax), so the exporter, the int8 converter and any TFLite client
    see the same graph as before, now calibrated.
    """
    layer = model.get_layer(CLASSIFIER_NAME)
    layer.set_weights([weights / temperature for weights in layer.get_weights()])


def calibrate_model(
    model,
    chosen,
    predict: Callable[[Any, Split], np.ndarray],
    val: Split,
    test: Split | None,
    accept_rate: float,
    fitted_on: str,
) -> dict[str, Any]:
    """Fit T and the threshold on `chosen`'s validation predictions; fold T into `model`.

    Args:
        model: The final model (Keras 3 or tf_keras); changed in place.
        chosen: The model chosen on validation (the same object as `model` without a refit).
        predict: Returns a model's (N, C) probabilities on a split.
        val: The validation images.
        test: The test images, or None.
        accept_rate: Target fraction of validation images accepted.
        fitted_on: Name of `chosen`, recorded in the result.

    Returns:
        metrics.json's "calibration" entry: the `Calibration` fields, plus the test
        ECE, log loss and acceptance before/after when `test` is given.
    """
    calibration = fit_calibration(predict(chosen, val), val.labels, accept_rate, fitted_on)
    entry = calibration.as_dict()
    if test is not None:
        entry.update(test_calibration_metrics(predict(model, test), test.labels, calibration))
    fold_temperature(model, calibration.temperature)
    return entry
