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
