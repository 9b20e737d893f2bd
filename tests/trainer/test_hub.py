"""TF Hub backbones (`--backbone hub:HANDLE`): errors, a whole run on a tiny local hub
module (both phases), its export to every TFLite variant, evaluation and --from-run."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.core.run_folder import RunFolder
from tledge.trainer.backbones import get_backbone
from tledge.trainer.config import TrainConfig
from tledge.trainer.training import train

HUB_MISSING = [m for m in ("tensorflow_hub", "tf_keras") if importlib.util.find_spec(m) is None]
needs_hub = pytest.mark.skipif(
    bool(HUB_MISSING),
    reason=f"the hub extra is not installed (missing {HUB_MISSING}): pip install -e '.[hub]'",
)
SIZE = (64, 64)


def _config(dataset: Path, output: Path, backbone: str, **overrides) -> TrainConfig:
    settings = dict(
        data=str(dataset / "train"),
        test=str(dataset / "test"),
        backbone=backbone,
        image_size=SIZE,
        epochs=4,
        fine_tune_epochs=1,
        learning_rate=3e-2,
        augment=False,
        batch_size=8,
        seed=1,
        output=str(output),
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def test_hub_backbone_without_tf_keras_fails_before_any_run_folder(
    monkeypatch, tiny_dataset: Path, tmp_path: Path
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "tf_keras" else real(name)
    )
    with pytest.raises(TledgeError, match=r"tledge\[hub\].*missing: tf_keras") as error:
        train(_config(tiny_dataset, tmp_path / "runs", "hub:/some/module"))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "runs").exists()


@needs_hub
def test_offline_url_handle_is_one_line_error_suggesting_a_folder(
    monkeypatch, tiny_dataset: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub_cache"))
    # .invalid never resolves (RFC 2606): the download fails here, online or not.
    url = "https://tfhub.invalid/google/imagenet/mobilenet_v2/feature_vector/5"
    with pytest.raises(TledgeError) as error:
        train(_config(tiny_dataset, tmp_path / "runs", f"hub:{url}"))
    message = str(error.value)
    assert "\n" not in message
    assert "could not download" in message and "hub:/path/to/saved_model_folder" in message
    assert "TFHUB_CACHE_DIR" in message
    assert not (tmp_path / "runs").exists()


@needs_hub
def test_local_handle_must_be_a_saved_model_folder(tmp_path: Path) -> None:
    with pytest.raises(TledgeError, match="not found"):
        get_backbone(f"hub:{tmp_path / 'missing'}")
    with pytest.raises(TledgeError, match="not a SavedModel folder"):
        get_backbone(f"hub:{tmp_path}")


@needs_hub
def test_hub_runs_refuse_mixed_precision(hub_module: Path, tiny_dataset: Path, tmp_path: Path):
    config = _config(tiny_dataset, tmp_path, f"hub:{hub_module}", precision="mixed_bfloat16")
    with pytest.raises(TledgeError, match="float32 only"):
        train(config)
    spec = get_backbone(f"hub:{hub_module}")
    assert spec.default_size == (224, 224) and spec.rescale == (1 / 255, 0.0)


@pytest.fixture(scope="module")
def hub_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny TF2 SavedModel feature-vector module (1x1 conv, BatchNorm, global max pool),
    saved the way TF Hub modules are, with trainable variables."""
    if HUB_MISSING:
        pytest.skip(f"the hub extra is not installed (missing {HUB_MISSING})")
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((None, None, 3))
    x = tf_keras.layers.Conv2D(
        32,
        1,
        activation="relu",
        kernel_initializer=tf_keras.initializers.RandomNormal(0, 1),
        name="conv",
    )(inputs)
    x = tf_keras.layers.BatchNormalization(name="norm")(x)
    x = tf_keras.layers.GlobalMaxPooling2D()(x)
    folder = tmp_path_factory.mktemp("hub") / "feature_vector"
    tf.saved_model.save(tf_keras.Model(inputs, x), str(folder))
    return folder


@pytest.fixture(scope="module")
def hub_run(hub_module: Path, tiny_dataset: Path, tmp_path_factory) -> tuple[RunFolder, dict]:
    """A finished hub run: 4 frozen epochs, 1 fine-tuning epoch."""
    messages: list[str] = []
    output = tmp_path_factory.mktemp("hub_runs")
    result = train(
        _config(tiny_dataset, output, f"hub:{hub_module}", name="hub"), log=messages.append
    )
    return result.run, {"metrics": result.metrics, "messages": messages}


def _module_variables(folder: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    return {v.name: v.numpy() for v in tf.saved_model.load(str(folder)).variables}


def _hub_layer_variables(model_folder: Path) -> dict[str, np.ndarray]:
    from tledge.exporter.loading import load_keras_model

    layer = load_keras_model(model_folder).get_layer("backbone")
    return {w.name: w.numpy() for w in layer.weights}


@pytest.mark.slow
def test_hub_run_writes_the_usual_run_folder(hub_run, hub_module: Path) -> None:
    run, outcome = hub_run
    config = run.read_config()
    assert config.backbone == f"hub:{hub_module}"
    assert config.precision == "float32" and config.image_size == tuple(SIZE)
    assert run.read_labels() == ["circle", "square", "stripes", "triangle"]
    assert (run.hub_model / "saved_model.pb").is_file() and not run.model.exists()
    assert run.trained_model == run.hub_model
    assert (run.hub_best_checkpoint / "saved_model.pb").is_file()
    assert (run.logs / "epochs.csv").is_file()
    history = json.loads(run.history.read_text())
    # Then the refit replays phase 1 up to its best val epoch, and the one phase-2 epoch.
    scores = [e["val_accuracy"] for e in history["epochs"][:4]]
    replayed = scores.index(max(scores)) + 1
    phases = (
        ["feature_extraction"] * 4
        + ["fine_tuning"]
        + ["refit_feature_extraction"] * replayed
        + ["refit_fine_tuning"]
    )
    assert [(e["epoch"], e["phase"]) for e in history["epochs"]] == list(enumerate(phases, 1))
    assert history["phase_boundaries"] == [4, 5, 5 + replayed]
    assert (run.root / "checkpoints" / "refit_feature_extraction_savedmodel").is_dir()
    metrics = outcome["metrics"]
    assert json.loads(run.metrics.read_text()) == metrics
    assert metrics["num_test_images"] == 32 and set(metrics["per_class"]) == set(run.read_labels())
    # Each class has its own hue family: max-pooled random colour projections separate
    # them well (chance is 0.25).
    assert metrics["test_accuracy"] >= 0.75
    assert metrics["feature_extraction_test_accuracy"] is not None
    assert any("--fine-tune-layers does not apply" in m for m in outcome["messages"])


@pytest.mark.slow
def test_phase_one_freezes_the_hub_layer_and_phase_two_trains_it(hub_run, hub_module: Path):
    run, _ = hub_run
    original = _module_variables(hub_module)
    phase_one = _hub_layer_variables(run.root / "checkpoints" / "feature_extraction_savedmodel")
    final = _hub_layer_variables(run.hub_model)
    assert set(original) == set(phase_one) == set(final)
    for name, value in original.items():
        np.testing.assert_array_equal(phase_one[name], value)
    changed = {name for name in original if not np.array_equal(final[name], original[name])}
    assert {"conv/kernel:0", "conv/bias:0", "norm/gamma:0", "norm/beta:0"} <= changed
    # The hub layer runs in inference mode: its BatchNorm statistics never move.
    assert not {n for n in changed if "moving" in n}


@pytest.mark.slow
def test_hub_run_exports_every_variant_with_its_contract(hub_run, tmp_path: Path) -> None:
    from tledge.edge.model_file import read_contract
    from tledge.exporter.export import export_model
    from tledge.exporter.inference import predict_tflite
    from tledge.exporter.results import ExportOptions

    run, _ = hub_run
    variants = ("fp32", "fp16", "dynamic", "int8")
    result = export_model(run.root, ExportOptions(variants=variants), output_dir=tmp_path)
    assert not result.float32_twin
    drift = json.loads((tmp_path / "drift.json").read_text())
    assert set(drift["variants"]) == set(variants)
    by_name = {v.variant: v for v in result.variants}
    # fp32 TFLite computes what the tf_keras model computes.
    assert by_name["fp32"].drift.agreement == 1.0
    assert by_name["fp32"].drift.mean_abs_prob_diff < 1e-4
    int8 = by_name["int8"]
    contract = read_contract(int8.path)
    assert contract.labels == tuple(run.read_labels()) and contract.input_size == SIZE
    assert contract.input_quantization.dtype == "uint8"
    assert contract.backbone == run.read_config().backbone
    assert int8.drift.agreement >= 0.8
    images = np.zeros((1, *SIZE, 3), np.uint8)
    assert predict_tflite(int8.path, images).shape == (1, 4)
    assert (tmp_path / "labels.txt").read_text().split() == list(run.read_labels())


@pytest.mark.slow
def test_evaluate_and_predict_load_the_hub_model(hub_run, tiny_dataset: Path) -> None:
    from tledge.analysis.prediction import load_model, predict_files

    run, outcome = hub_run
    loaded = load_model(run.root)
    assert loaded.kind == "keras" and loaded.labels == tuple(run.read_labels())
    files = sorted((tiny_dataset / "test").rglob("*.jpg"))
    report = predict_files(loaded, files, top_k=1)
    accuracy = np.mean([p.label == p.path.parent.name for p in report.predictions])
    # OpenCV decoding here, tf.data in training: the same pixels, so the same accuracy.
    assert accuracy == pytest.approx(outcome["metrics"]["test_accuracy"], abs=1 / 32 + 1e-9)
    best = load_model(run.hub_best_checkpoint)
    assert best.name == "checkpoint_best_savedmodel"


@pytest.mark.slow
def test_from_run_fine_tunes_a_hub_run(hub_run, hub_module: Path, tiny_dataset: Path, tmp_path):
    run, outcome = hub_run
    config = _config(
        tiny_dataset,
        tmp_path,
        f"hub:{hub_module}",
        from_run=str(run.root),
        epochs=0,
        fine_tune_epochs=1,
    )
    with pytest.raises(TledgeError, match=r"pass --backbone hub:"):
        train(dataclasses.replace(config, backbone="mobilenetv2", image_size=SIZE))
    result = train(config)
    assert result.metrics["feature_extraction_test_accuracy"] == pytest.approx(
        outcome["metrics"]["test_accuracy"]
    )
    history = json.loads(result.run.history.read_text())
    assert [e["phase"] for e in history["epochs"]] == ["fine_tuning"]
    assert (result.run.hub_model / "saved_model.pb").is_file()
