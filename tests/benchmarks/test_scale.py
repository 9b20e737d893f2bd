"""The scale benchmark's synthetic photos, size folders and report (no training here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tledge.benchmarks.report import build_report, to_markdown
from tledge.benchmarks.scale import CHECK_REPEATS, independent_checks, measure_checks, targets
from tledge.benchmarks.scale_data import classes_for, draw_photo, generate_pool, link_size
from tledge.benchmarks.scale_report import SCALE_SECTION, scale_notes, scale_plot
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


def _row(images: int, rss: float, phase1: float, phase2: float) -> dict:
    train = {
        "peak_rss_mib": rss,
        "images_per_second": {"feature_extraction": phase1, "fine_tuning": phase2},
        "cache_disk_mib": 3.0,
        "load": {"mean": 1.5, "max": 2.0},
    }
    return {
        "images": images,
        "classes": 10,
        "check_first_seconds": images / 100,
        "check_rerun_seconds": 0.1,
        "check_load": {"mean": 1.0, "max": 1.0},
        "train": train,
    }


def test_targets_are_ratios_of_the_top_size_to_the_reference() -> None:
    """Checked to fail: comparing against the first size instead of the reference size
    turned the RSS growth into 0.2 / 0.9 - 1."""
    rows = [_row(1000, 900.0, 50, 20), _row(5000, 1000.0, 50, 20), _row(50000, 1200.0, 40, 19)]
    rows[1].update(check_one_core_seconds=4.0, check_all_cores_seconds=2.0)
    found = targets(rows, 5000)
    assert found["compared"] == [5000, 50000]
    assert found["rss_growth"] == {"value": 0.2, "ok": False}
    assert found["feature_extraction_rate_ratio"] == {"value": 0.8, "ok": False}
    assert found["fine_tuning_rate_ratio"] == {"value": 0.95, "ok": True}
    assert found["parallel_check_speedup"] == {"value": 2.0, "images": 5000, "ok": True}
    assert found["rerun_speedup_min"] == {"value": 100.0, "ok": True}


def test_report_has_a_row_per_size_notes_and_a_plot(tmp_path: Path) -> None:
    rows = [_row(1000, 900.0, 50, 20), _row(5000, 1000.0, 50, 20)]
    rows[0].update(
        check_one_core_seconds=4.0,
        check_all_cores_seconds=2.0,
        check_independent_processes=2,
        check_independent_seconds=2.5,
    )
    section = {"options": {}, "sizes": rows, "targets": targets(rows, 1000)}
    report = build_report("tledge bench scale --root x", notes=scale_notes(section), scale=section)
    table = to_markdown(report, SCALE_SECTION)
    assert "| 5000 | 10 | 50.0 | 0.1 | 500x | 50 | 20 | - | - | 1000.0 | 3.0 |" in table
    assert (
        "(2.00x)" in table
        and "peak RSS growth, top size vs reference (target <= +15 %): 0.1111 (met)" in table
    )
    assert "5000: check 1.0, training 1.5 (max 2.0)" in table
    assert (
        "2 independent one-core processes side by side" in table
        and "(1.60x, for reference)" in table
    )
    assert "(met; independent one-core processes side by side, for reference: 1.6x" in table
    assert scale_plot(section, tmp_path / "scale.png").stat().st_size > 0


def test_independent_checks_each_check_their_share(tmp_path: Path) -> None:
    """Two real processes, each checking every other file on one core into its own store."""
    pool = generate_pool(tmp_path / "pool", per_class=4, side=48, workers=1, classes=2)
    files = list(list_class_folders(pool).paths)
    seconds = independent_checks(files, tmp_path / "store", processes=2)
    assert 0 < seconds < 60
    for index in range(2):
        share = files[index::2]
        verdicts = list((tmp_path / "store" / f"share{index}").iterdir())
        assert share and verdicts, index


def test_parallel_checks_keep_the_fastest_of_interleaved_repeats(tmp_path: Path) -> None:
    pool = generate_pool(tmp_path / "pool", per_class=4, side=48, workers=1, classes=2)
    files = list(list_class_folders(pool).paths)
    row = measure_checks(files, tmp_path / "store", parallel=True)
    for name in ("one_core", "all_cores"):
        runs = row[f"check_{name}_all_seconds"]
        assert len(runs) == CHECK_REPEATS and row[f"check_{name}_seconds"] == min(runs)
    assert row["check_independent_seconds"] > 0 and row["check_rerun_seconds"] >= 0
