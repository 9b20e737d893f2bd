"""The userland preparation's pure parts: wheel tags, requirements, the glibc version."""

from __future__ import annotations

from pathlib import Path

import pytest

from .userland import (
    cache_dir,
    edge_requirements,
    glibc_minor,
    manylinux_platforms,
    missing_pieces,
)


def test_platforms_run_from_the_glibc_down_to_manylinux2014():
    tags = manylinux_platforms(36)
    assert tags[0] == "manylinux_2_36_aarch64"
    # numpy's and LiteRT's aarch64 wheels are tagged 2_27 / 2_28, older ones 2014.
    assert {"manylinux_2_27_aarch64", "manylinux_2_17_aarch64"} <= set(tags)
    assert tags[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_37_aarch64" not in tags


def test_edge_requirements_are_the_base_install_plus_the_edge_extra():
    requirements = edge_requirements()
    assert {"click>=8.1", "opencv-python-headless>=4.8"} <= set(requirements)
    assert any(line.startswith("ai-edge-litert") for line in requirements)
    assert not any("tensorflow" in line for line in requirements)


@pytest.mark.parametrize("libdir", ["lib", "usr/lib"])
def test_glibc_minor_reads_libc_banner(tmp_path: Path, libdir: str):
    libc = tmp_path / libdir / "aarch64-linux-gnu" / "libc.so.6"
    libc.parent.mkdir(parents=True)
    libc.write_bytes(b"\x7fELF...GNU C Library (Debian GLIBC 2.41-12) stable release...")
    assert glibc_minor(tmp_path) == 41


def test_an_empty_cache_misses_qemu_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TLEDGE_PI_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    assert missing_pieces(tmp_path)[0] == str(tmp_path / "qemu-aarch64")
