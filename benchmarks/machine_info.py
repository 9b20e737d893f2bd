"""A description of the machine a benchmark ran on, so results can be compared fairly.

Versions are read from package metadata, never by importing the package: asking for the
TensorFlow version must not load TensorFlow on an edge install.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# distribution name -> key in the "versions" mapping
DISTRIBUTIONS = {
    "numpy": "numpy",
    "opencv-python-headless": "opencv",
    "opencv-python": "opencv",
    "ai-edge-litert": "ai_edge_litert",
    "tflite-runtime": "tflite_runtime",
    "tensorflow": "tensorflow",
    "keras": "keras",
}


def machine_info() -> dict[str, Any]:
    """Return CPU model, core count, OS, Python and library versions, and the load.

    The load average is recorded because on a shared machine other processes slow the
    measurement down; a reader can then judge how much to trust the numbers.

    Example:
        >>> machine_info()["cpu_cores"]
        2
    """
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": library_versions(),
        "load_average_1_5_15": list(load) if load else None,
    }


def library_versions() -> dict[str, str | None]:
    """Versions of numpy, OpenCV, the TFLite runtimes, TensorFlow and Keras (None if absent)."""
    versions: dict[str, str | None] = {}
    for distribution, key in DISTRIBUTIONS.items():
        try:
            versions[key] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions.setdefault(key, None)
    return versions


def cpu_model() -> str:
    """The CPU's marketing name, or the best description the platform offers."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            # x86 says "model name"; Raspberry Pi kernels say "Model" for the board.
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"
