"""Raspberry Pi OS userlands on an x86 machine, for the emulated edge-client tests.

Raspberry Pi OS 12 and 13 are Debian arm64 `bookworm` and `trixie` plus Pi packages; their
Python, glibc and libstdc++ are Debian's. This module prepares, in a cache folder outside
the repository (`$TLEDGE_PI_CACHE`, default `~/.cache/tledge-pi-os`):

- `<suite>/root`: the arm64 userland, extracted by `mmdebstrap --variant=extract` (no
  chroot, no binfmt, no root tricks);
- `<suite>/site`: the `[edge]` extra's requirements from setup.cfg, installed by pip with
  the aarch64 manylinux tags that pip on that Pi accepts (its glibc's), for its Python;
- `qemu-aarch64`: trixie's user-mode QEMU 10 (bookworm's 7.2 crashes LiteRT 2.x in
  `allocate_tensors`), a static binary that runs on any x86-64 Linux.

tledge itself is not cached: the tests install the checkout they run from.
Each piece is built beside its final place and renamed into it, so an interrupted run
leaves nothing half-made; a finished piece is reused (the site folder as long as the
requirements it was made from are unchanged). Run it as `python tests/pi_os/userland.py`
(CI: `.ci/pi_os.sh`).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_VARIABLE = "TLEDGE_PI_CACHE"
QEMU_SUITE = "trixie"
# The newest manylinux tag pip on the Pi accepts is its glibc's; the oldest wheels are 2_17.
OLDEST_MANYLINUX = 17


@dataclass(frozen=True)
class PiOs:
    """One Raspberry Pi OS release, by the Debian suite under it."""

    release: str  # "12": the Raspberry Pi OS version
    suite: str  # Debian suite of the same userland
    python: str  # the suite's python3 (major.minor)


PI_OS_RELEASES = (PiOs("12", "bookworm", "3.11"), PiOs("13", "trixie", "3.13"))
# QEMU_CPU per board: the Pi 4's Cortex-A72 lacks the dot-product instructions of the Pi 5's
# Cortex-A76, so the runtime can pick other int8 kernels on the two.
PI_CPUS = {"Pi 4": "cortex-a72", "Pi 5": "cortex-a76"}


def cache_dir() -> Path:
    """The cache folder: $TLEDGE_PI_CACHE, else ~/.cache/tledge-pi-os."""
    configured = os.environ.get(CACHE_VARIABLE)
    return Path(configured) if configured else Path.home() / ".cache" / "tledge-pi-os"


def qemu_path(cache: Path) -> Path:
    """The user-mode QEMU binary for aarch64 programs."""
    return cache / "qemu-aarch64"


def root_dir(cache: Path, pi_os: PiOs) -> Path:
    """The extracted arm64 userland of `pi_os`."""
    return cache / pi_os.suite / "root"


def site_dir(cache: Path, pi_os: PiOs) -> Path:
    """The folder holding the `[edge]` extra's packages for `pi_os`'s Python."""
    return cache / pi_os.suite / "site"


def python_path(cache: Path, pi_os: PiOs) -> Path:
    """The arm64 python3 of `pi_os`, as a path on this machine."""
    return root_dir(cache, pi_os) / "usr" / "bin" / f"python{pi_os.python}"


def missing_pieces(cache: Path) -> list[str]:
    """What a prepared cache lacks (empty when the emulated tests can run)."""
    wanted = [qemu_path(cache)]
    for pi_os in PI_OS_RELEASES:
        wanted += [python_path(cache, pi_os), site_dir(cache, pi_os) / "site.json"]
    return [str(path) for path in wanted if not path.exists()]


def edge_requirements(setup_cfg: Path = REPO_ROOT / "setup.cfg") -> list[str]:
    """install_requires plus the `edge` extra, as written in setup.cfg."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    lines = parser["options"]["install_requires"].splitlines()
    lines += parser["options.extras_require"]["edge"].splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def glibc_minor(root: Path) -> int:
    """The minor version of the glibc in `root` (36 for 2.36), from libc.so.6's banner."""
    for libdir in ("usr/lib", "lib"):
        libc = root / libdir / "aarch64-linux-gnu" / "libc.so.6"
        if not libc.is_file():
            continue
        match = re.search(rb"GNU C Library \([^)]*GLIBC 2\.(\d+)", libc.read_bytes())
        if match:
            return int(match.group(1))
    raise RuntimeError(f"{root}: no aarch64 libc.so.6 with a version banner")


def manylinux_platforms(glibc: int) -> list[str]:
    """Every aarch64 platform tag a pip on that glibc accepts, newest first."""
    tags = [f"manylinux_2_{minor}_aarch64" for minor in range(glibc, OLDEST_MANYLINUX - 1, -1)]
    return [*tags, "manylinux2014_aarch64"]


def _replace(partial: Path, final: Path) -> None:
    """Move a finished `partial` folder or file to `final`, replacing what was there."""
    if final.is_dir():
        shutil.rmtree(final)
    partial.rename(final)


def _fresh(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _mmdebstrap(suite: str, arch: str, packages: str, target: Path) -> None:
    command = ["mmdebstrap", "--quiet", "--variant=extract", f"--arch={arch}"]
    subprocess.run([*command, f"--include={packages}", suite, str(target)], check=True)


def prepare_qemu(cache: Path) -> None:
    """Extract trixie's qemu-user for this machine and keep only `qemu-aarch64`."""
    if qemu_path(cache).exists():
        return
    host_arch = subprocess.run(
        ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
    ).stdout.strip()
    extracted = _fresh(cache / "qemu-root.partial")
    _mmdebstrap(QEMU_SUITE, host_arch, "qemu-user", extracted)
    partial = cache / "qemu-aarch64.partial"
    shutil.copy2(extracted / "usr" / "bin" / "qemu-aarch64", partial)
    shutil.rmtree(extracted)
    _replace(partial, qemu_path(cache))


def prepare_root(cache: Path, pi_os: PiOs) -> None:
    """Extract `pi_os`'s arm64 python3 (base-files gives /etc/os-release and, in trixie,
    the merged-/usr links)."""
    final = root_dir(cache, pi_os)
    if python_path(cache, pi_os).exists():
        return
    partial = _fresh(final.with_name("root.partial"))
    _mmdebstrap(pi_os.suite, "arm64", "base-files,python3,libstdc++6", partial)
    _replace(partial, final)


def prepare_site(cache: Path, pi_os: PiOs, requirements: list[str]) -> None:
    """pip-install `requirements` for `pi_os`'s Python and glibc into its site folder."""
    final = site_dir(cache, pi_os)
    glibc = glibc_minor(root_dir(cache, pi_os))
    key = {"requirements": requirements, "python": pi_os.python, "glibc": f"2.{glibc}"}
    recorded = final / "site.json"
    if recorded.exists() and json.loads(recorded.read_text())["key"] == key:
        return
    partial = _fresh(final.with_name("site.partial"))
    platforms = [f"--platform={tag}" for tag in manylinux_platforms(glibc)]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-script-location"]
    command += ["--target", str(partial), "--only-binary=:all:", "--implementation=cp"]
    command += [f"--python-version={pi_os.python}", *platforms, *requirements]
    subprocess.run(command, check=True)
    installed = sorted(path.name.removesuffix(".dist-info") for path in partial.glob("*.dist-info"))
    (partial / "site.json").write_text(json.dumps({"key": key, "installed": installed}, indent=1))
    _replace(partial, final)


def prepare(cache: Path) -> None:
    """Prepare everything the emulated tests need in `cache` (a no-op when it is ready)."""
    cache.mkdir(parents=True, exist_ok=True)
    prepare_qemu(cache)
    requirements = edge_requirements()
    for pi_os in PI_OS_RELEASES:
        prepare_root(cache, pi_os)
        prepare_site(cache, pi_os, requirements)


def emulated_environment(cache: Path, pi_os: PiOs, cpu: str, tledge_dir: Path) -> dict[str, str]:
    """Environment for running `pi_os`'s python3 under QEMU as `cpu`, seeing tledge from
    `tledge_dir` and the `[edge]` extra; nothing of this machine's Python leaks in."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "QEMU_CPU": cpu,
        "QEMU_LD_PREFIX": str(root_dir(cache, pi_os)),
        "PYTHONPATH": f"{tledge_dir}{os.pathsep}{site_dir(cache, pi_os)}",
        "PYTHONNOUSERSITE": "1",
    }


def main() -> int:
    """Prepare the cache; print where it is and what it holds."""
    if shutil.which("mmdebstrap") is None:
        print("mmdebstrap not found: apt-get install mmdebstrap", file=sys.stderr)
        return 1
    cache = cache_dir()
    prepare(cache)
    for pi_os in PI_OS_RELEASES:
        installed = json.loads((site_dir(cache, pi_os) / "site.json").read_text())["installed"]
        print(
            f"Pi OS {pi_os.release} ({pi_os.suite}, Python {pi_os.python}): {' '.join(installed)}"
        )
    print(f"ready: {cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
