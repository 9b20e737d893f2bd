"""Which TFLite runtimes can load and run a written model, and known incompatibilities."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence

import numpy as np

from tledge.core.errors import TledgeError
from tledge.edge.interpreter import available_runtimes, open_interpreter
from tledge.exporter.capture import captured_output
from tledge.exporter.graph import GraphReport

# Runtimes a model is checked with; tf.lite is deprecated and not what devices run.
CHECKED_RUNTIMES = ("litert", "tflite-runtime")
# tflite-runtime 2.14 (the last release, wheels for Raspberry Pi OS) knows these op
# versions at most; a newer version makes `allocate_tensors` fail on the device.
TFLITE_RUNTIME_214_MAX_VERSIONS = {"FULLY_CONNECTED": 11}
# Run by another Python (a device-like venv, e.g. tflite-runtime with numpy<2), which
# need not have tledge installed: it only needs numpy and a runtime.
_EXTERNAL_CHECK = """
import importlib, json, sys
import numpy as np
results = {}
for name, module in (("litert", "ai_edge_litert.interpreter"),
                     ("tflite-runtime", "tflite_runtime.interpreter")):
    try:
        interpreter_module = importlib.import_module(module)
    except ImportError:
        continue
    if len(sys.argv) < 2:
        results[name] = None
        continue
    try:
        interpreter = interpreter_module.Interpreter(model_path=sys.argv[1], num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
        results[name] = True
    except Exception:
        results[name] = False
print(json.dumps(results))
"""
EXTERNAL_CHECK_TIMEOUT_S = 120


def check_runtimes(
    model_path: str | os.PathLike, other_pythons: Sequence[str | os.PathLike] = ()
) -> dict[str, bool]:
    """Load `model_path` with each installed runtime and run one inference on zeros.

    Args:
        model_path: The .tflite file.
        other_pythons: Interpreters of other environments (e.g. a venv with
            tflite-runtime and numpy<2, like a Raspberry Pi's) whose runtimes are
            checked too, each in a subprocess.

    Returns:
        {runtime name: loaded and ran}, for the installed runtimes of `CHECKED_RUNTIMES`
        and those found in `other_pythons`; a runtime checked in several environments
        counts as loading only if it loaded in all of them.

    Raises:
        TledgeError: when another Python cannot be run or has no TFLite runtime.
    """
    installed = set(available_runtimes())
    results = {}
    for runtime in CHECKED_RUNTIMES:
        if runtime in installed:
            results[runtime] = _runs(model_path, runtime)
    for python in other_pythons:
        for runtime, loaded in check_in_other_python(model_path, python).items():
            results[runtime] = results.get(runtime, True) and loaded
    return results


def runtimes_in_other_python(python: str | os.PathLike) -> list[str]:
    """Names of the TFLite runtimes `python` can import ("litert", "tflite-runtime").

    Raises:
        TledgeError: when `python` cannot be run, fails, or has neither runtime.
    """
    return list(_run_check(python, []))


def check_in_other_python(
    model_path: str | os.PathLike, python: str | os.PathLike
) -> dict[str, bool]:
    """Load and run `model_path` with the TFLite runtimes importable by `python`.

    Returns:
        {runtime name: loaded and ran} for ai-edge-litert and tflite-runtime, where present.

    Raises:
        TledgeError: when `python` cannot be run, fails, or has neither runtime.
    """
    return _run_check(python, [str(model_path)])


def _run_check(python: str | os.PathLike, arguments: list[str]) -> dict[str, bool | None]:
    command = [str(python), "-c", _EXTERNAL_CHECK, *arguments]
    try:
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=EXTERNAL_CHECK_TIMEOUT_S
        )
    except OSError as error:
        raise TledgeError(f"--check-python {python}: cannot run it ({error})") from None
    except subprocess.TimeoutExpired:
        raise TledgeError(
            f"--check-python {python}: the runtime check did not finish in "
            f"{EXTERNAL_CHECK_TIMEOUT_S} s"
        ) from None
    if finished.returncode != 0:
        last = (finished.stderr.strip().splitlines() or ["no error output"])[-1]
        raise TledgeError(f"--check-python {python}: the runtime check failed: {last}")
    results = json.loads(finished.stdout.strip().splitlines()[-1])
    if not results:
        raise TledgeError(
            f"--check-python {python}: it has no TFLite runtime "
            "(pip install tflite-runtime or ai-edge-litert there)"
        )
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
