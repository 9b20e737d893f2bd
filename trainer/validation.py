"""Checking every image before training, and converting the ones TensorFlow reads badly.

Pillow decodes each file completely (a truncated JPEG fails here, while OpenCV and
TensorFlow may return a half-grey image). Files TensorFlow decodes exactly like the edge
client (8-bit RGB or grayscale JPEG/PNG without EXIF rotation) are used as they are; any
other readable file (CMYK JPEG, PNG with alpha or a palette, 16-bit, BMP, GIF, WebP,
TIFF, EXIF-rotated photos) is converted once to an RGB PNG in a cache folder.

Files are checked on every core: by this process and by one helper process per other
core, each taking the next chunk of files as it finishes one. Each verdict is remembered
(by path, size and mtime, in `check_store`), so running or resuming the same command
again decodes only files that are new or changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

from tledge.core.atomic import atomic_path
from tledge.trainer.check_store import BAD, CONVERTED, OK, FileKey, Verdict, VerdictStore

ProgressCallback = Callable[[str, int, int], None]
PROGRESS_STAGE = "checking images"
HELPER_MODULE = "tledge.trainer.check_helper"
# Seconds a helper process gets to exit once its input is closed, before it is killed.
HELPER_EXIT_SECONDS = 2.0
# Files per chunk: the work one process takes at a time (about 50 ms of decoding), small
# enough that no core idles long at the end, large enough that handing it over is cheap.
CHUNK_FILES = 64

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
    check. The rest are decoded on every core (this process and `workers - 1` helper
    processes).

    Args:
        files: Image files to check.
        convert_dir: Where converted copies go (named by a hash of path, size and
            modification time, so a later run reuses them) and the verdicts are kept.
        workers: Processes that decode, this one included; None uses every core this
            process may run on.
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


Chunk = list[FileKey]
ChunkVerdicts = list[tuple[FileKey, Verdict]]


def _decode_all(
    keys: Sequence[FileKey],
    convert_dir: Path,
    workers: int | None,
    on_progress: ProgressCallback | None,
) -> Iterator[ChunkVerdicts]:
    """Verdicts of `keys`, one chunk at a time (each chunk is stored as it arrives).

    This process checks chunks itself from the start, so nothing waits for the helper
    processes to start (about 0.15 s each). Threads alone reached about 1.5x on two
    cores: Pillow holds the GIL while it parses headers, about a sixth of each file.
    """
    chunks: deque[Chunk] = deque(
        list(keys[i : i + CHUNK_FILES]) for i in range(0, len(keys), CHUNK_FILES)
    )
    helpers = min(workers or default_workers(), len(chunks)) - 1
    done = 0
    if on_progress and keys:
        on_progress(PROGRESS_STAGE, 0, len(keys))
    with _HelperProcesses(helpers, chunks, convert_dir) as helped:
        for verdicts in helped.results(lambda chunk: check_chunk(chunk, convert_dir)):
            done += len(verdicts)
            if on_progress:
                on_progress(PROGRESS_STAGE, done, len(keys))
            yield verdicts


class _HelperProcesses:
    """Helper processes (`check_helper`) that take chunks from the calling process's queue.

    A thread per helper starts it and hands it one chunk at a time. A helper that fails
    (cannot start, killed, a bad answer) puts its chunk back and stops; the calling
    process checks whatever is left, so no file goes unchecked.
    """

    def __init__(self, helpers: int, chunks: deque[Chunk], convert_dir: Path):
        self._chunks = chunks
        self._convert_dir = convert_dir
        self._finished: queue.SimpleQueue[ChunkVerdicts] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._feeders = [threading.Thread(target=self._feed, daemon=True) for _ in range(helpers)]

    def __enter__(self) -> _HelperProcesses:
        for feeder in self._feeders:
            feeder.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for feeder in self._feeders:
            feeder.join()

    def results(self, check: Callable[[Chunk], ChunkVerdicts]) -> Iterator[ChunkVerdicts]:
        """Every chunk's verdicts, as they are ready; `check` runs chunks in this process."""
        while True:
            while not self._finished.empty():
                yield self._finished.get()
            chunk = self._take()
            if chunk is not None:
                yield check(chunk)
            elif any(feeder.is_alive() for feeder in self._feeders):
                try:
                    verdicts = self._finished.get(timeout=0.05)
                except queue.Empty:
                    continue
                yield verdicts
            elif self._finished.empty() and not self._chunks:
                return

    def _take(self) -> Chunk | None:
        try:
            return self._chunks.popleft()
        except IndexError:
            return None

    def _feed(self) -> None:
        """Start a helper process and hand it chunks one at a time until none are left."""
        # PYTHONSAFEPATH: a `tledge/` folder in the working directory (a source checkout)
        # must not shadow the installed package.
        try:
            helper = subprocess.Popen(
                [sys.executable, "-m", HELPER_MODULE, str(self._convert_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env={**os.environ, "PYTHONSAFEPATH": "1"},
            )
        except OSError:
            return
        assert helper.stdin is not None and helper.stdout is not None
        try:
            while not self._stop.is_set() and (chunk := self._take()) is not None:
                try:
                    helper.stdin.write(json.dumps([astuple(key) for key in chunk]))
                    helper.stdin.write("\n")
                    helper.stdin.flush()
                    answer = json.loads(helper.stdout.readline())
                    verdicts = [Verdict(str(status), str(detail)) for status, detail in answer]
                    if len(verdicts) != len(chunk):
                        raise ValueError("one verdict per file")
                except (OSError, ValueError, TypeError):
                    self._chunks.append(chunk)
                    return
                self._finished.put(list(zip(chunk, verdicts, strict=True)))
        finally:
            _stop_helper(helper)


def _stop_helper(helper: subprocess.Popen) -> None:
    """Close the helper's input (it exits at its end); kill it if it does not."""
    with contextlib.suppress(OSError):  # it is gone already
        helper.stdin.close()
    try:
        helper.wait(HELPER_EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()
    helper.stdout.close()


def check_chunk(keys: Chunk, convert_dir: Path) -> ChunkVerdicts:
    """The verdict of each of `keys`, checked in this process, in order."""
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
