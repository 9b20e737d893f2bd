"""`tledge evaluate` and `tledge.analysis.evaluation`: metrics and the files that show them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tledge.analysis.evaluation import Evaluation, evaluate_run, predictions_csv
from tledge.analysis.plots import plot_confusion_matrix
from tledge.cli import cli
from tledge.core.errors import TledgeError
from tledge.core.folders import list_class_folders
from tledge.edge.images import fit_image, read_rgb

from ..conftest import TINY_INPUT_CONTRACT, write_tiny_run


@pytest.fixture(scope="module")
def evaluated(tiny_dataset: Path, tiny_model_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """The shared tiny model (right on most test images, wrong on a few) as a run folder,
    evaluated: (run folder, model, Evaluation, outputs)."""
    import keras

    run = write_tiny_run(tmp_path_factory.mktemp("evaluate") / "run", tiny_dataset, tiny_model_file)
    evaluation, outputs = evaluate_run(run)
    return run, keras.saving.load_model(run / "model.keras"), evaluation, outputs


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_confusion_matrix_diagonal_counts_the_correct_predictions(evaluated):
    run, _, _, outputs = evaluated
    assert outputs.folder == run / "evaluation" / "model"
    rows = read_csv(outputs.predictions)
    assert len(rows) == 32
    correct = sum(row["correct"] == "True" for row in rows)
    assert 0 < correct < 32, "the tiny model should be partly right"
    assert sum(row["true"] == row["predicted"] for row in rows) == correct
    metrics = json.loads(outputs.metrics.read_text())
    matrix = np.array(metrics["confusion_matrix"])
    assert np.trace(matrix) == correct == metrics["num_correct"]
    assert matrix.sum() == 32
    assert metrics["accuracy"] == pytest.approx(correct / 32)
    labels = metrics["labels"]
    for index, label in enumerate(labels):
        in_class = [row for row in rows if row["true"] == label]
        assert matrix[index].sum() == len(in_class) == metrics["per_class"][label]["support"]
        hits = sum(row["predicted"] == label for row in in_class)
        assert metrics["per_class"][label]["recall"] == pytest.approx(hits / len(in_class))


@pytest.mark.slow
def test_loss_and_accuracy_match_keras(evaluated, tiny_dataset: Path):
    _, model, evaluation, _ = evaluated
    listing = list_class_folders(tiny_dataset / "test")
    images = np.stack([fit_image(read_rgb(p), TINY_INPUT_CONTRACT) for p in listing.paths])
    loss, accuracy = model.evaluate(images.astype("float32"), np.array(listing.labels), verbose=0)
    assert evaluation.accuracy == pytest.approx(accuracy)
    assert evaluation.loss == pytest.approx(loss, rel=1e-4)


@pytest.mark.slow
def test_most_wrong_grid_shows_only_wrong_answers_most_confident_first(evaluated):
    _, _, evaluation, outputs = evaluated
    wrong = evaluation.most_wrong()
    assert wrong and outputs.most_wrong is not None
    rows = {row["path"]: row for row in read_csv(outputs.predictions)}
    confidences = [float(rows[str(evaluation.paths[i])]["confidence"]) for i in wrong]
    assert confidences == sorted(confidences, reverse=True)
    for index in wrong:
        assert rows[str(evaluation.paths[index])]["correct"] == "False"
    others = [float(r["confidence"]) for r in rows.values() if r["correct"] == "False"]
    assert min(confidences) >= sorted(others, reverse=True)[len(wrong) - 1]
    header = outputs.most_wrong.read_bytes()[:8]
    assert header == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_tflite_variant_and_cli(evaluated, tiny_dataset: Path):
    from tledge.exporter.export import ExportOptions, export_model

    run, _, keras_evaluation, _ = evaluated
    export_model(run, ExportOptions(variants=("fp32",)))
    result = CliRunner().invoke(
        cli, ["evaluate", str(run), "--model", "export/model_fp32.tflite", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "precision  recall" in result.output
    folder = run / "evaluation" / "model_fp32"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(keras_evaluation.accuracy, abs=1 / 32)
    assert (folder / "confusion_matrix.png").is_file()

    result = CliRunner().invoke(cli, ["evaluate", str(run), "--model", "export/nope.tflite"])
    assert result.exit_code == 1 and "nope.tflite" in result.stderr


def fake_evaluation(true: list[int], probabilities: list[list[float]]) -> Evaluation:
    return Evaluation(
        model_name="m",
        model_path=Path("m.keras"),
        data=Path("test"),
        labels=("a", "b", "c"),
        paths=tuple(Path(f"{i}.jpg") for i in range(len(true))),
        true=np.array(true),
        probabilities=np.array(probabilities, dtype=np.float32),
        skipped=(),
    )


def test_metrics_of_known_predictions():
    evaluation = fake_evaluation(
        [0, 0, 1, 1, 2],
        [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]],
    )
    assert evaluation.confusion_matrix.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert evaluation.accuracy == pytest.approx(3 / 5)
    # True-class probabilities 0.9 0.2 0.8 0.3 0.8: -(ln 0.9 + ln 0.2 + ... + ln 0.8) / 5.
    # Checked that it fails: with the predicted class's probability picked instead.
    assert evaluation.loss == pytest.approx(0.6730117, rel=1e-6)
    per_class = evaluation.per_class()
    assert per_class["a"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert per_class["c"]["f1"] == pytest.approx(1.0)
    assert evaluation.most_wrong() == [1, 3]  # 0.7 before 0.6
    lines = predictions_csv(evaluation).splitlines()
    assert lines[0] == "path,true,predicted,confidence,correct"
    assert lines[2] == "1.jpg,a,b,0.700000,False"


def test_class_never_predicted_has_zero_precision_not_nan():
    evaluation = fake_evaluation([0, 1], [[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]])
    per_class = evaluation.per_class()
    assert per_class["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per_class["c"]["support"] == 0


def test_confusion_matrix_png_grows_with_the_number_of_classes(tmp_path: Path):
    sizes = {}
    # 61 classes, not 101: the same growth on well under half the pixels.
    for count in (4, 61):
        matrix = np.eye(count, dtype=int) * 5
        labels = [f"class_{i}" for i in range(count)]
        path = plot_confusion_matrix(matrix, labels, tmp_path / f"{count}.png")
        sizes[count] = read_rgb(path).shape[:2]
    # 6 inches high at 4 classes, 3 + 0.26 * 61 = 18.9 at 61 (a fixed-size figure: 1x).
    assert sizes[61][0] > 2.5 * sizes[4][0] and sizes[61][1] > 2.5 * sizes[4][1]


def test_run_without_test_folder_asks_for_data(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps({"test": None}))
    (tmp_path / "model.keras").write_bytes(b"x")
    with pytest.raises(TledgeError, match="--data"):
        evaluate_run(tmp_path)
