import importlib
import subprocess
import sys

import tledge.trainer


def test_every_public_name_resolves_to_what_its_module_defines():
    for name, module_name in tledge.trainer._EXPORTS.items():
        module = importlib.import_module(module_name)
        assert getattr(tledge.trainer, name) is getattr(module, name), name


def test_train_is_the_function_even_after_its_module_is_imported():
    importlib.import_module("tledge.trainer.training")
    from tledge.trainer import train

    assert callable(train) and train.__module__ == "tledge.trainer.training"


def test_importing_the_package_does_not_import_tensorflow():
    code = (
        "import sys, tledge.trainer, tledge.trainer.synthetic; print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
