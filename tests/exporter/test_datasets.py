"""Calibration and held-out images: class balance, seeding, model-size raw pixels."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract
from tledge.edge.images import fit_image, read_rgb
from tledge.exporter.datasets import calibration_per_class, load_image_set

LABELS = ["circle", "square", "stripes", "triangle"]
SMALL = InputContract.raw_rgb_stretch((16, 16))


def test_held_out_set_is_every_image_at_model_size(tiny_dataset):
    contract = InputContract.raw_rgb_stretch((40, 48))
    images = load_image_set(tiny_dataset / "test", LABELS, contract)
    assert images.images.shape == (32, 40, 48, 3)
    assert images.images.dtype == np.uint8
    assert Counter(images.labels.tolist()) == {0: 8, 1: 8, 2: 8, 3: 8}
    first = fit_image(read_rgb(images.paths[0]), contract)
    np.testing.assert_array_equal(images.images[0], first)
    assert images.skipped == ()
    assert images.paths[0].parent.name == LABELS[images.labels[0]]


def test_calibration_draw_is_class_balanced_and_seeded(tiny_dataset):
    per_class = calibration_per_class(10, len(LABELS))
    assert per_class == 3
    first = load_image_set(tiny_dataset / "train", LABELS, SMALL, per_class, seed=3)
    again = load_image_set(tiny_dataset / "train", LABELS, SMALL, per_class, seed=3)
    other = load_image_set(tiny_dataset / "train", LABELS, SMALL, per_class, seed=4)
    assert Counter(first.labels.tolist()) == {0: 3, 1: 3, 2: 3, 3: 3}
    assert first.paths == again.paths
    assert set(first.paths) != set(other.paths)


def test_calibration_takes_what_there_is(tiny_dataset):
    images = load_image_set(tiny_dataset / "test", LABELS, SMALL, limit_per_class=500)
    assert len(images.paths) == 32


def test_progress_is_reported_per_image(tiny_dataset):
    calls = []
    load_image_set(
        tiny_dataset / "test",
        LABELS,
        SMALL,
        stage="held-out",
        on_progress=lambda *call: calls.append(call),
    )
    assert calls[0] == ("held-out", 1, 32)
    assert calls[-1] == ("held-out", 32, 32)


def test_unknown_class_folder_is_an_error(tiny_dataset):
    with pytest.raises(TledgeError, match="not in the model's labels"):
        load_image_set(tiny_dataset / "test", ["circle", "square"], SMALL)


def test_empty_dataset_is_an_error(tmp_path):
    (tmp_path / "circle").mkdir()
    with pytest.raises(TledgeError, match="no images"):
        load_image_set(tmp_path, LABELS, SMALL)


def test_images_are_fitted_by_the_contract(tiny_dataset):
    """A center-crop contract crops: the set is not the stretched image (checked by
    making `load_image_set` stretch regardless of the contract: this test failed)."""
    crop = InputContract(
        input_size=(16, 16),
        resize="center_crop",
        interpolation="area",
        crop_fraction=0.5,
        color_order="RGB",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )
    images = load_image_set(tiny_dataset / "test", LABELS, crop)
    rgb = read_rgb(images.paths[0])
    np.testing.assert_array_equal(images.images[0], fit_image(rgb, crop))
    assert not np.array_equal(images.images[0], fit_image(rgb, SMALL))


def _copy_test_set(tiny_dataset, tmp_path):
    import shutil

    return Path(shutil.copytree(tiny_dataset / "test", tmp_path / "test"))


def test_unreadable_images_are_skipped_and_named(tiny_dataset, tmp_path):
    """Issue 15: one bad photo aborted the whole export (failed before the fix)."""
    root = _copy_test_set(tiny_dataset, tmp_path)
    (root / "circle" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "square" / "empty.png").write_bytes(b"")

    images = load_image_set(root, LABELS, SMALL)

    assert len(images.paths) == 32
    assert dict(images.skipped) == {
        root / "circle" / "broken.jpg": "not a readable image",
        root / "square" / "empty.png": "empty file",
    }


def test_a_class_with_no_readable_image_is_an_error_that_counts(tiny_dataset, tmp_path):
    root = _copy_test_set(tiny_dataset, tmp_path)
    for path in (root / "circle").iterdir():
        path.write_bytes(b"broken")
    with pytest.raises(TledgeError, match=r"no readable images in: circle \(8 of 32 files"):
        load_image_set(root, LABELS, SMALL)
