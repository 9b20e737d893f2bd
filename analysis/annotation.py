"""`tledge predict --annotate`: each predicted photo written as a JPEG with its answers drawn.

The drawing is the edge client's overlay (`edge/overlay.py`), so a photo annotated here
looks like a camera frame on the Pi.
"""

from __future__ import annotations

import os
from pathlib import Path

from tledge.analysis.prediction import PredictionReport
from tledge.core.atomic import atomic_write_bytes
from tledge.core.errors import TledgeError
from tledge.edge.images import read_rgb
from tledge.edge.overlay import draw_overlay

# Small images are enlarged to this side at least, so the drawn text fits on them.
MIN_ANNOTATED_SIDE = 320
ANNOTATED_TOP_K = 3


def write_annotated(
    report: PredictionReport, folder: str | os.PathLike, max_side: int = 640
) -> list[Path]:
    """Write each predicted image with its top answers drawn on it, as JPEG.

    Files keep their names (a number is added when two inputs share one); existing files
    with those names are replaced atomically.

    Args:
        report: From `predict_files`.
        folder: Output folder (created).
        max_side: Longest side of the written images in pixels.

    Returns:
        The written files, in the order of `report.predictions`.

    Example:
        >>> write_annotated(predict_files(load_model("model_int8.tflite"), ["photos"]), "out")
    """
    import cv2

    output = Path(folder)
    output.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    for prediction in report.predictions:
        image = read_rgb(prediction.path)
        longest = max(image.shape[:2])
        scale = min(max_side, max(longest, MIN_ANNOTATED_SIDE)) / longest
        if scale != 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            flag = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = cv2.resize(image, size, interpolation=flag)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        draw_overlay(bgr, prediction.top_k[:ANNOTATED_TOP_K], inference_ms=None, fps=None)
        name = _unique_name(f"{prediction.path.stem}.jpg", used)
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise TledgeError(f"{prediction.path}: cannot encode the annotated image")
        written.append(atomic_write_bytes(output / name, encoded.tobytes()))
    return written


def _unique_name(name: str, used: set[str]) -> str:
    stem, suffix = os.path.splitext(name)
    candidate, number = name, 2
    while candidate in used:
        candidate, number = f"{stem}_{number}{suffix}", number + 1
    used.add(candidate)
    return candidate
