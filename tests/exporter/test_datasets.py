"""Calibration and held-out images: class balance, seeding, model-size raw pixels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.edge.images import read_rgb, resize_image
from tledge.exporter.datasets import calibration_per_class, load_image_set

LABELS = ["circle", "square", "stripes", "triangle"]


def test_held_out_set_is_every_image_at_model_size(tiny_dataset):
    images = load_image_set(tiny_dataset / "test", LABELS, (40, 48))
    assert images.images.shape == (32, 40, 48, 3)
    assert images.images.dtype == np.uint8
    assert Counter(images.labels.tolist()) == {0: 8, 1: 8, 2: 8, 3: 8}
    first = resize_image(read_rgb(images.paths[0]), (40, 48), "stretch", interpolation="bilinear")
    np.testing.assert_array_equal(images.images[0], first)
    assert images.paths[0].parent.name == LABELS[images.labels[0]]


def test_calibration_draw_is_class_balanced_and_seeded(tiny_dataset):
    per_class = calibration_per_class(10, len(LABELS))
    assert per_class == 3
    first = load_image_set(tiny_dataset / "train", LABELS, (16, 16), per_class, seed=3)
    again = load_image_set(tiny_dataset / "train", LABELS, (16, 16), per_class, seed=3)
    other = load_image_set(tiny_dataset / "train", LABELS, (16, 16), per_class, seed=4)
    assert Counter(first.labels.tolist()) == {0: 3, 1: 3, 2: 3, 3: 3}
    assert first.paths == again.paths
    assert set(first.paths) != set(other.paths)


def test_calibration_takes_what_there_is(tiny_dataset):
    images = load_image_set(tiny_dataset / "test", LABELS, (16, 16), limit_per_class=500)
    assert len(images.paths) == 32


def test_progress_is_reported_per_image(tiny_dataset):
    calls = []
    load_image_set(
        tiny_dataset / "test",
        LABELS,
        (16, 16),
        stage="held-out",
        on_progress=lambda *call: calls.append(call),
    )
    assert calls[0] == ("held-out", 1, 32)
    assert calls[-1] == ("held-out", 32, 32)


def test_unknown_class_folder_is_an_error(tiny_dataset):
    with pytest.raises(TledgeError, match="not in the model's labels"):
        load_image_set(tiny_dataset / "test", ["circle", "square"], (16, 16))


def test_empty_dataset_is_an_error(tmp_path):
    (tmp_path / "circle").mkdir()
    with pytest.raises(TledgeError, match="no images"):
        load_image_set(tmp_path, LABELS, (16, 16))
