"""Resolving what to export: run folders and bare .keras files."""

from __future__ import annotations

import json

import pytest

from tledge.core.errors import TledgeError
from tledge.exporter.loading import resolve_source


def fake_run(root, config):
    root.mkdir()
    (root / "model.keras").write_bytes(b"not read here")
    (root / "labels.txt").write_text("cat\ndog\n")
    (root / "config.json").write_text(json.dumps(config))
    return root


def test_run_folder_supplies_labels_data_and_precision(tmp_path):
    train, test = tmp_path / "train", tmp_path / "test"
    train.mkdir()
    test.mkdir()
    config = {"backbone": "mobilenetv2", "precision": "mixed_float16", "data": str(train)}
    run = fake_run(tmp_path / "run", {**config, "test": str(test), "val": None})
    source = resolve_source(run)
    assert source.labels == ("cat", "dog")
    assert (source.backbone, source.precision) == ("mobilenetv2", "mixed_float16")
    assert (source.calibration_data, source.eval_data) == (train, test)
    assert source.export_dir == run / "export"
    assert source.source_run == str(run.resolve())


def test_explicit_folders_override_the_run_and_val_is_the_fallback(tmp_path):
    val, other = tmp_path / "val", tmp_path / "other"
    val.mkdir()
    other.mkdir()
    run = fake_run(tmp_path / "run", {"data": "/nowhere", "test": None, "val": str(val)})
    source = resolve_source(run)
    assert source.eval_data == val
    assert source.calibration_data is None
    assert source.precision == "float32"
    source = resolve_source(run, calibration_data=other, eval_data=other, output_dir=tmp_path)
    assert (source.calibration_data, source.eval_data, source.export_dir) == (
        other,
        other,
        tmp_path,
    )


def test_keras_file_with_labels(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"x")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    source = resolve_source(model, labels_file=labels)
    assert source.labels == ("a", "b")
    assert source.export_dir == tmp_path / "export"
    assert source.source_run == ""


def test_missing_data_folder_names_the_option(tmp_path):
    run = fake_run(tmp_path / "run", {})
    with pytest.raises(TledgeError, match="--eval-data .*folder not found"):
        resolve_source(run, eval_data=tmp_path / "missing")


def test_run_calibration_goes_to_the_contract_fields(tmp_path):
    run = fake_run(tmp_path / "run", {"backbone": "mobilenetv2"})
    assert resolve_source(run).unknown_threshold is None  # an old run: no unknowns
    assert resolve_source(run).temperature == 1.0
    calibration = {"temperature": 1.8, "unknown_threshold": 0.43}
    (run / "metrics.json").write_text(json.dumps({"calibration": calibration}))
    source = resolve_source(run)
    assert (source.temperature, source.unknown_threshold) == (1.8, 0.43)
