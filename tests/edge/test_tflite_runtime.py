"""The edge client on tflite-runtime 2.14 (numpy 1, OpenCV 4.10), the runtime for systems
that ai-edge-litert has no wheel for (e.g. 32-bit Raspberry Pi OS)."""

import json
from pathlib import Path

import cv2
import pytest

from tledge.exporter.runtime_check import check_in_other_python

# tflite-runtime 2.14 is built against numpy 1; OpenCV 4.10 is the last release that is.
TFLITE_RUNTIME_PACKAGES = [
    "numpy<2",
    "tflite-runtime==2.14.0",
    "opencv-python-headless<4.11",
    "click",
]


def square_frame(path: Path, side: int = 256):
    """The centred square of an image, resized to side x side (a video frame)."""
    image = cv2.imread(str(path))
    height, width = image.shape[:2]
    short = min(height, width)
    top, left = (height - short) // 2, (width - short) // 2
    return cv2.resize(image[top : top + short, left : left + short], (side, side))


@pytest.mark.slow
@pytest.mark.integration
def test_edge_client_classifies_sanity_images_on_tflite_runtime(shared_data, tmp_path, make_venv):
    runtime_venv = make_venv(TFLITE_RUNTIME_PACKAGES)
    if runtime_venv.pip.returncode != 0:
        last_line = (runtime_venv.pip.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"cannot install tflite-runtime 2.14 here: {last_line}")
    for module in ("tensorflow", "ai_edge_litert"):
        missing = runtime_venv.run("python", "-c", f"import {module}")
        assert missing.returncode != 0, f"this venv must not have {module}"

    tflite = shared_data / "tflite"
    model = [str(tflite / "mobilenet_v2_1.0_224_quant.tflite")]
    model += ["--labels", str(tflite / "imagenet_labels.txt"), "--top-k", "1"]
    out = tmp_path / "images.jsonl"
    images = ["--source", str(tflite / "sanity_images"), "--jsonl", str(out)]
    result = runtime_venv.run(
        "tledge", "edge", *model, *images, "--runtime", "tflite-runtime", timeout=300
    )
    assert result.returncode == 0, result.stderr
    top1 = {
        Path(r["path"]).name: r["top_k"][0]["label"]
        for r in map(json.loads, out.read_text().splitlines())
    }
    assert top1["parrot.jpg"] == "macaw"
    assert top1["hot_dog.jpg"].startswith("hotdog")

    # A video file goes through OpenCV 4.10's capture API, and auto picks tflite-runtime.
    pictures = [square_frame(tflite / "sanity_images" / f"{n}.jpg") for n in ("parrot", "hot_dog")]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for picture in pictures * 2:
        writer.write(picture)
    writer.release()
    out = tmp_path / "video.jsonl"
    result = runtime_venv.run(
        "tledge", "edge", *model, "--source", str(video), "--jsonl", str(out), timeout=300
    )
    assert result.returncode == 0, result.stderr
    labels = [json.loads(line)["top_k"][0]["label"] for line in out.read_text().splitlines()]
    assert [label.split(",")[0] for label in labels] == ["macaw", "hotdog"] * 2
    doctor = runtime_venv.run("tledge", "doctor")
    assert doctor.returncode == 0, doctor.stdout
    assert "tledge edge will use tflite-runtime" in doctor.stdout

    # What `tledge export --check-python` runs in such an environment.
    python = runtime_venv.bin / "python"
    assert check_in_other_python(model[0], python) == {"tflite-runtime": True}
    assert check_in_other_python(tflite / "imagenet_labels.txt", python) == {
        "tflite-runtime": False
    }
