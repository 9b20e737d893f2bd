"""Evaluating a run's model (Keras or any exported .tflite) on a class-per-folder dataset.

`evaluate_run` scores every image, then writes under `<run>/evaluation/<model-name>/`:
metrics.json (accuracy, loss, per-class precision/recall/F1, confusion matrix),
predictions.csv (one row per image), confusion_matrix.png and most_wrong.png.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tledge.analysis.prediction import (
    DEFAULT_BATCH_SIZE,
    LoadedModel,
    iter_prepared_batches,
    load_model,
)
from tledge.core import metrics
from tledge.core.atomic import atomic_write_text
from tledge.core.errors import TledgeError
from tledge.core.folders import list_class_folders
from tledge.core.run_folder import RunFolder
from tledge.core.sources import run_image_folder
from tledge.edge.classification import unknown_threshold as threshold_in_force

if TYPE_CHECKING:
    from tledge.analysis.unknown_evaluation import CalibrationReport

MOST_WRONG_COUNT = 16


@dataclass(frozen=True)
class Evaluation:
    """Every prediction of one model on one dataset.

    Attributes:
        model_name: Name of the evaluated model, e.g. "model" or "model_int8".
        model_path: The model file.
        data: The dataset folder.
        labels: Class names in output order.
        paths: The images that were scored.
        true: True class index of each image.
        probabilities: (num_images, num_classes) predicted probabilities.
        skipped: (path, reason) for each unreadable image.
    """

    model_name: str
    model_path: Path
    data: Path
    labels: tuple[str, ...]
    paths: tuple[Path, ...]
    true: np.ndarray
    probabilities: np.ndarray
    skipped: tuple[tuple[Path, str], ...]

    @property
    def predicted(self) -> np.ndarray:
        """Predicted class index of each image."""
        return metrics.top1(self.probabilities)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class for each image."""
        return self.probabilities.max(axis=1)

    @property
    def correct(self) -> np.ndarray:
        """Boolean mask of the images predicted right."""
        return self.predicted == self.true

    @property
    def accuracy(self) -> float:
        """Fraction of images predicted right."""
        return metrics.accuracy(self.predicted, self.true)

    @property
    def loss(self) -> float:
        """Mean categorical cross-entropy of the true classes."""
        return metrics.cross_entropy(self.probabilities, self.true)

    @property
    def confusion_matrix(self) -> np.ndarray:
        """(num_classes, num_classes) counts; row = true class, column = predicted class."""
        return metrics.confusion_matrix(self.true, self.predicted, len(self.labels))

    def per_class(self) -> dict[str, dict[str, float | int]]:
        """Precision, recall, F1 and support of every class (0.0 where undefined)."""
        return metrics.per_class_scores(self.true, self.predicted, self.labels)

    def most_wrong(self, count: int = MOST_WRONG_COUNT) -> list[int]:
        """Indices of the wrong predictions with the highest confidence, most confident first."""
        wrong = np.flatnonzero(~self.correct)
        order = np.argsort(-self.confidence[wrong], kind="stable")
        return [int(i) for i in wrong[order][:count]]

    def summary(self) -> dict[str, Any]:
        """The metrics as a JSON-ready dict (what metrics.json holds)."""
        return {
            "model": str(self.model_path),
            "data": str(self.data),
            "accuracy": self.accuracy,
            "loss": self.loss,
            "num_images": len(self.paths),
            "num_correct": int(self.correct.sum()),
            "per_class": self.per_class(),
            "labels": list(self.labels),
            "confusion_matrix": self.confusion_matrix.tolist(),
            "skipped_files": [{"path": str(p), "reason": r} for p, r in self.skipped],
        }


@dataclass(frozen=True)
class EvaluationOutputs:
    """Files written by `write_evaluation`.

    Attributes:
        folder: The output folder.
        metrics: metrics.json.
        predictions: predictions.csv.
        confusion_matrix: confusion_matrix.png.
        most_wrong: most_wrong.png, or None when no prediction was wrong.
        calibration: Calibration and unknown-rejection numbers and plots, when measured.
    """

    folder: Path
    metrics: Path
    predictions: Path
    confusion_matrix: Path
    most_wrong: Path | None
    calibration: CalibrationReport | None = None


def evaluate_model(
    model: LoadedModel, data: str | os.PathLike, batch_size: int = DEFAULT_BATCH_SIZE
) -> Evaluation:
    """Score every image of a class-per-folder dataset.

    Class folders must be among the model's labels; a class may have no folder.
    Unreadable images are skipped and listed in `Evaluation.skipped`.

    Args:
        model: From `tledge.analysis.prediction.load_model`.
        data: Folder with one sub-folder per class.
        batch_size: Images scored at once.

    Raises:
        TledgeError: when the folder is missing, has unknown classes or no readable image.

    Example:
        >>> evaluation = evaluate_model(load_model("runs/food"), "photos/test")
        >>> evaluation.accuracy, evaluation.confusion_matrix
    """
    listing = list_class_folders(data, model.labels)
    if not listing.paths:
        raise TledgeError(f"{listing.root}: no images in the class folders")
    kept: list[int] = []
    skipped: list[tuple[Path, str]] = []
    scores: list[np.ndarray] = []
    for indices, batch, failed in iter_prepared_batches(model, listing.paths, batch_size):
        skipped.extend((listing.paths[i], reason) for i, reason in failed)
        if indices:
            kept.extend(indices)
            scores.append(model.score_batch(batch))
    if not kept:
        raise TledgeError(f"{listing.root}: none of the {len(listing.paths)} images is readable")
    return Evaluation(
        model_name=model.name,
        model_path=model.path,
        data=listing.root,
        labels=model.labels,
        paths=tuple(listing.paths[i] for i in kept),
        true=np.array([listing.labels[i] for i in kept], dtype=np.int64),
        probabilities=np.concatenate(scores).astype(np.float32),
        skipped=tuple(skipped),
    )


def resolve_model_path(run: RunFolder, model: str | os.PathLike | None) -> Path:
    """The model file to evaluate: the run's model.keras (a TF Hub run's model_savedmodel/)
    by default; a relative `model` is looked up in the run folder first (e.g.
    "export/model_int8.tflite").

    Raises:
        TledgeError: when the file does not exist.
    """
    if model is None:
        return run.trained_model
    candidate = Path(model)
    for path in (run.root / candidate, candidate):
        if path.exists():
            return path
    raise TledgeError(f"--model {model}: not found in {run.root} nor as a path")


def default_data(run: RunFolder) -> Path:
    """The run's test images from config.json (a folder, or a written-out TFDS split).

    Raises:
        TledgeError: when the run was trained without test images or they are gone.
    """
    test = run.read_config().test
    if not test:
        raise TledgeError(f"{run.root}: the run has no test folder; pass --data DIR")
    folder = run_image_folder(run, "test")
    if folder is None:
        raise TledgeError(f"{run.root}: its test folder {test} is not found here; pass --data DIR")
    return folder


def evaluate_run(
    run: str | os.PathLike,
    data: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_threads: int | None = None,
    ood: str | os.PathLike | None = None,
    unknown_threshold: float | None = None,
    detect_unknown: bool = True,
) -> tuple[Evaluation, EvaluationOutputs]:
    """Evaluate a run's model and write the report under `<run>/evaluation/<model-name>/`.

    Args:
        run: The run folder.
        data: Class-per-folder dataset; the run's test folder by default.
        model: model.keras by default, or any .tflite (e.g. "export/model_int8.tflite").
        batch_size: Images scored at once.
        num_threads: CPU threads for a TFLite interpreter.
        ood: Folder of photos that belong to no class, to measure unknown rejection.
        unknown_threshold: Replaces the model's own unknown threshold.
        detect_unknown: False measures rejection with no threshold (AUROC only).

    Returns:
        (the evaluation, the files written, calibration and unknowns included).

    Raises:
        TledgeError: on a missing run, model or dataset.

    Example:
        >>> evaluation, outputs = evaluate_run("runs/food", model="export/model_int8.tflite")
        >>> print(evaluation.accuracy, outputs.confusion_matrix)
    """
    from tledge.analysis.unknown_evaluation import calibration_report, score_folder

    folder = RunFolder.open(run)
    model_path = resolve_model_path(folder, model)
    dataset = Path(data) if data is not None else default_data(folder)
    loaded = load_model(model_path, num_threads=num_threads)
    evaluation = evaluate_model(loaded, dataset, batch_size)
    output = folder.root / "evaluation" / loaded.name
    outputs = write_evaluation(evaluation, output)
    contract = loaded.contract
    report = calibration_report(
        evaluation,
        output,
        contract.temperature,
        threshold_in_force(contract.unknown_threshold, unknown_threshold, detect_unknown),
        score_folder(loaded, ood, batch_size) if ood is not None else None,
        ood,
    )
    return evaluation, dataclasses.replace(outputs, calibration=report)


def write_evaluation(evaluation: Evaluation, folder: str | os.PathLike) -> EvaluationOutputs:
    """Write metrics.json, predictions.csv, confusion_matrix.png and most_wrong.png.

    Every file is written atomically; a most_wrong.png left by an earlier evaluation is
    removed when nothing is wrong any more.
    """
    from tledge.analysis.plots import plot_confusion_matrix, plot_most_wrong

    output = Path(folder)
    output.mkdir(parents=True, exist_ok=True)
    metrics = atomic_write_text(
        output / "metrics.json", json.dumps(evaluation.summary(), indent=2) + "\n"
    )
    predictions = atomic_write_text(output / "predictions.csv", predictions_csv(evaluation))
    correct = int(evaluation.correct.sum())
    title = (
        f"{evaluation.model_name} on {evaluation.data.name}: "
        f"{correct} / {len(evaluation.paths)} correct ({evaluation.accuracy:.1%})"
    )
    matrix = plot_confusion_matrix(
        evaluation.confusion_matrix, evaluation.labels, output / "confusion_matrix.png", title
    )
    wrong_path = output / "most_wrong.png"
    wrong = evaluation.most_wrong()
    if wrong:
        entries = [
            (
                evaluation.paths[i],
                evaluation.labels[evaluation.true[i]],
                evaluation.labels[evaluation.predicted[i]],
                float(evaluation.confidence[i]),
            )
            for i in wrong
        ]
        most_wrong: Path | None = plot_most_wrong(entries, wrong_path)
    else:
        wrong_path.unlink(missing_ok=True)
        most_wrong = None
    return EvaluationOutputs(output, metrics, predictions, matrix, most_wrong)


def predictions_csv(evaluation: Evaluation) -> str:
    """CSV text with one row per image: path, true, predicted, confidence, correct."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "true", "predicted", "confidence", "correct"])
    labels = evaluation.labels
    for path, true, predicted, confidence in zip(
        evaluation.paths,
        evaluation.true,
        evaluation.predicted,
        evaluation.confidence,
        strict=True,
    ):
        writer.writerow(
            [str(path), labels[true], labels[predicted], f"{confidence:.6f}", true == predicted]
        )
    return buffer.getvalue()
