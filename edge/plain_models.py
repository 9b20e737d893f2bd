"""Contracts for plain .tflite classifiers: the ones without an embedded tledge contract.

A published model (e.g. the ImageNet MobileNets) says only what its tensors say: input
size and type, quantization, output size. `derive_contract` turns that into the same
`ModelContract` an exported tledge model carries, so the `Classifier` treats both alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tledge.core.errors import TledgeError
from tledge.edge.contract import ModelContract, Quantization

# Plain models get the ImageNet evaluation preprocessing: the central 87.5% of the
# shorter side, resized bilinearly. On the published MobileNets it scores higher than
# stretching the whole frame (e.g. cat_720p: 0.93 vs 0.88 for the right class).
PLAIN_RESIZE = "center_crop"
PLAIN_CROP_FRACTION = 0.875
# Float-input plain models are assumed to want pixels in [-1, 1] (the MobileNet and
# EfficientNet-Lite convention); integer inputs say what they want through their scale.
PLAIN_FLOAT_MEAN = 127.5
PLAIN_FLOAT_STD = 127.5
# TFLite quantizes a softmax output with scale 1/256 (zero point 0 for uint8, -128 for
# int8); a quantized output with other parameters holds logits.
SOFTMAX_SCALE = 1.0 / 256.0


def derive_contract(
    interpreter: Any,
    labels: Sequence[str] | None = None,
    normalization: tuple[Sequence[float] | None, Sequence[float] | None] | None = None,
) -> ModelContract:
    """Build the contract of a plain .tflite classifier from its tensors.

    Integer inputs are fed raw pixels as their scale and zero point imply (uint8 with
    scale 1/128 and zero point 128 means the model computes (pixel - 128) / 128 itself);
    float inputs get the (mean, std) of `normalization` (the model's standard metadata),
    else pixels scaled to [-1, 1]. Images are center-cropped to 87.5% like
    ImageNet evaluation. The output holds probabilities when it is quantized like a
    softmax, or (float outputs) when it sums to 1 on a gray image; otherwise logits.

    Args:
        interpreter: An interpreter with allocated tensors, e.g. from `open_interpreter`.
        labels: Class names; None names the classes "0", "1", ...
        normalization: (mean, std) with 1 or 3 values each for a float input, from
            the standard TFLite metadata's NormalizationOptions; None or (None, None)
            when the model states none.
    """
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    height, width = (int(v) for v in input_detail["shape"][1:3])
    input_quantization = quantization_of(input_detail)
    output_quantization = quantization_of(output_detail)
    int8_shift = 128.0 if input_detail["dtype"] == np.int8 else 0.0
    if input_quantization.is_quantized:
        mean = float(input_quantization.zero_point) + int8_shift
        std = 1.0 / input_quantization.scale
    elif np.issubdtype(input_detail["dtype"], np.integer):
        # Integer input without quantization parameters: it takes the pixels themselves.
        mean, std = int8_shift, 1.0
    elif normalization is not None and normalization[0] is not None:
        mean, std = normalization
    else:
        mean, std = PLAIN_FLOAT_MEAN, PLAIN_FLOAT_STD
    num_classes = int(np.prod(output_detail["shape"]))
    names = tuple(labels) if labels is not None else tuple(str(i) for i in range(num_classes))
    return ModelContract(
        labels=names,
        input_size=(height, width),
        mean=_per_channel(mean),
        std=_per_channel(std),
        resize=PLAIN_RESIZE,
        crop_fraction=PLAIN_CROP_FRACTION,
        input_quantization=input_quantization,
        output_quantization=output_quantization,
        output_kind=_detect_output_kind(interpreter, input_detail, output_detail),
    )


def _per_channel(value: float | Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(v) for v in value) if isinstance(value, Sequence) else (float(value),)
    return values * 3 if len(values) == 1 else values


def _detect_output_kind(interpreter: Any, input_detail: dict, output_detail: dict) -> str:
    quantization = quantization_of(output_detail)
    if quantization.is_quantized:
        softmax_zero = -128 if output_detail["dtype"] == np.int8 else 0
        looks_softmax = (
            abs(quantization.scale - SOFTMAX_SCALE) < 1e-6
            and quantization.zero_point == softmax_zero
        )
        return "probabilities" if looks_softmax else "logits"
    # 128 is mid-gray for uint8 inputs; 0 is mid-range for int8 and [-1, 1] float inputs.
    level = 128 if input_detail["dtype"] == np.uint8 else 0
    gray = np.full(input_detail["shape"], level, dtype=input_detail["dtype"])
    interpreter.set_tensor(input_detail["index"], gray)
    interpreter.invoke()
    output = interpreter.get_tensor(output_detail["index"]).astype(np.float64)
    sums_to_one = output.min() >= -1e-6 and abs(output.sum() - 1.0) < 0.02
    return "probabilities" if sums_to_one else "logits"


def quantization_of(detail: dict) -> Quantization:
    """The `Quantization` of an interpreter tensor (from `get_input_details()` etc.)."""
    scale, zero_point = tensor_quantization(detail)
    return Quantization(np.dtype(detail["dtype"]).name, scale, zero_point)


def tensor_quantization(detail: dict) -> tuple[float, int]:
    """(scale, zero_point) of an interpreter tensor; (0.0, 0) when it is not quantized.

    Raises:
        TledgeError: for per-channel quantization, which no classifier input/output has.
    """
    parameters = detail.get("quantization_parameters") or {}
    scales = parameters.get("scales")
    if scales is not None and len(scales) > 1:
        raise TledgeError("model input/output has per-channel quantization; not a classifier")
    scale, zero_point = detail["quantization"]
    return float(scale), int(zero_point)
