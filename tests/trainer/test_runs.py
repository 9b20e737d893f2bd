"""Run folder naming, resuming and protection of finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract
from tledge.trainer.config import TrainConfig
from tledge.trainer.runs import open_run, run_name


def test_automatic_name_is_deterministic(tmp_path: Path) -> None:
    config = TrainConfig(data=str(tmp_path / "flowers" / "train"), output=str(tmp_path))
    name = run_name(config)
    assert name.startswith("mobilenetv2_flowers_")
    assert name == run_name(TrainConfig(data=str(tmp_path / "flowers" / "train"), output="x"))
    assert run_name(TrainConfig(data="d", name="mine")) == "mine"


def test_unfinished_run_is_resumed_and_finished_one_protected(tmp_path: Path) -> None:
    config = TrainConfig(data="d", output=str(tmp_path), name="r")
    run, resumed = open_run(config)
    assert not resumed
    assert json.loads(run.config.read_text())["data"] == str(Path("d").resolve())
    assert run.read_input_contract() == InputContract.raw_rgb_stretch((256, 256))
    assert open_run(config) == (run, True)
    with pytest.raises(TledgeError, match="different settings"):
        open_run(TrainConfig(data="d", output=str(tmp_path), name="r", epochs=1))
    run.metrics.write_text("{}")
    with pytest.raises(
        TledgeError, match="finished run already exists; use --name NEW or --overwrite"
    ):
        open_run(config)
    run, resumed = open_run(TrainConfig(data="d", output=str(tmp_path), name="r", overwrite=True))
    assert not resumed and not run.metrics.exists()


def test_foreign_folder_is_not_touched(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "thesis.tex").write_text("precious")
    with pytest.raises(TledgeError, match="not a tledge run"):
        open_run(TrainConfig(data="d", output=str(tmp_path), name="r"))
    assert (tmp_path / "r" / "thesis.tex").read_text() == "precious"


def test_the_run_records_its_backbones_input_contract_at_its_size(tmp_path: Path) -> None:
    config = TrainConfig(
        data="d", output=str(tmp_path), name="r", backbone="efficientnetb0", image_size=(96, 128)
    )
    run, _ = open_run(config)
    assert run.read_input_contract() == InputContract.raw_rgb_stretch((96, 128))
    run.input_contract.unlink()  # a run started before runs recorded it
    assert open_run(config) == (run, True)
    assert run.read_input_contract() == InputContract.raw_rgb_stretch((96, 128))
