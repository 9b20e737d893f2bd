"""Which TFLite runtimes can load and run a written model, and known incompatibilities."""

from __future__ import annotations

import os

import numpy as np

from tledge.edge.errors import TledgeError
from tledge.edge.interpreter import available_runtimes, open_interpreter
from tledge.exporter.capture import captured_output
from tledge.exporter.graph import GraphReport

# Runtimes a model is checked with; tf.lite is deprecated and not what devices run.
CHECKED_RUNTIMES = ("litert", "tflite-runtime")
# tflite-runtime 2.14 (the last release, wheels for Raspberry Pi OS) knows these op
# versions at most; a newer version makes `allocate_tensors` fail on the device.
TFLITE_RUNTIME_214_MAX_VERSIONS = {"FULLY_CONNECTED": 11}


def check_runtimes(model_path: str | os.PathLike) -> dict[str, bool]:
    """Load `model_path` with each installed runtime and run one inference on zeros.

    Returns:
        {runtime name: loaded and ran}, for the installed runtimes of `CHECKED_RUNTIMES`.
    """
    installed = set(available_runtimes())
    results = {}
    for runtime in CHECKED_RUNTIMES:
        if runtime in installed:
            results[runtime] = _runs(model_path, runtime)
    return results


def runtime_warnings(variant: str, report: GraphReport) -> list[str]:
    """Warnings about runtimes the model is known not to load on, from its op versions."""
    warnings = []
    for op, max_version in TFLITE_RUNTIME_214_MAX_VERSIONS.items():
        version = report.op_versions.get(op, 0)
        if version > max_version:
            warnings.append(
                f"{variant}: {op} v{version} will not load on tflite-runtime 2.14 "
                f"(it knows v{max_version} at most); use ai-edge-litert on the device"
            )
    return warnings


def _runs(model_path: str | os.PathLike, runtime: str) -> bool:
    try:
        with captured_output():
            interpreter, _ = open_interpreter(model_path, num_threads=1, runtime=runtime)
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
        interpreter.invoke()
    except (TledgeError, ValueError, RuntimeError):
        return False
    return True
