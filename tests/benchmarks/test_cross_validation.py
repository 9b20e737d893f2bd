"""Cross-validation of training settings: folds, pooled and paired results."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tledge.benchmarks.cross_validation import compare, make_folds, parse_variant
from tledge.cli import cli
from tledge.core.errors import TledgeError
from tledge.core.folders import list_class_folders
from tledge.trainer.synthetic import generate_dataset


def _bench_cv(arguments: list[str]):
    return CliRunner().invoke(cli, ["bench", "cross-validation", *arguments])


def test_folds_hold_every_image_out_once_stratified(tiny_dataset: Path, tmp_path: Path) -> None:
    source = list_class_folders(tiny_dataset / "train")
    fold_dirs = make_folds(tiny_dataset / "train", 3, tmp_path)
    held_out: list[str] = []
    for fold_dir in fold_dirs:
        train = list_class_folders(fold_dir / "train")
        val = list_class_folders(fold_dir / "val")
        assert not {p.name for p in train.paths} & {p.name for p in val.paths}
        assert len(train.paths) + len(val.paths) == len(source.paths)
        assert set(Counter(val.labels).values()) == {len(source.paths) // 4 // 3}
        held_out += [str(Path(p).resolve()) for p in val.paths]
    assert sorted(held_out) == sorted(str(Path(p).resolve()) for p in source.paths)
    # Re-making the folds (a resumed comparison) gives the same split.
    again = make_folds(tiny_dataset / "train", 3, tmp_path)
    assert again == fold_dirs
    assert sorted(p.name for p in list_class_folders(fold_dirs[0] / "val").paths) == sorted(
        p.name for p in list_class_folders(again[0] / "val").paths
    )


def test_variant_parsing_and_errors() -> None:
    variant = parse_variant("big:fine_tune_layers=100:image_size=[64,64]:weights=none")
    assert variant.name == "big"
    assert variant.settings == {"fine_tune_layers": 100, "image_size": [64, 64], "weights": "none"}
    assert not variant.phase_two_only
    assert parse_variant("deep:fine_tune_layers=100:fine_tune_lr=5e-5").phase_two_only
    with pytest.raises(TledgeError, match="name:field=value"):
        parse_variant("x:fine_tune_layers")
    with pytest.raises(TledgeError, match="needs a name"):
        parse_variant(":epochs=1")


def test_compare_pairs_each_variant_with_the_reference() -> None:
    labels = np.array([0, 1, 0, 1])

    def fold(predicted: list[int]) -> dict:
        return {"probabilities": np.eye(2)[predicted] * 0.8 + 0.1, "labels": labels}

    rows = compare({"a": [fold([0, 1, 1, 1])], "b": [fold([0, 1, 0, 0])]}, "a")
    assert rows[0]["accuracy"] == 0.75 and "diff_pp" not in rows[0]
    assert rows[1]["accuracy"] == 0.75
    assert (rows[1]["wins"], rows[1]["losses"], rows[1]["diff_pp"]) == (1, 1, 0.0)
    assert rows[1]["ci95_pp"][0] < 0 < rows[1]["ci95_pp"][1]
    # True-class probabilities 0.9 0.9 0.1 0.9: -(3 ln 0.9 + ln 0.1) / 4, worked by hand.
    # Checked that it fails: with the predicted class's probability picked instead.
    assert rows[0]["log_loss"] == pytest.approx(0.6546667, rel=1e-6)


@pytest.mark.slow
def test_script_trains_every_variant_on_every_fold(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    generate_dataset(tmp_path / "data", per_class=6, size=32, seed=3)
    arguments = ["--data", str(tmp_path / "data"), "--weights", "none", "--folds", "2"]
    arguments += ["--set", "alpha=0.35:image_size=[32,32]:epochs=1:fine_tune_epochs=1"]
    arguments += ["--variant", "l40:fine_tune_layers=40", "--variant", "noaug:augment=false"]
    result = _bench_cv([*arguments, "--output", str(tmp_path / "cv")])
    assert result.exit_code == 0, result.output
    section = json.loads((tmp_path / "cv" / "cross_validation.json").read_text())
    section = section["cross_validation"]
    assert section["num_images"] == 24 and section["reference"] == "l40"
    assert [row["variant"] for row in section["rows"]] == ["l40", "noaug"]
    for row in section["rows"]:
        assert len(row["per_fold_accuracy"]) == 2
        assert row["accuracy"] == pytest.approx(np.mean(row["per_fold_accuracy"]))
    runs = tmp_path / "cv" / "runs"
    # The fine-tuning variant starts from the fold's shared phase-1 run; "noaug" trains
    # both phases itself; both validate on the held-out fold and never see a test set.
    for index in range(2):
        l40 = json.loads((runs / f"fold{index}_l40" / "config.json").read_text())
        assert l40["from_run"].endswith(f"fold{index}_phase1")
        noaug = json.loads((runs / f"fold{index}_noaug" / "config.json").read_text())
        assert noaug["from_run"] is None and noaug["augment"] is False
        assert noaug["val"].endswith(f"fold{index}/val") and noaug["test"] is None
    assert "| noaug |" in (tmp_path / "cv" / "cross_validation.md").read_text()
    # Re-running the command reuses the finished runs and gives the same answers.
    stamps = {path: path.stat().st_mtime for path in runs.glob("*/model.keras")}
    result = _bench_cv([*arguments, "--output", str(tmp_path / "cv")])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "cv" / "cross_validation.json").read_text())
    assert again["cross_validation"]["rows"] == section["rows"]
    assert {path: path.stat().st_mtime for path in runs.glob("*/model.keras")} == stamps


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], "fewer than 5 folds"),
        (["--folds", "2", "--backbone", "hub:m"], "Keras 3 backbones"),
        (["--set", "alpha"], "--set alpha: expected field=value"),
    ],
)
def test_script_reports_bad_input_in_one_line(
    tmp_path: Path, options: list[str], expected: str
) -> None:
    generate_dataset(tmp_path / "data", per_class=3, size=32, seed=3)
    arguments = ["--data", str(tmp_path / "data"), "--variant", "x:epochs=1", *options]
    result = _bench_cv([*arguments, "--output", str(tmp_path / "cv")])
    message = result.stderr.strip()
    assert result.exit_code == 1 and message.startswith("Error: ") and "\n" not in message
    assert expected in message
