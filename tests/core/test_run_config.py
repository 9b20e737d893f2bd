"""RunConfig: config.json typed, tolerant of older files, losing no key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tledge.core.errors import TledgeError
from tledge.core.run_folder import RunFolder
from tledge.trainer.config import TrainConfig


def _run(tmp_path: Path, values) -> RunFolder:
    (tmp_path / "config.json").write_text(json.dumps(values))
    return RunFolder(tmp_path)


def test_an_older_config_without_newer_keys_reads_with_defaults(tmp_path: Path):
    config = _run(tmp_path, {"data": "photos/train", "backbone": "mobilenetv2"}).read_config()
    assert (config.data, config.backbone) == ("photos/train", "mobilenetv2")
    assert config.image_size is None and config.precision is None and config.test is None
    assert config.train_fraction == 1.0  # older runs used every training image


def test_unknown_keys_are_kept_and_written_back(tmp_path: Path):
    values = {"backbone": "efficientnetb0", "image_size": [224, 224], "from_the_future": {"a": 1}}
    run = _run(tmp_path, values)
    config = run.read_config()
    assert config.image_size == (224, 224)
    assert config.setting("from_the_future") == {"a": 1}
    run.write_config(config)
    assert json.loads(run.config.read_text()) == values


def test_the_trainer_writes_what_readers_get_back(tmp_path: Path):
    train_config = TrainConfig(data="d/train", test="d/test", image_size=(96, 128))
    run = RunFolder(tmp_path)
    run.write_config(train_config.run_config())
    assert json.loads(run.config.read_text()) == train_config.to_dict()
    stored = run.read_config()
    test = str(Path("d/test").resolve())  # stored absolute (issue 15)
    assert (stored.image_size, stored.test, stored.seed) == ((96, 128), test, 42)
    assert TrainConfig.from_run_config(stored).identity() == train_config.identity()


@pytest.mark.parametrize("values", [{"image_size": [224]}, {"image_size": "224"}, [1, 2]])
def test_malformed_config_names_the_file(tmp_path: Path, values):
    with pytest.raises(TledgeError, match="config.json"):
        _run(tmp_path, values).read_config()


def test_the_config_is_read_only(tmp_path: Path):
    config = _run(tmp_path, {"backbone": "mobilenetv2"}).read_config()
    with pytest.raises(TypeError):
        config.settings["backbone"] = "other"  # type: ignore[index]
