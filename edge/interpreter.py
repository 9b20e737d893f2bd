"""Finding a TFLite runtime and opening a model with it, without importing TensorFlow first.

Order of preference: LiteRT (`ai_edge_litert`), then `tflite_runtime`, then TensorFlow's
deprecated `tf.lite`, which is only tried when neither of the others is installed.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError, first_line

# runtime name -> module that holds an `Interpreter` class
RUNTIME_MODULES = {
    "litert": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite",
}
INSTALL_HINT = "install one with `pip install ai-edge-litert` (or `pip install tledge[edge]`)"


@dataclass(frozen=True)
class Runtime:
    """A TFLite runtime that imported: its name, version and Interpreter class."""

    name: str
    version: str
    interpreter_class: Any


def available_runtimes() -> list[str]:
    """Names of the runtimes that can be imported here, in order of preference."""
    return [name for name, module in RUNTIME_MODULES.items() if _spec_exists(module)]


def find_runtime(name: str = "auto") -> Runtime:
    """Import and return a TFLite runtime.

    Args:
        name: "auto" for the first available of litert, tflite-runtime, tensorflow; or
            one of those names to insist on it.

    Raises:
        TledgeError: when no runtime (or not the one asked for) can be imported.
    """
    if name != "auto" and name not in RUNTIME_MODULES:
        raise TledgeError(
            f"--runtime {name}: unknown runtime; choose auto, {', '.join(RUNTIME_MODULES)}"
        )
    candidates = list(RUNTIME_MODULES) if name == "auto" else [name]
    for candidate in candidates:
        module_name = RUNTIME_MODULES[candidate]
        if not _spec_exists(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            # e.g. a tflite-runtime wheel built for numpy 1 under numpy 2: try the next.
            continue
        return Runtime(candidate, _runtime_version(candidate), module.Interpreter)
    wanted = "no TFLite runtime found" if name == "auto" else f"runtime {name} is not installed"
    raise TledgeError(f"{wanted}: {INSTALL_HINT}")


def open_interpreter(
    model_path: str | os.PathLike, num_threads: int | None = None, runtime: str = "auto"
) -> tuple[Any, Runtime]:
    """Load a .tflite file, allocate its tensors and return (interpreter, runtime).

    Args:
        model_path: Path of the .tflite file (an embedded contract is fine).
        num_threads: CPU threads for the interpreter; None lets the runtime choose.
        runtime: "auto" or a runtime name, see `find_runtime`.

    Raises:
        TledgeError: when the file is missing or is not a model this runtime can load.

    Example:
        >>> interpreter, runtime = open_interpreter("model_int8.tflite", num_threads=2)
    """
    file = Path(model_path)
    if not file.is_file():
        raise TledgeError(f"{file}: model file not found")
    found = find_runtime(runtime)
    try:
        with _without_native_info_lines():
            interpreter = found.interpreter_class(model_path=str(file), num_threads=num_threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        reason = first_line(error)
        raise TledgeError(
            f"{file}: not a TFLite model that {found.name} {found.version} can load ({reason})"
        ) from None
    return interpreter, found


@contextlib.contextmanager
def _without_native_info_lines() -> Iterator[None]:
    """Drop the runtime's "INFO: Created TensorFlow Lite XNNPACK delegate" line.

    It is written from C++ to file descriptor 2 when tensors are allocated, so it would
    stand before every message of ours; other lines written meanwhile are passed on.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [
                line
                for line in sink.read().decode("utf-8", errors="replace").splitlines(True)
                if not line.startswith("INFO: ")
            ]
            if kept:
                sys.stderr.write("".join(kept))


def _spec_exists(module_name: str) -> bool:
    # Only the top-level package is looked up: find_spec("tensorflow.lite") would import
    # all of TensorFlow just to answer, which is what the edge client must never do.
    try:
        return importlib.util.find_spec(module_name.partition(".")[0]) is not None
    except (ModuleNotFoundError, ValueError):
        return False


def _runtime_version(name: str) -> str:
    distribution = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime"}.get(
        name, "tensorflow"
    )
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"
