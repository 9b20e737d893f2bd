"""Drawing predictions, inference time and FPS on a frame."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOR = (255, 255, 255)
BAR_COLOR = (80, 200, 80)
PANEL_DARKEN = 0.55


def draw_overlay(
    image: np.ndarray,
    top_k: Sequence[tuple[str, float]],
    inference_ms: float | None,
    fps: float | None,
) -> np.ndarray:
    """Draw a translucent panel with the top-k labels, score bars, ms and FPS, in place.

    Args:
        image: BGR frame; it is modified and returned.
        top_k: (label, score) pairs, best first.
        inference_ms: Time of `invoke()` for this frame, or None for no status line
            (a still image, as `tledge predict --annotate` writes).
        fps: Frames classified per second, or None before it is known.

    Returns:
        `image`, annotated.
    """
    height, width = image.shape[:2]
    scale = max(0.6, min(height, width) / 720 * 1.1)
    thickness = max(1, round(scale * 2))
    line = int(30 * scale)
    lines = [f"{score * 100:5.1f}%  {label[:40]}" for label, score in top_k] or [
        "(below threshold)"
    ]
    if inference_ms is not None:
        lines.append(f"{inference_ms:.1f} ms" + (f"   {fps:.1f} FPS" if fps else ""))
    panel_width = min(width, int(max(len(text) for text in lines) * 11 * scale) + 20)
    panel_height = min(height, line * len(lines) + line // 2)
    panel = image[:panel_height, :panel_width]
    cv2.convertScaleAbs(panel, dst=panel, alpha=1.0 - PANEL_DARKEN)
    for row, (_, score) in enumerate(top_k):
        baseline = line * (row + 1)
        bar_end = 10 + int((panel_width - 20) * max(0.0, min(score, 1.0)))
        cv2.rectangle(image, (10, baseline + 4), (bar_end, baseline + 6), BAR_COLOR, -1)
    for row, text in enumerate(lines):
        origin = (10, line * (row + 1))
        cv2.putText(image, text, origin, FONT, scale * 0.7, TEXT_COLOR, thickness, cv2.LINE_AA)
    return image
