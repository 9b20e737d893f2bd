"""Temperature folding and the calibration entry of a run.

Checked to fail: folding only the kernel (not the bias) breaks
test_folded_temperature_equals_scaling_the_probabilities; not saving the folded model in
`_Trainer.calibrate` breaks the log-loss check in test_training.py's EfficientNet run.
"""

from __future__ import annotations

import numpy as np
import pytest

from tledge.core.calibration import temperature_scaled
from tledge.core.errors import TledgeError
from tledge.trainer.calibrate import calibrate_model, fit_calibration, fold_temperature


def _tiny_classifier(seed: int = 0):
    import keras

    from tledge.trainer.model import classifier_head

    keras.utils.set_random_seed(seed)
    features = keras.Input((6,))
    model = keras.Model(features, classifier_head(features, num_classes=3, dropout=0.0))
    dense = model.get_layer("classifier")
    kernel = dense.get_weights()[0]
    dense.set_weights([kernel * 4, np.array([0.5, -1.0, 2.0], dtype="float32")])
    return model


def test_folded_temperature_equals_scaling_the_probabilities():
    model = _tiny_classifier()
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    before = model.predict(x, verbose=0)
    fold_temperature(model, 2.5)
    after = model.predict(x, verbose=0)
    np.testing.assert_allclose(after, temperature_scaled(before, 2.5), atol=1e-5)
    assert (after.argmax(axis=1) == before.argmax(axis=1)).all()
    assert after.max(axis=1).mean() < before.max(axis=1).mean()


def test_calibrate_model_fits_on_held_out_predictions_and_folds_into_the_final_one():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 6)).astype("float32")
    chosen, final = _tiny_classifier(0), _tiny_classifier(0)
    # Labels mostly agree with the model, which is made over-confident: T > 1 expected.
    labels = chosen.predict(x, verbose=0).argmax(axis=1)
    labels[::4] = rng.integers(0, 3, size=len(labels[::4]))
    held_out = chosen.predict(x[:100], verbose=0)
    test = final.predict(x[100:], verbose=0)

    entry = calibrate_model(final, held_out, labels[:100], test, labels[100:], 0.9, "best")
    assert entry["temperature"] > 1 and entry["fitted_on"] == "best"
    assert entry["val_images"] == 100
    assert entry["val_log_loss_after"] < entry["val_log_loss_before"]
    assert entry["test_log_loss_after"] < entry["test_log_loss_before"]
    scaled_val = final.predict(x[:100], verbose=0).max(axis=1)
    assert np.mean(scaled_val >= entry["unknown_threshold"]) >= 0.9
    # The chosen model is left as it was; the final one now outputs softmax(z / T).
    np.testing.assert_allclose(
        final.predict(x, verbose=0),
        temperature_scaled(chosen.predict(x, verbose=0), entry["temperature"]),
        atol=1e-5,
    )
    without_test = calibrate_model(
        _tiny_classifier(0), held_out, labels[:100], None, None, 0.9, "b"
    )
    assert "test_ece_after" not in without_test


def test_fit_calibration_refuses_a_bad_rate():
    with pytest.raises(TledgeError, match="accept-rate"):
        fit_calibration(np.array([[0.7, 0.3]]), [0], 0.0, "best")
