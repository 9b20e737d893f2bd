import os

import pytest

from tledge.core.atomic import atomic_path, atomic_write_text
from tledge.core.labels import read_labels, write_labels


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]


def test_atomic_write_replaces_and_creates_parents(tmp_path):
    target = tmp_path / "deep" / "config.json"
    atomic_write_text(target, "{}")
    atomic_write_text(target, '{"a": 1}')
    assert target.read_text() == '{"a": 1}'


def test_labels_round_trip(tmp_path):
    path = write_labels(tmp_path / "labels.txt", ["apple pie", "baklava"])
    assert read_labels(path) == ["apple pie", "baklava"]


def test_written_files_get_the_usual_permissions(tmp_path):
    reference = tmp_path / "plain.txt"
    reference.write_text("x")
    written = atomic_write_text(tmp_path / "atomic.txt", "x")
    assert os.stat(written).st_mode == os.stat(reference).st_mode
