"""The backbone registry: each entry owns its input contract (default size and preprocessing).

The contract says how an image file becomes the model input; training follows it, writes
it into the run folder, and the exporter copies it into every .tflite, so nothing else
decides it. Every backbone here takes raw 0-255 RGB pixels, the whole image resized
bilinearly; its normalization is a layer inside the model (MobileNetV2: a Rescaling
layer to [-1, 1]; EfficientNet: its own Rescaling + Normalization layers), so exported
models need no outside normalization.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tledge.core.errors import TledgeError, first_line
from tledge.core.input_contract import InputContract
from tledge.trainer.hub import HUB_DEFAULT_SIZE, HUB_RESCALE, check_hub_backbone

BACKBONE_NAME = "backbone"


@dataclass(frozen=True)
class BackboneSpec:
    """One supported feature extractor.

    Attributes:
        name: Registry name, as given to `--backbone`.
        input_contract: How images become the model input, at the default input size.
            MobileNetV2's default is 256, above the 224 its ImageNet weights were trained
            at, chosen by cross-validation (the README's image-size results,
            benchmarks/results/cross_validation_image_size.md).
        application: Name of the `keras.applications` constructor ("hub.KerasLayer"
            for a TF Hub handle, see `trainer/hub_model.py`).
        rescale: (scale, offset) of the in-model Rescaling layer mapping 0-255 pixels to
            the backbone's range, or None when the backbone normalizes by itself.
        has_alpha: Whether the width multiplier `--alpha` applies.
    """

    name: str
    input_contract: InputContract
    application: str
    rescale: tuple[float, float] | None
    has_alpha: bool

    @property
    def default_size(self) -> tuple[int, int]:
        """Default input (height, width)."""
        return self.input_contract.input_size

    def run_input_contract(self, image_size: tuple[int, int] | None) -> InputContract:
        """The contract of a run at `image_size` (None: the default size)."""
        return self.input_contract.with_size(image_size or self.default_size)


BACKBONES = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "mobilenetv2",
            InputContract.raw_rgb_stretch((256, 256)),
            "MobileNetV2",
            (1 / 127.5, -1.0),
            True,
        ),
        BackboneSpec(
            "efficientnetb0",
            InputContract.raw_rgb_stretch((224, 224)),
            "EfficientNetB0",
            None,
            False,
        ),
    )
}


def get_backbone(name: str) -> BackboneSpec:
    """Return the registry entry for `name` ("hub:HANDLE" gets an entry of its own).

    Raises:
        TledgeError: for an unknown name, or "hub:..." without the `hub` extra or with
            a local handle that is not a SavedModel folder.
    """
    if name.startswith("hub:"):
        check_hub_backbone(name)
        hub_input = InputContract.raw_rgb_stretch(HUB_DEFAULT_SIZE)
        return BackboneSpec(name, hub_input, "hub.KerasLayer", HUB_RESCALE, False)
    if name not in BACKBONES:
        raise TledgeError(f"--backbone {name}: unknown backbone; use one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def build_base(
    spec: BackboneSpec, image_size: tuple[int, int], alpha: float, weights: str
) -> Callable:
    """Build the headless backbone (global average pooled features), named "backbone".

    Args:
        spec: The registry entry.
        image_size: Input (height, width).
        alpha: MobileNetV2 width multiplier (ignored for backbones without one).
        weights: "imagenet", "none", or the path of a no-top Keras .h5 weights file.

    Returns:
        A `keras.Model` mapping backbone-range images to pooled features.

    Raises:
        TledgeError: when the weights cannot be downloaded or do not fit the backbone.
    """
    import keras

    constructor = getattr(keras.applications, spec.application)
    kwargs = {"alpha": alpha} if spec.has_alpha else {}
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise TledgeError(f"--weights {weights}: file not found (or use imagenet / none)")
    try:
        return constructor(
            input_shape=(*image_size, 3),
            include_top=False,
            weights=None if weights == "none" else weights,
            pooling="avg",
            name=BACKBONE_NAME,
            **kwargs,
        )
    except Exception as error:
        reason = first_line(error)
        if weights == "imagenet":
            raise TledgeError(
                f"--weights imagenet: could not get the ImageNet weights for {spec.name} "
                f"(offline? {reason}); use --weights PATH (a no-top Keras .h5) or --weights none"
            ) from None
        raise TledgeError(
            f"--weights {weights}: does not fit {spec.name} alpha={alpha} ({reason})"
        ) from None
