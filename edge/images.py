"""Reading images as RGB arrays with OpenCV only.

Grayscale, 16-bit, alpha (PNG/WebP) and CMYK JPEG files all come back as 8-bit RGB.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from tledge.core.errors import TledgeError


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
