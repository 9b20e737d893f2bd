"""Test frames for the client and pipeline benchmarks: real photos at camera size."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.folders import list_images

CAMERA_SIZE = (480, 640)  # (height, width) of a typical USB / Pi camera preview frame


def camera_frames(
    images: Sequence[str | os.PathLike] = (), size: tuple[int, int] = CAMERA_SIZE, count: int = 8
) -> list[np.ndarray]:
    """Return `count` BGR frames of `size` (height, width).

    Frames are the given photos stretched to the size (cycled when fewer), or, without
    photos, deterministic noise with a gradient so that JPEG encoding has real work.

    Raises:
        TledgeError: when a given image cannot be read.
    """
    height, width = size
    frames = []
    for path in list(images)[:count]:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise TledgeError(f"{path}: not a readable image")
        frames.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
    if not frames:
        rng = np.random.default_rng(0)
        ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
        for _ in range(count):
            noise = rng.normal(0, 25, size=(height, width, 3)).astype(np.float32)
            frames.append(np.clip(ramp + noise, 0, 255).astype(np.uint8))
    return [frames[i % len(frames)] for i in range(count)]


def images_in(folder: str | os.PathLike | None) -> list[Path]:
    """Image files directly in `folder` (sorted), or every image one level below it."""
    if folder is None:
        return []
    directory = Path(folder)
    found = list_images(directory)
    if not found:
        for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
            found.extend(list_images(sub)[:2])
    return found
