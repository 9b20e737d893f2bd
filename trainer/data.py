"""Class-per-folder datasets: listing, checking, stratified splits and tf.data pipelines."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.folders import describe_bad_files, list_class_folders
from tledge.core.input_contract import InputContract
from tledge.trainer.caching import CachePlan
from tledge.trainer.validation import ProgressCallback, check_images

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Split:
    """Images of one split: `paths[i]` (file fed to TensorFlow) has class `labels[i]`."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class DatasetSplits:
    """The train / validation / optional test images of a run.

    Attributes:
        class_names: Sorted class folder names; label i is `class_names[i]`.
        train: Training images (after `train_fraction`).
        val: Validation images (the val folder or a stratified hold-out of train).
        test: Test images, or None without a test folder.
        skipped: Number of unreadable files left out of all splits.
    """

    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split | None
    skipped: int


def load_splits(
    data: str,
    val: str | None,
    test: str | None,
    *,
    val_split: float,
    train_fraction: float,
    seed: int,
    convert_dir: Path,
    warn: Warn,
    on_progress: ProgressCallback | None = None,
    class_names: tuple[str, ...] | None = None,
) -> DatasetSplits:
    """List, check and split the images of a run.

    Args:
        data: Training folder (one sub-folder per class).
        val: Validation folder, or None to hold out `val_split` of the training images.
        test: Test folder, or None.
        val_split: Stratified fraction of the training images held out when `val` is None.
        train_fraction: Stratified, seeded fraction of the training images to keep.
        seed: Seed of the subset and hold-out choices.
        convert_dir: Folder for converted copies of odd images (see `check_images`).
        warn: Called with a message about skipped files.
        on_progress: Called with (stage, done, total) while images are checked.
        class_names: The classes of `data` in label order (a TFDS label feature's);
            None takes its sorted folder names.

    Raises:
        TledgeError: on an empty class folder, a class missing from val/test, no images,
            or no validation images.
    """
    train_all, class_names, skipped = _checked_folder(
        data, class_names, convert_dir, warn, "--data", on_progress
    )
    rng = np.random.default_rng(seed)
    if train_fraction < 1:
        train_all = _subset(train_all, train_fraction, rng)
    if val is not None:
        val_split_images, _, bad = _checked_folder(
            val, class_names, convert_dir, warn, "--val", on_progress
        )
        skipped += bad
        train_split = train_all
    else:
        if val_split == 0:
            raise TledgeError("--val-split is 0 and there is no --val folder: nothing to validate")
        val_split_images = _subset(train_all, val_split, rng)
        held_out = set(val_split_images.paths)
        train_split = _select(train_all, [p not in held_out for p in train_all.paths])
        if len(train_split) == 0:
            raise TledgeError(f"{data}: too few images to hold out --val-split {val_split}")
    test_split = None
    if test is not None:
        test_split, _, bad = _checked_folder(
            test, class_names, convert_dir, warn, "--test", on_progress
        )
        skipped += bad
    return DatasetSplits(class_names, train_split, val_split_images, test_split, skipped)


def _checked_folder(
    folder: str,
    class_names: tuple[str, ...] | None,
    convert_dir: Path,
    warn: Warn,
    option: str,
    on_progress: ProgressCallback | None,
) -> tuple[Split, tuple[str, ...], int]:
    listing = list_class_folders(folder, class_names)
    names = listing.class_names
    counts = np.bincount(listing.labels, minlength=len(names)) if listing.labels else None
    if counts is None:
        raise TledgeError(f"{folder}: no images found ({option} expects {folder}/<class>/*.jpg)")
    missing = [name for name, count in zip(names, counts, strict=True) if count == 0]
    if missing:
        what = "empty class folder" if class_names is None else "classes without images"
        raise TledgeError(f"{folder}: {what}: {', '.join(missing)} ({option})")
    checked = check_images(listing.paths, convert_dir, on_progress=on_progress)
    if checked.bad:
        warn(f"{option} {folder}: " + describe_bad_files(checked.bad))
    labels = tuple(listing.labels[i] for i in checked.keep)
    good_counts = np.bincount(labels, minlength=len(names)) if labels else np.zeros(len(names))
    unreadable = [name for name, count in zip(names, good_counts, strict=True) if count == 0]
    if unreadable:
        raise TledgeError(f"{folder}: no readable images in: {', '.join(unreadable)} ({option})")
    return Split(checked.paths, labels), names, len(checked.bad)


def _subset(split: Split, fraction: float, rng: np.random.Generator) -> Split:
    """A stratified random subset: `fraction` of each class, at least one image each."""
    labels = np.array(split.labels)
    chosen = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = max(1, round(len(members) * fraction))
        chosen[rng.permutation(members)[:count]] = True
    return _select(split, chosen.tolist())


def combined(first: Split, second: Split) -> Split:
    """One split holding the images of `first` then those of `second`."""
    return Split(first.paths + second.paths, first.labels + second.labels)


def _select(split: Split, mask: Sequence[bool]) -> Split:
    kept = [i for i, keep in enumerate(mask) if keep]
    return Split(tuple(split.paths[i] for i in kept), tuple(split.labels[i] for i in kept))


# Images in the shuffle buffer over a disk cache: bounded memory, still mixing well
# because the cached order is itself a shuffle of the whole file list.
STREAM_SHUFFLE_BUFFER = 1024
NO_CACHE = CachePlan("none")

# Version of how image_dataset turns files into pixels; cached features depend on it, so
# bump it whenever decoding or resizing changes.
PIXEL_PIPELINE_VERSION = 2


def image_dataset(
    split: Split,
    num_classes: int,
    input_contract: InputContract,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    augmenter=None,
    mixer=None,
    cache: CachePlan = NO_CACHE,
):
    """A batched tf.data pipeline of (float32 model inputs, one-hot labels).

    Files are decoded in parallel, fitted to the model input as `input_contract` says
    (the TensorFlow twin of the edge client's `fit_image`; a parity test holds them
    within one level) as uint8; then shuffled each epoch when
    `shuffle_seed` is given, put in the contract's colour order and value range, and
    augmented per batch when `augmenter` is given.

    Shuffling never relies on a bounded buffer over the class-sorted file list: the
    list itself is shuffled before decoding. With `cache.mode` "memory" the decoded
    images are kept in memory and reshuffled whole every epoch; with "disk" they are
    written once to a tf.data file cache (in the first epoch's shuffled order) and read
    back through a bounded shuffle buffer; with "none" the shuffled list is decoded
    again every epoch, so memory stays bounded by the prefetch and shuffle buffers.

    Args:
        split: The images and labels.
        num_classes: Length of the one-hot labels.
        input_contract: How the model takes images (the run's `InputContract`).
        batch_size: Batch size.
        shuffle_seed: Seed of the per-epoch shuffle; None keeps the file order.
        augmenter: A Keras layer applied to each batch with training=True.
        mixer: A Keras MixUp-style layer applied to each batch (images and labels)
            after `augmenter`.
        cache: Where decoded images live between epochs (see `tledge.trainer.caching`);
            the default decodes every pass, right for a dataset read once.
    """
    import tensorflow as tf

    def load(path, label):
        data = tf.io.read_file(path)
        # The exporter and the edge client decode with OpenCV, whose JPEG decoder uses
        # the accurate integer DCT; TF's default DCT differs by about one level per pixel,
        # enough to flip borderline answers between the run's metrics and the device.
        image = tf.cond(
            tf.io.is_jpeg(data),
            lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
            lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
        )
        image = _fitted(image, input_contract)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        image.set_shape((*input_contract.input_size, 3))
        return image, tf.one_hot(label, num_classes)

    paths = [str(path) for path in split.paths]
    dataset = tf.data.Dataset.from_tensor_slices((paths, list(split.labels)))
    shuffled = shuffle_seed is not None
    if cache.mode == "memory":
        dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).cache()
        if shuffled:
            dataset = dataset.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)
    elif cache.mode == "disk":
        if shuffled:
            # One fixed order for the cache file; the buffer below varies it per epoch.
            dataset = dataset.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=False)
        cache_file = _disk_cache_file(split, input_contract, shuffle_seed, cache)
        dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).cache(str(cache_file))
        if shuffled:
            buffer = min(len(split), STREAM_SHUFFLE_BUFFER)
            dataset = dataset.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    else:
        if shuffled:
            dataset = dataset.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)
        dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size).map(
        lambda image, label: (_model_values(image, input_contract), label)
    )
    if augmenter is not None:
        dataset = dataset.map(
            lambda image, label: (augmenter(image, training=True), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if mixer is not None:
        dataset = dataset.map(
            lambda image, label: _mixed(mixer, image, label), num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _disk_cache_file(
    split: Split, input_contract: InputContract, shuffle_seed: int | None, cache: CachePlan
) -> Path:
    """The tf.data cache file of `split`: named by everything its contents depend on.

    A process killed while writing leaves lock files that would make the next run fail
    with "concurrent caching iterator"; the folder is one run's own and a run is one
    process, so any lock file found before the pipeline starts is stale and removed.
    """
    if cache.folder is None:
        raise ValueError("a disk cache needs CachePlan.folder")
    text = json.dumps(
        [
            [str(p) for p in split.paths],
            list(split.labels),
            repr(input_contract),
            shuffle_seed,
            PIXEL_PIPELINE_VERSION,
        ]
    )
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]
    name = f"images_{digest}"
    cache.folder.mkdir(parents=True, exist_ok=True)
    for stale in cache.folder.glob(f"{name}*.lockfile"):
        stale.unlink(missing_ok=True)
    return cache.folder / name


def _fitted(image, contract: InputContract):
    """Crop and resize a decoded HxWx3 image as `tledge.edge.images.fit_image` does."""
    import tensorflow as tf

    if contract.resize == "center_crop":
        shape = tf.shape(image)
        height, width = shape[0], shape[1]
        shorter = tf.cast(tf.minimum(height, width), tf.float64)
        # tf.round rounds half to even, like Python's round() in `center_crop`.
        side = tf.maximum(1, tf.cast(tf.round(shorter * contract.crop_fraction), tf.int32))
        top, left = (height - side) // 2, (width - side) // 2
        image = image[top : top + side, left : left + side]
    if contract.interpolation == "bilinear_no_half_pixel":
        # tf.image.resize has no way to turn half-pixel centres off; the raw op does.
        return tf.raw_ops.ResizeBilinear(
            images=image[tf.newaxis],
            size=contract.input_size,
            align_corners=False,
            half_pixel_centers=False,
        )[0]
    return tf.image.resize(
        image, contract.input_size, method=contract.interpolation, antialias=False
    )


def _model_values(images, contract: InputContract):
    """uint8 RGB batch -> float32 in the contract's colour order and value range."""
    import tensorflow as tf

    values = tf.cast(images, tf.float32)
    if contract.color_order == "BGR":
        values = values[..., ::-1]
    if any(contract.mean) or any(value != 1 for value in contract.std):
        values = (values - tf.constant(contract.mean)) / tf.constant(contract.std)
    return values


def _mixed(mixer, images, labels):
    mixed = mixer({"images": images, "labels": labels}, training=True)
    return mixed["images"], mixed["labels"]


def build_augmenter(seed: int):
    """The training augmentation: flip, small rotation, zoom, translation and contrast.

    It runs in the tf.data pipeline, so saved models never contain it.
    """
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.08, seed=seed + 1),
            keras.layers.RandomZoom(0.15, seed=seed + 2),
            keras.layers.RandomTranslation(0.1, 0.1, seed=seed + 3),
            keras.layers.RandomContrast(0.2, seed=seed + 4),
        ],
        name="augmentation",
    )


def build_mixer(alpha: float, seed: int):
    """MixUp: each image (and its label) blended with another of the batch.

    The blend weights follow Beta(alpha, alpha); small alphas mostly keep one image.
    """
    import keras

    return keras.layers.MixUp(alpha=alpha, seed=seed + 5)
