"""drift.json is updated variant by variant (issue 15).

Before the fix a rejected int8 export rewrote the report so the good model_int8.tflite,
still in place, lost its entry, and entries measured on "the same" images given by
another path vanished; the tests below failed then.
"""

from __future__ import annotations

import json
from pathlib import Path

from tledge.edge.contract import Quantization
from tledge.exporter.drift import Drift
from tledge.exporter.drift_report import write_drift_report
from tledge.exporter.graph import GraphReport
from tledge.exporter.results import ExportOptions, VariantResult

KERAS = {"accuracy": 0.9, "num_images": 10, "eval_data": "/data/test"}
GRAPH = GraphReport({"CONV_2D": 1}, {"CONV_2D": 1}, Quantization(), Quantization(), (), {})


def result(folder: Path, variant: str, accuracy: float, accepted: bool = True) -> VariantResult:
    name = f"model_{variant}.tflite" if accepted else f"model_{variant}.rejected.tflite"
    (folder / name).write_bytes(b"model")
    drift = Drift(accuracy, 0.9, 100 * (0.9 - accuracy), 0.95, 0.01, {}, 10)
    problems = () if accepted else ("top-1 accuracy dropped",)
    return VariantResult(variant, folder / name, accepted, problems, drift, 5, {}, GRAPH)


def write(folder: Path, results: list[VariantResult], when: str, keras=KERAS) -> dict:
    path = folder / "drift.json"
    write_drift_report(path, keras, results, ExportOptions(), "/runs/r", when)
    return json.loads(path.read_text())


def test_a_rejected_export_keeps_the_good_files_entry(tmp_path):
    write(tmp_path, [result(tmp_path, "int8", 0.89)], "2026-01-01T00:00:00+00:00")
    report = write(tmp_path, [result(tmp_path, "int8", 0.5, False)], "2026-01-02T00:00:00+00:00")

    assert report["variants"]["int8"]["file"] == "model_int8.tflite"
    assert report["variants"]["int8"]["accuracy"] == 0.89
    assert report["variants"]["int8"]["measured_at"] == "2026-01-01T00:00:00+00:00"
    assert report["rejected"]["int8"]["file"] == "model_int8.rejected.tflite"
    assert report["rejected"]["int8"]["measured_at"] == "2026-01-02T00:00:00+00:00"

    report = write(tmp_path, [result(tmp_path, "int8", 0.9)], "2026-01-03T00:00:00+00:00")
    assert report["rejected"] == {}
    assert report["variants"]["int8"]["measured_at"] == "2026-01-03T00:00:00+00:00"


def test_entries_of_files_not_re_exported_are_kept_with_when_and_on_what(tmp_path):
    write(tmp_path, [result(tmp_path, "fp32", 0.9)], "2026-01-01T00:00:00+00:00")
    other_images = {**KERAS, "eval_data": "/elsewhere/test", "accuracy": 0.8}
    report = write(
        tmp_path, [result(tmp_path, "int8", 0.8)], "2026-01-02T00:00:00+00:00", other_images
    )

    assert list(report["variants"]) == ["fp32", "int8"]
    fp32 = report["variants"]["fp32"]
    assert (fp32["measured_at"], fp32["eval_data"], fp32["keras_accuracy"]) == (
        "2026-01-01T00:00:00+00:00",
        "/data/test",
        0.9,
    )
    assert report["keras"] == other_images
    assert report["measured_at"] == "2026-01-02T00:00:00+00:00"


def test_entries_of_files_that_are_gone_are_dropped(tmp_path):
    write(tmp_path, [result(tmp_path, "fp32", 0.9)], "2026-01-01T00:00:00+00:00")
    (tmp_path / "model_fp32.tflite").unlink()
    report = write(tmp_path, [result(tmp_path, "int8", 0.9)], "2026-01-02T00:00:00+00:00")
    assert list(report["variants"]) == ["int8"]
