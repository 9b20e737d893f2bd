"""Where decoded training images live between epochs: memory, a disk file, or nowhere.

Keeping every decoded image in memory is fastest but grows with the dataset (Food-101 at
256 px is about 15 GB); a tf.data file cache costs disk instead; decoding every epoch
costs only CPU. `choose_cache` turns `--cache auto` into one of them from an estimate of
the decoded size and the machine's free memory and disk.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CACHE_MODES = ("auto", "memory", "disk", "none")
# `auto` keeps images in memory only when they take at most this share of free memory:
# training, its copies of batches and the rest of the machine need the remainder.
MEMORY_SHARE = 0.25
# `auto` uses a disk cache only when it takes at most this share of free disk.
DISK_SHARE = 0.5

Log = Callable[[str], None]


@dataclass(frozen=True)
class CachePlan:
    """How `image_dataset` keeps decoded images between epochs.

    Attributes:
        mode: "memory", "disk" (a tf.data file cache in `folder`) or "none" (decode
            every epoch).
        folder: Folder of the disk cache files (mode "disk" only; one run's own).
    """

    mode: str = "none"
    folder: Path | None = None


def decoded_bytes(images: int, image_size: tuple[int, int]) -> int:
    """Bytes of `images` decoded uint8 RGB images of `image_size`."""
    return images * image_size[0] * image_size[1] * 3


def available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux MemAvailable), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def choose_cache(
    mode: str,
    split_sizes: Iterable[int],
    image_size: tuple[int, int],
    folder: Path,
    log: Log,
) -> CachePlan:
    """Resolve `--cache` for datasets of `split_sizes` images; log what `auto` chose and why.

    Args:
        mode: "auto", "memory", "disk" or "none".
        split_sizes: Image counts of the datasets that may be cached at once.
        image_size: (height, width) of the decoded images.
        folder: Folder of a disk cache.
        log: Called with the estimate and the choice (mode "auto" only).

    Returns:
        The plan `image_dataset` follows.
    """
    if mode != "auto":
        return CachePlan(mode, folder if mode == "disk" else None)
    needed = decoded_bytes(sum(split_sizes), image_size)
    free = available_memory()
    gib = 2**30
    if free is not None and needed <= MEMORY_SHARE * free:
        log(
            f"cache auto: decoded images need ~{needed / gib:.2f} GiB of "
            f"{free / gib:.1f} GiB free memory: keeping them in memory"
        )
        return CachePlan("memory")
    folder.mkdir(parents=True, exist_ok=True)
    free_disk = shutil.disk_usage(folder).free
    where = f"~{needed / gib:.2f} GiB, more than {MEMORY_SHARE:.0%} of " + (
        f"{free / gib:.1f} GiB free memory" if free is not None else "unknown free memory"
    )
    if needed <= DISK_SHARE * free_disk:
        log(f"cache auto: decoded images need {where}: streaming through a disk cache in {folder}")
        return CachePlan("disk", folder)
    log(f"cache auto: decoded images need {where} and disk is short: decoding every epoch")
    return CachePlan("none")
