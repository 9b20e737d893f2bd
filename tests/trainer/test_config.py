"""TrainConfig: validation, config.json contents and the run fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tledge.core.errors import TledgeError
from tledge.trainer.config import TrainConfig

BRIEF_KEYS = {
    "backbone",
    "alpha",
    "image_size",
    "precision",
    "weights",
    "data",
    "val",
    "test",
    "val_split",
    "train_fraction",
    "seed",
    "augment",
    "epochs",
    "fine_tune_epochs",
    "fine_tune_layers",
    "learning_rate",
    "fine_tune_lr",
    "batch_size",
    "lr_schedule",
    "tledge_version",
}


def test_config_json_has_agreed_keys_and_round_trips() -> None:
    config = TrainConfig(data="photos/train", image_size=(96, 128), learning_rate=0.01)
    values = json.loads(json.dumps(config.to_dict()))
    assert set(values) >= BRIEF_KEYS
    assert values["image_size"] == [96, 128]
    assert values["fine_tune_lr"] == pytest.approx(0.001)
    absolute = str(Path("photos/train").resolve())
    assert values["data"] == absolute
    assert TrainConfig.from_dict(values) == TrainConfig(
        data=absolute, image_size=(96, 128), learning_rate=0.01, fine_tune_lr=0.001
    )


def test_config_json_stores_absolute_data_folders(tmp_path, monkeypatch) -> None:
    """Issue 15: "photos/test" relative to where training ran left an export from
    another folder without held-out data (failed before the fix)."""
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(data="photos/train", test="photos/test", from_run="runs/a")
    values = config.to_dict()
    assert values["data"] == str(tmp_path.resolve() / "photos" / "train")
    assert values["test"] == str(tmp_path.resolve() / "photos" / "test")
    assert values["from_run"] == str(tmp_path.resolve() / "runs" / "a")
    assert values["val"] is None


def test_fingerprint_ignores_location_but_not_hyperparameters() -> None:
    base = TrainConfig(data="d")
    assert base.fingerprint() == TrainConfig(data="d", output="elsewhere", name="x").fingerprint()
    assert base.fingerprint() != TrainConfig(data="d", epochs=3).fingerprint()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"precision": "fp8"}, "--precision"),
        ({"train_fraction": 0}, "--train-fraction"),
        ({"val_split": 1.0}, "--val-split"),
        ({"epochs": 0, "fine_tune_epochs": 0}, "are 0"),
        ({"image_size": (16, 16)}, "--image-size"),
        ({"lr_schedule": "step"}, "--lr-schedule"),
        ({"mixup": 1.5}, "--mixup"),
        ({"from_run": "runs/a", "fine_tune_epochs": 0}, "--from-run"),
    ],
)
def test_bad_values_are_rejected(overrides: dict, message: str) -> None:
    with pytest.raises(TledgeError, match=message):
        TrainConfig(data="d", **overrides)
