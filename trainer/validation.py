"""Checking every image before training, and converting the ones TensorFlow reads badly.

Pillow decodes each file completely (a truncated JPEG fails here, while OpenCV and
TensorFlow may return a half-grey image). Files TensorFlow decodes exactly like the edge
client (8-bit RGB or grayscale JPEG/PNG without EXIF rotation) are used as they are; any
other readable file (CMYK JPEG, PNG with alpha or a palette, 16-bit, BMP, GIF, WebP,
TIFF, EXIF-rotated photos) is converted once to an RGB PNG in a cache folder.

Files are checked in parallel threads, and each verdict is remembered (by path, size
and mtime, in `check_store`), so running or resuming the same command again decodes
only files that are new or changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tledge.core.atomic import atomic_path
from tledge.trainer.check_store import BAD, CONVERTED, OK, FileKey, Verdict, VerdictStore

ProgressCallback = Callable[[str, int, int], None]
PROGRESS_STAGE = "checking images"
# Files per task handed to a checking thread.
CHUNK_FILES = 128

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


def check_images(
    files: Sequence[Path],
    convert_dir: Path,
    *,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> CheckedImages:
    """Decode every new or changed file with Pillow; skip the bad ones, convert the odd ones.

    Verdicts are remembered in `convert_dir` (see `check_store`), so a re-run or a resume
    decodes only files that are new or changed (path, size or mtime) since the last
    check. The rest are decoded in parallel, one thread per core.

    Args:
        files: Image files to check.
        convert_dir: Where converted copies go (named by a hash of path, size and
            modification time, so a later run reuses them) and the verdicts are kept.
        workers: Threads that decode; None uses every core of this process.
        on_progress: Called with ("checking images", done, total) as files are checked.

    Returns:
        The usable paths, which inputs they came from, and the skipped files with reasons.

    Example:
        >>> checked = check_images(list_images("photos/train"), Path("runs/x/converted"))
    """
    keys: list[FileKey | None] = [_file_key(file) for file in files]
    with VerdictStore(convert_dir) as store:
        verdicts = store.lookup(key for key in keys if key is not None)
        todo = [key for key in keys if key is not None and key.path not in verdicts]
        for checked in _decode_all(todo, convert_dir, workers, on_progress):
            store.remember(checked)
            verdicts.update((key.path, verdict) for key, verdict in checked)
    paths: list[Path] = []
    keep: list[int] = []
    bad: list[tuple[Path, str]] = []
    converted = 0
    for index, (file, key) in enumerate(zip(files, keys, strict=True)):
        verdict = verdicts[key.path] if key is not None else Verdict(BAD, "cannot read file")
        if verdict.status == BAD:
            bad.append((file, verdict.detail))
            continue
        if verdict.status == CONVERTED:
            converted += 1
        paths.append(Path(verdict.detail) if verdict.status == CONVERTED else file)
        keep.append(index)
    return CheckedImages(tuple(paths), tuple(keep), tuple(bad), converted)


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _file_key(file: Path) -> FileKey | None:
    # os.path.abspath, not Path.resolve: resolving costs a system call per folder level
    # of every file, most of a re-run's time (20k files: 4.1 of 4.9 s).
    try:
        stat = file.stat()
        return FileKey(os.path.abspath(file), stat.st_size, stat.st_mtime_ns)
    except OSError:
        return None


def _decode_all(
    keys: Sequence[FileKey],
    convert_dir: Path,
    workers: int | None,
    on_progress: ProgressCallback | None,
) -> Iterator[list[tuple[FileKey, Verdict]]]:
    """Verdicts of `keys`, one chunk at a time (each chunk is stored as it arrives)."""
    chunks = [list(keys[i : i + CHUNK_FILES]) for i in range(0, len(keys), CHUNK_FILES)]
    workers = min(workers or default_workers(), len(chunks))
    done = 0
    if on_progress and keys:
        on_progress(PROGRESS_STAGE, 0, len(keys))
    if workers <= 1:
        results: Iterable[list[tuple[FileKey, Verdict]]] = (
            _check_chunk(chunk, convert_dir) for chunk in chunks
        )
        pool = None
    else:
        # Threads, not processes: Pillow decodes with the GIL released, and a thread
        # starts at no cost, where a spawned process imports Python anew.
        pool = ThreadPoolExecutor(workers)
        futures = [pool.submit(_check_chunk, chunk, convert_dir) for chunk in chunks]
        results = (future.result() for future in as_completed(futures))
    try:
        for result in results:
            done += len(result)
            if on_progress:
                on_progress(PROGRESS_STAGE, done, len(keys))
            yield result
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _check_chunk(keys: list[FileKey], convert_dir: Path) -> list[tuple[FileKey, Verdict]]:
    return [(key, _check_file(Path(key.path), key, convert_dir)) for key in keys]


def _check_file(file: Path, key: FileKey, convert_dir: Path) -> Verdict:
    from PIL import Image, UnidentifiedImageError

    if key.size == 0:
        return Verdict(BAD, "empty file")
    try:
        with Image.open(file) as image:
            image.load()
            if (image.format, image.mode) in TF_NATIVE and _upright(image):
                return Verdict(OK)
            target = _converted_path(key, file, convert_dir)
            if not target.is_file():
                _write_rgb_png(image, target)
            return Verdict(CONVERTED, str(target))
    except UnidentifiedImageError:
        return Verdict(BAD, "not an image")
    except (OSError, SyntaxError, ValueError) as error:
        return Verdict(BAD, f"cannot decode ({error})")


def _upright(image) -> bool:
    # Only 2-8 mean a flip or rotation; 0 (seen in real photos) is invalid and ignored by
    # OpenCV and Pillow alike.
    return image.getexif().get(EXIF_ORIENTATION, 1) not in range(2, 9)


def _converted_path(key: FileKey, file: Path, convert_dir: Path) -> Path:
    text = f"{key.path}|{key.size}|{key.mtime_ns}"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
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
