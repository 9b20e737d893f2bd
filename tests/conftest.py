"""Shared fixtures: the real test material in ../shared/data, tiny generated datasets, and
folders seeded with broken and odd image files."""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

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


# file name -> why it must be skipped
BROKEN_FILES = {
    "empty.jpg": "empty file",
    "notes.jpg": "not an image",
    "truncated.jpg": "cannot decode",
    "garbage.png": "not an image",
}
# odd but readable images: all must be kept
ODD_FILES = (
    "gray.jpg",
    "alpha.png",
    "cmyk.jpg",
    "palette.png",
    "deep.png",
    "rotated.jpg",
    "photo.bmp",
    "anim.gif",
    "photo.webp",
)


def _photo(rng: np.random.Generator, size=(40, 56)) -> np.ndarray:
    """A smooth random RGB image (height, width) = `size`."""
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size[1], size[0]), Image.BILINEAR))


def write_odd_and_broken(folder: Path, seed: int = 0) -> None:
    """Write every kind of broken and odd image file into `folder`."""
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(_photo(rng))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("these are not pixels\n")
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "garbage.png").write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    rgb.convert("L").save(folder / "gray.jpg")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.full((40, 56), 60, dtype=np.uint8)))
    rgba.save(folder / "alpha.png")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    rgb.convert("P").save(folder / "palette.png")
    deep = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(deep).save(folder / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rgb.save(folder / "rotated.jpg", exif=exif)
    rgb.save(folder / "photo.bmp")
    rgb.save(folder / "anim.gif", save_all=True, append_images=[rgb.rotate(90)])
    rgb.save(folder / "photo.webp")


@pytest.fixture
def odd_and_broken(tmp_path: Path) -> SimpleNamespace:
    """A folder with every kind of broken and odd file: `.folder`, `.broken` (name ->
    reason), `.odd` (names that must be kept)."""
    write_odd_and_broken(tmp_path / "images")
    return SimpleNamespace(folder=tmp_path / "images", broken=BROKEN_FILES, odd=ODD_FILES)


@pytest.fixture(scope="session")
def messy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-class dataset (train/, test/) whose train/circle also holds broken and odd files."""
    root = tmp_path_factory.mktemp("messy")
    generate_dataset(root / "train", per_class=12, size=64, seed=3)
    generate_dataset(root / "test", per_class=4, size=64, seed=4)
    write_odd_and_broken(root / "train" / "circle")
    return root
