"""`--cache`: every mode feeds every good image exactly once per epoch, mixed across classes."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tledge.core.input_contract import InputContract
from tledge.trainer import caching, data
from tledge.trainer.caching import CachePlan, choose_cache, decoded_bytes
from tledge.trainer.data import image_dataset, load_splits

SIZE = InputContract.raw_rgb_stretch((24, 24))


def _fingerprints(dataset) -> list[tuple[str, int]]:
    """(hash of the pixels, label) of every example of one pass over `dataset`."""
    seen = []
    for images, labels in dataset:
        for image, label in zip(images.numpy(), labels.numpy(), strict=True):
            digest = hashlib.sha1(image.astype(np.uint8).tobytes()).hexdigest()
            seen.append((digest, int(label.argmax())))
    return seen


@pytest.mark.parametrize("mode", ["memory", "disk", "none"])
def test_every_good_image_once_per_epoch(messy_dataset: Path, tmp_path: Path, mode: str) -> None:
    """Broken on purpose once: a `.take(len - 1)` in the "none" stream failed it."""
    splits = load_splits(
        str(messy_dataset / "train"),
        None,
        None,
        val_split=0.2,
        train_fraction=1.0,
        seed=0,
        convert_dir=tmp_path / "converted",
        warn=lambda message: None,
    )
    expected = Counter(_fingerprints(image_dataset(splits.train, 4, SIZE, batch_size=5)))
    assert sum(expected.values()) == len(splits.train) == 47  # 48 + 9 odd files - 10 val
    plan = CachePlan(mode, tmp_path / "cache" if mode == "disk" else None)
    dataset = image_dataset(splits.train, 4, SIZE, batch_size=5, shuffle_seed=1, cache=plan)
    epochs = [_fingerprints(dataset) for _ in range(3)]
    for epoch in epochs:
        assert Counter(epoch) == expected
    assert epochs[0] != epochs[1]  # reshuffled each epoch
    if mode == "disk":
        assert any((tmp_path / "cache").glob("images_*.index"))


@pytest.mark.parametrize("mode", ["disk", "none"])
def test_streamed_shuffle_mixes_classes(tiny_dataset: Path, tmp_path: Path, mode: str) -> None:
    """The file list is class-sorted; a bounded buffer alone would fill batches with class 0.

    Broken on purpose once (file-list shuffle removed, buffer of 8): the first batch held
    one class.
    """
    splits = load_splits(
        str(tiny_dataset / "train"),
        None,
        None,
        val_split=0.0001,
        train_fraction=1.0,
        seed=0,
        convert_dir=tmp_path / "converted",
        warn=lambda message: None,
    )
    assert list(splits.train.labels) == sorted(splits.train.labels)
    plan = CachePlan(mode, tmp_path / "cache" if mode == "disk" else None)
    dataset = image_dataset(splits.train, 4, SIZE, batch_size=16, shuffle_seed=5, cache=plan)
    for _ in range(2):
        _, labels = next(iter(dataset))
        assert len(set(labels.numpy().argmax(axis=1))) >= 3


def test_a_stale_disk_cache_lock_does_not_stop_the_next_run(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    """A run killed while writing the cache leaves a .lockfile; the next run must go on.

    Broken on purpose once (no lock clean-up): tf.data raised "concurrent caching iterator".
    """
    splits = load_splits(
        str(tiny_dataset / "test"),
        None,
        None,
        val_split=0.25,
        train_fraction=1.0,
        seed=0,
        convert_dir=tmp_path / "converted",
        warn=lambda message: None,
    )
    plan = CachePlan("disk", tmp_path / "cache")
    cache_file = data._disk_cache_file(splits.train, SIZE, 2, plan)
    # What a writer killed mid-epoch leaves (tf.data names it <file>_<shard>.lockfile).
    Path(f"{cache_file}_0.lockfile").write_text("pid 1234")
    dataset = image_dataset(splits.train, 4, SIZE, batch_size=4, shuffle_seed=2, cache=plan)
    assert len(_fingerprints(dataset)) == len(splits.train)


def test_auto_keeps_images_in_memory_only_when_they_fit(tmp_path: Path, monkeypatch) -> None:
    messages: list[str] = []
    needed = decoded_bytes(1000, (100, 100))
    assert needed == 30_000_000
    monkeypatch.setattr(caching, "available_memory", lambda: 8 * needed)
    plan = choose_cache("auto", [800, 200], (100, 100), tmp_path / "c", messages.append)
    assert plan.mode == "memory"
    monkeypatch.setattr(caching, "available_memory", lambda: 2 * needed)
    plan = choose_cache("auto", [800, 200], (100, 100), tmp_path / "c", messages.append)
    assert plan == CachePlan("disk", tmp_path / "c")
    assert "~0.03 GiB" in messages[0] and "in memory" in messages[0]
    assert "disk cache" in messages[1]
    assert choose_cache("none", [5], (10, 10), tmp_path, messages.append).mode == "none"
    assert len(messages) == 2
