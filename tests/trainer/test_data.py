"""Listing, checking and splitting datasets; the tf.data pipeline."""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract
from tledge.trainer.data import Split, build_mixer, image_dataset, load_splits
from tledge.trainer.synthetic import generate_dataset

SMALL = InputContract.raw_rgb_stretch((32, 32))


def _load(root: Path, tmp_path: Path, messages: list[str] | None = None, **overrides):
    options = dict(val=None, test=None, val_split=0.25, train_fraction=1.0, seed=0)
    options.update(overrides)
    sink = messages if messages is not None else []
    return load_splits(str(root), convert_dir=tmp_path / "converted", warn=sink.append, **options)


def test_val_split_is_stratified_and_disjoint(tiny_dataset: Path, tmp_path: Path) -> None:
    splits = _load(tiny_dataset / "train", tmp_path)
    assert splits.class_names == ("circle", "square", "stripes", "triangle")
    assert Counter(splits.val.labels) == {0: 6, 1: 6, 2: 6, 3: 6}
    assert Counter(splits.train.labels) == {0: 18, 1: 18, 2: 18, 3: 18}
    assert not set(splits.train.paths) & set(splits.val.paths)
    assert splits.test is None and splits.skipped == 0


def test_train_fraction_is_stratified_and_seeded(tiny_dataset: Path, tmp_path: Path) -> None:
    first = _load(tiny_dataset / "train", tmp_path, train_fraction=0.5, seed=7)
    again = _load(tiny_dataset / "train", tmp_path, train_fraction=0.5, seed=7)
    other = _load(tiny_dataset / "train", tmp_path, train_fraction=0.5, seed=8)
    assert len(first.train) + len(first.val) == 48
    assert Counter(first.val.labels) == {0: 3, 1: 3, 2: 3, 3: 3}
    assert first.train.paths == again.train.paths
    assert first.train.paths != other.train.paths


def test_val_and_test_folders(tiny_dataset: Path, tmp_path: Path) -> None:
    splits = _load(
        tiny_dataset / "train",
        tmp_path,
        val=str(tiny_dataset / "test"),
        test=str(tiny_dataset / "test"),
    )
    assert len(splits.train) == 96 and len(splits.val) == 32 and len(splits.test) == 32


def test_messy_folder_uses_every_good_image(messy_dataset: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    splits = _load(messy_dataset / "train", tmp_path, messages, val_split=0.2)
    assert splits.skipped == 4
    assert len(splits.train) + len(splits.val) == 4 * 12 + 9
    assert len(messages) == 1
    for name in ("empty.jpg", "notes.jpg", "truncated.jpg", "garbage.png"):
        assert name in messages[0]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: (root / "train" / "square").mkdir(), "empty class folder: square"),
        (lambda root: shutil.rmtree(root / "test" / "stripes"), "classes without images: stripes"),
        (lambda root: (root / "test" / "extra").mkdir(), "not in the model's labels"),
    ],
)
def test_dataset_errors_are_one_line(tmp_path: Path, setup, message: str) -> None:
    root = tmp_path / "data"
    generate_dataset(root / "train", per_class=3, size=32, classes=("circle", "stripes"))
    generate_dataset(root / "test", per_class=2, size=32, classes=("circle", "stripes"))
    setup(root)
    with pytest.raises(TledgeError, match=message) as error:
        _load(root / "train", tmp_path, test=str(root / "test"))
    assert "\n" not in str(error.value)


def test_no_images_at_all(tmp_path: Path) -> None:
    (tmp_path / "data" / "cats").mkdir(parents=True)
    (tmp_path / "data" / "cats" / "readme.txt").write_text("no pictures")
    with pytest.raises(TledgeError, match="no images found"):
        _load(tmp_path / "data", tmp_path)


def test_class_with_only_unreadable_files(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "data", per_class=2, size=32, classes=("circle",))
    (tmp_path / "data" / "square").mkdir()
    (tmp_path / "data" / "square" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(TledgeError, match="no readable images in: square"):
        _load(tmp_path / "data", tmp_path)


def test_image_dataset_resizes_whole_image_as_mediapipe_does(tmp_path: Path) -> None:
    import cv2

    generate_dataset(tmp_path / "data", per_class=5, size=48, classes=("circle", "square"))
    splits = _load(tmp_path / "data", tmp_path, val_split=0.2)
    contract = InputContract.raw_rgb_stretch((32, 40))
    images, labels = next(iter(image_dataset(splits.train, 2, contract, batch_size=8)))
    assert images.shape == (8, 32, 40, 3) and images.dtype.name == "float32"
    assert labels.shape == (8, 2) and np.all(labels.numpy().sum(axis=1) == 1)
    rgb = cv2.cvtColor(cv2.imread(str(splits.train.paths[0])), cv2.COLOR_BGR2RGB)
    # MediaPipe's CPU resize (corners onto corners), which tledge's own models now take.
    corners = np.float32([[0, 0], [1, 0], [1, 1], [0, 1]])
    matrix = cv2.getPerspectiveTransform(corners * np.float32(48), corners * np.float32([40, 32]))
    reference = cv2.warpPerspective(
        rgb, matrix, (40, 32), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)
    assert np.abs(images[0].numpy() - reference).max() <= 1
    half_pixel = cv2.resize(rgb, (40, 32), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    assert np.abs(images[0].numpy() - half_pixel).max() > 1


def _photos(folder: Path) -> Split:
    """JPEG and PNG photos of several shapes (smooth content plus noise), one class: larger
    and smaller than the inputs of `CONTRACTS`, so up- and downscaling both show."""
    import cv2

    rng = np.random.default_rng(7)
    (folder / "a").mkdir(parents=True)
    paths = []
    shapes = ((48, 48), (37, 53), (61, 41), (90, 120), (13, 19))
    for index, (height, width) in enumerate(shapes):
        rows, columns = np.mgrid[0:height, 0:width]
        smooth = np.stack([rows * 3, columns * 2, (rows + columns) * 2], axis=-1) % 256
        noisy = np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)
        for suffix in (".jpg", ".png"):
            path = folder / "a" / f"{index}{suffix}"
            cv2.imwrite(str(path), noisy)
            paths.append(path)
    return Split(tuple(paths), (0,) * len(paths))


CONTRACTS = {
    "stretch bilinear_no_half_pixel": InputContract.raw_rgb_stretch((32, 40)),
    "stretch bilinear": InputContract.raw_rgb_stretch_half_pixel((32, 40)),
    "model size": InputContract.raw_rgb_stretch((48, 48)),
    "center crop bilinear_no_half_pixel": InputContract(
        (24, 24), "center_crop", "bilinear_no_half_pixel", 0.875, "RGB", (0.0,) * 3, (1.0,) * 3
    ),
    "center crop bilinear": InputContract(
        (24, 24), "center_crop", "bilinear", 0.875, "RGB", (0.0,) * 3, (1.0,) * 3
    ),
    "center crop area": InputContract(
        (24, 24), "center_crop", "area", 0.5, "RGB", (0.0,) * 3, (1.0,) * 3
    ),
}


@pytest.mark.parametrize("name", CONTRACTS)
def test_training_pixels_match_what_the_edge_client_reads(tmp_path: Path, name: str) -> None:
    """Training's TF decode and fit against the device's (`read_rgb` + `fit_image`, what
    `Classifier.fit_to_input` runs) for every kind of contract: at most one level apart;
    for "bilinear_no_half_pixel", whose sample coordinates OpenCV rounds to 1/32 pixel
    (TF's are exact), at most three and under half a level on average: next to jumps of
    about 100 levels between neighbouring pixels of these noisy photos, 1/64 pixel on
    each axis is up to 1.6 levels each (measured: 3 at most). (Checked by decoding with TF's
    default DCT, by cropping with floor instead of round,
    and by resizing with "area" for a bilinear contract: each failed.)"""
    from tledge.edge.images import fit_image, read_rgb

    contract = CONTRACTS[name]
    split = _photos(tmp_path / "photos")
    batch = next(iter(image_dataset(split, 1, contract, batch_size=len(split))))[0].numpy()
    for image, path in zip(batch, split.paths, strict=True):
        device = fit_image(read_rgb(path), contract).astype(np.float32)
        assert image.shape == device.shape
        # Only the rounding of OpenCV's fixed-point resize differs, and nothing when
        # the photo is already at the input size.
        difference = np.abs(image - device)
        if contract.interpolation == "bilinear_no_half_pixel":
            assert difference.max() <= 3 and difference.mean() < 0.5, (path, name)
        else:
            assert difference.max() <= 1, (path, name)


@pytest.mark.parametrize(
    ("interpolation", "expected"), [("bilinear_no_half_pixel", [0, 80]), ("bilinear", [20, 100])]
)
def test_halving_a_ramp_reads_the_pixels_each_convention_names(
    tmp_path: Path, interpolation: str, expected: list[int]
) -> None:
    """4 -> 2 columns: MediaPipe's convention reads source x = 0 and 2 (the pixels
    themselves), half-pixel centres x = 0.5 and 2.5 (averages); training and the edge
    client compute the same values."""
    import cv2

    from tledge.edge.images import fit_image, read_rgb

    ramp = np.repeat(np.array([0, 40, 80, 120], np.uint8)[None, :, None], 3, axis=2)
    (tmp_path / "a").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "ramp.png"), np.repeat(ramp, 4, axis=0))
    split = Split((tmp_path / "a" / "ramp.png",), (0,))
    contract = dataclasses.replace(
        InputContract.raw_rgb_stretch((2, 2)), interpolation=interpolation
    )
    trained = next(iter(image_dataset(split, 1, contract, batch_size=1)))[0].numpy()[0]
    np.testing.assert_array_equal(trained[..., 0], [expected, expected])
    device = fit_image(read_rgb(split.paths[0]), contract)
    np.testing.assert_array_equal(device[..., 0], [expected, expected])


def test_colour_order_and_value_range_follow_the_contract(tmp_path: Path) -> None:
    split = _photos(tmp_path / "photos")
    rgb = InputContract.raw_rgb_stretch((16, 16))
    bgr_scaled = dataclasses.replace(rgb, color_order="BGR", mean=(1.0, 2.0, 3.0), std=(2.0,) * 3)
    plain = next(iter(image_dataset(split, 1, rgb, batch_size=2)))[0].numpy()
    moved = next(iter(image_dataset(split, 1, bgr_scaled, batch_size=2)))[0].numpy()
    np.testing.assert_allclose(moved, (plain[..., ::-1] - [1.0, 2.0, 3.0]) / 2.0, rtol=1e-6)


def test_shuffle_is_seeded_and_changes_each_epoch(tiny_dataset: Path, tmp_path: Path) -> None:
    splits = _load(tiny_dataset / "train", tmp_path)

    def label_order(dataset) -> list[int]:
        return [int(i) for _, y in dataset for i in np.argmax(y.numpy(), axis=1)]

    dataset = image_dataset(splits.train, 4, SMALL, batch_size=16, shuffle_seed=3)
    epoch_one, epoch_two = label_order(dataset), label_order(dataset)
    same_seed = label_order(image_dataset(splits.train, 4, SMALL, 16, shuffle_seed=3))
    assert epoch_one != epoch_two
    assert sorted(epoch_one) == sorted(splits.train.labels)
    assert same_seed == epoch_one


def test_mixup_blends_images_and_labels_alike(tiny_dataset: Path, tmp_path: Path) -> None:
    splits = _load(tiny_dataset / "train", tmp_path)
    options = dict(batch_size=16, shuffle_seed=3)  # same order, several classes per batch
    plain = image_dataset(splits.train, 4, SMALL, **options)
    mixed = image_dataset(splits.train, 4, SMALL, mixer=build_mixer(0.4, 0), **options)
    (images, labels), (mixed_images, mixed_labels) = next(iter(plain)), next(iter(mixed))
    images, labels = images.numpy().reshape(16, -1), labels.numpy()
    mixed_images, mixed_labels = mixed_images.numpy().reshape(16, -1), mixed_labels.numpy()
    blended = 0
    for i in range(16):
        # Output i is w * image i + (1 - w) * image j, and its label is mixed alike.
        fits = []
        for j in range(16):
            direction = images[i] - images[j]
            norm = float(direction @ direction)
            weight = 1.0 if norm == 0 else float((mixed_images[i] - images[j]) @ direction) / norm
            error = np.abs(weight * images[i] + (1 - weight) * images[j] - mixed_images[i]).max()
            fits.append((error, weight, j))
        error, weight, j = min(fits)
        assert error < 0.01 and -1e-3 <= weight <= 1 + 1e-3
        expected = weight * labels[i] + (1 - weight) * labels[j]
        np.testing.assert_allclose(mixed_labels[i], expected, atol=1e-3)
        blended += 0.01 < weight < 0.99 and not np.array_equal(labels[i], labels[j])
    assert blended > 0
