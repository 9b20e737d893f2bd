"""`tledge bench` and the latency benchmark on the small published 128 px model."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tledge.benchmarks.latency import latency_stats, measure_latency, parse_threads
from tledge.benchmarks.variants import find_variants
from tledge.cli import cli
from tledge.core.errors import TledgeError
from tledge.edge.interpreter import open_interpreter

SMALL_MODEL = "tflite/mobilenet_v1_0.25_128_quant.tflite"
LABELS = "tflite/imagenet_labels.txt"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_run(root: Path, shared_data: Path) -> Path:
    """A run folder whose exports are the published model, with a drift report."""
    run = root / "food"
    (run / "export").mkdir(parents=True)
    (run / "config.json").write_text(
        json.dumps({"backbone": "mobilenet", "image_size": [128, 128]})
    )
    shutil.copy(shared_data / LABELS, run / "labels.txt")
    for name in ("model_int8.tflite", "model_fp32.tflite", "model_fp16.rejected.tflite"):
        shutil.copy(shared_data / SMALL_MODEL, run / "export" / name)
    drift = {
        "keras": {"accuracy": 0.81, "num_images": 500},
        "variants": {
            "int8": {"file": "model_int8.tflite", "accuracy": 0.8, "top1_drift_pp": 1.0},
            "fp32": {"file": "model_fp32.tflite", "accuracy": 0.81, "top1_drift_pp": 0.0},
        },
        "max_drift_pp": 1.0,
    }
    (run / "export" / "drift.json").write_text(json.dumps(drift))
    return run


def test_parse_threads() -> None:
    assert parse_threads("1,2,4") == [1, 2, 4]
    assert parse_threads("2,2") == [2]
    for bad in ("", "0", "a,b"):
        with pytest.raises(TledgeError, match="--threads"):
            parse_threads(bad)


def test_latency_stats_orders_percentiles() -> None:
    stats = latency_stats([float(v) for v in range(1, 101)])
    assert stats["p50_ms"] == pytest.approx(50.5)
    assert stats["p50_ms"] < stats["p90_ms"] < stats["p99_ms"] <= 100
    assert stats["images_per_s"] == pytest.approx(1000 / 50.5)


@pytest.mark.integration
def test_bench_plain_model_without_tensorflow(shared_data: Path, tmp_path: Path) -> None:
    """The whole command on a plain .tflite as on an edge install: TensorFlow and
    matplotlib cannot be imported (an import of either fails the command)."""
    script = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'matplotlib'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from tledge.cli import cli\n"
        "try:\n"
        "    cli(sys.argv[1:], prog_name='tledge')\n"
        "except SystemExit as exit_:\n"
        "    assert not exit_.code, exit_.code\n"
        "print('TF_IMPORTED' if 'tensorflow' in sys.modules else 'TF_FREE')\n"
    )
    arguments = ["bench", str(shared_data / SMALL_MODEL), "--labels", str(shared_data / LABELS)]
    arguments += ["--runs", "5", "--threads", "1", "--output", str(tmp_path)]
    completed = subprocess.run(
        [sys.executable, "-c", script, *arguments], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("TF_FREE")
    assert "| mobilenet_v1_0.25_128_quant | tflite | 1 |" in completed.stdout
    assert "[1/1] done" in completed.stderr

    report = json.loads((tmp_path / "bench.json").read_text())
    (row,) = report["latency"]
    assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
    assert row["images_per_s"] == pytest.approx(1000 / row["mean_ms"])
    assert row["size_bytes"] == (shared_data / SMALL_MODEL).stat().st_size
    assert row["peak_rss_mb"] > row["model_rss_mb"] > 0
    assert row["input"] == "1x128x128x3 uint8"
    assert row["accuracy"] is None
    assert report["machine"]["cpu_cores"] >= 1 and report["machine"]["versions"]["numpy"]
    assert "| mobilenet_v1_0.25_128_quant | tflite | 1 |" in (tmp_path / "bench.md").read_text()
    assert "matplotlib is not installed here: no plots" in completed.stderr
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.integration
def test_bench_run_carries_drift_accuracy(shared_data: Path, tmp_path: Path) -> None:
    """With matplotlib (the train install) both plots are written."""
    run = fake_run(tmp_path, shared_data)
    result = CliRunner().invoke(
        cli, ["bench", str(run), "--runs", "3", "--warmup", "1", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((run / "bench" / "bench.json").read_text())
    by_variant = {row["variant"]: row for row in report["latency"]}
    assert set(by_variant) == {"int8", "fp32", "fp16 (rejected)"}
    assert by_variant["int8"]["accuracy"] == 0.8
    assert by_variant["int8"]["drift_pp"] == 1.0
    assert "| food | int8 | 1 |" in result.output and "| 80.0 | 1.0 |" in result.output
    for name in ("latency.png", "accuracy_latency.png"):
        assert (run / "bench" / name).read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.integration
def test_wrong_label_count_is_one_line_error(shared_data: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            str(shared_data / SMALL_MODEL),
            "--labels",
            str(labels),
            "--runs",
            "1",
            "--threads",
            "1",
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1
    assert "2 labels but the model has 1001 outputs" in result.output


def test_missing_target_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", str(tmp_path / "nope.tflite")])
    assert result.exit_code == 1
    assert "not found" in result.output


@pytest.mark.slow
@pytest.mark.integration
def test_agrees_with_independent_invoke_loop(shared_data: Path) -> None:
    """The subprocess measurement matches a plain invoke() loop here within noise.

    The tolerance is wide (3x) because the machine is shared; a wrong timed region (for
    example timing process start or model loading) would be off by far more.
    """
    model = shared_data / SMALL_MODEL
    (result,) = measure_latency(find_variants([model]), threads=[1], runs=30, warmup=5)
    interpreter, _ = open_interpreter(model, num_threads=1)
    for _ in range(5):
        interpreter.invoke()
    times = []
    for _ in range(30):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1000)
    independent = statistics.median(times)
    assert independent / 3 < result.p50_ms < independent * 3


@pytest.mark.slow
def test_keras_model_is_timed_in_its_own_process(tmp_path: Path) -> None:
    """A run's model.keras is timed (batch 1, tf.function) and keeps its drift.json accuracy."""
    keras = pytest.importorskip("keras")
    run = tmp_path / "tiny"
    (run / "export").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"backbone": "test", "image_size": [32, 32]}))
    (run / "labels.txt").write_text("a\nb\nc\n")
    (run / "export" / "drift.json").write_text(json.dumps({"keras": {"accuracy": 0.5}}))
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(features)).save(
        run / "model.keras"
    )
    (result,) = measure_latency(find_variants([run]), threads=[1], runs=3, warmup=1)
    assert (result.variant, result.kind, result.accuracy) == ("keras", "keras", 0.5)
    assert result.runtime.startswith("tensorflow ")
    assert result.input == "1x32x32x3 float32"
    assert 0 < result.p50_ms <= result.p99_ms


@pytest.mark.integration
def test_run_all_writes_one_report(shared_data: Path, tmp_path: Path) -> None:
    run = fake_run(tmp_path, shared_data)
    reference = tmp_path / "reference"
    reference.mkdir()
    for name in (SMALL_MODEL, LABELS):
        (reference / Path(name).name).symlink_to(shared_data / name)
    arguments = ["--run", str(run), "--reference", str(reference), "--only", "latency"]
    arguments += ["--runs", "3", "--threads", "1", "--output", str(tmp_path / "results")]
    result = CliRunner().invoke(cli, ["bench", "all", *arguments])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "results" / "results.json").read_text())
    models = [(row["model"], row["variant"]) for row in report["latency"]]
    assert models == [
        ("food", "fp16 (rejected)"),
        ("food", "fp32"),
        ("food", "int8"),
        ("mobilenet_v1_0.25_128_quant", "tflite"),
    ]
    assert "client_overhead" not in report and "Latency:" in report["notes"][0]
    assert report["latency_check"]["plain_loop_median_ms"] > 0 and "Check:" in report["notes"][1]
    for name in ("results.md", "latency.png", "accuracy_latency.png"):
        assert (tmp_path / "results" / name).is_file()


@pytest.mark.integration
def test_peak_rss_is_the_workers_own(shared_data: Path) -> None:
    """A large parent must not show up in the worker's peak memory (Linux keeps ru_maxrss
    across fork and exec)."""
    import numpy as np

    ballast = np.ones(400 * 2**20, dtype=np.uint8)  # 400 MiB resident in this process
    (result,) = measure_latency(find_variants([shared_data / SMALL_MODEL]), [1], runs=2)
    assert ballast.sum() == ballast.size
    assert 0 < result.model_rss_mb < result.peak_rss_mb < 300
