"""The OpenCV window of `tledge edge --display`, and whether one can be shown here."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

WINDOW_NAME = "tledge edge"


def display_available() -> bool:
    """True when a window can be shown: a display exists and OpenCV has GUI support."""
    has_screen = sys.platform in ("win32", "darwin") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    return has_screen and opencv_has_gui()


def opencv_has_gui() -> bool:
    """False for opencv-python-headless and other builds without a GUI backend."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "")
    return False


class Window:
    """The OpenCV window; `show` returns False once the user wants to stop."""

    def __init__(self) -> None:
        cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_NORMAL)
        self._was_visible = False

    def show(self, image: np.ndarray) -> bool:
        """Show the frame; False after q or Esc, or when the window was closed."""
        cv2.imshow(WINDOW_NAME, image)
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(WINDOW_NAME, cv2.WND_PROP_VISIBLE) >= 1
        # Some backends map the window a few frames late: only a window that was
        # visible and is gone now counts as closed by the user.
        closed = self._was_visible and not visible
        self._was_visible = self._was_visible or visible
        return key not in (ord("q"), 27) and not closed

    def close(self) -> None:
        """Destroy the window."""
        cv2.destroyAllWindows()
