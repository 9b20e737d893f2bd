import zipfile

import pytest

from tledge.core.errors import TledgeError
from tledge.edge.contract import (
    ModelContract,
    Quantization,
    embed_contract,
    read_contract,
    tflite_body,
)


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


def test_embed_then_read_gives_back_contract_and_body(tmp_path):
    body = b"TFL3" + bytes(range(256)) * 10
    path = tmp_path / "model.tflite"
    path.write_bytes(embed_contract(body, make_contract()))
    assert read_contract(path) == make_contract()
    assert tflite_body(path.read_bytes()) == body


def test_embedding_twice_replaces_the_contract(tmp_path):
    body = b"TFL3" + b"\x00" * 100
    once = embed_contract(body, make_contract())
    twice = embed_contract(once, make_contract(labels=("a", "b", "c")))
    path = tmp_path / "model.tflite"
    path.write_bytes(twice)
    assert read_contract(path).labels == ("a", "b", "c")
    assert tflite_body(twice) == body


def test_plain_file_has_no_contract(tmp_path):
    path = tmp_path / "plain.tflite"
    path.write_bytes(b"TFL3" + b"\x01" * 64)
    assert read_contract(path) is None


def test_missing_file_and_bad_contract_are_errors(tmp_path):
    with pytest.raises(TledgeError, match="not found"):
        read_contract(tmp_path / "nope.tflite")
    path = tmp_path / "bad.tflite"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tledge_contract.json", '{"labels": []}')
    with pytest.raises(TledgeError, match=str(path)):
        read_contract(path)


def test_invalid_values_are_rejected():
    with pytest.raises(TledgeError, match="resize"):
        make_contract(resize="zoom")
    with pytest.raises(TledgeError, match="labels"):
        make_contract(labels=())


def test_calibration_fields_round_trip_and_are_checked():
    contract = make_contract(temperature=1.7, unknown_threshold=0.42)
    assert ModelContract.from_json(contract.to_json()) == contract
    assert make_contract().unknown_threshold is None and make_contract().temperature == 1.0
    with pytest.raises(TledgeError, match="unknown_threshold"):
        make_contract(unknown_threshold=1.5)
    with pytest.raises(TledgeError, match="temperature"):
        make_contract(temperature=0.0)
