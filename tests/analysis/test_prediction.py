"""`tledge predict` and `tledge.analysis.prediction`: the Keras and .tflite paths agree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tledge.analysis.prediction import collect_images, load_model, predict_files
from tledge.cli import cli
from tledge.core.errors import TledgeError
from tledge.edge.images import read_rgb

from ..conftest import TINY_IMAGE_SIZE, write_tiny_run


@pytest.fixture(scope="module")
def exported_run(
    tiny_dataset: Path, tiny_model_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The shared tiny model as a run folder with an int8 export (embedded contract) by the
    real exporter."""
    from tledge.exporter.export import ExportOptions, export_model

    run = write_tiny_run(tmp_path_factory.mktemp("predict") / "run", tiny_dataset, tiny_model_file)
    export_model(run, ExportOptions(variants=("int8",), calibration_size=32))
    return run


@pytest.mark.slow
def test_tflite_and_keras_agree_on_test_images(exported_run: Path, tiny_dataset: Path):
    keras_model = load_model(exported_run)
    tflite_model = load_model(exported_run / "export" / "model_int8.tflite", num_threads=1)
    assert keras_model.kind == "keras" and tflite_model.kind == "tflite"
    assert keras_model.labels == tflite_model.labels
    assert keras_model.input_size == tflite_model.input_size == TINY_IMAGE_SIZE
    keras_report = predict_files(keras_model, [tiny_dataset / "test"], top_k=2)
    tflite_report = predict_files(tflite_model, [tiny_dataset / "test"], top_k=2)
    assert len(keras_report.predictions) == len(tflite_report.predictions) == 32
    same = [
        a.path == b.path and a.label == b.label
        for a, b in zip(keras_report.predictions, tflite_report.predictions, strict=True)
    ]
    assert np.mean(same) >= 0.9
    keras_scores = np.stack([p.scores for p in keras_report.predictions])
    tflite_scores = np.stack([p.scores for p in tflite_report.predictions])
    assert np.abs(keras_scores - tflite_scores).mean() < 0.05
    # The model learned something, so agreement is not two constant answers.
    truth = [p.path.parent.name for p in keras_report.predictions]
    assert (
        np.mean([p.label == t for p, t in zip(keras_report.predictions, truth, strict=True)]) > 0.6
    )


@pytest.mark.slow
def test_top_k_is_sorted_and_sized(exported_run: Path, tiny_dataset: Path):
    model = load_model(exported_run)
    report = predict_files(model, [tiny_dataset / "test" / "circle"], top_k=3)
    for prediction in report.predictions:
        scores = [score for _, score in prediction.top_k]
        assert len(prediction.top_k) == 3 and scores == sorted(scores, reverse=True)
        best = int(np.argmax(prediction.scores))
        assert prediction.label == model.labels[best]
        assert prediction.confidence == pytest.approx(float(prediction.scores[best]))
        assert prediction.scores.sum() == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(TledgeError, match="--top-k"):
        predict_files(model, [tiny_dataset / "test"], top_k=0)


@pytest.mark.slow
def test_odd_images_are_read_and_broken_ones_named(exported_run: Path, odd_and_broken):
    model = load_model(exported_run / "export" / "model_int8.tflite")
    report = predict_files(model, [odd_and_broken.folder])
    predicted = {p.path.name for p in report.predictions}
    unreadable = {path.name for path, _ in report.unreadable}
    assert predicted == set(odd_and_broken.odd)
    assert unreadable == set(odd_and_broken.broken)
    for path, reason in report.unreadable:
        assert path.name in reason


@pytest.mark.slow
def test_cli_json_annotate_and_exit_status(exported_run: Path, tiny_dataset: Path, tmp_path: Path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    photo = tiny_dataset / "test" / "square" / "square_000.jpg"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "predict",
            str(exported_run / "export" / "model_int8.tflite"),
            str(photo),
            str(broken),
            "--json",
            "--top-k",
            "2",
            "--annotate",
            str(tmp_path / "annotated"),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [p["path"] for p in document["predictions"]] == [str(photo)]
    assert len(document["predictions"][0]["top_k"]) == 2
    assert document["unreadable"][0]["path"] == str(broken)
    assert "broken.jpg" in result.stderr
    annotated = read_rgb(tmp_path / "annotated" / "square_000.jpg")
    assert max(annotated.shape[:2]) >= 320  # small photos are enlarged so text fits

    result = runner.invoke(cli, ["predict", str(exported_run), str(broken)])
    assert result.exit_code == 1
    assert "no readable image" in result.stderr


def test_collect_images_searches_folders_and_keeps_files(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/2.jpg", "a/b/1.png", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "named.dat").write_bytes(b"x")
    found = collect_images([tmp_path / "a", tmp_path / "named.dat"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a/2.jpg",
        "a/b/1.png",
        "named.dat",
    ]
    with pytest.raises(TledgeError, match="missing.jpg: no such file"):
        collect_images([tmp_path / "missing.jpg"])


def test_load_model_names_what_is_wrong(tmp_path: Path):
    with pytest.raises(TledgeError, match="no model.keras"):
        load_model(tmp_path)
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(TledgeError, match="expected a run folder, a .keras or a .tflite"):
        load_model(tmp_path / "weights.h5")
    copy = tmp_path / "lonely"
    copy.mkdir()
    shutil.copy(tmp_path / "weights.h5", copy / "model.keras")
    with pytest.raises(TledgeError, match="no labels.txt"):
        load_model(copy)


@pytest.mark.integration
def test_plain_published_tflite_with_labels_file(shared_data: Path):
    folder = shared_data / "tflite"
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            str(folder / "mobilenet_v2_1.0_224_quant.tflite"),
            str(folder / "sanity_images" / "parrot.jpg"),
            str(folder / "sanity_images" / "hot_dog.jpg"),
            "--labels",
            str(folder / "imagenet_labels.txt"),
            "--json",
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    best = [p["top_k"][0]["label"] for p in json.loads(result.stdout)["predictions"]]
    assert best[0] == "macaw" and best[1].startswith("hotdog")
