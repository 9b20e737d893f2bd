"""`tledge doctor`: what this machine can run, and what to install for what is missing."""

from __future__ import annotations

import importlib
import os
import platform
import struct
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tledge.core.errors import first_line
from tledge.edge.interpreter import RUNTIME_MODULES, available_runtimes

OK, WARN, MISSING, INFO = "ok", "warn", "missing", "info"
# Machines for which PyPI has ai-edge-litert wheels (Linux aarch64/x86_64, macOS arm64).
LITERT_MACHINES = ("x86_64", "amd64", "aarch64", "arm64")
RUNTIME_DISTRIBUTIONS = {
    "litert": "ai-edge-litert",
    "tflite-runtime": "tflite-runtime",
    "tensorflow": "tensorflow",
}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report.

    Attributes:
        name: What was checked, e.g. "runtime litert".
        status: "ok", "warn", "missing" or "info".
        detail: What was found.
        hint: What to do about a warning or a missing piece; "" when nothing.
    """

    name: str
    status: str
    detail: str
    hint: str = ""


def run_checks() -> list[Check]:
    """Inspect Python, CPU, numpy, OpenCV, TFLite runtimes and cameras.

    Nothing heavy is imported: TensorFlow is only looked up, never loaded.
    """
    machine = platform.machine().lower()
    checks = [
        Check("python", INFO, f"{platform.python_version()} ({sys.executable})"),
        _machine_check(machine),
        Check("cpu", INFO, f"{_cpu_model()}, {_usable_cores()} of {os.cpu_count()} cores usable"),
        _numpy_check(),
        _opencv_check(),
        *_runtime_checks(machine),
        _v4l2_check(),
        _picamera2_check(),
    ]
    return checks


def _machine_check(machine: str) -> Check:
    bits = struct.calcsize("P") * 8
    detail = f"{machine}, {bits}-bit Python, {_os_name()}{_board_suffix()}"
    if bits == 32 and machine in LITERT_MACHINES:
        # A 32-bit Raspberry Pi OS on a 64-bit kernel reports aarch64, but pip needs
        # armv7l wheels for its Python, and ai-edge-litert has none.
        return Check(
            "machine",
            WARN,
            detail,
            "32-bit userland: install Raspberry Pi OS (64-bit) for ai-edge-litert wheels",
        )
    return Check("machine", INFO, detail)


def has_working_runtime(checks: list[Check]) -> bool:
    """True when at least one TFLite runtime imported successfully."""
    return any(c.name.startswith("runtime ") and c.status == OK for c in checks)


def _numpy_check() -> Check:
    import numpy as np

    return Check("numpy", OK, np.__version__)


def _opencv_check() -> Check:
    try:
        import cv2
    except ImportError as error:
        return Check("opencv", MISSING, str(error), "pip install opencv-python-headless")
    from tledge.edge.window import opencv_has_gui

    gui = "with GUI (--display works)" if opencv_has_gui() else "headless (use --serve or --jsonl)"
    backends = sorted(
        {cv2.videoio_registry.getBackendName(b) for b in cv2.videoio_registry.getBackends()}
    )
    return Check("opencv", OK, f"{cv2.__version__}, {gui}, video backends: {', '.join(backends)}")


def _runtime_checks(machine: str) -> list[Check]:
    installed = set(available_runtimes())
    checks = []
    for name, module in RUNTIME_MODULES.items():
        distribution = RUNTIME_DISTRIBUTIONS[name]
        if name not in installed:
            checks.append(Check(f"runtime {name}", MISSING, "not installed"))
            continue
        version = _version(distribution)
        if name == "tensorflow":
            # Importing TensorFlow takes seconds and is what the edge client avoids.
            checks.append(Check(f"runtime {name}", OK, f"{version} (fallback, deprecated tf.lite)"))
            continue
        try:
            importlib.import_module(module)
        except Exception as error:  # a wheel built for another numpy fails in many ways
            hint = _broken_runtime_hint(name)
            checks.append(
                Check(
                    f"runtime {name}", WARN, f"{version}, import failed: {first_line(error)}", hint
                )
            )
            continue
        checks.append(Check(f"runtime {name}", OK, version))
    if not any(c.status == OK for c in checks):
        checks.append(Check("runtime", MISSING, "no TFLite runtime works", _install_hint(machine)))
    else:
        chosen = next(c for c in checks if c.status == OK)
        checks.append(Check("runtime", OK, f"tledge edge will use {chosen.name.split()[1]}"))
    return checks


def _broken_runtime_hint(name: str) -> str:
    if name == "tflite-runtime":
        return "tflite-runtime 2.14 needs numpy<2: pip install 'numpy<2' (or use ai-edge-litert)"
    return "reinstall it: pip install --force-reinstall ai-edge-litert"


def _install_hint(machine: str) -> str:
    if machine in LITERT_MACHINES:
        return "pip install ai-edge-litert (or pip install 'tledge[edge]')"
    if machine.startswith("armv7") or machine.startswith("armv6"):
        return (
            f"ai-edge-litert has no wheels for 32-bit {machine}: install Raspberry Pi OS 64-bit "
            "(recommended), or pip install tflite-runtime 'numpy<2' where a wheel exists"
        )
    return f"no known TFLite wheel for {machine}; try pip install ai-edge-litert"


def _v4l2_check() -> Check:
    devices = sorted(str(p) for p in Path("/dev").glob("video*"))
    if devices:
        return Check("cameras v4l2", OK, ", ".join(devices))
    return Check(
        "cameras v4l2",
        INFO,
        "no /dev/video* devices",
        "plug in a USB camera, or use --source picamera2, a video file or a stream URL",
    )


def _picamera2_check() -> Check:
    from tledge.edge.cameras import PICAMERA2_HELP, PICAMERA2_NUMPY_HELP

    if importlib.util.find_spec("picamera2") is None:
        is_pi = "raspberry pi" in _board_suffix().lower()
        return Check(
            "cameras picamera2",
            INFO,
            "not installed (needed for the Pi camera module only)",
            PICAMERA2_HELP if is_pi else "",
        )
    try:
        importlib.import_module("picamera2")
    except Exception as error:  # e.g. ValueError from simplejpeg built for numpy 1
        hint = PICAMERA2_NUMPY_HELP if isinstance(error, ValueError) else PICAMERA2_HELP
        return Check("cameras picamera2", WARN, f"import failed: {first_line(error)}", hint)
    return Check("cameras picamera2", OK, f"picamera2 {_version('picamera2')}")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown version"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def _board_suffix() -> str:
    try:
        model = Path("/proc/device-tree/model").read_bytes().decode(errors="replace")
    except OSError:
        return ""
    return f", {model.strip(chr(0)).strip()}"


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or "unknown CPU"
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
