"""The feature-cache fast path of phase 1: run the frozen backbone once, train the head.

With the backbone frozen and no augmentation, every epoch would push the same images
through the same backbone. Instead the pooled features are computed once, cached on disk
under a key of (files, sizes, modification times, backbone, weights, image size,
precision, pixel pipeline version), and only the small head is trained on them. The
head's weights are then copied into the full model, so the result is the same backbone +
head model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tledge.core.atomic import atomic_path
from tledge.core.input_contract import InputContract
from tledge.core.run_folder import RunFolder
from tledge.trainer.backbones import get_backbone
from tledge.trainer.config import TrainConfig
from tledge.trainer.data import PIXEL_PIPELINE_VERSION, DatasetSplits, Split, image_dataset
from tledge.trainer.distribution import all_workers
from tledge.trainer.model import CLASSIFIER_NAME, classifier_head
from tledge.trainer.phases import PhasePlan, fit_phase

HEAD_INPUT_LAYER = "head_dropout"


def feature_cache_key(split: Split, model_key: dict) -> str:
    """Hash of the split's files (path, size, mtime) and what defines the features.

    Args:
        split: The images.
        model_key: backbone, alpha, weights, image size, precision (JSON-serializable).
    """
    files = []
    for path in split.paths:
        stat = path.stat()
        files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    weights = model_key.get("weights", "")
    if weights not in ("imagenet", "none") and Path(weights).is_file():
        stat = Path(weights).stat()
        model_key = {**model_key, "weights_file": [stat.st_size, stat.st_mtime_ns]}
    text = json.dumps(
        {
            "files": files,
            "labels": list(split.labels),
            "model": model_key,
            "pixels": PIXEL_PIPELINE_VERSION,
        }
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def pooled_features(
    model, split: Split, input_contract: InputContract, batch_size: int, cache_file: Path | None
) -> np.ndarray:
    """Backbone features of every image of `split`, read from / written to `cache_file`.

    Args:
        model: A full model from `build_classifier` (its preprocessing and backbone run).
        split: The images, in the order of the returned rows.
        input_contract: How the model takes images (the run's `InputContract`).
        batch_size: Images per inference batch.
        cache_file: .npy file of the cache, or None to compute without caching.

    Under a multi-worker strategy Keras' `predict` gives each worker its own share of
    the batches and gathers the features in order, so they are computed once across the
    cluster, not once per worker; the cache file is read only when every worker has it
    (each keeps its own: machines need not share a filesystem), so all take one branch.
    """
    import keras

    if cache_file is not None and all_workers(cache_file.is_file()):
        return np.load(cache_file)
    extractor = keras.Model(model.inputs, model.get_layer(HEAD_INPUT_LAYER).input)
    dataset = image_dataset(split, 1, input_contract, batch_size).map(lambda image, _: image)
    features = np.asarray(extractor.predict(dataset, verbose=0), dtype=np.float32)
    if cache_file is not None:
        with atomic_path(cache_file, suffix=".npy") as tmp:
            np.save(tmp, features)
    return features


def feature_dataset(
    features: np.ndarray, split: Split, num_classes: int, batch_size: int, shuffle_seed=None
):
    """A batched tf.data dataset of (features, one-hot labels), shuffled like `image_dataset`."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((features, list(split.labels)))
    dataset = dataset.map(lambda feature, label: (feature, tf.one_hot(label, num_classes)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def head_model(model, dropout: float):
    """A model of only the head of `model`, starting from the same head weights."""
    import keras

    features = keras.Input(model.get_layer(HEAD_INPUT_LAYER).input.shape[1:], name="features")
    num_classes = model.get_layer(CLASSIFIER_NAME).units
    head = keras.Model(features, classifier_head(features, num_classes, dropout), name="head")
    head.get_layer(CLASSIFIER_NAME).set_weights(model.get_layer(CLASSIFIER_NAME).get_weights())
    return head


def copy_head(head, model) -> None:
    """Copy the trained head weights into the full model."""
    model.get_layer(CLASSIFIER_NAME).set_weights(head.get_layer(CLASSIFIER_NAME).get_weights())


def feature_cache_dir(config: TrainConfig) -> Path:
    """Where a run's backbone features are cached (shared by the runs of one output folder)."""
    return Path(config.output) / ".feature_cache"


def cached_features(model, split: Split, config: TrainConfig) -> np.ndarray:
    """Pooled backbone features of `split` for a run with `config`, through the cache.

    Args:
        model: A full model from `build_classifier` (only its frozen backbone matters).
        split: The images, in the order of the returned rows.
        config: The resolved run config (backbone, weights, image size, precision).
    """
    input_contract = get_backbone(config.backbone).run_input_contract(config.image_size)
    model_key = {
        "backbone": config.backbone,
        "alpha": config.alpha,
        "weights": config.weights,
        "input_contract": input_contract.to_dict(),
        "precision": config.precision,
    }
    path = feature_cache_dir(config) / f"{feature_cache_key(split, model_key)}.npy"
    return pooled_features(model, split, input_contract, config.batch_size, path)


def fit_head_on_features(
    model,
    splits: DatasetSplits,
    config: TrainConfig,
    plan: PhasePlan,
    run: RunFolder,
    save_best: Callable[[], None],
    verbose: int | str = 0,
    log: Callable[[str], None] = lambda message: None,
) -> int:
    """Train the head of `model` on cached backbone features, then copy it into `model`.

    This is phase 1 of `train` when augmentation and mixup are off; the training
    benchmark times this same function.

    Args:
        model: A full Keras 3 classifier from `build_classifier` (backbone frozen).
        splits: Its training and (optional) validation images.
        config: The resolved run config (backbone and image size, whose input contract
            the images follow; batch size, seed, cache folder).
        plan: The phase to fit.
        run: The run folder (history, logs, backup).
        save_best: Saves the full model as the run's best checkpoint; called after the
            best epoch's head weights are copied into `model`.
        verbose: Keras `fit` verbosity.
        log: Called with a progress note.

    Returns:
        The epochs finished, counted from the start of the run.
    """
    num_classes = len(splits.class_names)

    def features(split: Split) -> np.ndarray:
        return cached_features(model, split, config)

    log(f"phase 1 on cached backbone features ({feature_cache_dir(config)})")
    head = head_model(model, config.dropout)
    train, val = splits.train, splits.val
    batch = config.batch_size
    train_data = feature_dataset(features(train), train, num_classes, batch, config.seed)
    val_data = None
    if val is not None:
        val_data = feature_dataset(features(val), val, num_classes, batch)

    def head_to_model_then_save() -> None:
        copy_head(head, model)
        save_best()

    epochs = fit_phase(head, train_data, val_data, plan, run, head_to_model_then_save, verbose)
    copy_head(head, model)
    return epochs
