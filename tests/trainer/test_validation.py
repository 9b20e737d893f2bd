"""Checking and converting images before training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tledge.core.folders import describe_bad_files, list_images
from tledge.edge.images import read_rgb
from tledge.trainer.validation import check_images


def test_bad_files_are_named_and_odd_files_kept(odd_and_broken, tmp_path: Path) -> None:
    files = list_images(odd_and_broken.folder)
    checked = check_images(files, tmp_path / "converted")
    bad = {file.name: reason for file, reason in checked.bad}
    assert set(bad) == set(odd_and_broken.broken)
    for name, reason in odd_and_broken.broken.items():
        assert bad[name].startswith(reason)
    kept = {files[i].name for i in checked.keep}
    assert kept == set(odd_and_broken.odd)
    # Only the formats TensorFlow reads like OpenCV are fed directly.
    direct = {
        files[i].name
        for i, path in zip(checked.keep, checked.paths, strict=True)
        if path == files[i]
    }
    assert direct == {"gray.jpg"}
    assert checked.converted == len(odd_and_broken.odd) - 1


def test_tensorflow_decodes_every_kept_file_like_opencv(odd_and_broken, tmp_path: Path) -> None:
    import tensorflow as tf

    files = list_images(odd_and_broken.folder)
    checked = check_images(files, tmp_path / "converted")
    for index, path in zip(checked.keep, checked.paths, strict=True):
        decoded = tf.io.decode_image(
            tf.io.read_file(str(path)), channels=3, expand_animations=False
        ).numpy()
        reference = read_rgb(files[index])
        assert decoded.shape == reference.shape, files[index].name
        difference = np.abs(decoded.astype(int) - reference.astype(int)).mean()
        # JPEG decoders differ by a few levels; a wrong conversion differs by far more.
        assert difference < 6, f"{files[index].name}: mean difference {difference:.1f}"


def test_converted_copies_are_reused(odd_and_broken, tmp_path: Path) -> None:
    files = list_images(odd_and_broken.folder)
    first = check_images(files, tmp_path / "converted")
    stamps = {p: p.stat().st_mtime_ns for p in first.paths if p.parent.name == "converted"}
    second = check_images(files, tmp_path / "converted")
    assert second.paths == first.paths
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())


def test_warning_names_first_ten_and_counts_the_rest() -> None:
    bad = [(Path(f"bad_{i:02d}.jpg"), "empty file") for i in range(13)]
    message = describe_bad_files(bad)
    assert message.splitlines()[0] == "skipped 13 unreadable file(s):"
    assert "bad_09.jpg" in message and "bad_10.jpg" not in message
    assert message.splitlines()[-1].strip() == "... and 3 more"


def test_plain_jpeg_with_invalid_orientation_is_used_directly(tmp_path: Path) -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 0
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "photo.jpg", exif=exif)
    checked = check_images([tmp_path / "photo.jpg"], tmp_path / "converted")
    assert checked.paths == (tmp_path / "photo.jpg",) and checked.converted == 0


def test_parallel_check_gives_the_serial_verdicts(odd_and_broken, tmp_path: Path, monkeypatch):
    from tledge.trainer import validation

    files = list_images(odd_and_broken.folder)
    serial = check_images(files, tmp_path / "serial", workers=1)
    monkeypatch.setattr(validation, "CHUNK_FILES", 3)
    progress: list[tuple[str, int, int]] = []
    parallel = check_images(
        files, tmp_path / "parallel", workers=2, on_progress=lambda *event: progress.append(event)
    )
    assert parallel.keep == serial.keep and parallel.bad == serial.bad
    assert [p.name for p in parallel.paths] == [p.name for p in serial.paths]
    assert progress[0] == ("checking images", 0, len(files))
    assert progress[-1] == ("checking images", len(files), len(files))


def _chunks_checked_here(files: list[Path], convert_dir: Path, monkeypatch) -> list[int]:
    """Check `files` one per chunk with 2 workers, this process's share slowed down; the
    sizes of the chunks this process checked itself."""
    import time

    from tledge.trainer import validation

    serial = check_images(files, convert_dir / "serial", workers=1)
    monkeypatch.setattr(validation, "CHUNK_FILES", 1)
    real_check_chunk = validation.check_chunk
    here: list[int] = []

    def slow_here(keys, folder):
        here.append(len(keys))
        time.sleep(0.2)  # time for the helper process to start and take chunks
        return real_check_chunk(keys, folder)

    monkeypatch.setattr(validation, "check_chunk", slow_here)
    parallel = check_images(files, convert_dir / "parallel", workers=2)
    assert parallel.keep == serial.keep and parallel.bad == serial.bad
    assert [p.name for p in parallel.paths] == [p.name for p in serial.paths]
    return here


def test_a_helper_process_checks_a_share_of_the_files(odd_and_broken, tmp_path, monkeypatch):
    """The second core's work runs in a helper process (`check_helper`), which gives the
    verdicts this process would. (With the helper's module name misspelt, this process
    checked all 13 files and the first assert failed.)"""
    files = list_images(odd_and_broken.folder)
    here = _chunks_checked_here(files, tmp_path, monkeypatch)
    assert 0 < len(here) < len(files)


def test_a_failing_helper_loses_no_file(odd_and_broken, tmp_path, monkeypatch):
    """A helper that cannot start (or dies) leaves its files to this process."""
    from tledge.trainer import validation

    monkeypatch.setattr(validation, "HELPER_MODULE", "tledge.no_such_module")
    files = list_images(odd_and_broken.folder)
    assert len(_chunks_checked_here(files, tmp_path, monkeypatch)) == len(files)


def test_a_script_without_a_main_guard_checks_in_parallel(odd_and_broken, tmp_path):
    """multiprocessing's spawn re-runs the caller's script in each child: with a process
    pool, a benchmark script without an `if __name__ == "__main__"` guard ran again in
    the child and failed writing the verdict store. Helpers are fresh interpreters."""
    import subprocess
    import sys

    script = tmp_path / "check.py"
    script.write_text(
        "from pathlib import Path\n"
        "from tledge.core.folders import list_images\n"
        "from tledge.trainer import validation\n"
        "validation.CHUNK_FILES = 1\n"
        f"files = list_images(Path({str(odd_and_broken.folder)!r}))\n"
        f"checked = validation.check_images(files, Path({str(tmp_path / 'out')!r}), workers=2)\n"
        "print('done', len(checked.paths), len(checked.bad))\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    good = len(list_images(odd_and_broken.folder)) - len(odd_and_broken.broken)
    assert result.stdout.split("\n") == [f"done {good} {len(odd_and_broken.broken)}", ""]


def test_a_rerun_decodes_only_new_or_changed_files(odd_and_broken, tmp_path: Path, monkeypatch):
    """Broken on purpose once (lookup returning nothing): the re-run decoded all 13 files."""
    import os

    from tledge.trainer import validation

    files = list_images(odd_and_broken.folder)
    first = check_images(files, tmp_path / "converted")
    decoded: list[str] = []
    real_check_file = validation._check_file

    def counting(file, key, convert_dir):
        decoded.append(file.name)
        return real_check_file(file, key, convert_dir)

    monkeypatch.setattr(validation, "_check_file", counting)
    again = check_images(files, tmp_path / "converted")
    assert decoded == []
    assert (again.paths, again.keep, again.bad) == (first.paths, first.keep, first.bad)
    # A fixed file (the truncated JPEG replaced by a good one) and a changed one.
    fixed = odd_and_broken.folder / "truncated.jpg"
    fixed.write_bytes((odd_and_broken.folder / "gray.jpg").read_bytes())
    stat = (odd_and_broken.folder / "photo.bmp").stat()
    os.utime(odd_and_broken.folder / "photo.bmp", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = check_images(files, tmp_path / "converted")
    assert sorted(decoded) == ["photo.bmp", "truncated.jpg"]
    assert "truncated.jpg" not in {file.name for file, _ in third.bad}
    assert len(third.bad) == len(first.bad) - 1


def test_a_deleted_converted_copy_is_made_again(odd_and_broken, tmp_path: Path) -> None:
    files = list_images(odd_and_broken.folder)
    first = check_images(files, tmp_path / "converted")
    copy = next(p for p in first.paths if p.parent == tmp_path / "converted")
    copy.unlink()
    again = check_images(files, tmp_path / "converted")
    assert again.paths == first.paths and copy.is_file()
