"""The MediaPipe agreement benchmark's own arithmetic and report (MediaPipe itself runs in
tests/exporter/test_mediapipe.py: it needs a MediaPipe venv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tledge.benchmarks import mediapipe_agreement
from tledge.benchmarks.mediapipe_agreement import compare


def test_compare_counts_top1_agreement_and_the_reference_top1_score_gap():
    reference = np.array([[0.9, 0.1], [0.3, 0.7]])
    other = np.array([[0.6, 0.4], [0.8, 0.2]])
    result = compare(reference, other)
    assert result["agreement"] == 0.5
    assert np.isclose(result["mean_abs_score_diff"], (0.3 + 0.5) / 2)
    assert np.isclose(result["max_abs_score_diff"], 0.5)


# The fp32 row of benchmarks/results/mediapipe_agreement_food_v6 and the lines its report
# (written before the shared report writer) showed for it.
FOOD_V6_FP32 = {
    "model": "runs/food_v6/export/model_fp32.tflite",
    "images": 500,
    "unreadable": 0,
    "input": {"input_size": [256, 256], "resize": "stretch", "interpolation": "bilinear"},
    "mediapipe_version": "1.2.3",
    "accuracy": {"tledge": 0.788, "mediapipe_files": 0.786},
    "files": {"agreement": 0.958, "mean_abs_score_diff": 0.04146, "max_abs_score_diff": 0.33342},
    "opencv_decoded": {
        "agreement": 0.96,
        "mean_abs_score_diff": 0.04112,
        "max_abs_score_diff": 0.33048,
    },
    "tledge_resized": {"agreement": 1.0, "mean_abs_score_diff": 0.0, "max_abs_score_diff": 0.0},
    "corner_mapped": {
        "agreement": 1.0,
        "mean_abs_score_diff": 0.00138,
        "max_abs_score_diff": 0.02698,
    },
}
FOOD_V6_FP32_LINES = [
    "| model | images | comparison | top-1 agreement | mean abs score diff | max abs score diff |",
    "| model_fp32.tflite | 500 | MediaPipe reads the photo files | 95.8 % | 0.0415 | 0.3334 |",
    "| model_fp32.tflite | 500 | MediaPipe reads OpenCV's decode (lossless PNG) | 96.0 % "
    "| 0.0411 | 0.3305 |",
    "| model_fp32.tflite | 500 | MediaPipe reads the photos fitted by tledge's resize | 100.0 % "
    "| 0.0000 | 0.0000 |",
    "| model_fp32.tflite | 500 | tledge fed MediaPipe's corner-to-corner resize, vs MediaPipe on "
    "OpenCV's decode | 100.0 % | 0.0014 | 0.0270 |",
    "Score difference: per image, the two clients' scores for the reference's top-1 class "
    "(tledge predict's; MediaPipe's on OpenCV's decode for the corner-mapped row).",
    "- model_fp32.tflite: top-1 accuracy 78.8 % with tledge, 78.6 % with MediaPipe reading the "
    "files (MediaPipe 1.2.3, input 256x256 stretch bilinear).",
]


def test_report_keeps_the_table_and_notes_under_the_shared_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The measuring is replaced by a known row; everything after it is the real path."""
    monkeypatch.setattr(mediapipe_agreement, "require_mediapipe", lambda python: None)
    monkeypatch.setattr(
        mediapipe_agreement, "measure_model", lambda model, *args: dict(FOOD_V6_FP32)
    )
    result = mediapipe_agreement.mediapipe_agreement_benchmark(
        [Path("model_fp32.tflite")], tmp_path, Path("python"), tmp_path, command="tledge bench X"
    )
    assert [path.name for path in result.files] == [
        "mediapipe_agreement.json",
        "mediapipe_agreement.md",
    ]
    assert result.report["mediapipe_agreement"]["rows"] == [FOOD_V6_FP32]
    lines = (tmp_path / "mediapipe_agreement.md").read_text().splitlines()
    assert lines[0].startswith("Machine: ")
    assert any(line.startswith("Command: `tledge bench X` (") for line in lines)
    assert "### MediaPipe ImageClassifier vs `tledge predict`" in lines
    for expected in FOOD_V6_FP32_LINES:
        assert expected in lines
