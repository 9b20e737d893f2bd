"""Fixtures for the emulated Raspberry Pi OS tests: the prepared userlands, this checkout's
tledge for them, the models and photos, and a runner for `tledge` on the host or emulated."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tledge.core.folders import list_class_folders

from .userland import (
    REPO_ROOT,
    PiOs,
    cache_dir,
    emulated_environment,
    missing_pieces,
    python_path,
    qemu_path,
)

# Emulated runs are slow; the limit only stops a hung QEMU.
EMULATED_TIMEOUT_S = 600
FOOD_WEIGHTS = "weights/mobilenet_v2_1.0_224_no_top.from_slim_npy.h5"


@dataclass(frozen=True)
class EdgeCase:
    """A model and the photos `tledge edge` classifies with it."""

    model: Path
    photos: Path
    labels: Path | None = None

    def arguments(self) -> list[str]:
        """`tledge edge` arguments: JSON lines of the top 5 for every photo, on stdout."""
        labels = ["--labels", str(self.labels)] if self.labels else []
        source = ["--source", str(self.photos), "--no-display", "--jsonl", "-"]
        return ["edge", str(self.model), *labels, *source, "--top-k", "5"]


@pytest.fixture(scope="session")
def pi_cache() -> Path:
    """The prepared cache of userlands; skips with a reason when it is incomplete."""
    cache = cache_dir()
    missing = missing_pieces(cache)
    if missing:
        pytest.skip(f"Pi OS userlands not prepared (no {missing[0]}): run .ci/pi_os.sh")
    return cache


@pytest.fixture(scope="session")
def arm_tledge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's tledge, built as a wheel and installed without dependencies into a
    folder the emulated Pythons import it from (it is pure Python)."""
    target = tmp_path_factory.mktemp("arm-tledge")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    if importlib.util.find_spec("setuptools"):
        command.append("--no-build-isolation")  # build offline with the installed setuptools
    subprocess.run([*command, "--target", str(target), str(REPO_ROOT)], check=True)
    return target


@pytest.fixture
def run_tledge(tmp_path: Path, pi_cache: Path, arm_tledge: Path) -> Callable[..., str]:
    """Factory: run `tledge ARGS` emulated as (pi_os, cpu), from a folder with no tledge
    source in it, and return its stdout; a non-zero exit fails the test with its output."""

    def run(pi_os: PiOs, cpu: str, arguments: list[str]) -> str:
        python = python_path(pi_cache, pi_os)
        result = subprocess.run(
            [str(qemu_path(pi_cache)), str(python), "-m", "tledge", *arguments],
            env=emulated_environment(pi_cache, pi_os, cpu, arm_tledge),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=EMULATED_TIMEOUT_S,
        )
        assert result.returncode == 0, f"{arguments}: {result.stdout}\n{result.stderr}"
        return result.stdout

    return run


def host_tledge(arguments: list[str], cwd: Path) -> str:
    """Run `tledge ARGS` with this machine's Python and return its stdout."""
    command = [sys.executable, "-m", "tledge", *arguments]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{arguments}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def host_answers(tmp_path_factory: pytest.TempPathFactory) -> Callable[[EdgeCase], dict]:
    """Factory: this machine's `tledge edge` answers for a case (top_k_by_photo), each
    computed once per session."""
    answers: dict[Path, dict[str, list[tuple[str, float]]]] = {}

    def answer(case: EdgeCase) -> dict[str, list[tuple[str, float]]]:
        if case.model not in answers:
            workdir = tmp_path_factory.mktemp("host")
            answers[case.model] = top_k_by_photo(host_tledge(case.arguments(), workdir))
        return answers[case.model]

    return answer


def link_photos(source: Path, target: Path, per_class: int, flat: bool) -> Path:
    """Symlink the first `per_class` photos of each class of `source` into `target`, in
    class folders or `flat` (a folder source for `tledge edge`); the shared data stays
    read-only."""
    folders = list_class_folders(source)
    taken: dict[int, int] = {}
    for path, label in zip(folders.paths, folders.labels, strict=True):
        if taken.get(label, 0) >= per_class:
            continue
        taken[label] = taken.get(label, 0) + 1
        name = folders.class_names[label]
        link = target / f"{name}_{path.name}" if flat else target / name / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return target


@pytest.fixture(scope="session")
def food_case(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> EdgeCase:
    """An int8 food classifier made the user's way (`tledge train` on a fifth of the food
    photos with the real MobileNetV2 weights at 96 px, `tledge export --int8`), and 2 test
    photos of each of its 10 classes."""
    from tledge.commands.export import export
    from tledge.commands.train import train

    food = shared_data / "food_mnist10"
    work = tmp_path_factory.mktemp("food")
    test = link_photos(food / "test", work / "test", per_class=2, flat=False)
    arguments = [
        "--data", str(food / "train"), "--test", str(test),
        "--weights", str(shared_data / FOOD_WEIGHTS), "--image-size", "96", "96",
        "--train-fraction", "0.2", "--no-augment", "--epochs", "5", "--fine-tune-epochs", "0",
        "--no-refit", "--learning-rate", "0.003", "--output", str(work), "--name", "food",
        "--quiet",
    ]  # fmt: skip
    trained = CliRunner().invoke(train, arguments, catch_exceptions=False)
    assert trained.exit_code == 0, trained.output
    run = work / "food"
    exported = CliRunner().invoke(
        export,
        [str(run), "--int8", "--calibration-size", "50", "--max-drift", "100"],
        catch_exceptions=False,
    )
    assert exported.exit_code == 0, exported.output
    photos = link_photos(test, work / "photos", per_class=2, flat=True)
    return EdgeCase(run / "export" / "model_int8.tflite", photos)


@pytest.fixture(scope="session")
def coral_case(shared_data: Path) -> EdgeCase:
    """The published Coral MobileNetV2 (uint8, 1001 ImageNet classes) and its sanity photos."""
    tflite = shared_data / "tflite"
    return EdgeCase(
        tflite / "mobilenet_v2_1.0_224_quant.tflite",
        tflite / "sanity_images",
        tflite / "imagenet_labels.txt",
    )


def top_k_by_photo(jsonl: str) -> dict[str, list[tuple[str, float]]]:
    """{photo path: [(label, score), ...]} from `tledge edge`'s JSON lines."""
    frames = [json.loads(line) for line in jsonl.splitlines() if line.startswith("{")]
    return {
        frame["path"]: [(entry["label"], entry["score"]) for entry in frame["top_k"]]
        for frame in frames
    }
