"""A small, deterministic, class-per-folder image dataset drawn with OpenCV.

`tledge demo` and the tests use it, so both run on a fresh machine with no downloads.
Each class is a shape with its own hue family, drawn at a random place, size and angle
on a noisy background, so the classes are visually distinct but not identical copies.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

# class name -> base colour (BGR, as OpenCV draws)
DEMO_CLASSES = {
    "circle": (40, 40, 220),
    "square": (40, 200, 40),
    "triangle": (220, 80, 30),
    "stripes": (30, 200, 230),
}


def draw_example(class_name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Return one size x size BGR uint8 image of `class_name`."""
    background = rng.integers(90, 170, size=3)
    image = np.clip(background + rng.normal(0, 18, size=(size, size, 3)), 0, 255).astype(np.uint8)
    jitter = rng.integers(-35, 36, size=3)
    color = tuple(int(c) for c in np.clip(np.array(DEMO_CLASSES[class_name]) + jitter, 0, 255))
    center = rng.integers(size * 3 // 10, size * 7 // 10, size=2)
    radius = int(rng.integers(size // 6, size // 3))
    if class_name == "circle":
        cv2.circle(image, (int(center[0]), int(center[1])), radius, color, -1, cv2.LINE_AA)
    elif class_name == "stripes":
        thickness = max(2, size // 16)
        for offset in range(-size, size, thickness * 3):
            cv2.line(image, (offset, 0), (offset + size, size), color, thickness, cv2.LINE_AA)
    else:
        corners = 4 if class_name == "square" else 3
        angle = rng.uniform(0, 2 * np.pi)
        points = [
            (
                int(center[0] + radius * np.cos(angle + 2 * np.pi * k / corners)),
                int(center[1] + radius * np.sin(angle + 2 * np.pi * k / corners)),
            )
            for k in range(corners)
        ]
        cv2.fillPoly(image, [np.array(points, dtype=np.int32)], color, cv2.LINE_AA)
    return image


def generate_dataset(
    root: str | os.PathLike,
    per_class: int = 40,
    size: int = 96,
    seed: int = 0,
    classes: tuple[str, ...] = tuple(DEMO_CLASSES),
) -> Path:
    """Write `root/<class>/<class>_NNN.jpg` images and return `root`.

    Args:
        root: Folder to create (existing files with the same names are replaced).
        per_class: Images per class.
        size: Side of the square images in pixels.
        seed: Seed of the generator; the same seed always gives the same images.
        classes: Which of `DEMO_CLASSES` to draw.

    Example:
        >>> generate_dataset("photos/train", per_class=60, seed=0)
    """
    rng = np.random.default_rng(seed)
    folder = Path(root)
    for class_name in classes:
        class_dir = folder / class_name
        class_dir.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image = draw_example(class_name, size, rng)
            cv2.imwrite(str(class_dir / f"{class_name}_{index:03d}.jpg"), image)
    return folder
