"""An EfficientNetB0 classifier (random weights) exports to every variant and runs in LiteRT."""

from __future__ import annotations

from pathlib import Path

import pytest

from tledge.edge.model_file import read_contract
from tledge.exporter.export import ExportOptions, export_model
from tledge.trainer.backbones import get_backbone
from tledge.trainer.model import build_classifier

from ..conftest import TINY_IMAGE_SIZE, write_run

pytestmark = pytest.mark.slow


def test_efficientnetb0_exports_every_variant(tiny_dataset: Path, tmp_path: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    labels = ["circle", "square", "stripes", "triangle"]
    model = build_classifier(
        get_backbone("efficientnetb0"), TINY_IMAGE_SIZE, 1.0, "none", len(labels), dropout=0.2
    )
    model_file = tmp_path / "model.keras"
    model.save(model_file)
    run = write_run(
        tmp_path / "run",
        model_file,
        labels,
        tiny_dataset / "train",
        tiny_dataset / "test",
        backbone="efficientnetb0",
    )

    result = export_model(
        run,
        ExportOptions(
            variants=("fp32", "fp16", "dynamic", "int8"), calibration_size=16, max_drift_pp=100
        ),
    )

    assert [v.variant for v in result.variants] == ["fp32", "fp16", "dynamic", "int8"]
    for variant in result.variants:
        assert variant.accepted, variant.problems
        assert variant.path == run / "export" / f"model_{variant.variant}.tflite"
        assert variant.runtimes["litert"] is True
        assert read_contract(variant.path).backbone == "efficientnetb0"
    int8 = result.variants[-1]
    assert int8.graph.is_full_integer
    # 81 convolutions (squeeze-excite ones through their bias) and the classifier.
    assert int8.prepared_layers == 82
    assert result.variants[0].drift.agreement == 1.0
