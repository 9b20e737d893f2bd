import json

import pytest

from tledge.core.errors import TledgeError
from tledge.edge.contract import ModelContract, Quantization


def make_contract(**overrides) -> ModelContract:
    values = dict(
        labels=("cat", "dog"),
        input_size=(96, 128),
        input_quantization=Quantization("uint8", 0.5, 3),
        backbone="mobilenetv2",
        drift={"top1_drift_pp": 0.4},
    )
    values.update(overrides)
    return ModelContract(**values)


def test_json_round_trip_keeps_every_field():
    contract = make_contract()
    assert ModelContract.from_json(contract.to_json()) == contract


def test_unknown_keys_are_ignored():
    raw = json.loads(make_contract().to_json())
    raw["added_later"] = {"anything": [1, 2]}
    assert ModelContract.from_json(json.dumps(raw)) == make_contract()


def test_invalid_values_are_rejected():
    with pytest.raises(TledgeError, match="resize"):
        make_contract(resize="zoom")
    with pytest.raises(TledgeError, match="labels"):
        make_contract(labels=())


def _crafted(**fields) -> str:
    raw = json.loads(make_contract().to_json())
    raw.update(fields)
    return json.dumps(raw)


@pytest.mark.parametrize(
    "text, problem",
    [
        (_crafted(mean=[1.0, 2.0]), "mean: expected 3 values"),
        (_crafted(std=[0, 1, 1]), "std above 0"),
        (_crafted(crop_fraction=0), "crop_fraction"),
        (_crafted(crop_fraction=1.5), "crop_fraction"),
        (_crafted(input_quantization={"dtype": "uint8", "scale": "big"}), "scale: expected a num"),
        (_crafted(input_quantization={"dtype": "uint8", "scale": -1.0}), "scale"),
        (_crafted(labels="cat"), "labels: expected a list"),
        (_crafted(labels=["cat", 3]), "labels: expected a one-line string"),
        (_crafted(labels=["cat", "d\nog"]), "labels: expected a one-line string"),
        (_crafted(labels=["cat", " "]), "a label is empty"),
        (_crafted(input_size=[96, True]), "input_size: expected a 32-bit integer"),
        (_crafted(input_size=[96]), "input_size: expected 2 values"),
        (_crafted(interpolation="cubic"), "interpolation"),
        (_crafted(drift=[1]), "drift: expected a JSON object"),
        (_crafted(mean=[0, 0, 7]).replace("7]", "1e400]"), "a finite number"),
        (_crafted(mean=[0, 0, 7]).replace("7]", "NaN]"), "NaN is not a number"),
        ('{"labels": ["a"]}', "input_size"),
        ("[]", "expected a JSON object"),
        ("{", "invalid JSON"),
        ('{"drift": ' + "[" * 50 + "]" * 50 + "}", "nested deeper"),
        ("[" * 100_000, "nested deeper"),
    ],
)
def test_crafted_fields_give_one_line_errors(text, problem):
    """Each case once gave a traceback or silently wrong preprocessing (issue 14)."""
    with pytest.raises(TledgeError, match=problem) as caught:
        ModelContract.from_json(text)
    assert "\n" not in str(caught.value)
