"""Images fed to the model during export: the calibration sample and the held-out set.

Every image goes in exactly as the model receives it in training: decoded to RGB,
resized as a whole ("stretch", bilinear, like `tf.image.resize`), raw 0-255 values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.folders import list_class_folders
from tledge.edge.images import read_rgb, resize_image

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImageSet:
    """Images resized to the model input, with their class indices.

    Attributes:
        images: uint8 array [N, h, w, 3], RGB.
        labels: int array [N] of class indices into the model's labels.
        paths: The image files, in the same order.
    """

    images: np.ndarray
    labels: np.ndarray
    paths: tuple[Path, ...]


def load_image_set(
    root: str | os.PathLike,
    class_names: Sequence[str],
    input_size: tuple[int, int],
    limit_per_class: int | None = None,
    seed: int = 0,
    stage: str = "loading images",
    on_progress: ProgressCallback | None = None,
) -> ImageSet:
    """Read a class-per-folder dataset at the model's input size.

    Args:
        root: Folder with one sub-folder per class (names from `class_names`).
        class_names: The model's labels, in output order.
        input_size: (height, width) of the model input.
        limit_per_class: Keep at most this many images per class, drawn with `seed`.
        seed: Seed of the draw.
        stage: Name passed to `on_progress`.
        on_progress: Called as `on_progress(stage, done, total)`.

    Raises:
        TledgeError: when the folder holds no images or classes the model does not know.
    """
    folders = list_class_folders(root, list(class_names))
    paths, labels = _balanced_pick(folders.paths, folders.labels, limit_per_class, seed)
    if not paths:
        raise TledgeError(f"{folders.root}: no images found in the class folders")
    height, width = input_size
    images = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    for index, path in enumerate(paths):
        images[index] = resize_image(read_rgb(path), (height, width), "stretch")
        if on_progress:
            on_progress(stage, index + 1, len(paths))
    return ImageSet(images, np.asarray(labels, dtype=np.int64), tuple(paths))


def calibration_per_class(total: int, num_classes: int) -> int:
    """Images per class so that a class-balanced sample holds about `total` images."""
    return max(1, -(-total // num_classes))


def _balanced_pick(
    paths: Sequence[Path], labels: Sequence[int], per_class: int | None, seed: int
) -> tuple[list[Path], list[int]]:
    """At most `per_class` paths of each class, drawn with `seed`, in a seeded shuffled order."""
    if per_class is None:
        return list(paths), list(labels)
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    label_array = np.asarray(labels)
    for label in sorted(set(labels)):
        members = np.flatnonzero(label_array == label)
        picked.extend(rng.permutation(members)[:per_class].tolist())
    picked = rng.permutation(np.asarray(picked, dtype=np.int64)).tolist()
    return [paths[i] for i in picked], [labels[i] for i in picked]
