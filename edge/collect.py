"""`tledge edge --collect DIR`: keep the frames the model is unsure about, for review.

`Collector.offer` is called on the inference loop's thread with every classified frame
and decides in a few microseconds: a frame is doubtful when its top score is below
`min_confidence`, the margin to the second label is below `min_margin`, or the model
flags it `unknown`; a confident frame is kept with probability `confident_sample` (so
the review also sees what the model gets right, and silent mistakes). Two rate limits
keep one long doubtful scene from filling the folder: at most one kept frame per
`min_interval_s`, and none that looks like the last kept one (a 16x16 thumbnail within
`duplicate_level` grey levels) until `max_duplicate_s` passed.

A kept frame is copied and queued; a writer thread JPEG-encodes it and writes
`<time>-<frame>.jpg` and then its sidecar `<time>-<frame>.json` (top-k, all scores, the
doubt, why it was kept, model version, time, source), both atomically, so a sidecar
always has its image. The folder stays under `max_mb`: the oldest pairs are evicted
before a new one is written. When the writer falls behind, new frames are dropped
(counted in `dropped`), never waited for.
"""

from __future__ import annotations

import datetime
import heapq
import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tledge.core.atomic import atomic_write_bytes
from tledge.core.errors import TledgeError
from tledge.edge.sources import Frame

JPEG_QUALITY = 92
QUEUE_SIZE = 4
THUMBNAIL = (16, 16)
SIDECAR_SUFFIX = ".json"
IMAGE_SUFFIX = ".jpg"
# Up to this many classes a Python top-2 is quicker than numpy's partition.
PYTHON_TOP2_MAX = 64


@dataclass(frozen=True)
class CollectOptions:
    """What `--collect` keeps.

    Attributes:
        folder: Where frames and sidecars go.
        max_mb: Size cap of the folder (MB); the oldest frames are evicted.
        min_confidence: A top score below this makes a frame doubtful.
        min_margin: A top-1 minus top-2 score below this makes a frame doubtful.
        confident_sample: Share of the other (confident) frames kept at random.
        min_interval_s: At most one frame kept per this many seconds.
        duplicate_level: Mean grey-level difference of 16x16 thumbnails under which a
            frame counts as a near-duplicate of the last kept one.
        max_duplicate_s: A near-duplicate is kept anyway after this many seconds.
        top_k: Labels written to the sidecar's `top_k` (all scores are written too).
        seed: Seed of the confident-frame sampling (None: random).
    """

    folder: Path
    max_mb: float = 500.0
    min_confidence: float = 0.6
    min_margin: float = 0.2
    confident_sample: float = 0.02
    min_interval_s: float = 1.0
    duplicate_level: float = 6.0
    max_duplicate_s: float = 60.0
    top_k: int = 5
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_mb <= 0:
            raise TledgeError(f"--collect-max-mb {self.max_mb}: must be more than 0")
        if not 0.0 <= self.confident_sample <= 1.0:
            raise TledgeError("--collect confident_sample: must be within 0-1")


@dataclass(frozen=True)
class Doubt:
    """How unsure the model was about one frame.

    Attributes:
        score: 1 - (top-1 minus top-2 score): 0 for a sure answer, 1 for a tie.
        reasons: Why the frame is doubtful ("low-confidence", "small-margin",
            "unknown"); empty for a confident frame.
    """

    score: float
    reasons: tuple[str, ...]


def doubt_of(scores: np.ndarray, options: CollectOptions, unknown: bool = False) -> Doubt:
    """Judge one frame's scores (probabilities in label order)."""
    if scores.size > PYTHON_TOP2_MAX:
        pair = np.partition(scores, scores.size - 2)[-2:]
        first, second = float(pair[1]), float(pair[0])
    else:
        first, second = [*heapq.nlargest(2, scores.tolist()), 0.0][:2]
    margin = first - second
    reasons = []
    if unknown:
        reasons.append("unknown")
    if first < options.min_confidence:
        reasons.append("low-confidence")
    if margin < options.min_margin:
        reasons.append("small-margin")
    return Doubt(round(1.0 - margin, 5), tuple(reasons))


@dataclass(frozen=True)
class _Kept:
    stem: str
    image: np.ndarray
    sidecar: dict


class Collector:
    """Keeps doubtful frames (and a sample of confident ones) in a bounded folder.

    Args:
        options: What to keep and where.
        source_name: Written to each sidecar's `source`.
        clock: Returns seconds (monotonic); tests pass a fake one.

    Attributes:
        kept: Frames queued for writing.
        written: Frames written (image and sidecar).
        dropped: Frames skipped because the writer was behind.
        evicted: Old frames removed to stay under the cap.
        error: The write error that stopped collecting (e.g. disk full), "" when none.

    Raises:
        TledgeError: when the folder cannot be created.

    Example:
        >>> with Collector(CollectOptions(Path("doubts"))) as collector:
        ...     collector.offer(frame, result.scores, labels, model.version.as_record())
    """

    def __init__(
        self,
        options: CollectOptions,
        source_name: str = "",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.options = options
        self.source_name = source_name
        self.kept = 0
        self.written = 0
        self.dropped = 0
        self.evicted = 0
        self.error = ""
        self._clock = clock or time.monotonic
        self._random = random.Random(options.seed)
        self._cap = int(options.max_mb * 1e6)
        self._last_kept_at: float | None = None
        self._last_thumbnail: np.ndarray | None = None
        try:
            options.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TledgeError(
                f"--collect {options.folder}: cannot create ({error.strerror})"
            ) from None
        self._files = _existing_pairs(options.folder)
        self._size = sum(size for _, size in self._files)
        self._queue: queue.Queue[_Kept | None] = queue.Queue(QUEUE_SIZE)
        self._writer = threading.Thread(target=self._write_loop, name="collect", daemon=True)
        self._writer.start()

    def offer(
        self,
        image: np.ndarray,
        frame_index: int,
        timestamp: float,
        scores: np.ndarray,
        labels: Sequence[str],
        model: dict,
        unknown: bool = False,
    ) -> bool:
        """Consider one classified frame; True when it was queued for writing.

        Cheap when the frame is not kept (no copy, no image work). `image` may be
        drawn on after this returns: a kept frame is copied first.
        """
        if self.error:
            return False
        now = self._clock()
        last = self._last_kept_at
        if last is not None and now - last < self.options.min_interval_s:
            return False  # checked first: most frames of a doubtful scene stop here
        doubt = doubt_of(scores, self.options, unknown)
        reasons = doubt.reasons
        if not reasons:
            if self._random.random() >= self.options.confident_sample:
                return False
            reasons = ("sample",)
        thumbnail = cv2.resize(
            cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), THUMBNAIL, interpolation=cv2.INTER_AREA
        )
        if (
            self._last_thumbnail is not None
            and last is not None
            and now - last < self.options.max_duplicate_s
            and float(np.mean(cv2.absdiff(thumbnail, self._last_thumbnail)))
            < self.options.duplicate_level
        ):
            return False
        when = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
        values = scores.tolist()
        order = sorted(range(len(values)), key=values.__getitem__, reverse=True)
        order = order[: self.options.top_k]
        sidecar = {
            "time": when.isoformat(),
            "frame": frame_index,
            "source": self.source_name,
            "model": model,
            "doubt": doubt.score,
            "reasons": list(reasons),
            "top_k": [{"label": labels[i], "score": round(values[i], 5)} for i in order],
            "scores": {label: round(v, 5) for label, v in zip(labels, values, strict=True)},
        }
        stem = f"{when:%Y%m%dT%H%M%S_%f}Z-{frame_index:07d}"
        try:
            self._queue.put_nowait(_Kept(stem, image.copy(), sidecar))
        except queue.Full:
            self.dropped += 1
            return False
        self._last_kept_at = now
        self._last_thumbnail = thumbnail
        self.kept += 1
        return True

    def offer_record(
        self, frame: Frame, scores: np.ndarray, labels: Sequence[str], record: dict
    ) -> bool:
        """`offer` for the run loop: a source's frame and its JSON line (model, unknown)."""
        unknown = bool(record.get("unknown", False))  # present when the model has a threshold
        return self.offer(
            frame.image, frame.index, frame.timestamp, scores, labels, record["model"], unknown
        )

    def close(self) -> None:
        """Write what is queued and stop the writer; safe to call twice."""
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout=30.0)

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error:
                continue
            try:
                self._write(item)
            except OSError as error:
                self.error = f"--collect {self.options.folder}: {error.strerror or error}"

    def _write(self, item: _Kept) -> None:
        ok, encoded = cv2.imencode(".jpg", item.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return
        image_bytes = encoded.tobytes()
        sidecar_bytes = json.dumps(item.sidecar, indent=1).encode("utf-8")
        size = len(image_bytes) + len(sidecar_bytes)
        if size > self._cap:
            return
        while self._files and self._size + size > self._cap:
            stem, old_size = self._files.pop(0)
            for suffix in (SIDECAR_SUFFIX, IMAGE_SUFFIX):  # sidecar first: never an orphan
                (self.options.folder / f"{stem}{suffix}").unlink(missing_ok=True)
            self._size -= old_size
            self.evicted += 1
        image_path = self.options.folder / f"{item.stem}{IMAGE_SUFFIX}"
        atomic_write_bytes(image_path, image_bytes)
        try:
            atomic_write_bytes(image_path.with_suffix(SIDECAR_SUFFIX), sidecar_bytes)
        except OSError:
            image_path.unlink(missing_ok=True)  # an image without its sidecar is no use
            raise
        self._files.append((item.stem, size))
        self.written += 1
        self._size += size


def _existing_pairs(folder: Path) -> list[tuple[str, int]]:
    """(stem, bytes of image + sidecar) of frames already collected, oldest first."""
    sizes: dict[str, int] = {}
    for entry in os.scandir(folder):
        stem, suffix = os.path.splitext(entry.name)
        if entry.name.startswith(".") or suffix not in (IMAGE_SUFFIX, SIDECAR_SUFFIX):
            continue
        sizes[stem] = sizes.get(stem, 0) + entry.stat().st_size
    return sorted(sizes.items())
