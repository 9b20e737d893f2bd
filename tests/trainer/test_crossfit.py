"""Cross-fitted temperature of a head-only refit (`tledge.trainer.crossfit`).

Checked to fail: training each fold's head on every image (held-out fold included)
makes the random-label test's out-of-fold accuracy jump to 1.0; calibrating a
head-only refit on checkpoints/best.keras again fails the run test's `fitted_on`
(both seen failing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tledge.trainer.crossfit import out_of_fold_probabilities, stratified_folds


def test_stratified_folds_spread_every_class_evenly():
    labels = [0] * 12 + [1] * 7 + [2] * 5
    folds = stratified_folds(labels, 4, seed=3)
    assert np.bincount(folds).tolist() == [6, 6, 6, 6]
    for label in (0, 1, 2):
        counts = np.bincount(folds[np.asarray(labels) == label], minlength=4)
        assert counts.max() - counts.min() <= 1
    assert (stratified_folds(labels, 4, seed=3) == folds).all()


def test_out_of_fold_predictions_never_come_from_a_head_that_saw_the_image():
    # Random labels: a head memorizes its training images, but cannot predict unseen ones.
    rng = np.random.default_rng(0)
    features = rng.normal(size=(30, 64)).astype("float32")
    labels = rng.integers(0, 3, size=30)
    probabilities = out_of_fold_probabilities(
        features,
        labels,
        3,
        (0.1,) * 8,
        label_smoothing=0.0,
        dropout=0.0,
        batch_size=32,
        seed=1,
        folds=3,
    )
    assert probabilities.shape == (30, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities.argmax(axis=1) == labels).mean() < 0.6


@pytest.mark.slow
def test_head_only_refit_is_calibrated_on_cross_fitted_predictions(
    tiny_dataset: Path, tmp_path: Path
):
    from tledge.trainer.config import TrainConfig
    from tledge.trainer.training import train

    messages: list[str] = []
    result = train(
        TrainConfig(
            data=str(tiny_dataset / "train"),
            test=str(tiny_dataset / "test"),
            epochs=3,
            fine_tune_epochs=0,
            augment=False,
            patience=0,
            name="crossfit",
            output=str(tmp_path),
            weights="none",
            alpha=0.35,
            image_size=(64, 64),
            batch_size=16,
            seed=1,
        ),
        log=messages.append,
    )
    calibration = result.metrics["calibration"]
    # All 96 training images (train + val) get an out-of-fold prediction.
    assert calibration["fitted_on"] == "cross-fitted refit head (5 folds, 96 images)"
    assert calibration["val_images"] == 96
    assert any("cross-fitting the refit head" in m for m in messages)
