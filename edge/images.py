"""Reading images as RGB arrays and listing class-per-folder datasets, with OpenCV only.

Grayscale, 16-bit, alpha (PNG/WebP) and CMYK JPEG files all come back as 8-bit RGB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tledge.edge.errors import TledgeError

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


def decode_rgb(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes to an HxWx3 uint8 RGB array.

    Raises:
        TledgeError: when the bytes are not a decodable image.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if bgr is None:
        raise TledgeError(f"{name}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an HxWx3 uint8 RGB array.

    Raises:
        TledgeError: when the file is missing, empty or not a decodable image.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise TledgeError(f"{file}: cannot read ({error.strerror})") from None
    if not data:
        raise TledgeError(f"{file}: empty file")
    return decode_rgb(data, str(file))


def center_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    """Return the centred square of `fraction` times the shorter side (a view, no copy)."""
    height, width = image.shape[:2]
    side = max(1, round(min(height, width) * fraction))
    top, left = (height - side) // 2, (width - side) // 2
    return image[top : top + side, left : left + side]


def resize_image(
    image: np.ndarray,
    size: tuple[int, int],
    method: str = "stretch",
    crop_fraction: float = 1.0,
    interpolation: str = "bilinear",
) -> np.ndarray:
    """Resize an HxWxC image to `size` = (height, width) as a model contract describes.

    Args:
        image: The image array.
        size: Target (height, width).
        method: "stretch" resizes the whole image; "center_crop" first keeps the centred
            square of `crop_fraction` times the shorter side.
        crop_fraction: See `method`.
        interpolation: "bilinear" (matches `tf.image.resize` without antialias) or "area".
    """
    if method == "center_crop":
        image = center_crop(image, crop_fraction)
    flag = cv2.INTER_AREA if interpolation == "area" else cv2.INTER_LINEAR
    target_height, target_width = size
    if image.shape[:2] == (target_height, target_width):
        return image
    return cv2.resize(image, (target_width, target_height), interpolation=flag)
