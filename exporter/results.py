"""What an export is asked to do and what it produced: options and result dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tledge.exporter import defaults
from tledge.exporter.drift import Drift
from tledge.exporter.graph import GraphReport


@dataclass(frozen=True)
class ExportOptions:
    """How to export.

    Attributes:
        variants: Any of "fp32", "fp16", "dynamic", "int8".
        io_type: Input/output dtype of the int8 variant: "uint8", "int8" or "float32".
        calibration_size: Calibration images for int8 (class-balanced; fewer when the
            data has fewer).
        max_drift_pp: Largest top-1 accuracy drop against Keras, in percentage points,
            that a variant may show and still be written under its final name.
        min_agreement: Smallest fraction of held-out images on which a variant must pick
            the same class as Keras (0 turns the check off).
        allow_float_ops: Accept an int8 model in which some ops stay float.
        int8_rounding: How int8 weights are rounded (see `exporter/weight_rounding.py`):
            "gptq" (error-feedback rounding and bias correction), "nearest-corrected"
            (the converter's rounding, bias-corrected) or "nearest" (the converter's own).
            Keras 3 models only; TF Hub runs always get "nearest".
        seed: Seed of the calibration draw.
        num_threads: Interpreter threads while evaluating; None lets the runtime choose.
        check_pythons: Python interpreters of other environments (e.g. a device-like
            venv with tflite-runtime and numpy<2) that also load and run every file.
        self_test_images: Held-out images embedded in each file with its answers, for
            the device's self-test (`tledge.exporter.golden`); 0 embeds none.
    """

    variants: tuple[str, ...] = ("int8",)
    io_type: str = defaults.IO_TYPE
    calibration_size: int = defaults.CALIBRATION_SIZE
    max_drift_pp: float = defaults.MAX_DRIFT_PP
    min_agreement: float = defaults.MIN_AGREEMENT
    allow_float_ops: bool = False
    int8_rounding: str = defaults.INT8_ROUNDING
    seed: int = defaults.SEED
    num_threads: int | None = None
    check_pythons: tuple[str, ...] = ()
    self_test_images: int = defaults.SELF_TEST_IMAGES


@dataclass(frozen=True)
class VariantResult:
    """One exported variant.

    Attributes:
        variant: "fp32", "fp16", "dynamic" or "int8".
        path: The file written: `model_<variant>.tflite`, or `.rejected.tflite`.
        accepted: True when every check passed and `path` is the final name.
        problems: Why the variant was rejected (empty when accepted).
        drift: Accuracy against the Keras model on the held-out images.
        size_bytes: Size of the written file.
        runtimes: {runtime: loaded and ran one inference}.
        graph: Op counts and tensor types of the converted graph.
        warnings: Non-fatal findings (float ops allowed, runtime incompatibilities).
        prepared_layers: Layers whose int8 weights or mean shift were prepared (int8).
    """

    variant: str
    path: Path
    accepted: bool
    problems: tuple[str, ...]
    drift: Drift
    size_bytes: int
    runtimes: dict[str, bool]
    graph: GraphReport
    warnings: tuple[str, ...] = ()
    prepared_layers: int = 0


@dataclass(frozen=True)
class ExportResult:
    """Everything `export_model` wrote and measured.

    Attributes:
        export_dir: Folder holding the models, labels.txt and drift.json.
        keras_accuracy: Top-1 accuracy of the Keras model on the held-out images.
        num_images: Number of held-out images.
        variants: One result per requested variant, in request order.
        labels_file: The labels.txt written beside the models.
        drift_file: The drift.json report.
        float32_twin: True when the model was rebuilt in float32 from a mixed policy.
        calibration_images: Images used to calibrate int8 (0 without int8).
        warnings: Non-fatal findings over all variants.
    """

    export_dir: Path
    keras_accuracy: float
    num_images: int
    variants: tuple[VariantResult, ...]
    labels_file: Path
    drift_file: Path
    float32_twin: bool
    calibration_images: int
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rejected(self) -> tuple[VariantResult, ...]:
        """The variants that failed a check."""
        return tuple(result for result in self.variants if not result.accepted)
