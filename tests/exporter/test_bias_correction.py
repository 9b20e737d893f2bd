"""Weight-rounding bias correction: the shift it predicts is the shift rounding causes."""

from __future__ import annotations

import numpy as np
import pytest

from tledge.exporter.bias_correction import rounding_bias_corrected, rounding_error


def test_rounding_error_is_symmetric_per_channel_int8() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 4, 5)) * np.array([1.0, 0.01, 5.0, 0.0, 2.0])
    error = rounding_error(kernel, (3,))
    quantized = kernel + error
    scale = np.abs(kernel).max(axis=(0, 1, 2)) / 127
    for channel in (0, 1, 2, 4):
        steps = quantized[..., channel] / scale[channel]
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
        assert np.abs(steps).max() == pytest.approx(127)
        assert np.abs(error[..., channel]).max() <= scale[channel] / 2 + 1e-12
    assert not np.any(error[..., 3])  # an all-zero channel stays zero, no NaN


def _model():
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(6, 3, padding="valid", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    inner = keras.Model(inputs, x, name="backbone")
    outer_inputs = keras.Input((12, 12, 3))
    features = keras.layers.GlobalAveragePooling2D()(inner(outer_inputs))
    outputs = keras.layers.Dense(4, name="classifier")(features)
    model = keras.Model(outer_inputs, outputs)
    bn = inner.get_layer("bn")
    bn.moving_variance.assign(np.linspace(0.5, 2.0, 6).astype("float32"))
    bn.gamma.assign(np.linspace(-1.5, 1.5, 6).astype("float32"))
    return model


def test_correction_cancels_the_mean_shift_of_rounded_weights() -> None:
    model = _model()
    conv = model.get_layer("backbone").get_layer("conv")
    bn = model.get_layer("backbone").get_layer("bn")
    dense = model.get_layer("classifier")
    images = np.random.default_rng(1).uniform(0, 1, size=(40, 12, 12, 3)).astype("float32")
    before = [v.numpy().copy() for v in (conv.kernel, bn.moving_mean, dense.kernel, dense.bias)]
    reference = model.predict(images, verbose=0).mean(axis=0)

    def rounded_mean_output():
        kernel, dense_kernel = conv.kernel.numpy(), dense.kernel.numpy()
        conv.kernel.assign(kernel + rounding_error(kernel, (3,)))
        dense.kernel.assign(dense_kernel + rounding_error(dense_kernel, (1,)))
        mean = model.predict(images, verbose=0).mean(axis=0)
        conv.kernel.assign(kernel)
        dense.kernel.assign(dense_kernel)
        return mean

    uncorrected = np.abs(rounded_mean_output() - reference).max()
    with rounding_bias_corrected(model, images) as count:
        assert count == 2  # conv (through its BatchNorm) and the dense layer's bias
        assert not np.array_equal(bn.moving_mean.numpy(), before[1])
        corrected = np.abs(rounded_mean_output() - reference).max()
    assert uncorrected > 1e-4
    assert corrected < uncorrected / 20
    after = [v.numpy() for v in (conv.kernel, bn.moving_mean, dense.kernel, dense.bias)]
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
    assert conv.call.__func__ is type(conv).call  # the recording hook is gone
