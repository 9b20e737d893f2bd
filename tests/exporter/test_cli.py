"""`tledge export` on the command line: the drift gate, atomic output and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tledge.cli import cli


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
    entry = report["variants"]["int8"]
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
    assert report["variants"]["int8"]["agreement"] < 0.9
    assert report["min_agreement"] == 0.9


@pytest.mark.slow
def test_accepted_export_prints_table_and_replaces_stale_rejection(make_run):
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

    result = run_export(run, "--int8", "--max-drift", "100")
    assert result.exit_code == 0, result.output
    report = json.loads((run / "export" / "drift.json").read_text())
    assert list(report["variants"]) == ["fp32", "int8"]


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
    run = make_run(model_file=placeholder_model)  # the check comes before loading it
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
