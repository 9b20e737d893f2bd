"""TensorFlow's start-up lines stay hidden unless `tledge -v` asks for them.

Checked to fail before the fix: `tledge predict bad.keras ...` printed oneDNN, "Could
not find cuda drivers" and cpu_feature_guard lines before tledge's one error line.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TLEDGE = Path(sys.executable).with_name("tledge")


def run_predict(tmp_path, *flags):
    model = tmp_path / "bad.keras"
    model.write_text("not a model")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    command = [str(TLEDGE), *flags, "predict", str(model), str(tmp_path), "--labels", str(labels)]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_a_tensorflow_command_prints_only_its_own_lines(tmp_path):
    pytest.importorskip("tensorflow")
    quiet = run_predict(tmp_path)
    assert quiet.returncode == 1
    assert quiet.stderr.startswith("Error: ") and quiet.stderr.count("\n") == 1, quiet.stderr
    verbose = run_predict(tmp_path, "-v")
    assert "oneDNN" in verbose.stderr or "cuda" in verbose.stderr.lower()


def test_edge_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from tledge.cli import cli\n"
        "try:\n"
        "    cli(['edge', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
