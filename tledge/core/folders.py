"""Listing image files and class-per-folder datasets (no image decoding, no OpenCV)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tledge.core.errors import TledgeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class ClassFolders:
    """Images of a `root/<class>/*` dataset.

    Attributes:
        root: The dataset folder.
        class_names: Sorted names of the class folders; a label is an index into it.
        paths: Image files, sorted by class then file name.
        labels: Class index of each path.
    """

    root: Path
    class_names: tuple[str, ...]
    paths: tuple[Path, ...]
    labels: tuple[int, ...]


def is_image_file(path: Path) -> bool:
    """True when `path` has an image file extension (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Return the image files directly inside `folder`, sorted by name.

    Raises:
        TledgeError: when `folder` is not a directory.
    """
    directory = Path(folder)
    if not directory.is_dir():
        raise TledgeError(f"{directory}: not a folder")
    return sorted(p for p in directory.iterdir() if p.is_file() and is_image_file(p))


def list_class_folders(
    root: str | os.PathLike, class_names: list[str] | tuple[str, ...] | None = None
) -> ClassFolders:
    """List a class-per-folder dataset.

    Args:
        root: Folder holding one sub-folder per class.
        class_names: Expected classes (e.g. a run's labels). A folder outside this list is
            an error; a class without a folder has no images.

    Raises:
        TledgeError: when `root` is missing, has no class folders, or has unknown classes.
    """
    directory = Path(root)
    if not directory.is_dir():
        raise TledgeError(f"{directory}: dataset folder not found")
    found = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise TledgeError(f"{directory}: no class folders (expected {directory}/<class>/*.jpg)")
    names = tuple(class_names) if class_names is not None else tuple(found)
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise TledgeError(f"{directory}: class folders not in the model's labels: {unknown}")
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(names):
        if name not in found:
            continue
        images = list_images(directory / name)
        paths.extend(images)
        labels.extend([index] * len(images))
    return ClassFolders(directory, names, tuple(paths), tuple(labels))


def describe_bad_files(bad: Sequence[tuple[Path, str]], limit: int = 10) -> str:
    """One warning naming the first `limit` skipped files and how many there are."""
    lines = [f"skipped {len(bad)} unreadable file(s):"]
    lines += [f"  {file}: {reason}" for file, reason in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    return "\n".join(lines)
