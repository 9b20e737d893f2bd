"""Temperature calibration and the unknown threshold of a trained classifier.

After training, a temperature T is fitted by minimizing the log loss of held-out
predictions (below: which), and the unknown threshold is set so that `accept_rate` of
those held-out images score at or above it (score: the calibrated top
probability, see `tledge.core.calibration`). T is then folded into the classification
layer (kernel and bias divided by T), so the model computes softmax(logits / T) with no
extra layer: every exported file, int8 included, and every client that reads a
probability vector (MediaPipe Tasks too) gets calibrated probabilities unchanged.

Where the held-out predictions come from (`fitted_on` in metrics.json):

- no refit: the final model's own validation predictions ("model.keras");
- a refit that trains only the head on cached features (`--no-augment`, no
  fine-tuning): out-of-fold predictions of that head on all train + val images
  (`tledge.trainer.crossfit`, "cross-fitted refit head (5 folds, N images)"). The
  refit model trained on the validation images too, so its own predictions on them
  would be over-confident, and the validation model's T does not carry over: on
  food_mnist10 with 8 classes the refit model's test photos wanted T 0.525, the
  validation model's T 0.764 left test ECE at 0.129, the cross-fitted T 0.605 gave
  0.076 (README, calibration section);
- any other refit (fine-tuned): cross-fitting would cost one full training per fold,
  so T and the threshold are fitted on the model chosen on validation
  (checkpoints/best.keras) and carried over to the refit model. This is known to be
  off (the refit model is a different, better model); the test set shows by how much
  (`test_*` fields).

ECE itself is noisy on small test sets: with 400 test photos and 15 bins a perfectly
calibrated model with food8's confidences scores 0.05 on average, 0.03-0.07 in 95 % of draws
(the unknowns benchmark reports that floor).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    held_out_probabilities: np.ndarray,
    held_out_labels: Sequence[int],
    test_probabilities: np.ndarray | None,
    test_labels: Sequence[int] | None,
    accept_rate: float,
    fitted_on: str,
) -> dict[str, Any]:
    """Fit T and the threshold on held-out predictions; fold T into `model`.

    Args:
        model: The final model (Keras 3 or tf_keras); changed in place.
        held_out_probabilities: (N, C) uncalibrated probabilities of images the model
            they came from did not train on (see the module docstring for which).
        held_out_labels: Their true classes.
        test_probabilities: (N, C) probabilities of `model` on the test images, or None.
        test_labels: Their true classes (None without a test set).
        accept_rate: Target fraction of held-out images accepted.
        fitted_on: Which predictions T came from, recorded in the result.

    Returns:
        metrics.json's "calibration" entry: the `Calibration` fields, plus the test
        ECE, log loss and acceptance before/after when test predictions are given.
    """
    calibration = fit_calibration(held_out_probabilities, held_out_labels, accept_rate, fitted_on)
    entry = calibration.as_dict()
    if test_probabilities is not None and test_labels is not None:
        entry.update(test_calibration_metrics(test_probabilities, test_labels, calibration))
    fold_temperature(model, calibration.temperature)
    return entry
