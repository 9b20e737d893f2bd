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

    The exporter fits held-out and calibration images with it, `tledge predict` fits
    photos with it, and the `Classifier` crops as it does and resizes with the same
    `resize_to_input`. Channel order and value range are left as they are. An image
    already at the input size comes back as it is (no copy).

    Example:
        >>> small = fit_image(read_rgb("cat.jpg"), classifier.contract.input_contract)
    """
    if contract.resize == "center_crop":
        image = center_crop(image, contract.crop_fraction)
    if image.shape[:2] == tuple(contract.input_size):
        return image
    return resize_to_input(image, contract.input_size, contract.interpolation)


def resize_to_input(
    image: np.ndarray,
    input_size: tuple[int, int],
    interpolation: str,
    dst: np.ndarray | None = None,
) -> np.ndarray:
    """Resize an HxWxC uint8 image to `input_size` (height, width) with `interpolation`.

    The one implementation of the resize step of every `InputContract` interpolation
    (`tledge.core.input_contract` says what each computes); the trainer's TensorFlow
    twin is held within one level of it by a parity test. "bilinear_no_half_pixel" is
    computed exactly as MediaPipe Tasks' CPU preprocessing computes it: a bilinear
    `cv2.warpPerspective` of the image's corners onto the output's corners, borders
    replicated.

    Args:
        image: The image (any channel order).
        input_size: (height, width) of the result.
        interpolation: One of `tledge.core.input_contract.INTERPOLATIONS`.
        dst: A uint8 array of the result's shape to write into (e.g. a preallocated
            model input buffer); None: a new array.

    Returns:
        `dst`, or the new array.

    Example:
        >>> small = resize_to_input(frame, (256, 256), "bilinear_no_half_pixel")
    """
    height, width = input_size
    if interpolation == "bilinear_no_half_pixel":
        source_height, source_width = image.shape[:2]
        corners = np.float32([[0, 0], [1, 0], [1, 1], [0, 1]])
        matrix = cv2.getPerspectiveTransform(
            corners * np.float32([source_width, source_height]),
            corners * np.float32([width, height]),
        )
        return cv2.warpPerspective(
            image,
            matrix,
            (width, height),
            dst=dst,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    flag = cv2.INTER_AREA if interpolation == "area" else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), dst=dst, interpolation=flag)
