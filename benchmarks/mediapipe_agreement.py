"""How often MediaPipe Tasks' ImageClassifier agrees with `tledge predict` on tledge's files.

Four comparisons per model, on the same photos:

- **files**: MediaPipe reads the photo files (its own JPEG decoder and resize); tledge's
  answers are `tledge predict`'s (`tledge.analysis.prediction.predict_files`);
- **opencv_decoded**: MediaPipe reads lossless PNGs of OpenCV's decode of each photo (the
  pixels tledge starts from), so only the resize differs;
- **tledge_resized**: MediaPipe reads PNGs of the photos already fitted to the model input
  by tledge's own resize (`fit_image`, as the trainer and the edge client do), so both
  clients give the model identical pixels;
- **corner_mapped**: tledge's edge `Classifier` given OpenCV's decode resized as
  MediaPipe's CPU preprocessing resizes (`resize_to_input` "bilinear_no_half_pixel":
  the image's corners onto the output's corners, bilinear: output pixel x samples
  source x * W / w), against MediaPipe on the OpenCV-decoded PNGs. For
  a model whose contract says "bilinear" (half-pixel centres, output x samples
  (x + 0.5) * W / w - 0.5, like tf.image.resize: tledge's models before
  "bilinear_no_half_pixel") it shows that the resize convention is what the two clients
  disagree on; for a model that already says "bilinear_no_half_pixel" it is the same
  resize as tledge's own.

For each: top-1 agreement, and the per-image difference between the two clients' scores
for the reference's top-1 class (mean and max). MediaPipe runs in its own virtual
environment (`--mediapipe-python`; it pulls opencv-contrib-python, which would replace
tledge's cv2), through `mediapipe_worker.py`.

    tledge bench mediapipe runs/food/export/model_fp32.tflite \\
        runs/food/export/model_int8.tflite --images ../shared/data/food_mnist10/test \\
        --mediapipe-python /path/to/mediapipe-venv/bin/python
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tledge.analysis.prediction import load_model, predict_files
from tledge.benchmarks.report import (
    BenchmarkOutput,
    Log,
    Section,
    build_report,
    markdown_table,
    write_report,
)
from tledge.core.errors import TledgeError
from tledge.core.metrics import accuracy, agreement, top1
from tledge.edge.classifier import Classifier
from tledge.edge.images import fit_image, read_rgb, resize_to_input

WORKER = Path(__file__).with_name("mediapipe_worker.py")
COMPARISONS = {
    "files": "MediaPipe reads the photo files",
    "opencv_decoded": "MediaPipe reads OpenCV's decode (lossless PNG)",
    "tledge_resized": "MediaPipe reads the photos fitted by tledge's resize",
    "corner_mapped": (
        "tledge fed MediaPipe's corner-to-corner resize, vs MediaPipe on OpenCV's decode"
    ),
}


def require_mediapipe(python: Path) -> None:
    """Check that `python` runs and imports mediapipe, before any model is measured.

    Raises:
        TledgeError: naming --mediapipe-python, when it cannot be run or lacks mediapipe.
    """
    try:
        result = subprocess.run(
            [str(python), "-c", "import mediapipe"],
            capture_output=True,
            text=True,
            env=_worker_env(),
            check=False,
        )
    except OSError as error:
        raise TledgeError(
            f"--mediapipe-python {python}: cannot run it ({error.strerror}); give the Python "
            "of a virtual environment with mediapipe installed"
        ) from None
    if result.returncode != 0:
        raise TledgeError(
            f"--mediapipe-python {python}: it cannot import mediapipe; install it there "
            f"({python} -m pip install mediapipe)"
        )


def _worker_env() -> dict[str, str]:
    """This environment without PYTHONPATH, which would lead MediaPipe's venv to tledge's
    packages (its cv2 among them)."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def mediapipe_scores(
    python: Path, model: Path, images: list[Path], labels: tuple[str, ...], scratch: Path
) -> tuple[np.ndarray, str]:
    """MediaPipe's scores [N, classes] for `images`, and the MediaPipe version.

    Raises:
        TledgeError: when the worker fails, MediaPipe refuses the model, or it names
            categories other than `labels`.
    """
    listing = scratch / "images.txt"
    listing.write_text("".join(f"{path}\n" for path in images), encoding="utf-8")
    result = subprocess.run(
        [str(python), str(WORKER), str(model), str(listing)],
        capture_output=True,
        text=True,
        env=_worker_env(),
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise TledgeError(f"--mediapipe-python {python}: the MediaPipe worker failed ({last})")
    answer = json.loads(lines[-1])
    if "error" in answer:
        raise TledgeError(f"{model}: MediaPipe refuses it ({answer['error']})")
    scores = np.zeros((len(images), len(labels)), np.float32)
    for row, categories in enumerate(answer["results"]):
        for index, name, score in categories:
            if name != labels[index]:
                raise TledgeError(f"{model}: MediaPipe names class {index} {name!r}")
            scores[row, index] = score
    return scores, answer["mediapipe"]


def compare(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Top-1 agreement of `other` with `reference`, and |score difference| of the
    reference's top-1 class per image (mean, max)."""
    top = top1(reference)
    rows = np.arange(len(top))
    difference = np.abs(other[rows, top] - reference[rows, top])
    return {
        "agreement": agreement(reference, other),
        "mean_abs_score_diff": float(difference.mean()),
        "max_abs_score_diff": float(difference.max()),
    }


def measure_model(
    model: Path, images: Path, python: Path, num_threads: int | None
) -> dict[str, Any]:
    """Every comparison of the module docstring for one .tflite file."""
    loaded = load_model(model, num_threads=num_threads)
    report = predict_files(loaded, [images], top_k=1)
    photos = [prediction.path for prediction in report.predictions]
    tledge = np.stack([prediction.scores for prediction in report.predictions])
    truth = [
        loaded.labels.index(p.parent.name) if p.parent.name in loaded.labels else -1 for p in photos
    ]
    classifier = Classifier(model, num_threads=num_threads)
    input_contract = classifier.contract.input_contract
    with tempfile.TemporaryDirectory(prefix="tledge-mediapipe-") as scratch_name:
        scratch = Path(scratch_name)
        on_files, version = mediapipe_scores(python, model, photos, loaded.labels, scratch)
        decoded_paths, fitted_paths = [], []
        corner_scores = np.zeros_like(tledge)
        for row, photo in enumerate(photos):
            rgb = read_rgb(photo)
            decoded_paths.append(_write_png(scratch / f"decoded_{row:05d}.png", rgb))
            fitted = fit_image(rgb, input_contract)
            fitted_paths.append(_write_png(scratch / f"fitted_{row:05d}.png", fitted))
            corner = resize_to_input(rgb, input_contract.input_size, "bilinear_no_half_pixel")
            corner_scores[row] = classifier.classify_rgb(corner, top_k=0, fitted=True).scores
        on_decoded, _ = mediapipe_scores(python, model, decoded_paths, loaded.labels, scratch)
        on_fitted, _ = mediapipe_scores(python, model, fitted_paths, loaded.labels, scratch)
    accuracies = {"tledge": _accuracy(tledge, truth), "mediapipe_files": _accuracy(on_files, truth)}
    return {
        "model": str(model),
        "images": len(photos),
        "unreadable": len(report.unreadable),
        "input": dict(input_contract.to_dict()),
        "mediapipe_version": version,
        "accuracy": accuracies,
        "files": compare(tledge, on_files),
        "opencv_decoded": compare(tledge, on_decoded),
        "tledge_resized": compare(tledge, on_fitted),
        "corner_mapped": compare(on_decoded, corner_scores),
    }


def _accuracy(scores: np.ndarray, truth: list[int]) -> float | None:
    """Top-1 accuracy on the images whose folder names a class; None when none does."""
    known = np.asarray(truth) >= 0
    if not known.any():
        return None
    return accuracy(top1(scores[known]), np.asarray(truth)[known])


def _write_png(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def mediapipe_table(section: dict[str, Any]) -> str:
    """Markdown table of a report's "mediapipe_agreement" section: one row per model and
    comparison, then what the score difference is."""
    headers = [
        "model",
        "images",
        "comparison",
        "top-1 agreement",
        "mean abs score diff",
        "max abs score diff",
    ]
    body = [
        [
            Path(row["model"]).name,
            row["images"],
            description,
            f"{100 * row[key]['agreement']:.1f} %",
            f"{row[key]['mean_abs_score_diff']:.4f}",
            f"{row[key]['max_abs_score_diff']:.4f}",
        ]
        for row in section["rows"]
        for key, description in COMPARISONS.items()
    ]
    return (
        markdown_table(headers, body)
        + "\n\nScore difference: per image, the two clients' scores for the reference's top-1 "
        "class (tledge predict's; MediaPipe's on OpenCV's decode for the corner-mapped row)."
    )


def mediapipe_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Each model's top-1 accuracy with both clients, where the photo folders name classes."""
    notes = []
    for row in rows:
        accuracy, size = row["accuracy"], row["input"]["input_size"]
        if accuracy["tledge"] is not None:
            notes.append(
                f"{Path(row['model']).name}: top-1 accuracy {100 * accuracy['tledge']:.1f} % "
                f"with tledge, {100 * accuracy['mediapipe_files']:.1f} % with MediaPipe reading "
                f"the files (MediaPipe {row['mediapipe_version']}, input {size[1]}x{size[0]} "
                f"{row['input']['resize']} {row['input']['interpolation']})."
            )
    return notes


SECTION: dict[str, Section] = {
    "mediapipe_agreement": ("MediaPipe ImageClassifier vs `tledge predict`", mediapipe_table)
}


def mediapipe_agreement_benchmark(
    models: Sequence[Path],
    images: Path,
    python: Path,
    output: Path,
    threads: int | None = 2,
    command: str = "",
    log: Log = lambda text: None,
) -> BenchmarkOutput:
    """Measure every model against MediaPipe; write mediapipe_agreement.{json,md}.

    Args:
        models: .tflite files from `tledge export`.
        images: Photos, searched recursively; a class-named parent folder gives accuracy.
        python: Python of a virtual environment with mediapipe installed.
        output: Folder for the reports.
        threads: tledge's interpreter threads.

    Raises:
        TledgeError: when `python` lacks mediapipe, or MediaPipe refuses a model.
    """
    require_mediapipe(python)
    rows = []
    for model in models:
        log(f"measuring {model} ...")
        rows.append(measure_model(model, images, python, threads))
    report = build_report(command, mediapipe_notes(rows), mediapipe_agreement={"rows": rows})
    return BenchmarkOutput(report, write_report(report, output, "mediapipe_agreement", SECTION))
