"""Capturing the noise TensorFlow writes while converting, at the file-descriptor level.

The TFLite converter and the SavedModel writer log from C++ straight to file descriptors
1 and 2, which `contextlib.redirect_stdout` cannot catch. The exporter keeps that text
and shows it only when something fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from tledge.core.errors import TledgeError


@dataclass
class CapturedOutput:
    """Text written to stdout and stderr inside `captured_output`; filled in on exit."""

    text: str = ""

    def tail(self, lines: int = 20) -> str:
        """Return the last `lines` non-empty lines of the captured text."""
        kept = [line for line in self.text.splitlines() if line.strip()]
        return "\n".join(kept[-lines:])


@contextlib.contextmanager
def captured_output() -> Iterator[CapturedOutput]:
    """Redirect file descriptors 1 and 2 and Python's sys.stdout/sys.stderr into a buffer.

    Example:
        >>> with captured_output() as output:
        ...     tflite_bytes = converter.convert()
        >>> print(output.tail())  # only when conversion failed
    """
    captured = CapturedOutput()
    python_text = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(python_text), contextlib.redirect_stderr(python_text):
                yield captured
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)
            sink.seek(0)
            native_text = sink.read().decode("utf-8", errors="replace")
            captured.text = python_text.getvalue() + native_text


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras with their start-up log lines (CUDA, oneDNN) captured.

    Raises:
        TledgeError: when TensorFlow is not installed.
    """
    with captured_output() as output:
        try:
            import keras  # noqa: F401
            import tensorflow

            # Device discovery logs CUDA probing errors on CPU-only machines.
            tensorflow.config.list_physical_devices()
        except ImportError as error:
            failure: ImportError | None = error
        else:
            failure = None
    if failure is not None:
        raise TledgeError(
            f"exporting needs TensorFlow ({failure}): pip install 'tledge[train]'\n{output.tail(5)}"
        )
