"""The feature cache streams: written batch by batch, read back row by row.

Checked to fail: with `write_features` writing rows out of order (each batch reversed),
the written file differed from `predict`; with `feature_dataset` reading row `i + 1`
for `i`, the rows no longer matched their labels; with the shuffle removed, the two
epochs came out in the same, class-sorted order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tledge.core.folders import list_class_folders
from tledge.trainer.backbones import get_backbone
from tledge.trainer.data import Split
from tledge.trainer.features import (
    HEAD_INPUT_LAYER,
    FeatureRows,
    feature_dataset,
    feature_pass,
    write_features,
)
from tledge.trainer.model import build_classifier, calibrate_batchnorm


@pytest.fixture(scope="module")
def split(tiny_dataset: Path) -> Split:
    listing = list_class_folders(tiny_dataset / "train")
    return Split(tuple(listing.paths), tuple(listing.labels))


@pytest.mark.slow
def test_written_features_equal_predict_and_pass_is_timed(split, tmp_path):
    import keras

    from tledge.trainer.data import image_dataset

    spec = get_backbone("mobilenetv2")
    model = build_classifier(spec, (32, 32), 0.35, "none", 4, 0.2)
    contract = spec.run_input_contract((32, 32))
    images = image_dataset(split, 1, contract, 8).map(lambda image, _: image)
    # As training does: without it a random backbone's features are almost constant.
    calibrate_batchnorm(model, next(iter(image_dataset(split, 1, contract, 96)))[0])
    path = write_features(model, split, contract, 8, tmp_path / "f.npy")
    extractor = keras.Model(model.inputs, model.get_layer(HEAD_INPUT_LAYER).input)
    expected = extractor.predict(images, verbose=0)
    assert not np.allclose(expected[0], expected[1], rtol=1e-3)  # rows tell images apart
    np.testing.assert_allclose(np.load(path), expected, rtol=1e-5, atol=1e-6)
    timed = feature_pass(path)
    assert timed["images"] == len(split) == 96 and timed["batch_size"] == 8
    assert timed["steady_images_per_second"] > 0
    assert json.loads((tmp_path / "f.npy.pass.json").read_text()) == timed


def test_streamed_rows_each_once_per_epoch_with_their_labels(split, tmp_path):
    # Row i holds (i, label_i) so a mismatch shows.
    rows = np.stack([np.arange(len(split)), split.labels], axis=1).astype("<f4")
    np.save(tmp_path / "rows.npy", rows)
    assert FeatureRows(tmp_path / "rows.npy").read(np.array([5, 0, 5]))[:, 0].tolist() == [5, 0, 5]
    dataset = feature_dataset(tmp_path / "rows.npy", split, 4, 10, shuffle_seed=3)
    epochs = []
    for _ in range(2):
        seen = []
        for features, labels in dataset.as_numpy_iterator():
            assert (features[:, 1] == labels.argmax(axis=1)).all()
            seen += features[:, 0].astype(int).tolist()
        assert sorted(seen) == list(range(len(split)))
        epochs.append(seen)
    assert epochs[0] != epochs[1]
    # Classes are mixed: the first batch is not all one class.
    assert len({split.labels[i] for i in epochs[0][:10]}) > 1


def test_a_file_of_the_wrong_length_is_refused(split, tmp_path):
    np.save(tmp_path / "short.npy", np.zeros((3, 2), "<f4"))
    with pytest.raises(ValueError, match="3 rows for 96 images"):
        feature_dataset(tmp_path / "short.npy", split, 4, 10)
