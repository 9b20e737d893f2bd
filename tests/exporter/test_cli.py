"""`tledge export` on the command line: the drift gate, atomic output and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tledge.cli import cli
from tledge.core.input_contract import InputContract
from tledge.edge.model_file import read_contract


def run_export(*args: str):
    return CliRunner().invoke(cli, ["export", *map(str, args)])


def blank_calibration(folder: Path, label: str) -> Path:
    """A calibration set of a single black image: int8 ranges collapse to zero."""
    (folder / label).mkdir(parents=True)
    cv2.imwrite(str(folder / label / "blank.png"), np.zeros((32, 32, 3), np.uint8))
    return folder


@pytest.mark.slow
def test_drift_gate_rejects_and_keeps_the_previous_good_file(make_run, tmp_path):
    run = make_run()
    good = run / "export" / "model_int8.tflite"
    good.parent.mkdir()
    good.write_bytes(b"previous good model")
    calibration = blank_calibration(tmp_path / "blank", "circle")

    result = run_export(run, "--int8", "--calibration-data", calibration)

    assert result.exit_code == 1
    assert "rejected int8" in result.output
    assert "--max-drift" in result.output
    assert good.read_bytes() == b"previous good model"
    rejected = run / "export" / "model_int8.rejected.tflite"
    assert rejected.stat().st_size > 1000
    report = json.loads((run / "export" / "drift.json").read_text())
    assert "int8" not in report["variants"]  # the previous file has no entry to keep here
    entry = report["rejected"]["int8"]
    assert entry["accepted"] is False
    assert entry["file"] == "model_int8.rejected.tflite"
    assert entry["top1_drift_pp"] > 1.0
    assert [p.name for p in good.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_agreement_gate(make_run, tmp_path):
    run = make_run()
    calibration = blank_calibration(tmp_path / "blank", "circle")
    args = ["--int8", "--calibration-data", calibration, "--max-drift", "100"]

    result = run_export(run, *args, "--min-agreement", "90")

    assert result.exit_code == 1
    assert "--min-agreement 90" in result.output
    assert not (run / "export" / "model_int8.tflite").exists()
    report = json.loads((run / "export" / "drift.json").read_text())
    assert report["rejected"]["int8"]["agreement"] < 0.9
    assert report["min_agreement"] == 0.9


@pytest.mark.slow
def test_accepted_export_prints_table_and_replaces_stale_rejection(
    make_run, tiny_dataset, monkeypatch
):
    run = make_run()
    stale = run / "export" / "model_fp32.rejected.tflite"
    stale.parent.mkdir()
    stale.write_bytes(b"old rejected model")

    result = run_export(run, "--fp32", "--max-drift", "0")

    assert result.exit_code == 0, result.output
    assert "fp32" in result.output and "held-out images: 32" in result.output
    assert (run / "export" / "model_fp32.tflite").is_file()
    assert not stale.exists()
    assert not (run / "export" / "model_int8.tflite").exists()

    # The same held-out folder given relative to another working folder: the fp32 entry
    # stays (issue 15: it vanished when the path was spelled differently).
    monkeypatch.chdir(tiny_dataset)
    result = run_export(run, "--int8", "--max-drift", "100", "--eval-data", "test")
    assert result.exit_code == 0, result.output
    report = json.loads((run / "export" / "drift.json").read_text())
    assert list(report["variants"]) == ["fp32", "int8"]
    assert report["keras"]["eval_data"] == str((tiny_dataset / "test").resolve())


@pytest.mark.slow
def test_int8_io_types(make_run):
    run = make_run()
    result = run_export(run, "--int8", "--io-type", "float32", "--max-drift", "100")
    assert result.exit_code == 0, result.output
    report = json.loads((run / "export" / "drift.json").read_text())["variants"]["int8"]
    assert (report["input_dtype"], report["output_dtype"]) == ("float32", "float32")
    assert report["full_integer"] is True

    result = run_export(run, "--int8", "--io-type", "int8", "--max-drift", "100")
    assert result.exit_code == 0, result.output
    report = json.loads((run / "export" / "drift.json").read_text())["variants"]["int8"]
    assert (report["input_dtype"], report["output_dtype"]) == ("int8", "int8")


@pytest.mark.slow
def test_labels_that_do_not_match_the_model(make_run, tmp_path):
    run = make_run()
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    result = run_export(run / "model.keras", "--fp32", "--labels", labels, "--eval-data", tmp_path)
    assert result.exit_code == 1
    assert "4 outputs but there are 3 labels" in result.output
    assert not (run / "export").exists()


def test_not_a_model(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = run_export(text)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {text}: expected a run folder or a .keras file"


def test_folder_that_is_not_a_run(tmp_path):
    result = run_export(tmp_path)
    assert result.exit_code == 1
    assert "not a tledge run folder" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_keras_file_needs_labels(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"zip")
    result = run_export(model)
    assert result.exit_code == 1
    assert "--labels" in result.output


def test_run_without_held_out_data_asks_for_eval_data(make_run, placeholder_model):
    """The check comes before the model is loaded: with a placeholder model file this test
    failed when export_model loaded the model first (checked by doing so)."""
    run = make_run(model_file=placeholder_model)
    config = json.loads((run / "config.json").read_text())
    config["test"] = None
    (run / "config.json").write_text(json.dumps(config))
    result = run_export(run)
    assert result.exit_code == 1
    assert "--eval-data" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_calibration_size(make_run, placeholder_model):
    result = run_export(make_run(model_file=placeholder_model), "--calibration-size", "0")
    assert result.exit_code == 1
    assert "--calibration-size" in result.output


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-drift", "nan"),
        ("--max-drift", "inf"),
        ("--max-drift", "-1"),
        ("--max-drift", "101"),
        ("--min-agreement", "nan"),
        ("--min-agreement", "-inf"),
        ("--min-agreement", "100.5"),
        ("--threads", "0"),
    ],
)
def test_thresholds_that_would_switch_a_gate_off_are_refused(tmp_path, option, value):
    """Issue 15: `--max-drift nan` was accepted and let a worse int8 file replace the
    good one (this test failed for nan and inf before the fix)."""
    result = run_export(tmp_path, option, value)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {option} ")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_unreadable_held_out_images_are_skipped_and_named(make_run, tiny_dataset, tmp_path):
    """Issue 15: one unreadable photo aborted the export (failed before the fix)."""
    held_out = Path(shutil.copytree(tiny_dataset / "test", tmp_path / "held_out"))
    (held_out / "circle" / "broken.jpg").write_bytes(b"not a jpeg")

    result = run_export(make_run(), "--fp32", "--eval-data", held_out)

    assert result.exit_code == 0, result.output
    assert "held-out images: 32" in result.output
    assert f"Warning: --eval-data {held_out.resolve()}: skipped 1 unreadable file(s):" in (
        result.output
    )
    assert f"{held_out / 'circle' / 'broken.jpg'}: not a readable image" in result.output


@pytest.mark.slow
def test_the_runs_input_contract_goes_into_the_file(make_run):
    """The exporter copies the run's contract (it used to leave ModelContract's defaults:
    with a center-crop run this test failed)."""
    crop = InputContract((32, 32), "center_crop", "area", 0.75, "RGB", (0.0,) * 3, (1.0,) * 3)
    run = make_run(input_contract=crop)
    result = run_export(run, "--fp32", "--max-drift", "100")
    assert result.exit_code == 0, result.output
    assert read_contract(run / "export" / "model_fp32.tflite").input_contract == crop


@pytest.mark.slow
def test_a_run_without_an_input_contract_says_what_it_assumed(make_run):
    run = make_run(input_contract=None)
    result = run_export(run, "--fp32")
    assert result.exit_code == 0, result.output
    assert "no input_contract.json (trained before tledge recorded it)" in result.output
    contract = read_contract(run / "export" / "model_fp32.tflite").input_contract
    assert contract == InputContract.raw_rgb_stretch_half_pixel((32, 32))
