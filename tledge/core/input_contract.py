"""The input contract: how an image file's pixels become a model's input.

A backbone names its contract (`tledge.trainer.backbones.BackboneSpec.input_contract`);
training writes the run's contract into the run folder (input_contract.json); the exporter
copies it into every .tflite's `ModelContract`; the edge client follows it. Nothing else
decides how images are resized or normalized.

Steps, in order: take the image as `color_order` pixels with values 0-255; with
"center_crop" keep the centred square of `crop_fraction` times the shorter side; resize
to `input_size` with `interpolation`; compute `(pixel - mean) / std`.

The interpolations, for a source side of W pixels resized to w (output pixel x is read
at source coordinate u, between source pixels floor(u) and floor(u) + 1, weighted
linearly; coordinates outside the image repeat the border pixel):

- "bilinear_no_half_pixel": u = x * W / w. The image's corners are mapped onto the
  output's corners; a 4 -> 2 downscale reads source pixels 0 and 2 without averaging.
  MediaPipe Tasks' CPU image preprocessing resizes this way (`cv2.warpPerspective`
  bilinear; tledge's edge client computes the same with `cv2.remap`), as does
  TensorFlow 1's `resize_bilinear` default
  (`tf.raw_ops.ResizeBilinear(align_corners=False, half_pixel_centers=False)`).
- "bilinear": u = (x + 0.5) * W / w - 0.5 (half-pixel centres), as `tf.image.resize`
  (antialias=False) and `cv2.resize` INTER_LINEAR do; a 4 -> 2 downscale averages
  pixels 0-1 and 2-3. tledge's models took this before "bilinear_no_half_pixel".
- "area": each output pixel averages the source pixels it covers (`tf.image.resize`
  "area", `cv2.resize` INTER_AREA).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tledge.core.atomic import atomic_write_text
from tledge.core.errors import TledgeError

RESIZE_METHODS = ("stretch", "center_crop")
INTERPOLATIONS = ("bilinear_no_half_pixel", "bilinear", "area")
COLOR_ORDERS = ("RGB", "BGR")


@dataclass(frozen=True)
class InputContract:
    """What a model expects as input; every field is explicit (no defaults).

    Attributes:
        input_size: (height, width) of the model input.
        resize: "stretch" (the whole image to `input_size`) or "center_crop" (the
            central `crop_fraction` of the shorter side, then resize).
        interpolation: "bilinear_no_half_pixel", "bilinear" (half-pixel centres) or
            "area"; the module docstring says what each computes.
        crop_fraction: Fraction of the shorter side kept by "center_crop" (1.0 otherwise).
        color_order: "RGB" or "BGR" channel order the model takes.
        mean: Per-channel value subtracted from 0-255 pixels.
        std: Per-channel divisor applied after subtracting `mean`.
    """

    input_size: tuple[int, int]
    resize: str
    interpolation: str
    crop_fraction: float
    color_order: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise TledgeError(f"input contract: {problem}")

    @classmethod
    def raw_rgb_stretch(cls, input_size: tuple[int, int]) -> InputContract:
        """Raw 0-255 RGB, the whole image resized bilinearly: what tledge's own models take.

        Their normalization is a layer inside the model, so the file needs none outside.
        The resize is "bilinear_no_half_pixel" because MediaPipe Tasks and other TFLite
        clients resize that way: fed the same photo, they give the model the pixels it was
        trained on, and so the answers `tledge predict` gives.
        """
        return cls(
            input_size=tuple(input_size),
            resize="stretch",
            interpolation="bilinear_no_half_pixel",
            crop_fraction=1.0,
            color_order="RGB",
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
        )

    @classmethod
    def raw_rgb_stretch_half_pixel(cls, input_size: tuple[int, int]) -> InputContract:
        """`raw_rgb_stretch` with the half-pixel "bilinear" resize tledge's models took
        before "bilinear_no_half_pixel": the contract of a run folder without an
        input_contract.json (trained before tledge wrote one).
        """
        return replace(cls.raw_rgb_stretch(input_size), interpolation="bilinear")

    def with_size(self, input_size: tuple[int, int]) -> InputContract:
        """The same preprocessing for another input size."""
        return replace(self, input_size=tuple(int(side) for side in input_size))

    def to_dict(self) -> dict[str, Any]:
        """The contract as JSON-ready values (the keys of `ModelContract` it fills)."""
        return {
            "input_size": list(self.input_size),
            "resize": self.resize,
            "interpolation": self.interpolation,
            "crop_fraction": self.crop_fraction,
            "color_order": self.color_order,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InputContract:
        """Build a contract from `to_dict` values; every key is required.

        Raises:
            TledgeError: for a missing key or a bad value.
        """
        try:
            return cls(
                input_size=tuple(int(side) for side in values["input_size"]),
                resize=str(values["resize"]),
                interpolation=str(values["interpolation"]),
                crop_fraction=float(values["crop_fraction"]),
                color_order=str(values["color_order"]),
                mean=tuple(float(value) for value in values["mean"]),
                std=tuple(float(value) for value in values["std"]),
            )
        except KeyError as error:
            raise TledgeError(f"input contract: missing {error}") from None
        except (TypeError, ValueError) as error:
            raise TledgeError(f"input contract: bad value ({error})") from None


def write_input_contract(path: Path, contract: InputContract) -> Path:
    """Write `contract` as JSON to `path` atomically and return the path."""
    return atomic_write_text(path, json.dumps(contract.to_dict(), indent=2) + "\n")


def read_input_contract(path: Path) -> InputContract:
    """Read a contract written by `write_input_contract`.

    Raises:
        TledgeError: naming the file when it is missing, not JSON or not a contract.
    """
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TledgeError(f"{path}: file not found") from None
    except (OSError, ValueError) as error:
        raise TledgeError(f"{path}: cannot read JSON ({error})") from None
    if not isinstance(values, dict):
        raise TledgeError(f"{path}: not an input contract (expected a JSON object)")
    try:
        return InputContract.from_dict(values)
    except TledgeError as error:
        raise TledgeError(f"{path}: {error}") from None


def _problem(contract: InputContract) -> str:
    """What is wrong with `contract`, or "" when nothing is."""
    if len(contract.input_size) != 2 or min(contract.input_size) <= 0:
        return f"bad input_size {contract.input_size}"
    if contract.resize not in RESIZE_METHODS:
        return f"resize must be one of {RESIZE_METHODS}, not {contract.resize!r}"
    if contract.interpolation not in INTERPOLATIONS:
        return f"interpolation must be one of {INTERPOLATIONS}, not {contract.interpolation!r}"
    if not 0.0 < contract.crop_fraction <= 1.0:
        return f"crop_fraction must be in (0, 1], not {contract.crop_fraction}"
    if contract.color_order not in COLOR_ORDERS:
        return f"color_order must be one of {COLOR_ORDERS}, not {contract.color_order!r}"
    if len(contract.mean) != 3 or len(contract.std) != 3 or min(contract.std) <= 0:
        return "mean and std need 3 values, std above 0"
    return ""
