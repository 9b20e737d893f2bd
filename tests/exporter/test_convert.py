"""Conversion details: dynamic-range dense layers stay loadable on tflite-runtime 2.14."""

from __future__ import annotations

import pytest

from tledge.core.errors import TledgeError
from tledge.edge.contract import Quantization
from tledge.exporter.convert import convert_variant, export_saved_model
from tledge.exporter.graph import GraphReport, inspect_graph
from tledge.exporter.runtime_check import runtime_warnings


@pytest.mark.slow
def test_dynamic_range_dense_layer_is_not_per_channel(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(64, 3)(inputs))
    x = keras.layers.Dense(64, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    saved = export_saved_model(model, tmp_path / "saved", (8, 8))
    report = inspect_graph(convert_variant(saved, "dynamic"))
    # 64x64 dense weights are big enough to be quantized; per-channel would be v12.
    assert report.tensor_types.get("INT8", 0) >= 1
    assert 1 <= report.op_versions["FULLY_CONNECTED"] <= 11
    assert runtime_warnings("dynamic", report) == []
    with pytest.raises(TledgeError, match="unknown export variant"):
        convert_variant(saved, "int4")
    with pytest.raises(TledgeError, match="calibration"):
        convert_variant(saved, "int8")


def test_new_fully_connected_versions_are_flagged_for_tflite_runtime():
    report = GraphReport(
        op_counts={"FULLY_CONNECTED": 1},
        op_versions={"FULLY_CONNECTED": 12},
        input_quantization=Quantization(),
        output_quantization=Quantization(),
        float_ops=(),
        tensor_types={},
    )
    (warning,) = runtime_warnings("dynamic", report)
    assert "FULLY_CONNECTED v12" in warning and "tflite-runtime 2.14" in warning
