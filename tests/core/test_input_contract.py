"""The input contract: explicit, validated, and carried unchanged into the model contract."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract, read_input_contract, write_input_contract
from tledge.edge.contract import ModelContract

CROP = InputContract((224, 192), "center_crop", "area", 0.875, "BGR", (1.0, 2.0, 3.0), (4.0,) * 3)


def test_round_trip_through_the_run_file(tmp_path):
    path = write_input_contract(tmp_path / "input_contract.json", CROP)
    assert read_input_contract(path) == CROP
    assert json.loads(path.read_text())["input_size"] == [224, 192]


def test_every_key_is_required(tmp_path):
    values = CROP.to_dict()
    del values["interpolation"]
    (tmp_path / "c.json").write_text(json.dumps(values))
    with pytest.raises(TledgeError, match=r"c.json: input contract: missing 'interpolation'"):
        read_input_contract(tmp_path / "c.json")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("input_size", (0, 8), "bad input_size"),
        ("resize", "fill", "resize must be one of"),
        ("interpolation", "bicubic", "interpolation must be one of"),
        ("crop_fraction", 0.0, "crop_fraction must be in"),
        ("color_order", "GRB", "color_order must be one of"),
        ("std", (1.0, 0.0, 1.0), "std above 0"),
    ],
)
def test_bad_values_are_refused(field, value, message):
    with pytest.raises(TledgeError, match=message):
        dataclasses.replace(CROP, **{field: value})


def test_model_contract_carries_the_input_contract_unchanged():
    contract = ModelContract.for_input(CROP, labels=("a", "b"), variant="int8")
    assert contract.input_contract == CROP
    assert ModelContract.from_json(contract.to_json()).input_contract == CROP


def test_model_contract_refuses_an_unknown_interpolation():
    with pytest.raises(TledgeError, match="model contract: input contract: interpolation"):
        ModelContract(labels=("a",), input_size=(8, 8), interpolation="bicubic")
