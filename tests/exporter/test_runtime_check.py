"""Checking an exported file with the runtimes of another Python environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tledge.core.errors import TledgeError
from tledge.exporter.runtime_check import (
    check_in_other_python,
    check_runtimes,
    runtimes_in_other_python,
)

from ..edge.conftest import channel_mean_model


def test_other_python_loads_and_runs_the_model(tmp_path):
    """A hand-built uint8 model (DEQUANTIZE + MEAN): the check needs a valid .tflite that
    runs, not a trained one, so this needs no TensorFlow. The exported variants are
    checked this way in test_export_checks_the_runtimes_of_another_python (slow).

    Checked that it fails: with check_in_other_python answering True without running."""
    model = tmp_path / "uint8.tflite"
    model.write_bytes(channel_mean_model(dtype="uint8", scale=1 / 255, zero_point=0))
    # This test's own interpreter stands in for a device venv: it has ai-edge-litert.
    assert runtimes_in_other_python(sys.executable) == ["litert"]
    assert check_in_other_python(model, sys.executable) == {"litert": True}
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(model.read_bytes()[: len(model.read_bytes()) // 2])
    assert check_in_other_python(broken, sys.executable) == {"litert": False}
    assert check_runtimes(broken, [sys.executable])["litert"] is False


def test_python_without_numpy_or_runtime_is_a_clear_error(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    with pytest.raises(TledgeError, match=r"--check-python .*bare.*numpy"):
        runtimes_in_other_python(bare / "bin" / "python")
    with pytest.raises(TledgeError, match="cannot run it"):
        runtimes_in_other_python(tmp_path / "no-such-python")


def test_export_with_a_bad_check_python_fails_before_writing(make_run, placeholder_model, tmp_path):
    from click.testing import CliRunner

    from tledge.cli import cli

    # A placeholder model file: with the model loaded first, this test failed (checked).
    run = make_run(model_file=placeholder_model)
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = CliRunner().invoke(
        cli, ["export", str(run), "--fp32", "--check-python", str(bare / "bin" / "python")]
    )
    assert result.exit_code == 1
    assert "--check-python" in result.output and "numpy" in result.output
    assert not (run / "export").exists()


@pytest.mark.slow
def test_export_checks_the_runtimes_of_another_python(make_run):
    from click.testing import CliRunner

    from tledge.cli import cli

    run = make_run()
    result = CliRunner().invoke(
        cli, ["export", str(run), "--fp32", "--check-python", sys.executable]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((run / "export" / "drift.json").read_text())
    assert report["variants"]["fp32"]["runtimes"] == {"litert": True}
