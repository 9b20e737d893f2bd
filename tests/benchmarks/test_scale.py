"""The scale benchmark's synthetic photos, size folders and report (no training here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tledge.benchmarks.scale import write_results
from tledge.benchmarks.scale_data import classes_for, draw_photo, generate_pool, link_size
from tledge.core.folders import list_class_folders


def test_photos_are_deterministic_and_sizes_are_hard_links(tmp_path: Path) -> None:
    assert np.array_equal(draw_photo(3, 7, 64), draw_photo(3, 7, 64))
    assert not np.array_equal(draw_photo(3, 7, 64), draw_photo(4, 7, 64))
    assert (classes_for(1000), classes_for(5000), classes_for(20000), classes_for(50000)) == (
        10,
        10,
        40,
        101,
    )
    pool = generate_pool(tmp_path / "pool", per_class=3, side=48, workers=1, classes=10)
    folder = link_size(pool, tmp_path / "n20", 20)
    listing = list_class_folders(folder)
    assert len(listing.paths) == 20 and len(listing.class_names) == 10
    first = listing.paths[0]
    assert first.stat().st_ino == (pool / first.parent.name / first.name).stat().st_ino


def test_report_has_a_row_per_size_and_a_plot(tmp_path: Path) -> None:
    train = {
        "peak_rss_mib": 900.0,
        "images_per_second": {"feature_extraction": 50.0, "fine_tuning": 20.0},
        "cache_disk_mib": 3.0,
    }
    rows = [
        {"images": n, "classes": 10, "check_first_seconds": n / 100, "check_rerun_seconds": 0.1,
         "load_average": [1.0, 1.0, 1.0], "train": train}
        for n in (1000, 5000)
    ]  # fmt: skip
    rows[0].update(check_one_core_seconds=4.0, check_all_cores_seconds=2.0, check_parallel_files=9)
    write_results({"machine": {}, "args": [], "sizes": rows}, tmp_path)
    table = (tmp_path / "scale.md").read_text()
    assert "| 5000 | 10 | 50.0 | 0.1 | 500x | 50.0 | 20.0 | 900.0 | 3.0 |" in table
    assert "(2.00x)" in table and (tmp_path / "scale.png").stat().st_size > 0
