"""Converter noise is captured at the file-descriptor level and shown only on demand."""

from __future__ import annotations

import os
import sys

from tledge.exporter.capture import captured_output


def test_native_and_python_output_is_captured(capfd):
    with captured_output() as output:
        os.write(1, b"native stdout\n")
        os.write(2, b"native stderr\n")
        print("python stdout")
        print("python stderr", file=sys.stderr)
    os.write(1, b"after\n")
    seen = capfd.readouterr()
    for text in ("native stdout", "native stderr", "python stdout", "python stderr"):
        assert text in output.text
        assert text not in seen.out + seen.err
    assert "after" in seen.out


def test_output_is_restored_after_an_exception(capfd):
    try:
        with captured_output() as output:
            os.write(2, b"converter log line\n")
            raise RuntimeError("conversion failed")
    except RuntimeError:
        pass
    assert "converter log line" in output.text
    os.write(2, b"visible again\n")
    assert "visible again" in capfd.readouterr().err


def test_tail_keeps_the_last_non_empty_lines():
    with captured_output() as output:
        print("one\n\ntwo\nthree")
    assert output.tail(2) == "two\nthree"
