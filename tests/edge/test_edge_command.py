import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tledge.cli import cli
from tledge.edge.doctor import _install_hint, has_working_runtime, run_checks


def write_images(folder, colors_bgr):
    folder.mkdir()
    for index, color in enumerate(colors_bgr):
        cv2.imwrite(str(folder / f"{index:02d}.png"), np.full((40, 40, 3), color, np.uint8))
    return folder


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("red\ngreen\nblue\n")
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_edge_on_an_image_folder_prints_json_lines_and_a_summary(
    color_model, labels_file, tmp_path
):
    images = write_images(tmp_path / "images", [(0, 0, 255), (255, 0, 0), (0, 255, 0)])
    result = run("edge", color_model, "--source", images, "--labels", labels_file, "--top-k", 1)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["top_k"][0]["label"] for r in records] == ["red", "blue", "green"]
    assert [Path(r["path"]).name for r in records] == ["00.png", "01.png", "02.png"]
    assert "3 frames in" in result.stderr and "(stopped: end)" in result.stderr


def test_edge_writes_jsonl_file_and_summary_to_stdout(color_model, labels_file, tmp_path):
    images = write_images(tmp_path / "images", [(0, 0, 255)] * 4)
    out = tmp_path / "out" / "frames.jsonl"
    result = run(
        "edge", color_model, "--source", images, "--labels", labels_file,
        "--jsonl", out, "--max-frames", 2, "--no-display",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 2
    assert "2 frames in" in result.stdout and "max-frames" in result.stdout


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "missing.tflite: model file not found"),
        ("corrupt", "corrupt.tflite: not a TFLite model"),
        ("not_classifier", "image.tflite: not an image classifier"),
        ("labels", "--labels has 2 labels but the model has 3 outputs"),
        ("source", "--source nowhere: no such file, folder or camera"),
        ("serve", "--serve web: expected [HOST:]PORT"),
        ("display", "--display: no display"),
        ("save_proc", "--save /proc/out.mp4: cannot write there"),
        ("save_under_file", "out.mp4: cannot write there"),
        ("all_unreadable", "none of its 2 files is a readable image"),
    ],
)
def test_bad_input_is_a_one_line_error(case, message, color_model, make_model, tmp_path):
    images = write_images(tmp_path / "images", [(0, 0, 255)])
    two_labels = tmp_path / "two.txt"
    two_labels.write_text("a\nb\n")
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"garbage" * 100)
    model = {
        "missing": tmp_path / "missing.tflite",
        "corrupt": corrupt,
        "not_classifier": make_model("image", name="image.tflite"),
    }.get(case, color_model)
    (tmp_path / "a_file").write_text("")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_text("not an image")
    (broken / "b.png").write_text("nor this")
    extra = {
        "save_proc": ["--save", "/proc/out.mp4"],
        "save_under_file": ["--save", tmp_path / "a_file" / "out.mp4"],
        "all_unreadable": ["--source", broken],
        "labels": ["--labels", two_labels],
        "source": ["--source", "nowhere"],
        "serve": ["--serve", "web"],
        "display": ["--display"],
    }.get(case, [])
    args = ["edge", model, "--source", images, *extra]
    result = CliRunner(env={"DISPLAY": "", "WAYLAND_DISPLAY": ""}).invoke(
        cli, [str(a) for a in args]
    )
    assert result.exit_code == 1
    errors = result.stderr
    if case == "all_unreadable":
        # Each skipped file is named once, then the summary, then the error.
        named = [line for line in errors.splitlines() if line.startswith("skipped ")]
        assert named == [f"skipped {broken / 'a.jpg'}: not a readable image",
                         f"skipped {broken / 'b.png'}: not a readable image"]  # fmt: skip
        errors = errors.splitlines()[-1] + "\n"
    assert errors.count("\n") == 1 and errors.startswith("Error: ")
    assert message in errors
    assert "INFO:" not in result.stderr and "1001" not in result.stderr


def test_doctor_reports_runtime_versions_and_cameras():
    result = run("doctor")
    assert result.exit_code == 0, result.output
    assert "runtime litert" in result.stdout or "runtime tflite-runtime" in result.stdout
    assert "tledge edge will use" in result.stdout
    for name in ("numpy", "opencv", "cpu", "cameras v4l2", "cameras picamera2"):
        assert name in result.stdout
    assert has_working_runtime(run_checks())


def test_doctor_install_hints_name_the_right_wheel():
    assert "ai-edge-litert" in _install_hint("aarch64")
    armv7 = _install_hint("armv7l")
    assert "no wheels for 32-bit armv7l" in armv7 and "64-bit" in armv7 and "numpy<2" in armv7


def test_jsonl_to_a_pipe_that_closes_ends_quietly(color_model, labels_file, tmp_path):
    # More lines than a pipe buffers (64 KiB), so writing must hit the closed pipe.
    images = write_images(tmp_path / "images", [(0, 0, 255)] * 400)
    tledge = Path(sys.executable).with_name("tledge")
    command = f"'{tledge}' edge '{color_model}' --source '{images}' --labels '{labels_file}'"
    result = subprocess.run(
        f"set -o pipefail; {command} --jsonl - | head -n 2",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert "(stopped: output-closed)" in result.stderr


@pytest.mark.slow
def test_a_killed_run_leaves_no_partial_video_after_the_next_run(
    color_model, labels_file, fake_stream, tmp_path
):
    """Checked to fail before the fix: the hidden temporary .mp4 of a kill -9 stayed."""
    import os
    import signal
    import time

    images = write_images(tmp_path / "images", [(0, 0, 255)] * 3)
    out = tmp_path / "out"
    out.mkdir()
    fake_stream.up()
    tledge = str(Path(sys.executable).with_name("tledge"))
    command = [tledge, "edge", str(color_model), "--labels", str(labels_file), "--save"]
    process = subprocess.Popen([*command, str(out / "run.mp4"), "--source", fake_stream.url])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(out.iterdir()):
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert [p.name for p in out.iterdir()] == [f".run.mp4.{process.pid}.partial.mp4"]
    result = run("edge", color_model, "--source", images, "--labels", labels_file,
                 "--save", out / "run.mp4")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["run.mp4"]


def test_the_imagenet_background_hint_only_for_1001_outputs(color_model, tmp_path):
    from tledge.core.errors import TledgeError
    from tledge.edge.classifier import Classifier

    with pytest.raises(TledgeError, match="has 2 labels but the model has 3 outputs") as info:
        Classifier(color_model, labels=["a", "b"])
    assert "1001" not in str(info.value)


def test_predict_names_a_skipped_file_once_and_an_unwritable_annotate_is_one_line(
    color_model, labels_file, tmp_path
):
    """Checked to fail before the fix: the path was printed twice, and --annotate under
    a file raised a traceback."""
    images = write_images(tmp_path / "images", [(0, 0, 255)])
    (images / "bad.jpg").write_text("not an image")
    (tmp_path / "a_file").write_text("")
    result = run("predict", color_model, images, "--labels", labels_file,
                 "--annotate", tmp_path / "a_file" / "annotated")  # fmt: skip
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"warning: skipped {images / 'bad.jpg'}: not a readable image"
    assert lines[-1].startswith("Error: --annotate ") and "cannot write there" in lines[-1]
    assert "Traceback" not in result.output


def test_train_extra_requires_a_keras_without_public_safe_mode_bypasses():
    import configparser

    from packaging.requirements import Requirement

    config = configparser.ConfigParser()
    config.read(Path(__file__).parents[2] / "setup.cfg")
    train = config["options.extras_require"]["train"].splitlines()
    keras = [Requirement(line) for line in train if line.strip().startswith("keras")]
    assert keras and not keras[0].specifier.contains("3.13.9")
    assert keras[0].specifier.contains("3.14.0")
