"""Weight-rounding bias correction: a cheap fix for most of int8 MobileNetV2's drift.

TFLite rounds each output channel of a convolution's (BatchNorm-folded) kernel to 255
levels. For a 3x3 depthwise kernel that is nine rounded weights per channel: their errors
do not average out, so every channel's output moves by a constant
`sum(rounding error * mean input)` (Nagel et al., "Data-Free Quantization", 2019). With
the mean inputs measured on calibration images, the shift is known before conversion and
is cancelled by moving the following BatchNorm's mean (or the layer's bias) by the same
amount. Per-channel rounding commutes with the BatchNorm fold (the fold scales each
output channel, and so does the rounding step), so the kernel seen here rounds exactly
as the folded one will.

Measured on the validation split of the food_mnist10 MobileNetV2 run: int8 agreement with
the Keras model 90.7 % -> 95.3 %, mean absolute probability difference 0.015 -> 0.006.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

# Symmetric int8 weights use the narrow range [-127, 127].
WEIGHT_LEVELS = 127
BATCH = 16


def rounding_error(kernel: np.ndarray, channel_axes: tuple[int, ...]) -> np.ndarray:
    """How symmetric int8 rounding with one scale per output channel changes `kernel`.

    Args:
        kernel: Float weights.
        channel_axes: The axes that index output channels (one scale each).

    Returns:
        `quantized - kernel`, same shape.
    """
    reduce = tuple(axis for axis in range(kernel.ndim) if axis not in channel_axes)
    scale = np.abs(kernel).max(axis=reduce, keepdims=True) / WEIGHT_LEVELS
    scale = np.where(scale == 0, 1.0, scale)
    return np.round(kernel / scale) * scale - kernel


@contextmanager
def rounding_bias_corrected(
    model: Any, images: np.ndarray, per_channel_dense: bool = True
) -> Iterator[int]:
    """Within the block, `model` compensates int8 weight rounding; restored on exit.

    Conv2D and DepthwiseConv2D layers followed by BatchNormalization get the BatchNorm's
    moving mean shifted; other convolution and Dense layers with a bias get the bias
    shifted. Use it around exporting the model for an int8 (or dynamic-range) conversion;
    the float variants must come from the untouched model.

    Args:
        model: A Keras 3 model (nested models are walked).
        images: Calibration images exactly as the model takes them, [N, h, w, 3].
        per_channel_dense: Whether the converter rounds Dense weights per output unit
            (full int8) or with one scale for the whole matrix (dynamic range here).

    Yields:
        The number of layers corrected.
    """
    layers = _weight_layers(model)
    means = _mean_inputs(model, [layer for layer, _ in layers], images)
    originals = []
    for (layer, target), mean in zip(layers, means, strict=True):
        shift = _output_shift(layer, mean, per_channel_dense)
        variable = target.moving_mean if target is not layer else layer.bias
        originals.append((variable, variable.numpy()))
        # BatchNorm subtracts its mean; a bias is added: both absorb the shift.
        sign = 1.0 if target is not layer else -1.0
        variable.assign(variable.numpy() + sign * shift.astype(variable.dtype))
    try:
        yield len(layers)
    finally:
        for variable, value in originals:
            variable.assign(value)


def _weight_layers(model: Any) -> list[tuple[Any, Any]]:
    """(layer, where its shift goes) for every correctable layer of `model`."""
    import keras

    found = []
    for owner in _functional_models(model):
        consumers: dict[int, list[Any]] = {}
        for layer in owner.layers:
            for node in layer._inbound_nodes:
                for tensor in node.input_tensors:
                    consumers.setdefault(id(tensor), []).append(layer)
        for layer in owner.layers:
            convolution = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
            if not isinstance(layer, (*convolution, keras.layers.Dense)):
                continue
            after = consumers.get(id(layer.output), [])
            if (
                isinstance(layer, convolution)
                and len(after) == 1
                and isinstance(after[0], keras.layers.BatchNormalization)
            ):
                found.append((layer, after[0]))
            elif layer.use_bias:
                found.append((layer, layer))
    return found


def _functional_models(model: Any) -> list[Any]:
    import keras

    models = [model]
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            models.extend(_functional_models(layer))
    return models


def _mean_inputs(model: Any, layers: list[Any], images: np.ndarray) -> list[np.ndarray]:
    """Mean input of each layer per input channel, over `images` (eager forward passes)."""
    sums: dict[int, np.ndarray] = {}
    originals = {id(layer): layer.call for layer in layers}
    overridden = {id(layer): vars(layer)["call"] for layer in layers if "call" in vars(layer)}

    def recording(layer):
        call = originals[id(layer)]

        def record(inputs, *args, **kwargs):
            values = np.asarray(inputs, dtype=np.float64)
            total = values.reshape(-1, values.shape[-1]).mean(axis=0) * len(values)
            sums[id(layer)] = sums.get(id(layer), 0.0) + total
            return call(inputs, *args, **kwargs)

        return record

    for layer in layers:
        layer.call = recording(layer)
    try:
        for start in range(0, len(images), BATCH):
            model(images[start : start + BATCH].astype(np.float32), training=False)
    finally:
        for layer in layers:
            if id(layer) in overridden:
                layer.call = overridden[id(layer)]
            else:
                del layer.call  # back to the class's method
    return [sums[id(layer)] / len(images) for layer in layers]


def _output_shift(layer: Any, mean_input: np.ndarray, per_channel_dense: bool) -> np.ndarray:
    """Expected change of each output channel of `layer` once its weights are rounded."""
    import keras

    kernel = np.asarray(layer.kernel.numpy(), dtype=np.float64)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        # [kh, kw, channels, multiplier]; output channel c * multiplier + m.
        error = rounding_error(kernel, (2, 3))
        return np.einsum("hwcm,c->cm", error, mean_input).reshape(-1)
    if isinstance(layer, keras.layers.Dense):
        error = rounding_error(kernel, (1,) if per_channel_dense else ())
        return mean_input @ error
    return np.einsum("hwio,i->o", rounding_error(kernel, (3,)), mean_input)
