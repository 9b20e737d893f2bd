"""Keras model -> batch-1 SavedModel -> TFLite flatbuffer, one variant at a time.

Going through a SavedModel with a fixed [1, h, w, 3] signature removes the dynamic-shape
ops a Keras model otherwise carries. Every variant names its `supported_ops`, so Flex
(SELECT_TF_OPS) kernels are never pulled in silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tledge.core.errors import TledgeError, first_line
from tledge.exporter.capture import captured_output
from tledge.exporter.tf_keras_model import is_tf_keras_model, save_inference_saved_model

VARIANTS = ("fp32", "fp16", "dynamic", "int8")
IO_TYPES = ("uint8", "int8", "float32")


def export_saved_model(
    model: Any, directory: str | os.PathLike, input_size: tuple[int, int]
) -> Path:
    """Write `model` as a SavedModel whose serving signature takes one [1, h, w, 3] image.

    The model runs in inference mode, so augmentation and dropout layers are no-ops and
    leave no ops in the graph. Keras 3 and tf_keras (TF Hub runs) models both work.

    Raises:
        TledgeError: when TensorFlow cannot trace or save the model.
    """
    import tensorflow as tf

    height, width = input_size
    signature = [tf.TensorSpec([1, height, width, 3], tf.float32, name="image")]
    with captured_output() as output:
        try:
            if is_tf_keras_model(model):
                save_inference_saved_model(model, directory, signature)
            else:
                model.export(str(directory), format="tf_saved_model", input_signature=signature)
        except Exception as error:
            failure = error
        else:
            failure = None
    if failure is not None:
        raise TledgeError(
            f"cannot export the model as a SavedModel ({first_line(failure)}); "
            f"TensorFlow said:\n{output.tail()}"
        )
    return Path(directory)


def convert_variant(
    saved_model_dir: str | os.PathLike,
    variant: str,
    representative_data: Callable[[], Iterable[np.ndarray]] | None = None,
    io_type: str = "uint8",
    allow_float_ops: bool = False,
) -> bytes:
    """Convert a SavedModel to one TFLite variant and return the flatbuffer bytes.

    Args:
        saved_model_dir: Written by `export_saved_model`.
        variant: "fp32", "fp16" (float16 weights), "dynamic" (int8 weights, float
            activations) or "int8" (full integer).
        representative_data: For "int8": a callable returning an iterable of model inputs,
            each a float32 [1, h, w, 3] array exactly as the model receives them.
        io_type: For "int8": dtype of the input and output tensors.
        allow_float_ops: For "int8": let ops without an int8 kernel stay float instead of
            failing the conversion.

    Raises:
        TledgeError: on an unknown variant or io type, or when the converter fails; the
            message carries the end of the converter's log.
    """
    import tensorflow as tf

    if variant not in VARIANTS:
        raise TledgeError(f"unknown export variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if io_type not in IO_TYPES:
        raise TledgeError(f"--io-type {io_type}: choose from {', '.join(IO_TYPES)}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # tflite-runtime 2.14 cannot load FULLY_CONNECTED v12 (per-channel dense weights).
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif variant == "int8":
        if representative_data is None:
            raise TledgeError("int8 conversion needs representative (calibration) data")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image] for image in representative_data())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if allow_float_ops:
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        converter.inference_input_type = getattr(tf, io_type)
        converter.inference_output_type = getattr(tf, io_type)
    with captured_output() as output:
        try:
            model_bytes = converter.convert()
        except Exception as error:
            failure = error
        else:
            failure = None
    if failure is not None:
        hint = (
            " (an op has no int8 kernel: rerun with --allow-float-ops to keep it in float)"
            if variant == "int8" and not allow_float_ops
            else ""
        )
        raise TledgeError(
            f"{variant} conversion failed{hint}: {first_line(failure)}\n"
            f"converter log (last lines):\n{output.tail()}"
        )
    return bytes(model_bytes)
