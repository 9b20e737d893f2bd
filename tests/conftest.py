"""Shared fixtures: the real test material in ../shared/data, tiny generated datasets, the
one tiny trained model every TensorFlow test shares, and folders seeded with broken and
odd image files."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tledge.core.folders import list_class_folders
from tledge.core.input_contract import InputContract, write_input_contract
from tledge.edge.images import fit_image, read_rgb
from tledge.trainer.synthetic import generate_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_IMAGE_SIZE = (32, 32)
TINY_INPUT_CONTRACT = InputContract.raw_rgb_stretch(TINY_IMAGE_SIZE)


def shared_data_dir() -> Path:
    """The shared test material: $TLEDGE_SHARED_DATA, else ../shared/data beside the repo."""
    configured = os.environ.get("TLEDGE_SHARED_DATA")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test with a reason when it is absent."""
    root = shared_data_dir()
    if not (root / "MANIFEST.md").is_file():
        pytest.skip(f"shared test data not found at {root} (set TLEDGE_SHARED_DATA)")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset with train/ and test/ folders of 4 classes, 64x64 pixels."""
    root = tmp_path_factory.mktemp("tiny")
    generate_dataset(root / "train", per_class=24, size=64, seed=1)
    generate_dataset(root / "test", per_class=8, size=64, seed=2)
    return root


def build_tiny_model(num_classes: int, image_size: tuple[int, int] = TINY_IMAGE_SIZE):
    """A tiny conv classifier with tledge's conventions: raw 0-255 RGB float input,
    Rescaling inside, batch norm and a depthwise conv (what the exporter folds and
    quantizes in real backbones), global average pooling, a float32 softmax head."""
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


def load_folder(root: Path, size: tuple[int, int] = TINY_IMAGE_SIZE):
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
    input_contract: InputContract | None = TINY_INPUT_CONTRACT,
) -> Path:
    """Lay out a run folder the way the trainer writes one (`input_contract` None: as
    runs were written before they recorded one)."""
    root.mkdir(parents=True)
    shutil.copy(model_file, root / "model.keras")
    (root / "labels.txt").write_text("".join(f"{label}\n" for label in labels))
    config = {
        "backbone": backbone,
        "image_size": list(TINY_IMAGE_SIZE),
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


def write_tiny_run(root: Path, dataset: Path, model_file: Path, **config) -> Path:
    """A run folder at `root` trained (as far as it knows) on `dataset/train`, tested on
    `dataset/test`, holding `model_file`; `config` as for `write_run`."""
    labels = list(list_class_folders(dataset / "train").class_names)
    return write_run(root, model_file, labels, dataset / "train", dataset / "test", **config)


@pytest.fixture(scope="session")
def tiny_model_file(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one tiny trained model the TensorFlow tests share (`build_tiny_model` trained
    15 epochs on `tiny_dataset/train`, saved as .keras).

    It learns the shapes well above chance yet still gets some test images wrong, so it
    serves the drift gate, the Keras/.tflite agreement checks and the evaluation tests'
    "most wrong" grid alike. Built once per session; tests that only need a file that
    fails before loading use a placeholder instead (see tests/exporter/conftest.py)."""
    import keras

    keras.utils.set_random_seed(0)
    images, labels, names = load_folder(tiny_dataset / "train")
    model = build_tiny_model(len(names))
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(images, labels, epochs=15, batch_size=16, verbose=0)
    path = tmp_path_factory.mktemp("tiny_model") / "model.keras"
    model.save(path)
    return path


# file name -> why it must be skipped
BROKEN_FILES = {
    "empty.jpg": "empty file",
    "notes.jpg": "not an image",
    "truncated.jpg": "cannot decode",
    "garbage.png": "not an image",
}
# odd but readable images: all must be kept
ODD_FILES = (
    "gray.jpg",
    "alpha.png",
    "cmyk.jpg",
    "palette.png",
    "deep.png",
    "rotated.jpg",
    "photo.bmp",
    "anim.gif",
    "photo.webp",
)


def _photo(rng: np.random.Generator, size=(40, 56)) -> np.ndarray:
    """A smooth random RGB image (height, width) = `size`."""
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size[1], size[0]), Image.BILINEAR))


def write_odd_and_broken(folder: Path, seed: int = 0) -> None:
    """Write every kind of broken and odd image file into `folder`."""
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(_photo(rng))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("these are not pixels\n")
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "garbage.png").write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    rgb.convert("L").save(folder / "gray.jpg")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.full((40, 56), 60, dtype=np.uint8)))
    rgba.save(folder / "alpha.png")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    rgb.convert("P").save(folder / "palette.png")
    deep = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(deep).save(folder / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rgb.save(folder / "rotated.jpg", exif=exif)
    rgb.save(folder / "photo.bmp")
    rgb.save(folder / "anim.gif", save_all=True, append_images=[rgb.rotate(90)])
    rgb.save(folder / "photo.webp")


@pytest.fixture
def odd_and_broken(tmp_path: Path) -> SimpleNamespace:
    """A folder with every kind of broken and odd file: `.folder`, `.broken` (name ->
    reason), `.odd` (names that must be kept)."""
    write_odd_and_broken(tmp_path / "images")
    return SimpleNamespace(folder=tmp_path / "images", broken=BROKEN_FILES, odd=ODD_FILES)


@pytest.fixture(scope="session")
def messy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-class dataset (train/, test/) whose train/circle also holds broken and odd files."""
    root = tmp_path_factory.mktemp("messy")
    generate_dataset(root / "train", per_class=12, size=64, seed=3)
    generate_dataset(root / "test", per_class=4, size=64, seed=4)
    write_odd_and_broken(root / "train" / "circle")
    return root
