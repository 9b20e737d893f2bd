"""Mixed-precision models are exported through a float32 twin with the same weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.exporter.convert import convert_variant, export_saved_model
from tledge.exporter.export import ExportOptions, export_model
from tledge.exporter.float32_twin import float32_twin, uses_low_precision

from ..conftest import TINY_IMAGE_SIZE, build_tiny_model, load_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mixed_model(tiny_dataset):
    """The tiny model built and briefly trained under the mixed_float16 policy."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        images, labels, names = load_folder(tiny_dataset / "train")
        model = build_tiny_model(len(names))
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        model.fit(images, labels, epochs=10, batch_size=16, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def test_twin_is_float32_with_the_same_weights(mixed_model, tiny_dataset):
    assert uses_low_precision(mixed_model)
    twin = float32_twin(mixed_model)
    assert not uses_low_precision(twin)
    assert all(layer.compute_dtype == "float32" for layer in twin.layers)
    for original, copied in zip(mixed_model.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_array_equal(original, copied)
    images, _, _ = load_folder(tiny_dataset / "test")
    np.testing.assert_allclose(np.asarray(twin(images)), np.asarray(mixed_model(images)), atol=2e-2)


def test_mixed_model_does_not_convert_directly_but_its_twin_does(mixed_model, tmp_path):
    saved = export_saved_model(mixed_model, tmp_path / "mixed", TINY_IMAGE_SIZE)
    with pytest.raises(TledgeError, match="fp32 conversion failed"):
        convert_variant(saved, "fp32")
    saved = export_saved_model(float32_twin(mixed_model), tmp_path / "twin", TINY_IMAGE_SIZE)
    assert len(convert_variant(saved, "fp32")) > 1000


def test_mixed_precision_run_exports(mixed_model, make_run, tmp_path):
    model_file = tmp_path / "mixed.keras"
    mixed_model.save(model_file)
    run = make_run(model_file=model_file, precision="mixed_float16")
    result = export_model(run, ExportOptions(variants=("fp32", "int8"), max_drift_pp=100))
    assert result.float32_twin
    fp32 = result.variants[0]
    assert fp32.drift.agreement >= 0.95
    assert result.variants[1].graph.is_full_integer
    assert json.loads((run / "export" / "drift.json").read_text())["variants"]["int8"]["accepted"]
