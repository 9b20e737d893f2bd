"""TFDS sources, tested offline on a tiny dataset built and prepared here (no download).

Preparing it imports TensorFlow Datasets and runs TensorFlow: slow on a loaded machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.trainer.data import load_splits
from tledge.trainer.tfds_source import parse_source, resolve_sources

tfds = pytest.importorskip("tensorflow_datasets")

# Deliberately not sorted: the run's classes must keep the label feature's order.
NAMES = ("zebra", "apple", "mango")
COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200))
SPLITS = {"train": 9, "validation": 6}


class TinyColours(tfds.core.GeneratorBasedBuilder):
    """Three classes of 24x24 colour patches, one per label, written as PNG by TFDS."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(24, 24, 3)),
                    "label": tfds.features.ClassLabel(names=list(NAMES)),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split, n) for split, n in SPLITS.items()}

    def _generate_examples(self, split, count):
        rng = np.random.default_rng(len(split))
        for index in range(count):
            label = index % len(NAMES)
            noise = rng.integers(-20, 21, size=(24, 24, 3))
            image = np.clip(np.array(COLOURS[label]) + noise, 0, 255).astype(np.uint8)
            yield f"{split}_{index}", {"image": image, "label": label}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tfds")
    TinyColours(data_dir=str(folder)).download_and_prepare()
    return folder


def test_parse_source_defaults_the_split_per_option() -> None:
    assert parse_source("tfds:food101", "--data").split == "train"
    assert parse_source("tfds:food101", "--test").split == "test"
    assert parse_source("tfds:food101/validation", "--test").split == "validation"
    assert parse_source("tfds:food101/train[:10%]", "--data").split == "train[:10%]"
    with pytest.raises(TledgeError, match="expected tfds:NAME"):
        parse_source("tfds:", "--data")


@pytest.mark.slow
def test_tfds_splits_become_folders_in_label_order(data_dir: Path, tmp_path: Path) -> None:
    sources = resolve_sources(
        "tfds:tiny_colours", None, "tfds:tiny_colours/validation", str(data_dir), tmp_path / "f"
    )
    assert sources.class_names == NAMES
    splits = load_splits(
        sources.data,
        sources.val,
        sources.test,
        val_split=1 / 3,
        train_fraction=1.0,
        seed=0,
        convert_dir=tmp_path / "converted",
        warn=lambda message: None,
        class_names=sources.class_names,
    )
    assert splits.class_names == NAMES
    assert len(splits.train) + len(splits.val) == SPLITS["train"]
    assert len(splits.test) == SPLITS["validation"]
    # Each file holds the pixels TFDS decodes, under the folder of its label's name.
    reference = {
        tuple(image.reshape(-1, 3).mean(axis=0).round()): int(label)
        for image, label in tfds.as_numpy(
            TinyColours(data_dir=str(data_dir)).as_dataset(split="train", as_supervised=True)
        )
    }
    from tledge.edge.images import read_rgb

    for path, label in zip(splits.train.paths, splits.train.labels, strict=True):
        mean = tuple(read_rgb(path).reshape(-1, 3).mean(axis=0).round())
        assert reference[mean] == label and path.parent.name == NAMES[label]
    again = resolve_sources("tfds:tiny_colours", None, None, str(data_dir), tmp_path / "f")
    assert again.data == sources.data  # written once, then reused


@pytest.mark.slow
def test_unprepared_data_dir_stops_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(TledgeError) as error:
        resolve_sources("tfds:tiny_colours", None, None, str(tmp_path / "empty"), tmp_path)
    message = str(error.value)
    assert "\n" not in message and "not prepared in" in message
    assert "download_and_prepare" in message and "--tfds-data-dir" in message


@pytest.mark.slow
def test_unknown_split_names_the_splits(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TledgeError, match="unknown split .*train, validation"):
        resolve_sources("tfds:tiny_colours", None, "tfds:tiny_colours", str(data_dir), tmp_path)


@pytest.mark.slow
def test_training_on_tfds_writes_its_label_names(data_dir: Path, tmp_path: Path) -> None:
    from tledge.trainer.config import TrainConfig
    from tledge.trainer.training import train

    config = TrainConfig(
        data="tfds:tiny_colours",
        test="tfds:tiny_colours/validation",
        tfds_data_dir=str(data_dir),
        weights="none",
        alpha=0.35,
        image_size=(32, 32),
        epochs=1,
        fine_tune_epochs=0,
        refit=False,
        augment=False,
        batch_size=4,
        output=str(tmp_path / "runs"),
    )
    result = train(config)
    assert result.run.labels.read_text().split() == list(NAMES)
    assert result.metrics["num_test_images"] == SPLITS["validation"]

    # Every reader of the run finds the written-out splits through run_image_folder:
    # `tledge evaluate`'s default data, the exporter's calibration and drift data,
    # `--from-run` updates. Checked to fail: with the exporter reading config.test as a
    # folder again, its eval_data was None.
    from tledge.analysis.evaluation import default_data, evaluate_run
    from tledge.core.sources import SOURCES_FILE, run_image_folder
    from tledge.exporter.loading import resolve_source

    run = result.run
    written = tmp_path / "runs" / ".tfds_files"
    test_folder = next(written.glob("tiny_colours_*/validation"))
    train_folder = next(written.glob("tiny_colours_*/train"))
    assert run_image_folder(run, "test") == test_folder.resolve()
    assert default_data(run) == test_folder.resolve()
    source = resolve_source(run.root)
    assert (source.calibration_data, source.eval_data) == (
        train_folder.resolve(),
        test_folder.resolve(),
    )
    evaluation, _ = evaluate_run(run.root)
    assert len(evaluation.paths) == SPLITS["validation"]
    # A run from before sources.json: the completed split beside the run folder.
    (run.root / SOURCES_FILE).unlink()
    assert run_image_folder(run, "data") == train_folder.resolve()
    assert run_image_folder(run, "val") is None
