"""The tf_keras model of a TF Hub run: build its classifier, unfreeze, save and load it.

`hub.KerasLayer` is a tf_keras layer (it cannot live in a Keras 3 model), so a hub run's
classifier is a tf_keras model: 0-255 RGB in, Rescaling(1/255) to [0, 1] (the TF Hub
image-model convention), the hub layer named "backbone" and called with
`training=False` (its BatchNorm statistics stay fixed), then the same head as the Keras 3
models. It is saved as a tf_keras SavedModel folder, which holds the hub module's graph
and weights: the exporter, `tledge evaluate` and `tledge predict` load it without the
handle and without a network.

Which handles are hub backbones and whether they can be used here is `trainer/hub.py`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError, first_line
from tledge.trainer.backbones import BACKBONE_NAME
from tledge.trainer.hub import (
    HUB_RESCALE,
    check_hub_backbone,
    download_error,
    hub_handle,
    is_url,
)
from tledge.trainer.model import CLASSIFIER_NAME


def load_hub_layer(backbone: str, trainable: bool = False) -> Any:
    """Load the hub module of `backbone` as a `hub.KerasLayer` named "backbone".

    Raises:
        TledgeError: when a URL cannot be downloaded, or the module cannot be loaded.
    """
    import tensorflow_hub as hub

    check_hub_backbone(backbone)
    handle = hub_handle(backbone)
    try:
        return hub.KerasLayer(handle, trainable=trainable, name=BACKBONE_NAME)
    except Exception as error:
        if is_url(handle):
            raise download_error(backbone, error) from None
        raise TledgeError(
            f"--backbone {backbone}: cannot load the TF Hub model ({first_line(error)})"
        ) from None


def build_hub_classifier(
    backbone: str, image_size: tuple[int, int], num_classes: int, dropout: float
) -> Any:
    """Build the tf_keras classifier of a hub backbone: 0-255 RGB in, probabilities out.

    The hub layer is frozen (phase 1); `unfreeze_hub` makes it trainable for phase 2.

    Args:
        backbone: "hub:HANDLE".
        image_size: Input (height, width).
        num_classes: Number of classes.
        dropout: Dropout rate before the classification layer.

    Returns:
        A `tf_keras.Model`.

    Raises:
        TledgeError: when the module cannot be loaded or does not output feature vectors.

    Example:
        >>> model = build_hub_classifier("hub:/models/mobilenet_v2_feature_vector",
        ...                              (224, 224), num_classes=5, dropout=0.2)
    """
    import tf_keras

    layer = load_hub_layer(backbone)
    inputs = tf_keras.Input((*image_size, 3), name="image")
    scale, offset = HUB_RESCALE
    x = tf_keras.layers.Rescaling(scale, offset=offset, name="preprocess")(inputs)
    try:
        features = layer(x, training=False)
    except Exception as error:
        raise TledgeError(
            f"--backbone {backbone}: the model does not take {image_size[0]}x{image_size[1]} "
            f"RGB images ({first_line(error)}); check --image-size"
        ) from None
    if len(features.shape) != 2:
        raise TledgeError(
            f"--backbone {backbone}: expected a feature-vector model with output "
            f"[batch, features], got shape {tuple(features.shape)}"
        )
    x = tf_keras.layers.Dropout(dropout, name="head_dropout")(features)
    x = tf_keras.layers.Dense(num_classes, dtype="float32", name=CLASSIFIER_NAME)(x)
    outputs = tf_keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return tf_keras.Model(inputs, outputs, name="tledge_hub")


def unfreeze_hub(model: Any, backbone: str) -> int:
    """Make the hub layer trainable for fine-tuning; it stays in inference mode.

    A hub layer is one opaque block: all its trainable variables train together
    (`--fine-tune-layers` cannot pick layers inside it).

    Returns:
        How many variables are trainable in the hub layer.

    Raises:
        TledgeError: when the module cannot be fine-tuned (no trainable variables, or a
            TF1 Hub format / signature module).
    """
    import numpy as np

    layer = model.get_layer(BACKBONE_NAME)
    layer.trainable = True
    count = len(layer.trainable_weights)
    try:
        if count == 0:
            raise ValueError("it has no trainable variables")
        # The hub layer checks trainability only when called.
        model(np.zeros((1, *model.input_shape[1:]), np.float32), training=True)
    except ValueError as error:
        layer.trainable = False
        raise TledgeError(
            f"--backbone {backbone}: this TF Hub model cannot be fine-tuned "
            f"({first_line(error)}); use --fine-tune-epochs 0"
        ) from None
    return count


def save_hub_model(model: Any, path: Path) -> None:
    """Save `model` as a tf_keras SavedModel folder at `path`, replacing an old one.

    The folder is written beside `path` and renamed into place, so a kill during the
    (slow) write never leaves a half-written model under the final name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    old = path.with_name(f".{path.name}.old")
    try:
        model.save(str(scratch), save_format="tf", include_optimizer=False)
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(scratch, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def load_hub_model(path: Path, backbone: str) -> Any:
    """Load a saved hub-run model for more training (its hub layer rebuilt from the handle).

    Raises:
        TledgeError: when `path` is not a hub run's SavedModel folder or cannot be loaded.
    """
    import tensorflow_hub as hub
    import tf_keras

    if not path.is_dir():
        raise TledgeError(
            f"{path}: not the SavedModel folder of a TF Hub run (is --backbone {backbone} "
            "the backbone that run trained?)"
        )
    check_hub_backbone(backbone)
    try:
        return tf_keras.models.load_model(
            str(path), custom_objects={"KerasLayer": hub.KerasLayer}, compile=False
        )
    except Exception as error:
        raise TledgeError(f"{path}: cannot load the hub model ({first_line(error)})") from None
