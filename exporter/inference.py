"""Running a Keras model or a .tflite file over many images and collecting probabilities.

Both take uint8 RGB images already at the model's input size (see `datasets.py`) and
return float probabilities [N, classes], so their outputs compare directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tledge.edge.images import read_rgb, resize_image
from tledge.edge.interpreter import open_interpreter
from tledge.exporter.capture import captured_output

ProgressCallback = Callable[[str, int, int], None]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a [N, classes] array."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def predict_keras(
    model: Any,
    images: np.ndarray,
    batch_size: int = 32,
    stage: str = "keras",
    on_progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Return the Keras model's outputs for uint8 images [N, h, w, 3], as float32 [N, classes].

    Args:
        model: A Keras model taking raw 0-255 RGB floats.
        images: uint8 images at the model's input size.
        batch_size: Images per forward pass.
        stage: Name passed to `on_progress`.
        on_progress: Called as `on_progress(stage, done, total)`.
    """
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32)
        outputs.append(np.asarray(model(batch, training=False), dtype=np.float32))
        if on_progress:
            on_progress(stage, min(start + batch_size, len(images)), len(images))
    return np.concatenate(outputs, axis=0)


def predict_tflite(
    model_path: str | os.PathLike,
    images: np.ndarray,
    num_threads: int | None = None,
    runtime: str = "litert",
    stage: str = "tflite",
    on_progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Return a .tflite model's dequantized outputs for uint8 images [N, h, w, 3].

    Integer inputs are quantized with the model's input scale and zero point, integer
    outputs dequantized, so the result is comparable with `predict_keras`.

    Args:
        model_path: The .tflite file (an embedded contract is fine).
        images: uint8 RGB images at the model's input size.
        num_threads: Interpreter threads; None lets the runtime choose.
        runtime: Runtime name for `open_interpreter`.
        stage: Name passed to `on_progress`.
        on_progress: Called as `on_progress(stage, done, total)`.

    Raises:
        TledgeError: when the runtime cannot load the model.

    Example:
        >>> probabilities = predict_tflite("export/model_int8.tflite", images)
    """
    with captured_output():
        interpreter, _ = open_interpreter(model_path, num_threads=num_threads, runtime=runtime)
    return _predict_with(interpreter, images, stage, on_progress)


def predict_tflite_files(
    model_path: str | os.PathLike,
    image_paths: Sequence[str | os.PathLike],
    num_threads: int | None = None,
    runtime: str = "litert",
) -> np.ndarray:
    """Return a .tflite model's outputs for image files, resized as the model expects.

    The input size is read from the model; images are stretched with bilinear
    interpolation to it, as tledge models are trained.

    Example:
        >>> scores = predict_tflite_files("model_int8.tflite", ["cat.jpg", "dog.jpg"])
    """
    with captured_output():
        interpreter, _ = open_interpreter(model_path, num_threads=num_threads, runtime=runtime)
    height, width = (int(v) for v in interpreter.get_input_details()[0]["shape"][1:3])
    images = np.stack([resize_image(read_rgb(Path(p)), (height, width)) for p in image_paths])
    return _predict_with(interpreter, images)


def _predict_with(
    interpreter: Any,
    images: np.ndarray,
    stage: str = "tflite",
    on_progress: ProgressCallback | None = None,
) -> np.ndarray:
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    outputs = []
    for index, image in enumerate(images):
        interpreter.set_tensor(input_detail["index"], _to_input(image, input_detail))
        interpreter.invoke()
        outputs.append(_from_output(interpreter.get_tensor(output_detail["index"]), output_detail))
        if on_progress:
            on_progress(stage, index + 1, len(images))
    return np.concatenate(outputs, axis=0)


def _to_input(image: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    values = image.astype(np.float32)[None]
    if np.issubdtype(dtype, np.integer):
        scale, zero_point = detail["quantization"]
        if scale > 0:
            values = np.round(values / scale + zero_point)
        info = np.iinfo(dtype)
        values = np.clip(values, info.min, info.max)
    return values.astype(dtype)


def _from_output(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    output = values.astype(np.float32)
    if np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        scale, zero_point = detail["quantization"]
        if scale > 0:
            output = (output - zero_point) * scale
    return output.reshape(1, -1)
