"""The model-file contract: what a .tflite needs to be used correctly on its own.

The exporter embeds a `ModelContract` in every .tflite it writes, as the associated file
`tledge_contract.json` of the standard TFLite metadata (`tledge.exporter.metadata`);
`tledge.edge.model_file.read_contract` gets it back with only the standard library, so
the edge client needs no TensorFlow.

The preprocessing fields (`input_size` to `std`) are the model's `InputContract`
(`tledge.core.input_contract`), which the exporter copies from the training run; the
input is then quantized with `input_quantization` when it is an integer type.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract
from tledge.edge.strict_json import decode_dataclass

CONTRACT_NAME = "tledge_contract.json"
OUTPUT_KINDS = ("probabilities", "logits")
GOLDEN_SUFFIX = ".png"
MAX_GOLDEN_EXAMPLES = 8
MAX_GOLDEN_NAME = 64


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
class GoldenExample:
    """An input embedded in the file with the answer the file gave at export.

    Attributes:
        image: Name of its PNG in the appended archive: the input already fitted to the
            model input size (RGB), so no resize stands between it and the answer.
        label: The top-1 label the exported file gave it.
        score: That label's score.
    """

    image: str
    label: str
    score: float

    def __post_init__(self) -> None:
        name = self.image
        plain = name and "/" not in name and "\\" not in name and not name.startswith(".")
        if not (plain and name.endswith(GOLDEN_SUFFIX) and len(name) <= MAX_GOLDEN_NAME):
            raise TledgeError(f"model contract: golden image name {name!r} is not a .png name")
        if not 0.0 <= self.score <= 1.0:
            raise TledgeError(f"model contract: golden score {self.score} is not in [0, 1]")


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
        interpolation: Resize interpolation, one of
            `tledge.core.input_contract.INTERPOLATIONS`. The default is "bilinear"
            (half-pixel centres), not the "bilinear_no_half_pixel" of today's tledge
            models: every file tledge writes names its interpolation, so a contract
            without one is a hand-written one or a plain model's derived one
            (`tledge.edge.plain_models`), both of which OpenCV's `cv2.resize` served.
        input_quantization: Storage of the input tensor.
        output_quantization: Storage of the output tensor.
        output_kind: "probabilities" (softmax inside the model) or "logits".
        backbone: Name of the feature extractor, e.g. "mobilenetv2".
        variant: Export variant: "fp32", "fp16", "dynamic", "int8", or "" when unknown.
        tledge_version: Version of tledge that wrote the file.
        source_run: Run folder the model came from.
        drift: Accuracy drift numbers measured by the exporter for this file.
        temperature: Temperature the model's logits are already divided by before its
            softmax (1.0: not calibrated). Informational: clients apply nothing.
        unknown_threshold: Inputs whose top probability is below this are reported as
            unknown (chosen on validation for a target acceptance rate); None: never.
        golden: Embedded self-test inputs with the file's own answers (at most
            `MAX_GOLDEN_EXAMPLES`; none in files from before tledge embedded them).
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
    temperature: float = 1.0
    unknown_threshold: float | None = None
    golden: tuple[GoldenExample, ...] = ()

    def __post_init__(self) -> None:
        if not self.labels:
            raise TledgeError("model contract: no labels")
        if self.output_kind not in OUTPUT_KINDS:
            raise TledgeError(f"model contract: output_kind must be one of {OUTPUT_KINDS}")
        if not all(label.strip() for label in self.labels):
            raise TledgeError("model contract: a label is empty")
        if not self.temperature > 0:
            raise TledgeError(f"model contract: temperature {self.temperature} must be > 0")
        if self.unknown_threshold is not None and not 0 <= self.unknown_threshold <= 1:
            raise TledgeError(
                f"model contract: unknown_threshold {self.unknown_threshold} must be in [0, 1]"
            )
        names = [example.image for example in self.golden]
        if len(names) > MAX_GOLDEN_EXAMPLES or len(set(names)) != len(names):
            raise TledgeError(
                f"model contract: {len(names)} golden examples (at most "
                f"{MAX_GOLDEN_EXAMPLES}, each image once)"
            )
        try:
            self.input_contract  # noqa: B018 - validates the preprocessing fields
        except TledgeError as error:
            raise TledgeError(f"model contract: {error}") from None

    @classmethod
    def for_input(cls, input_contract: InputContract, **fields: Any) -> ModelContract:
        """A contract whose preprocessing fields all come from `input_contract`.

        Example:
            >>> ModelContract.for_input(run_input_contract, labels=("cat", "dog"))
        """
        values = input_contract.to_dict()
        values["input_size"] = tuple(values["input_size"])
        values["mean"] = tuple(values["mean"])
        values["std"] = tuple(values["std"])
        return cls(**values, **fields)

    @property
    def input_contract(self) -> InputContract:
        """The preprocessing fields as an `InputContract`."""
        return InputContract(
            input_size=tuple(self.input_size),
            resize=self.resize,
            interpolation=self.interpolation,
            crop_fraction=self.crop_fraction,
            color_order=self.color_order,
            mean=tuple(self.mean),
            std=tuple(self.std),
        )

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
