"""Reading images as RGB arrays with OpenCV only.

Grayscale, 16-bit, alpha (PNG/WebP) and CMYK JPEG files all come back as 8-bit RGB.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract


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


def fit_image(image: np.ndarray, contract: InputContract) -> np.ndarray:
    """Crop and resize an HxWxC image to the model input as `contract` says.

    The one implementation of the resize step: the `Classifier` fits camera frames with
    it and the exporter fits held-out and calibration images with it. Channel order and
    value range are left as they are. An image already at the input size comes back as
    it is (no copy).

    Example:
        >>> small = fit_image(read_rgb("cat.jpg"), classifier.contract.input_contract)
    """
    if contract.resize == "center_crop":
        image = center_crop(image, contract.crop_fraction)
    height, width = contract.input_size
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=interpolation_flag(contract))


def interpolation_flag(contract: InputContract) -> int:
    """The OpenCV interpolation flag of `contract.interpolation`."""
    return cv2.INTER_AREA if contract.interpolation == "area" else cv2.INTER_LINEAR
