"""The newest frame and predictions of the live web view, between the run loop and viewers.

The run loop publishes each annotated frame; the web view's request threads read the
predictions (with their age) and stream the frames as JPEGs (`tledge.edge.server`).
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

JPEG_QUALITY = 80
# A prediction older than this (or than 3 frame intervals, if longer) is stale.
STALE_AFTER_S = 2.0


class LatestFrame:
    """The newest published frame and predictions, shared with the request threads.

    Publishing stores references only; the JPEG is encoded when a viewer asks for it,
    once per frame for all viewers.
    """

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.sequence = 0
        self.closed = False
        self.predictions: dict[str, Any] = {}
        self._image: np.ndarray | None = None
        self._jpeg: tuple[int, bytes] | None = None

    def publish(self, image: np.ndarray, predictions: dict[str, Any]) -> None:
        """Make `image` (BGR) and `predictions` the newest; wakes waiting streams."""
        with self.changed:
            self._image = image
            self.predictions = predictions
            self.sequence += 1
            self.changed.notify_all()

    def status(self, now: float) -> dict[str, Any]:
        """The newest predictions plus `age_s` and `stale` at wall-clock time `now`."""
        with self.changed:
            predictions = dict(self.predictions)
        captured = predictions.get("timestamp")
        if captured is None:
            return predictions
        age = max(0.0, now - captured)
        fps = predictions.get("fps")
        stale_after = max(STALE_AFTER_S, 3.0 / fps) if fps else STALE_AFTER_S
        return {**predictions, "age_s": round(age, 3), "stale": age > stale_after}

    def jpeg(self) -> tuple[int, bytes] | None:
        """(sequence, JPEG bytes) of the newest frame, encoded at most once per frame."""
        with self.changed:
            sequence, image, cached = self.sequence, self._image, self._jpeg
        if image is None:
            return None
        if cached is not None and cached[0] == sequence:
            return cached
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        result = (sequence, encoded.tobytes() if ok else b"")
        with self.changed:
            self._jpeg = result
        return result

    def wait_newer(self, sequence: int, timeout: float) -> bool:
        """Wait until a frame newer than `sequence` exists; False on timeout or close."""
        with self.changed:
            self.changed.wait_for(lambda: self.sequence > sequence or self.closed, timeout)
            return self.sequence > sequence and not self.closed

    def close(self) -> None:
        """Wake every waiting stream for good."""
        with self.changed:
            self.closed = True
            self.changed.notify_all()
