"""Sharing identical zero-point vectors shrinks an int8 file and changes nothing it computes."""

from __future__ import annotations

import numpy as np
import pytest

from tledge.exporter.compact import BUFFER_ALIGNMENT, share_zero_points
from tledge.exporter.convert import convert_variant, export_saved_model
from tledge.exporter.inference import predict_tflite


def _buffer_layout(model_bytes: bytes) -> tuple[list[int], int, int]:
    """(data offsets of non-empty buffers, zero-point vectors, distinct zero-point vectors)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_bytes, 0)
    offsets = []
    for index in range(model.BuffersLength()):
        buffer = model.Buffers(index)
        if buffer.DataLength():
            offsets.append(buffer._tab.Vector(buffer._tab.Offset(4)))
    locations = []
    graph = model.Subgraphs(0)
    for index in range(graph.TensorsLength()):
        quantization = graph.Tensors(index).Quantization()
        if quantization is not None and quantization.ZeroPointLength():
            locations.append(quantization._tab.Vector(quantization._tab.Offset(10)))
    return offsets, len(locations), len(set(locations))


@pytest.mark.slow
def test_per_channel_int8_file_shrinks_and_computes_the_same(tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    for filters in (32, 48, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu6")(x)
        x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))
    saved = export_saved_model(model, tmp_path / "saved", (16, 16))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)

    def calibration():
        return (image[None].astype(np.float32) for image in images[:8])

    converted = convert_variant(saved, "int8", calibration)
    compact = share_zero_points(converted)

    assert len(compact) < len(converted)
    offsets, zero_point_vectors, distinct = _buffer_layout(compact)
    assert all(offset % BUFFER_ALIGNMENT == 0 for offset in offsets)
    _, before_vectors, before_distinct = _buffer_layout(converted)
    assert zero_point_vectors == before_vectors and before_distinct == before_vectors
    assert distinct < zero_point_vectors
    (tmp_path / "converted.tflite").write_bytes(converted)
    (tmp_path / "compact.tflite").write_bytes(compact)
    np.testing.assert_array_equal(
        predict_tflite(tmp_path / "compact.tflite", images),
        predict_tflite(tmp_path / "converted.tflite", images),
    )


@pytest.mark.slow  # exports the tiny model to every variant (shared with test_export.py)
def test_exported_int8_file_is_written_compact(exported_run):
    _, result, _ = exported_run
    int8 = next(variant for variant in result.variants if variant.variant == "int8")
    data = int8.path.read_bytes()
    body = share_zero_points(data)  # the flatbuffer, without the appended archive
    assert data.startswith(body)
    _, zero_point_vectors, distinct = _buffer_layout(body)
    assert distinct < zero_point_vectors
