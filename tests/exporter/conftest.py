"""Run folders for the exporter tests, built on the shared tiny model (tests/conftest.py).

`make_run` writes a run folder around the shared tiny model, or around any `model_file`
(a placeholder file for tests whose error comes before the model is loaded: those need
no TensorFlow training). `exported_run` is that model exported to every variant.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import write_tiny_run


@pytest.fixture
def placeholder_model(tmp_path: Path) -> Path:
    """A `model.keras` that is not a model: for checks that must fail before loading it."""
    path = tmp_path / "placeholder.keras"
    path.write_bytes(b"not loaded")
    return path


@pytest.fixture
def make_run(
    tiny_dataset: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., Path]:
    """Factory: a fresh run folder holding the shared tiny model (or `model_file`).

    The tiny model is trained only when a test asks for a run without its own file."""

    def make(name: str = "run", model_file: Path | None = None, **config) -> Path:
        model_file = model_file or request.getfixturevalue("tiny_model_file")
        return write_tiny_run(tmp_path / name, tiny_dataset, model_file, **config)

    return make


@pytest.fixture(scope="session")
def exported_run(
    tiny_dataset: Path, tiny_model_file: Path, tmp_path_factory: pytest.TempPathFactory
):
    """(run folder, ExportResult, progress stages) of the tiny model exported to every variant."""
    from tledge.exporter.export import ExportOptions, export_model

    run = write_tiny_run(tmp_path_factory.mktemp("exported") / "run", tiny_dataset, tiny_model_file)
    stages = []
    result = export_model(
        run,
        ExportOptions(variants=("fp32", "fp16", "dynamic", "int8")),
        on_progress=lambda stage, done, total: stages.append((stage, done, total)),
    )
    return run, result, stages
