import importlib
import subprocess
import sys

import tledge.analysis


def test_every_public_name_resolves_to_what_its_module_defines():
    for name, module_name in tledge.analysis._EXPORTS.items():
        module = importlib.import_module(module_name)
        assert getattr(tledge.analysis, name) is getattr(module, name), name


def test_importing_the_package_and_its_light_modules_does_not_import_tensorflow():
    code = (
        "import sys, tledge.analysis, tledge.analysis.prediction, tledge.analysis.plan_files;"
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
