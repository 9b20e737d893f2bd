"""tf_keras models (TF Hub runs): loading their SavedModel folder and re-saving for TFLite.

A TF Hub run saves its model as a tf_keras SavedModel folder (see `trainer/hub_model.py`). It
holds the hub module's graph and weights, so it loads with tf_keras alone: no
tensorflow_hub import, no handle, no network.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError, first_line


def is_tf_keras_model(model: Any) -> bool:
    """True for a tf_keras (Keras 2) model, False for a Keras 3 one."""
    return type(model).__module__.startswith("tf_keras")


def is_saved_model_folder(path: str | os.PathLike) -> bool:
    """True when `path` is a SavedModel folder (holds saved_model.pb)."""
    return (Path(path) / "saved_model.pb").is_file()


def load_tf_keras_saved_model(path: str | os.PathLike) -> Any:
    """Load a tf_keras SavedModel folder for inference.

    Raises:
        TledgeError: when tf_keras is missing or the folder cannot be loaded.

    Example:
        >>> model = load_tf_keras_saved_model("runs/hub_run/model_savedmodel")
    """
    folder = Path(path)
    if importlib.util.find_spec("tf_keras") is None:
        raise TledgeError(
            f"{folder}: a TF Hub run's model needs tf-keras to load (pip install 'tledge[hub]')"
        )
    if not is_saved_model_folder(folder):
        raise TledgeError(f"{folder}: not a SavedModel folder (no saved_model.pb)")
    import tf_keras

    try:
        return tf_keras.models.load_model(str(folder), compile=False)
    except Exception as error:
        raise TledgeError(
            f"{folder}: cannot load the tf_keras model ({first_line(error)})"
        ) from None


def save_inference_saved_model(model: Any, directory: str | os.PathLike, signature: list) -> None:
    """Save a tf_keras `model` as a plain SavedModel serving `signature`, in inference mode.

    tf_keras' own `export` cannot fix the batch size, so a `tf.function` with the fixed
    signature is saved next to the model's variables.

    Args:
        model: A tf_keras model.
        directory: Output folder.
        signature: The input `tf.TensorSpec` list, e.g. one [1, h, w, 3] float32 image.
    """
    import tensorflow as tf

    @tf.function(input_signature=signature)
    def serve(image):
        return model(image, training=False)

    module = tf.Module()
    module.model_variables = list(model.variables)
    module.serve = serve
    tf.saved_model.save(module, str(directory), signatures={"serving_default": serve})
