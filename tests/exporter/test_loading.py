"""Resolving what to export: run folders and bare .keras files."""

from __future__ import annotations

import json

import pytest

from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract, write_input_contract
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
    assert (source.calibration_data, source.eval_data) == (train.resolve(), test.resolve())
    assert source.export_dir == run / "export"
    assert source.source_run == str(run.resolve())


def test_explicit_folders_override_the_run_and_val_is_the_fallback(tmp_path):
    val, other = tmp_path / "val", tmp_path / "other"
    val.mkdir()
    other.mkdir()
    run = fake_run(tmp_path / "run", {"data": "/nowhere", "test": None, "val": str(val)})
    source = resolve_source(run)
    assert source.eval_data == val.resolve()
    assert source.calibration_data is None
    assert source.precision == "float32"
    source = resolve_source(run, calibration_data=other, eval_data=other, output_dir=tmp_path)
    assert (source.calibration_data, source.eval_data, source.export_dir) == (
        other.resolve(),
        other.resolve(),
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


def test_data_folders_are_found_given_any_way(tmp_path, monkeypatch):
    """Issue 15: a run config stored "photos/test" relative to where training ran, so an
    export from another folder found no held-out images (failed before the fix)."""
    project = tmp_path / "project"
    (project / "photos" / "test").mkdir(parents=True)
    (project / "runs").mkdir()
    run = fake_run(project / "runs" / "run", {"data": None, "test": "photos/test"})
    absolute = (project / "photos" / "test").resolve()

    monkeypatch.chdir(tmp_path)  # not where training ran
    assert resolve_source(run).eval_data == absolute
    monkeypatch.chdir(project / "photos")
    assert resolve_source(run, eval_data="test").eval_data == absolute
    assert resolve_source(run, eval_data=absolute).eval_data == absolute


def test_input_contract_comes_from_the_run(tmp_path):
    run = fake_run(tmp_path / "run", {})
    assert resolve_source(run).input_contract is None
    contract = InputContract.raw_rgb_stretch((48, 64))
    write_input_contract(run / "input_contract.json", contract)
    assert resolve_source(run).input_contract == contract
    (run / "checkpoints").mkdir()
    best = run / "checkpoints" / "best.keras"
    best.write_bytes(b"x")
    assert resolve_source(best, labels_file=run / "labels.txt").input_contract == contract


def test_broken_input_contract_is_one_line(tmp_path):
    run = fake_run(tmp_path / "run", {})
    (run / "input_contract.json").write_text('{"input_size": [8, 8]}')
    with pytest.raises(TledgeError, match=r"input_contract.json: input contract: missing"):
        resolve_source(run)
