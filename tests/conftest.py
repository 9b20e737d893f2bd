"""Shared fixtures: the real test material in ../shared/data and tiny generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tledge.trainer.synthetic import generate_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared test material: $TLEDGE_SHARED_DATA, else ../shared/data beside the repo."""
    configured = os.environ.get("TLEDGE_SHARED_DATA")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test with a reason when it is absent."""
    root = shared_data_dir()
    if not (root / "MANIFEST.md").is_file():
        pytest.skip(f"shared test data not found at {root} (set TLEDGE_SHARED_DATA)")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset with train/ and test/ folders of 4 classes, 64x64 pixels."""
    root = tmp_path_factory.mktemp("tiny")
    generate_dataset(root / "train", per_class=24, size=64, seed=1)
    generate_dataset(root / "test", per_class=8, size=64, seed=2)
    return root
