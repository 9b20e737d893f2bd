"""The model-file contract: what a .tflite needs to be used correctly on its own.

The exporter embeds a `ModelContract` in every .tflite it writes, as the associated file
`tledge_contract.json` of the standard TFLite metadata (`tledge.exporter.metadata`);
`tledge.edge.model_file.read_contract` gets it back with only the standard library, so
the edge client needs no TensorFlow.

Preprocessing is defined once, here: take the image as `color_order` pixels with values
0-255, resize it to `input_size` by `resize` / `interpolation`, compute
`(pixel - mean) / std`, then quantize with `input_quantization` when it is an integer type.
tledge's own models take raw 0-255 RGB (mean 0, std 1): their normalization is a layer
inside the model.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tledge.core.errors import TledgeError
from tledge.edge.strict_json import decode_dataclass

CONTRACT_NAME = "tledge_contract.json"
RESIZE_METHODS = ("stretch", "center_crop")
OUTPUT_KINDS = ("probabilities", "logits")
INTERPOLATIONS = ("bilinear", "area")


@dataclass(frozen=True)
class Quantization:
    """How a tensor is stored: `real = scale * (stored - zero_point)` for integer types.

    Attributes:
        dtype: "float32", "float16", "uint8" or "int8".
        scale: Quantization scale; 0.0 for float tensors.
        zero_point: Quantization zero point; 0 for float tensors.
    """

    dtype: str = "float32"
    scale: float = 0.0
    zero_point: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale >= 0):
            raise TledgeError(f"model contract: quantization scale {self.scale} is not >= 0")

    @property
    def is_quantized(self) -> bool:
        """True when the tensor holds integers that need the scale and zero point."""
        return self.dtype in ("uint8", "int8") and self.scale > 0


@dataclass(frozen=True)
class ModelContract:
    """Everything a runtime needs to feed a model and read its answer.

    Attributes:
        labels: Class names in output order.
        input_size: (height, width) of the model input.
        color_order: "RGB" or "BGR" channel order the model expects.
        mean: Per-channel value subtracted from 0-255 pixels.
        std: Per-channel divisor applied after subtracting `mean`.
        resize: "stretch" (whole image to `input_size`) or "center_crop" (central
            `crop_fraction` of the shorter side, then resize).
        crop_fraction: Fraction of the shorter side kept by "center_crop".
        interpolation: Resize interpolation, "bilinear" or "area".
        input_quantization: Storage of the input tensor.
        output_quantization: Storage of the output tensor.
        output_kind: "probabilities" (softmax inside the model) or "logits".
        backbone: Name of the feature extractor, e.g. "mobilenetv2".
        variant: Export variant: "fp32", "fp16", "dynamic", "int8", or "" when unknown.
        tledge_version: Version of tledge that wrote the file.
        source_run: Run folder the model came from.
        drift: Accuracy drift numbers measured by the exporter for this file.
    """

    labels: tuple[str, ...]
    input_size: tuple[int, int]
    color_order: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: str = "stretch"
    crop_fraction: float = 1.0
    interpolation: str = "bilinear"
    input_quantization: Quantization = field(default_factory=Quantization)
    output_quantization: Quantization = field(default_factory=Quantization)
    output_kind: str = "probabilities"
    backbone: str = ""
    variant: str = ""
    tledge_version: str = ""
    source_run: str = ""
    drift: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.labels:
            raise TledgeError("model contract: no labels")
        if len(self.input_size) != 2 or min(self.input_size) <= 0:
            raise TledgeError(f"model contract: bad input_size {self.input_size}")
        if self.resize not in RESIZE_METHODS:
            raise TledgeError(f"model contract: resize must be one of {RESIZE_METHODS}")
        if self.output_kind not in OUTPUT_KINDS:
            raise TledgeError(f"model contract: output_kind must be one of {OUTPUT_KINDS}")
        if self.color_order not in ("RGB", "BGR"):
            raise TledgeError("model contract: color_order must be RGB or BGR")
        if not all(label.strip() for label in self.labels):
            raise TledgeError("model contract: a label is empty")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise TledgeError("model contract: mean and std need 3 values, std above 0")
        if not 0 < self.crop_fraction <= 1:
            raise TledgeError("model contract: crop_fraction must be in (0, 1]")
        if self.interpolation not in INTERPOLATIONS:
            raise TledgeError(f"model contract: interpolation must be one of {INTERPOLATIONS}")

    def to_json(self) -> str:
        """Return the contract as indented JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        """Parse JSON written by `to_json`; unknown keys are ignored for forward compatibility.

        Raises:
            TledgeError: when the JSON is malformed, too large or deep, misses required
                fields, or holds a value of the wrong type or range.
        """
        return decode_dataclass(cls, text, CONTRACT_NAME)
