"""The package installs under one namespace and its CLI starts without TensorFlow."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tledge.cli import COMMANDS, cli

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_command_without_importing_tensorflow():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tledge.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(result.output)\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    listed = [name for name in COMMANDS if f"  {name} " in result.stdout]
    assert listed == [name for name in COMMANDS if cli.get_command(None, name) is not None]


def test_edge_package_imports_without_tensorflow():
    code = (
        "import sys, pkgutil, importlib, tledge.edge\n"
        "for module in pkgutil.iter_modules(tledge.edge.__path__):\n"
        "    importlib.import_module('tledge.edge.' + module.name)\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_wheel_installs_code_folders_under_the_tledge_namespace(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tledge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names}
    assert {n for n in top_levels if not n.endswith(".dist-info")} == {"tledge"}
    for module in (
        "tledge/cli.py",
        "tledge/trainer/synthetic.py",
        "tledge/core/run_folder.py",
        "tledge/edge/contract.py",
        "tledge/benchmarks/__init__.py",
    ):
        assert module in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "tledge = tledge.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
