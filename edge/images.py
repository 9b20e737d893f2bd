"""Reading images as RGB arrays with OpenCV only.

Grayscale, 16-bit, alpha (PNG/WebP) and CMYK JPEG files all come back as 8-bit RGB.
"""

from __future__ import annotations

import functools
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
    (`tledge.core.input_contract` says what each computes); a parity test holds the
    trainer's TensorFlow twin within one level of it ("bilinear_no_half_pixel": three
    next to sharp edges, as OpenCV rounds sample points to 1/32 pixel). "bilinear_no_half_pixel" is
    MediaPipe Tasks' CPU resize (output x samples source x * W / w, borders replicated)
    with OpenCV's fixed-point bilinear weights (1/32 pixel), its sample coordinates
    computed exactly (`_no_half_pixel_maps`) and applied with `cv2.remap`. Not
    `cv2.warpPerspective`, the call MediaPipe makes: it rounds coordinates differently
    on x86 and arm64 (2 % of values one level apart, which flipped a near tie on
    emulated Pi OS), while this is bit-identical on both.

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
        points, fractions = _no_half_pixel_maps(image.shape[:2], (height, width))
        return cv2.remap(
            image,
            points,
            fractions,
            cv2.INTER_LINEAR,
            dst=dst,
            borderMode=cv2.BORDER_REPLICATE,
        )
    flag = cv2.INTER_AREA if interpolation == "area" else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), dst=dst, interpolation=flag)


@functools.lru_cache(maxsize=8)
def _no_half_pixel_maps(
    source_size: tuple[int, int], input_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """`cv2.remap`'s fixed-point maps of the "bilinear_no_half_pixel" resize (cached: a
    camera's frames all have one size).

    Output (y, x) samples source (y * H / h, x * W / w), rounded to 1/32 pixel: integer
    pixel coordinates (int16 pairs) and the fractions' index into OpenCV's bilinear
    weight table (uint16, 32 * y fraction + x fraction), as `cv2.convertMaps` packs them.
    """
    (source_height, source_width), (height, width) = source_size, input_size
    steps = 32  # OpenCV's INTER_TAB_SIZE
    columns = np.rint(np.arange(width) * (source_width / width) * steps).astype(np.int64)
    rows = np.rint(np.arange(height) * (source_height / height) * steps).astype(np.int64)
    points = np.empty((height, width, 2), dtype=np.int16)
    points[..., 0] = columns[np.newaxis, :] // steps
    points[..., 1] = rows[:, np.newaxis] // steps
    fractions = (rows[:, np.newaxis] % steps) * steps + columns[np.newaxis, :] % steps
    return points, fractions.astype(np.uint16)
