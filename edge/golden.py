"""The self-test a tledge file carries: a few inputs and the answers the file gave at export.

`tledge export` embeds a few held-out images (at most `MAX_GOLDEN_EXAMPLES`), already fitted to the
model input (lossless PNGs in the appended archive), with the top-1 label and score the
exported file gave each of them (`ModelContract.golden`). Running them again on the
device proves that the file arrived whole and that the device's runtime computes what
the training machine computed, with nothing for the user to write.

A top-1 must be the same; its score may differ by `score_tolerance`: float variants
compute the same arithmetic everywhere (differences of float rounding only), 8-bit
kernels differ by a few quantization steps between CPUs and runtimes (tflite-runtime's
reference kernels up to ~0.07). The exporter picks images whose top-1 leads the second
label by `MIN_GOLDEN_MARGIN`, so such differences cannot swap a top-1.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from tledge.core.errors import TledgeError
from tledge.edge.contract import GoldenExample, ModelContract

if TYPE_CHECKING:
    from tledge.edge.classifier import Classifier

FLOAT_SCORE_TOLERANCE = 0.02
EIGHT_BIT_SCORE_TOLERANCE = 0.1
FLOAT_VARIANTS = ("fp32", "fp16")
MIN_GOLDEN_MARGIN = 0.25
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class GoldenImage:
    """An embedded self-test input, decoded.

    Attributes:
        example: Its name and the file's answer at export.
        bgr: The pixels, (height, width, 3) uint8 BGR, already the model input size.
    """

    example: GoldenExample
    bgr: np.ndarray


def decode_golden(data: bytes, name: str, input_size: tuple[int, int]) -> np.ndarray:
    """Decode an embedded golden PNG, refusing anything but an RGB(A)/gray PNG of `input_size`.

    The size is read from the PNG header before decoding, so a crafted image cannot make
    the decoder allocate more than one model input.

    Raises:
        TledgeError: when it is not such a PNG.
    """
    height, width = input_size
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise TledgeError(f"golden image {name} is not a PNG")
    declared_width, declared_height = struct.unpack(">II", data[16:24])
    if (declared_height, declared_width) != (height, width):
        raise TledgeError(
            f"golden image {name} is {declared_width}x{declared_height}, "
            f"not the model input {width}x{height}"
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape != (height, width, 3) or image.dtype != np.uint8:
        raise TledgeError(f"golden image {name} cannot be decoded")
    return image


def encode_golden(rgb: np.ndarray) -> bytes:
    """The PNG bytes of a fitted RGB uint8 image, as `decode_golden` reads them back."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise TledgeError("cannot encode a golden image as PNG")
    return encoded.tobytes()


def score_tolerance(contract: ModelContract) -> float:
    """How far the top-1 score may move between runtimes for this file's variant."""
    if contract.variant in FLOAT_VARIANTS:
        return FLOAT_SCORE_TOLERANCE
    return EIGHT_BIT_SCORE_TOLERANCE


def check_golden(classifier: Classifier, golden: Sequence[GoldenImage]) -> str:
    """Run the embedded self-test; return a note such as "embedded self-test 4/4".

    Raises:
        TledgeError: naming the first image whose top-1 or score differs.
    """
    tolerance = score_tolerance(classifier.contract)
    wrong = []
    for image in golden:
        scores = classifier.classify(image.bgr, top_k=0, fitted=True).scores
        top = int(np.argmax(scores))
        label, score = classifier.labels[top], float(scores[top])
        expected = image.example
        if label != expected.label or abs(score - expected.score) > tolerance:
            wrong.append(
                f"{expected.image}: expected {expected.label} {expected.score:.3f}, "
                f"got {label} {score:.3f}"
            )
    if wrong:
        raise TledgeError(
            f"embedded self-test failed on {len(wrong)}/{len(golden)} images ({wrong[0]}; "
            f"scores may differ by {tolerance:g}): the file is damaged or this runtime "
            "computes differently; copy it again or re-export it"
        )
    return f"embedded self-test {len(golden)}/{len(golden)}"
