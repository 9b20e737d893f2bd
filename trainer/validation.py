"""Checking every image before training, and converting the ones TensorFlow reads badly.

Pillow decodes each file completely (a truncated JPEG fails here, while OpenCV and
TensorFlow may return a half-grey image). Files TensorFlow decodes exactly like the edge
client (8-bit RGB or grayscale JPEG/PNG without EXIF rotation) are used as they are; any
other readable file (CMYK JPEG, PNG with alpha or a palette, 16-bit, BMP, GIF, WebP,
TIFF, EXIF-rotated photos) is converted once to an RGB PNG in a cache folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tledge.core.atomic import atomic_path

# Formats and modes tf.io.decode_image(channels=3) turns into the same RGB as OpenCV.
TF_NATIVE = {("JPEG", "RGB"), ("JPEG", "L"), ("PNG", "RGB"), ("PNG", "L")}
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class CheckedImages:
    """The result of `check_images`.

    Attributes:
        paths: What to feed TensorFlow for each good image: the original file or its
            converted copy, in the order of the input.
        keep: Index into the input list of each entry of `paths`.
        bad: (file, reason) of each skipped file.
        converted: Number of good files replaced by a converted copy.
    """

    paths: tuple[Path, ...]
    keep: tuple[int, ...]
    bad: tuple[tuple[Path, str], ...]
    converted: int


def check_images(files: Sequence[Path], convert_dir: Path) -> CheckedImages:
    """Decode every file with Pillow; skip the bad ones and convert the odd ones.

    Args:
        files: Image files to check.
        convert_dir: Where converted copies go (named by a hash of path, size and
            modification time, so a later run reuses them).

    Returns:
        The usable paths, which inputs they came from, and the skipped files with reasons.
    """
    from PIL import Image, UnidentifiedImageError

    paths: list[Path] = []
    keep: list[int] = []
    bad: list[tuple[Path, str]] = []
    converted = 0
    for index, file in enumerate(files):
        try:
            if file.stat().st_size == 0:
                bad.append((file, "empty file"))
                continue
            with Image.open(file) as image:
                image.load()
                native = (image.format, image.mode) in TF_NATIVE and _upright(image)
                if not native:
                    target = _converted_path(file, convert_dir)
                    if not target.is_file():
                        _write_rgb_png(image, target)
                    converted += 1
                    file_to_use = target
                else:
                    file_to_use = file
        except UnidentifiedImageError:
            bad.append((file, "not an image"))
            continue
        except (OSError, SyntaxError, ValueError) as error:
            bad.append((file, f"cannot decode ({error})"))
            continue
        paths.append(file_to_use)
        keep.append(index)
    return CheckedImages(tuple(paths), tuple(keep), tuple(bad), converted)


def _upright(image) -> bool:
    # Only 2-8 mean a flip or rotation; 0 (seen in real photos) is invalid and ignored by
    # OpenCV and Pillow alike.
    return image.getexif().get(EXIF_ORIENTATION, 1) not in range(2, 9)


def _converted_path(file: Path, convert_dir: Path) -> Path:
    stat = file.stat()
    key = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return convert_dir / f"{file.stem}_{digest}.png"


def _write_rgb_png(image, target: Path) -> None:
    from PIL import ImageOps

    upright = ImageOps.exif_transpose(image)
    if upright.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: keep the top 8 bits, as OpenCV's 8-bit reading does.
        upright = upright.point(lambda value: value / 256).convert("L")
    # RGBA -> RGB drops alpha and keeps the stored colours, as OpenCV's IMREAD_COLOR does,
    # so training sees what `tledge evaluate` and the edge client see.
    rgb = upright.convert("RGB")
    with atomic_path(target, suffix=".png") as tmp:
        rgb.save(tmp, format="PNG")
