"""Choosing the dtype policy."""

from __future__ import annotations

import pytest

from tledge.core.errors import TledgeError
from tledge.trainer import precision


def test_auto_is_mixed_only_on_a_modern_gpu(monkeypatch) -> None:
    monkeypatch.setattr(precision, "gpu_compute_capability", lambda: None)
    assert precision.resolve_precision("auto", force=False) == "float32"
    monkeypatch.setattr(precision, "gpu_compute_capability", lambda: (6, 1))
    assert precision.resolve_precision("auto", force=False) == "float32"
    monkeypatch.setattr(precision, "gpu_compute_capability", lambda: (8, 0))
    assert precision.resolve_precision("auto", force=False) == "mixed_float16"


def test_mixed_float16_on_cpu_needs_force(monkeypatch) -> None:
    monkeypatch.setattr(precision, "gpu_compute_capability", lambda: None)
    with pytest.raises(TledgeError, match="--force-precision"):
        precision.resolve_precision("mixed_float16", force=False)
    assert precision.resolve_precision("mixed_float16", force=True) == "mixed_float16"
    assert precision.resolve_precision("mixed_bfloat16", force=False) == "mixed_bfloat16"


def test_policy_is_restored() -> None:
    import keras

    before = keras.config.dtype_policy().name
    with precision.dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before


@pytest.mark.slow
def test_mixed_model_has_float32_output_and_reloads(tmp_path) -> None:
    import keras
    import numpy as np

    from tledge.trainer.backbones import get_backbone
    from tledge.trainer.model import build_classifier

    with precision.dtype_policy("mixed_float16"):
        model = build_classifier(get_backbone("mobilenetv2"), (32, 32), 0.35, "none", 3, 0.1)
        model.save(tmp_path / "mixed.keras")
    assert model.get_layer("backbone").get_layer("Conv1").dtype_policy.name == "mixed_float16"
    assert model.get_layer("classifier").dtype_policy.name == "float32"
    loaded = keras.saving.load_model(tmp_path / "mixed.keras", safe_mode=True)
    scores = loaded.predict(np.full((1, 32, 32, 3), 128.0, dtype="float32"), verbose=0)
    assert scores.dtype == np.float32 and abs(float(scores.sum()) - 1.0) < 1e-3
