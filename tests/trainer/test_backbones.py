"""The backbone registry and the built classifier model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract
from tledge.trainer.backbones import BACKBONES, build_base, get_backbone
from tledge.trainer.model import backbone_of, build_classifier, calibrate_batchnorm, unfreeze_top

WEIGHTS = "weights/mobilenet_v2_1.0_224_no_top.from_slim_npy.h5"


def test_registry_entries() -> None:
    assert set(BACKBONES) >= {"mobilenetv2", "efficientnetb0"}
    assert get_backbone("mobilenetv2").default_size == (256, 256)
    with pytest.raises(TledgeError, match="unknown backbone; use one of"):
        get_backbone("resnet")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_each_backbone_names_its_input_contract(name: str) -> None:
    """The registry owns preprocessing: raw 0-255 RGB, whole image, bilinear corner to
    corner as MediaPipe resizes, for the models whose normalization is a layer inside
    them; the run's size replaces the default."""
    spec = get_backbone(name)
    assert spec.input_contract == InputContract.raw_rgb_stretch(spec.default_size)
    assert spec.input_contract.interpolation == "bilinear_no_half_pixel"
    assert spec.run_input_contract((96, 128)).input_size == (96, 128)
    assert spec.run_input_contract(None) == spec.input_contract


def test_hub_backbone_without_extra_is_one_line_error(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "tensorflow_hub" else real(name)
    )
    with pytest.raises(TledgeError, match=r"tledge\[hub\]"):
        get_backbone("hub:https://tfhub.dev/some/feature_vector/5")


def test_imagenet_download_failure_suggests_alternatives(monkeypatch) -> None:
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.mobilenet_v2.file_utils.get_file", offline)
    with pytest.raises(TledgeError, match=r"--weights imagenet.*--weights PATH.*--weights none"):
        build_base(get_backbone("mobilenetv2"), (96, 96), 0.35, "imagenet")


def test_missing_or_unfitting_weights_file(tmp_path: Path) -> None:
    spec = get_backbone("mobilenetv2")
    with pytest.raises(TledgeError, match="file not found"):
        build_base(spec, (96, 96), 1.0, str(tmp_path / "nope.h5"))


@pytest.mark.slow
def test_model_takes_raw_pixels_and_reloads_safely(tmp_path: Path) -> None:
    import keras

    model = build_classifier(get_backbone("mobilenetv2"), (64, 64), 0.35, "none", 3, 0.2)
    layer_types = {type(layer).__name__ for layer in model.layers}
    assert "Rescaling" in layer_types and "Lambda" not in layer_types
    assert not any("Random" in type(layer).__name__ for layer in model.layers)
    assert model.output.dtype == "float32"
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )
    # Rescaling maps 0..255 to -1..1, MobileNetV2's range.
    preprocess = model.get_layer("preprocess")
    np.testing.assert_allclose(preprocess(np.array([[0.0, 255.0]])).numpy(), [[-1.0, 1.0]])


@pytest.mark.slow  # builds and fits a whole MobileNetV2
def test_unfreeze_top_trains_batchnorm_scale_but_not_its_statistics() -> None:
    import keras

    model = build_classifier(get_backbone("mobilenetv2"), (64, 64), 0.35, "none", 3, 0.0)
    images = np.random.default_rng(0).uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    calibrate_batchnorm(model, images)  # random weights: give the features some spread
    assert not any(layer.trainable for layer in backbone_of(model).layers[1:])
    unfreeze_top(model, 20)
    layers = backbone_of(model).layers
    assert not any(layer.trainable for layer in layers[:-20])
    norms = [layer for layer in layers[-20:] if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(len(layer.trainable_weights) == 2 for layer in norms)

    # Training mode normalizes with the stored statistics, exactly like inference.
    np.testing.assert_array_equal(model(images, training=True), model(images, training=False))
    statistics = [layer.moving_mean.numpy().copy() for layer in norms]
    scales = [layer.gamma.numpy().copy() for layer in norms]
    model.compile(keras.optimizers.SGD(0.1), "categorical_crossentropy")
    model.fit(images, keras.utils.to_categorical(np.arange(8) % 3, 3), epochs=1, verbose=0)
    for layer, mean in zip(norms, statistics, strict=True):
        np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)
    changed = [
        not np.array_equal(layer.gamma.numpy(), gamma)
        for layer, gamma in zip(norms, scales, strict=True)
    ]
    assert any(changed)


@pytest.mark.slow
def test_calibrated_random_backbone_gives_usable_features(tiny_dataset: Path) -> None:
    import keras

    from tledge.core.folders import list_class_folders
    from tledge.edge.images import read_rgb

    folders = list_class_folders(tiny_dataset / "train")
    images = np.stack([read_rgb(path) for path in folders.paths]).astype("float32")
    model = build_classifier(get_backbone("mobilenetv2"), (64, 64), 0.35, "none", 4, 0.0)
    features = keras.Model(model.inputs, model.get_layer("head_dropout").input)
    before = features.predict(images, verbose=0)
    calibrate_batchnorm(model, images[::4])
    after = features.predict(images, verbose=0)
    # Uncalibrated random features vanish (~1e-11); calibrated ones vary across images.
    assert before.std(axis=0).mean() < 1e-6 < 0.05 < after.std(axis=0).mean()


@pytest.mark.slow  # builds MobileNetV2 twice and loads its real weights
@pytest.mark.integration
def test_real_weights_file_loads(shared_data: Path) -> None:
    spec = get_backbone("mobilenetv2")
    base = build_base(spec, (96, 96), 1.0, str(shared_data / WEIGHTS))
    kernel = base.get_layer("Conv1").kernel.numpy()
    assert kernel.shape == (3, 3, 3, 32) and np.abs(kernel).mean() > 0.01
    with pytest.raises(TledgeError, match="does not fit mobilenetv2 alpha=0.35"):
        build_base(spec, (96, 96), 0.35, str(shared_data / WEIGHTS))
