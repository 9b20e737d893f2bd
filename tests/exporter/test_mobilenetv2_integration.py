"""Real MobileNetV2 ImageNet weights on food photos: int8 stays close to Keras."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tledge.core.folders import list_class_folders
from tledge.core.input_contract import InputContract
from tledge.edge.model_file import read_contract
from tledge.exporter.export import ExportOptions, export_model

from ..conftest import load_folder

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SIZE = (224, 224)


def subset(source: Path, target: Path, per_class: int) -> Path:
    """Symlink the first `per_class` photos of each class (the shared data stays read-only)."""
    folders = list_class_folders(source)
    taken: dict[int, int] = {}
    for path, label in zip(folders.paths, folders.labels, strict=True):
        if taken.get(label, 0) >= per_class:
            continue
        taken[label] = taken.get(label, 0) + 1
        link = target / folders.class_names[label] / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return target


def test_int8_mobilenetv2_agrees_with_keras(shared_data, tmp_path):
    import keras

    from ..conftest import write_run

    food = shared_data / "food_mnist10"
    train = subset(food / "train", tmp_path / "train", per_class=15)
    test = subset(food / "test", tmp_path / "test", per_class=10)
    weights = shared_data / "weights" / "mobilenet_v2_1.0_224_no_top.from_slim_npy.h5"

    keras.utils.set_random_seed(0)
    inputs = keras.Input((*SIZE, 3))
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    base = keras.applications.MobileNetV2(
        input_shape=(*SIZE, 3), include_top=False, weights=str(weights), pooling="avg"
    )
    features = base(scaled, training=False)
    head = keras.layers.Dense(10, activation="softmax", dtype="float32")
    model = keras.Model(inputs, head(features))
    images, labels, names = load_folder(train, SIZE)
    train_features = keras.Model(inputs, features).predict(images, verbose=0)
    head_model = keras.Sequential([keras.Input(train_features.shape[1:]), head])
    head_model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy"
    )
    head_model.fit(train_features, labels, epochs=30, batch_size=16, verbose=0)
    model_file = tmp_path / "model.keras"
    model.save(model_file)
    config = {"backbone": "mobilenetv2", "input_contract": InputContract.raw_rgb_stretch(SIZE)}
    run = write_run(tmp_path / "run", model_file, names, train, test, **config)
    run_config = json.loads((run / "config.json").read_text())
    run_config["image_size"] = list(SIZE)
    (run / "config.json").write_text(json.dumps(run_config))

    result = export_model(
        run, ExportOptions(variants=("int8",), calibration_size=50, max_drift_pp=100)
    )

    plain = export_model(
        run,
        ExportOptions(
            variants=("int8",), calibration_size=50, max_drift_pp=100, int8_rounding="nearest"
        ),
        output_dir=tmp_path / "plain",
    ).variants[0]

    int8 = result.variants[0]
    print(
        f"keras {result.keras_accuracy:.3f} int8 {int8.drift.accuracy:.3f} "
        f"drift {int8.drift.top1_drift_pp:+.1f} pp agreement {int8.drift.agreement:.3f} "
        f"mean abs diff {int8.drift.mean_abs_prob_diff:.4f} "
        f"(converter's rounding {plain.drift.mean_abs_prob_diff:.4f})"
    )
    # Nearest rounding of MobileNetV2's 3x3 depthwise kernels shifts the outputs; GPTQ
    # rounding and the bias correction remove most of the error.
    assert int8.prepared_layers == 53 and plain.prepared_layers == 0
    assert int8.drift.mean_abs_prob_diff < 0.8 * plain.drift.mean_abs_prob_diff
    assert result.num_images == 100
    assert result.keras_accuracy > 0.5
    assert int8.graph.is_full_integer
    assert int8.drift.agreement >= 0.85
    assert abs(int8.drift.top1_drift_pp) <= 6.0
    assert int8.drift.mean_abs_prob_diff < 0.05
    contract = read_contract(int8.path)
    assert contract.labels == tuple(names)
    assert contract.input_size == SIZE
    assert np.isclose(contract.input_quantization.scale, 1.0, atol=0.05)
