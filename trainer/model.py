"""The classifier model: raw-pixel input, in-model preprocessing, backbone, small head."""

from __future__ import annotations

from tledge.trainer.backbones import BACKBONE_NAME, BackboneSpec, build_base

CLASSIFIER_NAME = "classifier"


def build_classifier(
    spec: BackboneSpec,
    image_size: tuple[int, int],
    alpha: float,
    weights: str,
    num_classes: int,
    dropout: float,
):
    """Build the full model: 0-255 RGB in, class probabilities out.

    The backbone is called with `training=False`; its BatchNormalization layers stay in
    inference mode in both phases (frozen in phase 1, see `unfreeze_top` for phase 2).
    The output layers are float32 under any mixed precision policy.

    Example:
        >>> model = build_classifier(get_backbone("mobilenetv2"), (224, 224), 1.0,
        ...                          "none", num_classes=5, dropout=0.2)
    """
    import keras

    base = build_base(spec, image_size, alpha, weights)
    base.trainable = False
    inputs = keras.Input((*image_size, 3), name="image")
    x = inputs
    if spec.rescale is not None:
        scale, offset = spec.rescale
        x = keras.layers.Rescaling(scale, offset=offset, name="preprocess")(x)
    features = base(x, training=False)
    outputs = classifier_head(features, num_classes, dropout)
    return keras.Model(inputs, outputs, name=f"tledge_{spec.name}")


def classifier_head(features, num_classes: int, dropout: float):
    """Apply the classification head (dropout, dense, float32 softmax) to `features`."""
    import keras

    x = keras.layers.Dropout(dropout, name="head_dropout")(features)
    x = keras.layers.Dense(num_classes, dtype="float32", name=CLASSIFIER_NAME)(x)
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def backbone_of(model):
    """Return the backbone sub-model of a model built by `build_classifier`."""
    return model.get_layer(BACKBONE_NAME)


def unfreeze_top(model, num_layers: int) -> int:
    """Make the top `num_layers` backbone layers trainable.

    BatchNormalization layers among them learn their scale and offset but keep
    normalizing with their stored moving statistics (see `keep_inference_statistics`),
    as in Keras' transfer-learning guide.

    Returns:
        How many layers with weights are trainable afterwards.
    """
    import keras

    base = backbone_of(model)
    base.trainable = True
    cutoff = max(0, len(base.layers) - num_layers)
    trainable = 0
    for index, layer in enumerate(base.layers):
        layer.trainable = index >= cutoff
        if layer.trainable and isinstance(layer, keras.layers.BatchNormalization):
            keep_inference_statistics(layer)
        trainable += layer.trainable and bool(layer.weights)
    return trainable


def keep_inference_statistics(layer) -> None:
    """Make a BatchNormalization layer always normalize with its moving statistics.

    Keras 3 runs a trainable BatchNormalization layer on batch statistics whenever the
    model trains, even inside a backbone called with `training=False` (the nested model
    takes `training` from the outer call). Batches of 16 would then shift every
    normalization and update the statistics; this keeps both fixed while gamma and beta
    still learn. The saved model is an ordinary BatchNormalization layer.
    """
    layer_call = type(layer).call

    def inference_call(inputs, training=None, mask=None):
        return layer_call(layer, inputs, training=False, mask=mask)

    layer.call = inference_call


def calibrate_batchnorm(model, images) -> None:
    """Set the backbone's BatchNormalization statistics from a batch of `images`.

    Only for randomly initialised backbones (`--weights none`): their stored statistics
    (mean 0, variance 1) do not match the real activations, which then shrink layer by
    layer until the frozen backbone outputs almost constant features. One forward pass
    in training mode with momentum 0 stores the batch statistics of every layer (a
    data-dependent initialisation); the weights are not changed.

    Args:
        model: A model from `build_classifier`.
        images: A batch of 0-255 RGB images, shape (N, H, W, 3).
    """
    import keras

    base = backbone_of(model)
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    x = keras.ops.convert_to_tensor(images, dtype="float32")
    if any(layer.name == "preprocess" for layer in model.layers):
        x = model.get_layer("preprocess")(x)
    base.trainable = True
    try:
        for layer in norms:
            layer.momentum = 0.0
        base(x, training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
        base.trainable = False
