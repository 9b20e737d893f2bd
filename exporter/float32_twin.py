"""Rebuilding a mixed-precision Keras model as a float32 twin with the same weights.

TFLite conversion of a model built under a `mixed_float16` / `mixed_bfloat16` policy
fails ("Could not translate MLIR to FlatBuffer"): the graph is full of casts and half
precision ops. Variables are float32 under a mixed policy, so a twin built from the same
config with every dtype policy set to float32 takes the weights unchanged.
"""

from __future__ import annotations

from typing import Any

LOW_PRECISION = ("float16", "bfloat16")


def uses_low_precision(model: Any) -> bool:
    """True when any layer of `model` (nested models included) computes in float16/bfloat16."""
    return any(
        getattr(layer, "compute_dtype", "float32") in LOW_PRECISION for layer in _all_layers(model)
    )


def float32_twin(model: Any) -> Any:
    """Return a copy of `model` whose layers all use the float32 policy, with its weights.

    Works for Sequential and functional models made of serializable layers; the
    config is rewritten, so nested models are handled too.

    Example:
        >>> keras.mixed_precision.set_global_policy("mixed_float16")
        >>> twin = float32_twin(model)  # converts to TFLite; `model` does not
    """
    import keras

    serialized = keras.saving.serialize_keras_object(model)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        twin = keras.saving.deserialize_keras_object(_float32_policies(serialized))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    twin.set_weights(model.get_weights())
    return twin


def _float32_policies(node: Any) -> Any:
    """Copy of a serialized config with every low-precision dtype policy replaced."""
    if isinstance(node, list):
        return [_float32_policies(item) for item in node]
    if not isinstance(node, dict):
        return node
    is_policy = node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
    if is_policy and _is_low_precision_name(node.get("config", {}).get("name")):
        return "float32"
    return {
        key: "float32"
        if key == "dtype" and _is_low_precision_name(value)
        else _float32_policies(value)
        for key, value in node.items()
    }


def _is_low_precision_name(value: Any) -> bool:
    return isinstance(value, str) and any(low in value for low in LOW_PRECISION)


def _all_layers(model: Any) -> list[Any]:
    layers = [model]
    for layer in getattr(model, "layers", []):
        layers.extend(_all_layers(layer))
    return layers
