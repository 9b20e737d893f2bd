"""Images fed to the model during export: the calibration sample and the held-out set.

Every image is decoded and fitted to the model input as the edge client does it
(`tledge.edge.images.read_rgb` and `fit_image`, following the run's `InputContract`), so
the Keras reference, the int8 calibration and the drift check see the device's pixels.
Unreadable files are skipped and named, as in training.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.folders import list_class_folders
from tledge.core.input_contract import InputContract
from tledge.edge.images import fit_image, read_rgb

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImageSet:
    """Images fitted to the model input, with their class indices.

    Attributes:
        images: uint8 array [N, h, w, 3], RGB, as `fit_image` returns them.
        labels: int array [N] of class indices into the model's labels.
        paths: The image files, in the same order.
        skipped: (file, reason) of each unreadable file left out.
    """

    images: np.ndarray
    labels: np.ndarray
    paths: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...] = ()


def load_image_set(
    root: str | os.PathLike,
    class_names: Sequence[str],
    input_contract: InputContract,
    limit_per_class: int | None = None,
    seed: int = 0,
    stage: str = "loading images",
    on_progress: ProgressCallback | None = None,
) -> ImageSet:
    """Read a class-per-folder dataset fitted to the model input.

    Args:
        root: Folder with one sub-folder per class (names from `class_names`).
        class_names: The model's labels, in output order.
        input_contract: How the model takes images (size, resize, interpolation).
        limit_per_class: Keep at most this many images per class, drawn with `seed`.
        seed: Seed of the draw.
        stage: Name passed to `on_progress`.
        on_progress: Called as `on_progress(stage, done, total)`.

    Returns:
        The readable images; the unreadable ones are listed in `skipped`.

    Raises:
        TledgeError: when the folder holds no images, classes the model does not know,
            or a class whose every image is unreadable.
    """
    folders = list_class_folders(root, list(class_names))
    paths, labels = _balanced_pick(folders.paths, folders.labels, limit_per_class, seed)
    if not paths:
        raise TledgeError(f"{folders.root}: no images found in the class folders")
    height, width = input_contract.input_size
    images = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    kept: list[int] = []
    skipped: list[tuple[Path, str]] = []
    for index, path in enumerate(paths):
        try:
            images[len(kept)] = fit_image(read_rgb(path), input_contract)
            kept.append(index)
        except TledgeError as error:
            skipped.append((path, _reason(error, path)))
        if on_progress:
            on_progress(stage, index + 1, len(paths))
    _check_enough(folders.root, class_names, labels, kept, skipped)
    return ImageSet(
        images[: len(kept)],
        np.asarray([labels[i] for i in kept], dtype=np.int64),
        tuple(paths[i] for i in kept),
        tuple(skipped),
    )


def calibration_per_class(total: int, num_classes: int) -> int:
    """Images per class so that a class-balanced sample holds about `total` images."""
    return max(1, -(-total // num_classes))


def _reason(error: TledgeError, path: Path) -> str:
    """The error message without the leading file name (the caller names the file)."""
    message = str(error)
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _check_enough(
    root: Path,
    class_names: Sequence[str],
    labels: Sequence[int],
    kept: Sequence[int],
    skipped: Sequence[tuple[Path, str]],
) -> None:
    """Refuse a set in which a class that has files kept none readable (as training does)."""
    if not skipped:
        return
    listed = set(labels)
    readable = {labels[i] for i in kept}
    empty = [class_names[label] for label in sorted(listed - readable)]
    if empty:
        raise TledgeError(
            f"{root}: no readable images in: {', '.join(empty)} ({len(skipped)} of "
            f"{len(labels)} files unreadable, {len(kept)} readable left); fix or remove them"
        )


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
