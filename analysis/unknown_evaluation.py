"""How calibrated a model is and how well it rejects unknown photos, for `tledge evaluate`.

The model is scored as it is (a calibrated model outputs softmax(logits / T)); its
uncalibrated answer is recovered exactly as softmax(T * log p), so one pass shows both.
Unknown photos (`--ood DIR`: any images that belong to no class, searched recursively)
are scored by the same model; the unknown score is the top probability.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tledge.analysis.prediction import (
    DEFAULT_BATCH_SIZE,
    LoadedModel,
    collect_images,
    iter_prepared_batches,
)
from tledge.core.atomic import atomic_write_text
from tledge.core.calibration import (
    accuracy_coverage,
    expected_calibration_error,
    log_loss,
    rejection_report,
    reliability_bins,
    temperature_scaled,
    unknown_score,
)
from tledge.core.errors import TledgeError

if TYPE_CHECKING:
    from tledge.analysis.evaluation import Evaluation


@dataclass(frozen=True)
class CalibrationReport:
    """Calibration and unknown-rejection numbers of one evaluation, and their files.

    Attributes:
        summary: What calibration.json holds: "temperature", "ece", "log_loss",
            "ece_uncalibrated", "log_loss_uncalibrated", and with unknown photos or a
            threshold an "unknown" entry (see `RejectionReport`), plus "ood" (folder,
            images).
        files: The JSON and PNG files written.
    """

    summary: dict[str, Any]
    files: tuple[Path, ...]


def score_folder(
    model: LoadedModel, folder: str | os.PathLike, batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """(N, C) probabilities of every readable image under `folder` (unlabelled).

    Raises:
        TledgeError: when the folder is missing or holds no readable image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise TledgeError(f"--ood {root}: folder not found")
    paths = collect_images([root])
    scores = [model.score_batch(batch) for _, batch, _ in iter_prepared_batches(model, paths)]
    scores = [s for s in scores if len(s)]
    if not scores:
        raise TledgeError(f"--ood {root}: no readable image in it")
    return np.concatenate(scores).astype(np.float32)


def calibration_report(
    evaluation: Evaluation,
    output: str | os.PathLike,
    temperature: float = 1.0,
    threshold: float | None = None,
    unknown: np.ndarray | None = None,
    ood: str | os.PathLike | None = None,
) -> CalibrationReport:
    """Measure calibration and rejection; write calibration.json and the plots.

    Args:
        evaluation: The model's answers on labelled (known) images.
        output: Folder to write into (the evaluation folder).
        temperature: T already folded into the model (1.0: uncalibrated).
        threshold: Unknown threshold in force, or None.
        unknown: (M, C) probabilities on unknown photos, or None.
        ood: The folder they came from (recorded).

    Returns:
        The numbers and the files written: calibration.json, reliability.png, and with a
        threshold or unknown photos unknown_scores.png and accuracy_coverage.png.
    """
    from tledge.analysis.calibration_plots import (
        plot_accuracy_coverage,
        plot_reliability,
        plot_score_histograms,
    )

    folder = Path(output)
    probs, truth = evaluation.probabilities, evaluation.true
    raw = temperature_scaled(probs, 1 / temperature) if temperature != 1.0 else probs
    summary: dict[str, Any] = {
        "temperature": temperature,
        "ece": expected_calibration_error(probs, truth),
        "log_loss": log_loss(probs, truth),
        "ece_uncalibrated": expected_calibration_error(raw, truth),
        "log_loss_uncalibrated": log_loss(raw, truth),
    }
    curves = {f"as exported (ECE {summary['ece']:.3f})": reliability_bins(probs, truth)}
    if temperature != 1.0:
        curves[f"T undone (ECE {summary['ece_uncalibrated']:.3f})"] = reliability_bins(raw, truth)
    title = f"{evaluation.model_name}: reliability"
    files = [plot_reliability(curves, folder / "reliability.png", title)]
    if threshold is not None or unknown is not None:
        report = rejection_report(probs, truth, unknown, threshold or 0.0)
        summary["unknown"] = report.as_dict()
        if unknown is not None:
            summary["ood"] = {"folder": str(ood), "images": len(unknown)}
        scores = {"known (test)": unknown_score(probs)}
        if unknown is not None:
            scores["unknown (--ood)"] = unknown_score(unknown)
        files.append(
            plot_score_histograms(
                scores, threshold, folder / "unknown_scores.png", evaluation.model_name
            )
        )
        marks = []
        if threshold is not None and report.accepted_accuracy is not None:
            marks.append(
                (report.known_accepted, report.accepted_accuracy, f"threshold {threshold:.3f}")
            )
        files.append(
            plot_accuracy_coverage(
                {"known images": accuracy_coverage(probs, truth)},
                marks,
                folder / "accuracy_coverage.png",
                evaluation.model_name,
            )
        )
    files.insert(
        0, atomic_write_text(folder / "calibration.json", json.dumps(summary, indent=2) + "\n")
    )
    return CalibrationReport(summary, tuple(files))
