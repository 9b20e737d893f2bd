"""The edge client must run where TensorFlow is not installed (e.g. a Raspberry Pi)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

EDGE_PACKAGES = ["numpy", "opencv-python-headless", "ai-edge-litert", "click"]

IMPORT_SCRIPT = """
import sys
import numpy as np
import tledge.cli, tledge.commands.edge, tledge.commands.doctor
import tledge.edge.app, tledge.edge.classifier, tledge.edge.doctor, tledge.edge.outputs
import tledge.edge.overlay, tledge.edge.server, tledge.edge.smoothing, tledge.edge.sources
import tledge.edge.source_spec, tledge.edge.live_source, tledge.edge.stopping
import tledge.edge.web_access, tledge.edge.web_page
import tledge.core.atomic, tledge.core.folders, tledge.core.labels, tledge.core.run_folder
from tledge.edge.classifier import Classifier

tledge.edge.doctor.run_checks()
classifier = Classifier(sys.argv[1], labels=["red", "green", "blue"])
print(classifier.runtime.name, classifier.classify(np.zeros((8, 8, 3), np.uint8)).label)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print("LOADED", loaded)
"""


def test_edge_modules_never_import_tensorflow(color_model):
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_SCRIPT, str(color_model)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.splitlines()[-1] == "LOADED []"
    assert result.stdout.splitlines()[0].startswith("litert ")


@pytest.mark.slow
@pytest.mark.integration
def test_edge_client_classifies_sanity_images_in_a_venv_without_tensorflow(
    shared_data, tmp_path, make_venv
):
    edge_venv = make_venv(EDGE_PACKAGES)
    assert edge_venv.pip.returncode == 0, edge_venv.pip.stderr
    no_tf = edge_venv.run("python", "-c", "import tensorflow")
    assert no_tf.returncode != 0, "this venv must not have TensorFlow"

    tflite = shared_data / "tflite"
    out = tmp_path / "frames.jsonl"
    result = edge_venv.run(
        "tledge", "edge",
        str(tflite / "mobilenet_v2_1.0_224_quant.tflite"),
        "--labels", str(tflite / "imagenet_labels.txt"),
        "--source", str(tflite / "sanity_images"),
        "--threads", "2", "--top-k", "1", "--jsonl", str(out),
        timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    top1 = {Path(r["path"]).name: r["top_k"][0]["label"] for r in records}
    assert top1["parrot.jpg"] == "macaw"
    assert top1["hot_dog.jpg"].startswith("hotdog")
    doctor = edge_venv.run("tledge", "doctor")
    assert doctor.returncode == 0 and "runtime tensorflow" in doctor.stdout
    assert "tledge edge will use litert" in doctor.stdout
