"""A third-party client reads tledge's exported files: MediaPipe Tasks' ImageClassifier.

MediaPipe pulls opencv-contrib-python, which would replace the `cv2` of tledge's
opencv-python-headless, so it runs in its own virtual environment: the one named by
$TLEDGE_MEDIAPIPE_PYTHON (`.ci/run` builds it), else one built here with pip. The test
skips, saying why, where neither exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from click.testing import CliRunner

from tledge.cli import cli
from tledge.core.folders import list_class_folders

MEDIAPIPE_PYTHON = "TLEDGE_MEDIAPIPE_PYTHON"
MIN_AGREEMENT = 0.95


def _clean_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="session")
def mediapipe_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Python of an environment with mediapipe installed."""
    configured = os.environ.get(MEDIAPIPE_PYTHON)
    if configured:
        if not Path(configured).is_file():
            pytest.skip(f"${MEDIAPIPE_PYTHON} is {configured}, which does not exist")
        return Path(configured)
    folder = tmp_path_factory.mktemp("mediapipe") / "venv"
    venv.EnvBuilder(with_pip=True).create(folder)
    python = folder / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    result = subprocess.run(
        [*install, "mediapipe"], capture_output=True, text=True, timeout=1200, env=_clean_env()
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"no MediaPipe environment: pip install mediapipe failed ({last})")
    return python


def mediapipe_top1(
    python: Path, model: Path, images: list[Path], labels: tuple[str, ...], scratch: Path
) -> list[str]:
    """MediaPipe ImageClassifier's top category name for each image, run by the MediaPipe
    agreement benchmark's worker (it fails when MediaPipe refuses the model or names a
    category other than the label at its index)."""
    from tledge.benchmarks.mediapipe_agreement import mediapipe_scores

    scores, _ = mediapipe_scores(python, model, images, labels, scratch)
    return [labels[index] for index in scores.argmax(axis=1)]


def tledge_top1(model: Path, images: list[Path]) -> list[str]:
    """`tledge predict`'s top label for each image."""
    command = [sys.executable, "-m", "tledge", "predict", str(model), *map(str, images)]
    result = subprocess.run(
        [*command, "--json", "--top-k", "1"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    by_path = {
        entry["path"]: entry["top_k"][0]["label"]
        for entry in json.loads(result.stdout)["predictions"]
    }
    return [by_path[str(image)] for image in images]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_mediapipe_classifies_exported_files_with_their_class_names(
    exported_run, tiny_dataset, mediapipe_python, variant, tmp_path
):
    """Before issue 14 MediaPipe refused the fp32 file (no NormalizationOptions) and named
    every int8 class None (no labels file); checked to fail with the metadata left out."""
    run, _, _ = exported_run
    model = run / "export" / f"model_{variant}.tflite"
    images = list(list_class_folders(tiny_dataset / "test").paths)
    labels = tuple(list_class_folders(tiny_dataset / "train").class_names)
    names = mediapipe_top1(mediapipe_python, model, images, labels, tmp_path)
    tledge = tledge_top1(model, images)
    agreement = sum(a == b for a, b in zip(names, tledge, strict=True)) / len(images)
    assert agreement >= MIN_AGREEMENT, f"{variant}: MediaPipe agrees on {agreement:.0%}"


@pytest.mark.slow
def test_bench_mediapipe_gets_identical_answers_from_identical_pixels(
    exported_run, tiny_dataset, mediapipe_python, tmp_path
):
    """`tledge bench mediapipe` end to end: given photos already fitted by tledge's resize,
    MediaPipe and tledge run the same file on the same pixels, so they answer alike."""
    run, _, _ = exported_run
    models = [str(run / "export" / f"model_{variant}.tflite") for variant in ("fp32", "int8")]
    arguments = [
        "bench", "mediapipe", *models, "--images", str(tiny_dataset / "test"),
        "--mediapipe-python", str(mediapipe_python), "--output", str(tmp_path),
    ]  # fmt: skip
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "mediapipe_agreement.json").read_text())
    assert "bench mediapipe" in report["command"]
    rows = report["mediapipe_agreement"]["rows"]
    assert [Path(row["model"]).name for row in rows] == ["model_fp32.tflite", "model_int8.tflite"]
    for row in rows:
        assert row["images"] == 32 and row["accuracy"]["tledge"] is not None
        assert row["tledge_resized"]["agreement"] == 1.0
        assert row["tledge_resized"]["max_abs_score_diff"] < 1e-4
    markdown = (tmp_path / "mediapipe_agreement.md").read_text()
    assert "| model_int8.tflite | 32 | MediaPipe reads the photos fitted by tledge's resize" in (
        markdown
    )
