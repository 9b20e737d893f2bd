"""Small tledge-style models and run folders for the exporter tests.

The models follow tledge's conventions: raw 0-255 RGB float input, Rescaling inside
the model, a small conv base, global average pooling, a float32 softmax head.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tledge.core.folders import list_class_folders
from tledge.core.input_contract import InputContract, write_input_contract
from tledge.edge.images import fit_image, read_rgb

IMAGE_SIZE = (32, 32)
RUN_INPUT_CONTRACT = InputContract.raw_rgb_stretch(IMAGE_SIZE)


def build_small_model(num_classes: int, image_size: tuple[int, int] = IMAGE_SIZE):
    """A tiny conv classifier with tledge's input and head conventions."""
    import keras

    inputs = keras.Input((*image_size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs)


def load_folder(root: Path, size: tuple[int, int] = IMAGE_SIZE):
    """(images float32 [N, h, w, 3] raw 0-255, labels, class names) of a class-per-folder set."""
    folders = list_class_folders(root)
    contract = InputContract.raw_rgb_stretch(size)
    images = np.stack([fit_image(read_rgb(p), contract) for p in folders.paths])
    return images.astype(np.float32), np.asarray(folders.labels), list(folders.class_names)


def write_run(
    root: Path,
    model_file: Path,
    labels: list[str],
    train: Path,
    test: Path | None,
    precision: str = "float32",
    backbone: str = "tiny",
    input_contract: InputContract | None = RUN_INPUT_CONTRACT,
) -> Path:
    """Lay out a run folder the way the trainer writes one (`input_contract` None: as
    runs were written before they recorded one)."""
    root.mkdir(parents=True)
    shutil.copy(model_file, root / "model.keras")
    (root / "labels.txt").write_text("".join(f"{label}\n" for label in labels))
    config = {
        "backbone": backbone,
        "image_size": list(IMAGE_SIZE),
        "precision": precision,
        "data": str(train),
        "test": str(test) if test else None,
        "val": None,
        "seed": 0,
    }
    (root / "config.json").write_text(json.dumps(config))
    if input_contract is not None:
        write_input_contract(root / "input_contract.json", input_contract)
    return root


@pytest.fixture(scope="session")
def trained_model_file(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained a few epochs on the tiny dataset, saved as .keras."""
    import keras

    keras.utils.set_random_seed(0)
    images, labels, names = load_folder(tiny_dataset / "train")
    model = build_small_model(len(names))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=15, batch_size=16, verbose=0)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


@pytest.fixture
def make_run(tiny_dataset: Path, trained_model_file: Path, tmp_path: Path) -> Callable[..., Path]:
    """Factory: a fresh run folder holding the trained tiny model (or `model_file`)."""
    labels = list(list_class_folders(tiny_dataset / "train").class_names)

    def make(name: str = "run", model_file: Path | None = None, **config) -> Path:
        return write_run(
            tmp_path / name,
            model_file or trained_model_file,
            labels,
            tiny_dataset / "train",
            tiny_dataset / "test",
            **config,
        )

    return make


@pytest.fixture(scope="session")
def exported_run(
    tiny_dataset: Path, trained_model_file: Path, tmp_path_factory: pytest.TempPathFactory
):
    """(run folder, ExportResult) of the tiny model exported to every variant."""
    from tledge.exporter.export import ExportOptions, export_model

    labels = list(list_class_folders(tiny_dataset / "train").class_names)
    run = write_run(
        tmp_path_factory.mktemp("exported") / "run",
        trained_model_file,
        labels,
        tiny_dataset / "train",
        tiny_dataset / "test",
    )
    stages = []
    result = export_model(
        run,
        ExportOptions(variants=("fp32", "fp16", "dynamic", "int8")),
        on_progress=lambda stage, done, total: stages.append((stage, done, total)),
    )
    return run, result, stages
