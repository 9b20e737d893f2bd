"""Synthetic class folders of photo-like JPEGs for the scale benchmark.

One pool of `POOL_CLASSES` classes is drawn once (in parallel, one process per core);
each benchmark size is a folder of hard links to the first images of its first classes,
so the sizes share no paths (the image check sees every size as new files) but the disk
holds each JPEG once. Each image is a few hundred pixels on a side, with a textured
background, a blurred gradient and a class-coloured shape, saved at JPEG quality 90, so
its file size and decode cost are those of a small camera photo, not of a flat drawing.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

POOL_CLASSES = 101
JPEG_QUALITY = 90


def classes_for(images: int) -> int:
    """How many classes a benchmark size has: 10 up to 5k images, 101 at 50k."""
    return int(min(POOL_CLASSES, max(10, images // 495)))


def draw_photo(label: int, index: int, side: int) -> np.ndarray:
    """A photo-like BGR image of class `label` (deterministic in label and index)."""
    rng = np.random.default_rng([label, index])
    height = side
    width = int(side * rng.uniform(0.75, 1.33))
    hue = (label * 37) % 180
    base = np.zeros((height, width, 3), np.uint8)
    base[..., 0] = hue
    base[..., 1] = rng.integers(60, 200)
    ramp = np.linspace(60, 220, width, dtype=np.float32)[None, :]
    base[..., 2] = np.clip(ramp + rng.normal(0, 25, (height, 1)), 0, 255).astype(np.uint8)
    image = cv2.cvtColor(base, cv2.COLOR_HSV2BGR).astype(np.float32)
    texture = cv2.GaussianBlur(rng.normal(0, 40, (height, width, 3)).astype(np.float32), (0, 0), 2)
    image += texture + rng.normal(0, 6, (height, width, 3))
    center = (
        int(rng.integers(width // 4, 3 * width // 4)),
        int(rng.integers(height // 4, 3 * height // 4)),
    )
    axes = (int(rng.integers(side // 8, side // 3)), int(rng.integers(side // 8, side // 3)))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
    for _ in range(label % 5 + 1):
        start = tuple(int(v) for v in rng.integers(0, side, 2))
        end = tuple(int(v) for v in rng.integers(0, side, 2))
        cv2.line(image, start, end, colour[::-1], int(rng.integers(2, 8)), cv2.LINE_AA)
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_class(args: tuple[Path, int, int, int]) -> int:
    folder, label, count, side = args
    class_dir = folder / f"class_{label:03d}"
    class_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for index in range(count):
        target = class_dir / f"{index:05d}.jpg"
        if target.is_file():
            continue
        ok, data = cv2.imencode(
            ".jpg", draw_photo(label, index, side), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        if not ok:
            raise RuntimeError(f"cannot encode {target}")
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data.tobytes())
        os.replace(tmp, target)
        written += 1
    return written


def generate_pool(
    folder: Path,
    per_class: int,
    side: int = 320,
    workers: int | None = None,
    classes: int = POOL_CLASSES,
) -> Path:
    """Draw `classes` x `per_class` JPEGs into `folder` (existing files are kept)."""
    jobs = [(folder, label, per_class, side) for label in range(classes)]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        for _ in pool.map(_write_class, jobs):
            pass
    return folder


def link_size(pool: Path, target: Path, images: int) -> Path:
    """A class-per-folder dataset of `images` hard links into `pool` (kept if complete)."""
    classes = classes_for(images)
    per_class = images // classes
    for label in range(classes):
        class_dir = target / f"class_{label:03d}"
        class_dir.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            link = class_dir / f"{index:05d}.jpg"
            if not link.exists():
                os.link(pool / f"class_{label:03d}" / f"{index:05d}.jpg", link)
    return target
