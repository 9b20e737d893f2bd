"""int8 weight preparation: GPTQ rounding and the bias correction of the mean shift."""

from __future__ import annotations

import numpy as np
import pytest

from tledge.exporter.weight_rounding import int8_weights_prepared, rounding_error, tap_means


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


@pytest.mark.parametrize("method", ["nearest-corrected", "gptq"])
def test_correction_cancels_the_mean_shift_of_rounded_weights(method: str) -> None:
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
    with int8_weights_prepared(model, images, method=method) as count:
        assert count == 2  # conv (through its BatchNorm) and the dense layer's bias
        assert not np.array_equal(bn.moving_mean.numpy(), before[1])
        corrected = np.abs(rounded_mean_output() - reference).max()
    assert uncorrected > 1e-4
    assert corrected < uncorrected / 20
    after = [v.numpy() for v in (conv.kernel, bn.moving_mean, dense.kernel, dense.bias)]
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
    assert conv.call.__func__ is type(conv).call  # the recording hook is gone


@pytest.mark.parametrize(
    ("kind", "strides", "padding"),
    [("conv", 1, "same"), ("conv", 2, "same"), ("depthwise", 1, "same"), ("depthwise", 2, "valid")],
)
def test_tap_means_give_the_mean_output_of_a_linear_convolution(kind, strides, padding) -> None:
    import keras

    rng = np.random.default_rng(2)
    mean_map = rng.uniform(0, 3, size=(7, 9, 4))
    if kind == "conv":
        layer = keras.layers.Conv2D(5, 3, strides=strides, padding=padding, use_bias=False)
    else:
        layer = keras.layers.DepthwiseConv2D(3, strides=strides, padding=padding, use_bias=False)
    output = np.asarray(layer(mean_map[None].astype("float32")))[0]
    kernel = layer.kernel.numpy().astype(np.float64)
    taps = tap_means(layer, mean_map)
    if kind == "conv":
        expected = np.einsum("hwio,hwi->o", kernel, taps)
    else:
        expected = np.einsum("hwcm,hwc->cm", kernel, taps).reshape(-1)
    np.testing.assert_allclose(output.mean(axis=(0, 1)), expected, rtol=1e-4, atol=1e-5)


def test_corner_taps_of_a_same_convolution_see_the_padding() -> None:
    import keras

    layer = keras.layers.DepthwiseConv2D(3, padding="same")
    taps = tap_means(layer, np.ones((4, 4, 1)))
    assert taps[1, 1, 0] == 1.0
    assert taps[0, 0, 0] == pytest.approx(9 / 16)  # 7 of the 16 outputs read padding
    assert taps[0, 1, 0] == pytest.approx(12 / 16)


def test_gptq_rounding_stays_on_the_int8_grid_and_beats_nearest_rounding() -> None:
    import keras

    rng = np.random.default_rng(4)
    keras.utils.set_random_seed(4)
    # Strongly correlated inputs: where rounding errors can cancel each other.
    mixing = rng.normal(size=(24, 24)) * np.linspace(0.1, 2.0, 24)
    inputs = (rng.normal(size=(400, 24)) @ mixing + 1.0).astype("float32")
    model = keras.Sequential([keras.Input((24,)), keras.layers.Dense(8, name="classifier")])
    dense = model.get_layer("classifier")
    kernel = dense.kernel.numpy().astype(np.float64)
    steps = np.abs(kernel).max(axis=0) / 127

    def output_error(weights: np.ndarray) -> float:
        change = inputs.astype(np.float64) @ (weights - kernel)
        return float(np.mean((change - change.mean(axis=0)) ** 2))

    with int8_weights_prepared(model, inputs, method="gptq") as count:
        assert count == 1
        rounded = dense.kernel.numpy().astype(np.float64)
    levels = rounded / steps
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    assert np.abs(np.round(levels)).max() <= 127
    # Each unit's largest weight is kept, so the converter computes the same scale.
    np.testing.assert_allclose(np.abs(rounded).max(axis=0), np.abs(kernel).max(axis=0))
    nearest = kernel + rounding_error(kernel, (1,))
    assert output_error(rounded) < 0.7 * output_error(nearest)
    np.testing.assert_array_equal(dense.kernel.numpy(), kernel.astype("float32"))


def test_a_failure_midway_leaves_the_model_as_it_was(monkeypatch) -> None:
    from tledge.exporter import weight_rounding

    model = _model()
    images = np.random.default_rng(5).uniform(0, 1, size=(8, 12, 12, 3)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    prepare = weight_rounding._gptq_rounded
    calls = []

    def fail_on_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return prepare(*args)

    monkeypatch.setattr(weight_rounding, "_gptq_rounded", fail_on_second)
    with pytest.raises(RuntimeError, match="boom"), int8_weights_prepared(model, images):
        pass
    assert len(calls) == 2
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
