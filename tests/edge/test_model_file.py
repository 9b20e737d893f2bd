"""Reading the metadata of .tflite files: tledge's contract and the standard TFLite metadata.

Written files come from the exporter's writer (`tledge.exporter.metadata`), old files as
tledge 0.x wrote them, third-party files from ../shared/data (the Coral ImageNet models
carry standard metadata with their labels).
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.edge.classifier import Classifier
from tledge.edge.contract import GoldenExample, ModelContract
from tledge.edge.golden import check_golden, encode_golden
from tledge.edge.model_file import read_contract, read_model_metadata
from tledge.exporter.metadata import build_metadata

CONTRACT = ModelContract(
    labels=("red", "green", "blue"),
    input_size=(8, 8),
    mean=(127.5,) * 3,
    std=(127.5,) * 3,
    output_kind="logits",
    backbone="channel-mean",
    variant="fp32",
)

# The model's logits for a pure red input are the channel means (1, -1, -1).
RED = np.zeros((8, 8, 3), np.uint8)
RED[..., 0] = 255
RED_SCORE = float(np.exp(1) / (np.exp(1) + 2 * np.exp(-1)))
GOLDEN = (GoldenExample("tledge_golden_0.png", "red", round(RED_SCORE, 6)),)
WITH_GOLDEN = ModelContract(**{**CONTRACT.__dict__, "golden": GOLDEN})


def _write(tmp_path: Path, data: bytes, name: str = "model.tflite") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _archive_start(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return min(info.header_offset for info in archive.infolist())


def _rezip(data: bytes, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    """`data` with its appended archive replaced by one holding `members`."""
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return data[: _archive_start(data)] + stream.getvalue()


def test_written_file_carries_standard_metadata_and_contract(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes.with_metadata(model_bytes.plain(), CONTRACT))
    metadata = read_model_metadata(path)
    assert metadata.contract == CONTRACT
    assert metadata.standard_labels == CONTRACT.labels
    standard = metadata.standard
    assert (standard.color_space, standard.mean, standard.std) == (
        "RGB",
        (127.5,) * 3,
        (127.5,) * 3,
    )
    assert standard.labels_file == "labels.txt"
    assert standard.min_parser_version == "1.0.0"
    assert set(standard.associated_files) == {"labels.txt", "tledge_contract.json"}
    assert Classifier(path).labels == CONTRACT.labels


def test_embedded_golden_examples_come_back_with_their_pixels(tmp_path, model_bytes):
    data = model_bytes.with_metadata(model_bytes.plain(), WITH_GOLDEN, {GOLDEN[0].image: RED})
    metadata = read_model_metadata(_write(tmp_path, data))
    assert metadata.contract == WITH_GOLDEN
    assert set(metadata.standard.associated_files) == {"labels.txt", "tledge_contract.json"}
    (golden,) = metadata.golden
    assert golden.example == GOLDEN[0]
    np.testing.assert_array_equal(golden.bgr[..., ::-1], RED)
    classifier = Classifier(tmp_path / "model.tflite")
    assert check_golden(classifier, classifier.golden) == "embedded self-test 1/1"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("missing", "names golden image tledge_golden_0.png, which the file lacks"),
        ("wrong-size", "golden image tledge_golden_0.png is 4x4, not the model input 8x8"),
        ("not-png", "golden image tledge_golden_0.png is not a PNG"),
        ("unknown-label", "expects 'purple', not a label of the model"),
        ("bad-score", "golden score 1.5 is not in [0, 1]"),
    ],
)
def test_bad_embedded_golden_examples_are_one_line_errors(tmp_path, model_bytes, change, problem):
    """Checked to fail: without the label check, the unknown label loaded."""
    contract, png = WITH_GOLDEN, encode_golden(RED)
    if change == "unknown-label":
        contract = ModelContract(
            **{**CONTRACT.__dict__, "golden": (GoldenExample(GOLDEN[0].image, "purple", 0.5),)}
        )
    data = model_bytes.with_metadata(model_bytes.plain(), contract, {GOLDEN[0].image: RED})
    members = {
        "labels.txt": b"red\ngreen\nblue\n",
        "tledge_contract.json": contract.to_json().encode(),
        GOLDEN[0].image: png,
    }
    if change == "missing":
        del members[GOLDEN[0].image]
    elif change == "wrong-size":
        members[GOLDEN[0].image] = encode_golden(RED[:4, :4])
    elif change == "not-png":
        members[GOLDEN[0].image] = b"GIF89a" + png[6:]
    elif change == "bad-score":
        members["tledge_contract.json"] = members["tledge_contract.json"].replace(
            f"{GOLDEN[0].score}".encode(), b"1.5"
        )
    path = _write(tmp_path, _rezip(data, members))
    with pytest.raises(TledgeError) as caught:
        Classifier(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_writing_twice_replaces_the_metadata(tmp_path, model_bytes):
    once = model_bytes.with_metadata(model_bytes.plain(), CONTRACT)
    relabelled = ModelContract(**{**CONTRACT.__dict__, "labels": ("r", "g", "b")})
    path = _write(tmp_path, model_bytes.with_metadata(once, relabelled))
    assert read_model_metadata(path).standard_labels == ("r", "g", "b")
    assert path.read_bytes().count(b"TFLITE_METADATA") == 1


def test_file_of_the_previous_tledge_still_loads(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes.legacy(model_bytes.plain(), CONTRACT))
    metadata = read_model_metadata(path)
    assert (metadata.contract, metadata.standard) == (CONTRACT, None)
    assert Classifier(path).labels == CONTRACT.labels


def test_plain_file_has_no_metadata(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes.plain())
    assert read_model_metadata(path).labels is None
    assert Classifier(path, labels=["a", "b", "c"]).labels == ("a", "b", "c")


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(TledgeError, match="not found"):
        read_contract(tmp_path / "nope.tflite")


@pytest.mark.integration
def test_third_party_standard_metadata_gives_labels(shared_data):
    """The Coral models carry tflite-support metadata: labels come without --labels."""
    model = shared_data / "tflite" / "mobilenet_v2_1.0_224_quant.tflite"
    metadata = read_model_metadata(model)
    assert metadata.contract is None
    assert metadata.standard.labels_file == "imagenet_labels.txt"
    assert metadata.labels[:2] == ("background", "tench, Tinca tinca")
    assert len(metadata.labels) == 1001
    import cv2

    frame = cv2.imread(str(shared_data / "tflite" / "sanity_images" / "parrot.jpg"))
    assert Classifier(model).classify(frame, top_k=1).label == "macaw"


def test_float_model_with_only_standard_metadata_uses_its_normalization(tmp_path, model_bytes):
    """A third-party float model: labels and mean/std come from the standard metadata.

    Checked to fail: with derive_contract ignoring `normalization` the scores are those
    of the [-1, 1] default.
    """
    unit = ModelContract(**{**CONTRACT.__dict__, "mean": (0.0,) * 3, "std": (255.0,) * 3})
    data = model_bytes.with_metadata(model_bytes.plain(), unit)
    # Rename tledge's associated file: what is left is a standard-only file.
    data = data.replace(b"tledge_contract.json", b"extra_notes_file.txt")
    members = {"labels.txt": b"red\ngreen\nblue\n", "extra_notes_file.txt": b"notes"}
    path = _write(tmp_path, _rezip(data, members))
    classifier = Classifier(path)
    assert not classifier.has_embedded_contract
    assert classifier.labels == ("red", "green", "blue")
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[..., 0] = 255  # pure red: channel means (1, 0, 0) after / 255
    logits = np.array([1.0, 0.0, 0.0])
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(classifier.classify_rgb(frame).scores, expected, rtol=1e-5)


def test_files_that_disagree_with_themselves_are_refused(tmp_path, model_bytes):
    data = model_bytes.with_metadata(model_bytes.plain(), CONTRACT)
    wrong_labels = _rezip(
        data,
        {"labels.txt": b"red\nblue\ngreen\n", "tledge_contract.json": CONTRACT.to_json().encode()},
    )
    with pytest.raises(TledgeError, match="disagree on labels"):
        read_model_metadata(_write(tmp_path, wrong_labels))
    other = ModelContract(**{**CONTRACT.__dict__, "mean": (0.0,) * 3, "std": (1.0,) * 3})
    wrong_mean = _rezip(
        data,
        {"labels.txt": b"red\ngreen\nblue\n", "tledge_contract.json": other.to_json().encode()},
    )
    with pytest.raises(TledgeError, match="disagree on normalization"):
        read_model_metadata(_write(tmp_path, wrong_mean, "mean.tflite"))


def test_metadata_for_a_newer_parser_is_refused(tmp_path, model_bytes):
    data = model_bytes.with_metadata(model_bytes.plain(), CONTRACT)
    path = _write(tmp_path, data.replace(b"1.0.0", b"2.0.0", 1))
    with pytest.raises(TledgeError, match="parser of version 2.0.0"):
        read_model_metadata(path)


def test_truncated_old_file_is_refused_not_read_as_plain(tmp_path, model_bytes):
    data = model_bytes.legacy(model_bytes.plain(), CONTRACT)
    path = _write(tmp_path, data[:-30])
    with pytest.raises(TledgeError, match=f"{path}: its tledge metadata is damaged"):
        Classifier(path)


def bomb_file(model_bytes: bytes, real_size: int, declared_size: int | None = None) -> bytes:
    """`model_bytes` + a zip whose contract member inflates to `real_size` zero bytes.

    Its headers declare the real size (an honest bomb) or `declared_size` (a lying one).
    """
    stream = io.BytesIO()
    with (
        zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("tledge_contract.json", "w") as member,
    ):
        for _ in range(real_size >> 20):
            member.write(bytes(1 << 20))
    data = bytearray(stream.getvalue())
    if declared_size is not None:
        struct.pack_into("<I", data, 22, declared_size)  # local header
        struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 24, declared_size)
    return model_bytes + bytes(data)


@pytest.mark.parametrize(
    "real, declared, problem",
    [
        (64 << 20, None, "declares 67108864 bytes"),
        (1 << 20, None, "compressed more than 20:1"),
        (64 << 20, 100, "damaged"),
    ],
)
def test_compression_bombs_are_refused_before_inflating(
    tmp_path, real, declared, problem, model_bytes
):
    path = _write(tmp_path, bomb_file(model_bytes.plain(), real, declared))
    with pytest.raises(TledgeError, match=f"{path}: .*{problem}") as caught:
        Classifier(path)
    assert "\n" not in str(caught.value)


def _classify_or_error(path: Path, frame: np.ndarray):
    """("ok", labels, scores) or ("error", message); anything else escapes and fails.

    A file that loads must also pass its embedded self-test (as `--model-dir` runs it).
    """
    try:
        classifier = Classifier(path)
        check_golden(classifier, classifier.golden)
    except TledgeError as error:
        return ("error", str(error))
    return ("ok", classifier.labels, classifier.classify_rgb(frame).scores)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["exported", "legacy"])
def test_every_flipped_or_truncated_metadata_byte_gives_right_answer_or_one_line(
    tmp_path, kind, model_bytes
):
    """Flip each byte of the metadata region (the TFLITE_METADATA entry, the metadata
    buffer, the appended zip with its embedded golden PNG) and cut the file at every
    length from the metadata buffer on: every run classifies correctly with the right
    labels and passes its self-test, or stops with one line.
    Old files (the contract alone in a zip) get the same, cut from where the file still
    names its contract.

    Checked to fail: with read_model_metadata's "damaged tledge file" check removed, the
    old file's truncations load as plain models (labels "0", "1", "2").
    """
    body = model_bytes.plain()
    if kind == "exported":
        data = model_bytes.with_metadata(body, WITH_GOLDEN, {GOLDEN[0].image: RED})
        metadata = build_metadata(WITH_GOLDEN)
        starts = [data.index(metadata), data.index(b"TFLITE_METADATA")]
        region = sorted(
            set(range(starts[0], starts[0] + len(metadata)))
            | set(range(starts[1], starts[1] + 15))
            | set(range(_archive_start(data), len(data)))
        )
        cut_from = min(starts[0], _archive_start(data))
    else:
        data = model_bytes.legacy(body, CONTRACT)
        region = list(range(len(body), len(data)))
        # Cut before its first member's name (30-byte header + name), an old file is a
        # plain model followed by a few stray bytes: nothing says it had a contract.
        cut_from = len(body) + 30 + len("tledge_contract.json")
    frame = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path = tmp_path / "damaged.tflite"
    path.write_bytes(data)
    expected = _classify_or_error(path, frame)
    assert expected[0] == "ok"
    damaged = [data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :] for i in region]
    damaged += [data[:length] for length in range(cut_from, len(data))]
    outcomes = {"ok": 0, "error": 0}
    for variant in damaged:
        path.write_bytes(variant)
        outcome = _classify_or_error(path, frame)
        outcomes[outcome[0]] += 1
        if outcome[0] == "error":
            assert outcome[1].startswith(f"{path}: ") and "\n" not in outcome[1]
        else:
            assert outcome[1] == CONTRACT.labels
            np.testing.assert_array_equal(outcome[2], expected[2])
    assert outcomes["error"] > 0 and outcomes["ok"] > 0


def _peak_memory_kib(command: list[str]) -> tuple[int, str]:
    """(peak resident memory in KiB, stderr) of running `command` to its end."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        return usage.ru_maxrss, errors.read().decode("utf-8", "replace")


@pytest.mark.slow
def test_client_memory_on_compression_bombs_stays_near_a_normal_run(tmp_path, model_bytes):
    """`tledge edge` on bomb files peaks within 1.5x of a normal run and says why it stops.

    Before issue 14 a lying bomb of this size drove the client past 256 MiB of inflated
    bytes on top of its normal footprint.
    """
    import cv2

    image = tmp_path / "gray.png"
    cv2.imwrite(str(image), np.full((8, 8, 3), 128, np.uint8))
    normal = _write(tmp_path, model_bytes.with_metadata(model_bytes.plain(), CONTRACT))
    bombs = {
        "honest": _write(tmp_path, bomb_file(model_bytes.plain(), 256 << 20), "honest.tflite"),
        "lying": _write(tmp_path, bomb_file(model_bytes.plain(), 256 << 20, 100), "lying.tflite"),
    }

    def edge(model: Path) -> list[str]:
        return [sys.executable, "-m", "tledge", "edge", str(model), "--source", str(image)]

    baseline, _ = _peak_memory_kib([*edge(normal), "--no-display"])
    for kind, model in bombs.items():
        peak, errors = _peak_memory_kib([*edge(model), "--no-display"])
        assert peak <= 1.5 * baseline, f"{kind} bomb: {peak} KiB against {baseline} KiB"
        assert f"{model}: " in errors and "Traceback" not in errors
