"""Running the Keras model and a .tflite file over the same fitted images.

Both take uint8 RGB images already fitted to the model input (see `datasets.py`) and
return float32 probabilities [N, classes], so their outputs compare directly. A .tflite
runs through the edge client's `Classifier`, the code the device runs: its contract
decides colour order, normalization and quantization, never a copy of that code here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from tledge.core.input_contract import InputContract
from tledge.exporter.capture import captured_output

ProgressCallback = Callable[[str, int, int], None]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a [N, classes] array."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def keras_input(images: np.ndarray, input_contract: InputContract) -> np.ndarray:
    """The float32 batch a Keras model trained under `input_contract` takes for RGB `images`.

    Colour order and `(pixel - mean) / std` as the contract says; tledge's own models
    take the pixels as they are (RGB, mean 0, std 1).
    """
    values = images.astype(np.float32)
    if input_contract.color_order == "BGR":
        values = values[..., ::-1]
    mean = np.asarray(input_contract.mean, dtype=np.float32)
    std = np.asarray(input_contract.std, dtype=np.float32)
    if np.any(mean != 0) or np.any(std != 1):
        values = (values - mean) / std
    return values


def predict_keras(
    model: Any,
    images: np.ndarray,
    input_contract: InputContract,
    batch_size: int = 32,
    stage: str = "keras",
    on_progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Return the Keras model's outputs for fitted uint8 images [N, h, w, 3].

    Args:
        model: A Keras model.
        images: uint8 RGB images fitted to the model input.
        input_contract: How the model takes its input (see `keras_input`).
        batch_size: Images per forward pass.
        stage: Name passed to `on_progress`.
        on_progress: Called as `on_progress(stage, done, total)`.

    Returns:
        float32 [N, classes], the model's raw outputs.
    """
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = keras_input(images[start : start + batch_size], input_contract)
        outputs.append(np.asarray(model(batch, training=False), dtype=np.float32))
        if on_progress:
            on_progress(stage, min(start + batch_size, len(images)), len(images))
    return np.concatenate(outputs, axis=0)


def predict_tflite(
    model_path: str | os.PathLike,
    images: np.ndarray,
    num_threads: int | None = None,
    stage: str = "tflite",
    on_progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Return the edge client's probabilities for fitted uint8 RGB images [N, h, w, 3].

    The file must carry its `ModelContract`: the `Classifier` feeds each image as on the
    device (`classify_rgb(..., fitted=True)`, which gives the same answer, bit for bit,
    as classifying the whole image the fitted one came from), on LiteRT.

    Args:
        model_path: A .tflite file with an embedded contract.
        images: uint8 RGB images fitted to the model input (`fit_image`).
        num_threads: Interpreter threads; None lets the runtime choose.
        stage: Name passed to `on_progress`.
        on_progress: Called as `on_progress(stage, done, total)`.

    Returns:
        float32 [N, classes] probabilities (logits models get the client's softmax).

    Raises:
        TledgeError: when LiteRT cannot load the model.

    Example:
        >>> probabilities = predict_tflite("export/model_int8.tflite", held_out.images)
    """
    from tledge.edge.classifier import Classifier

    with captured_output():
        classifier = Classifier(model_path, num_threads=num_threads, runtime="litert")
    scores = np.empty((len(images), len(classifier.labels)), dtype=np.float32)
    for index, image in enumerate(images):
        scores[index] = classifier.classify_rgb(image, top_k=1, fitted=True).scores
        if on_progress:
            on_progress(stage, index + 1, len(images))
    return scores
