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
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tledge.core.atomic import atomic_path, atomic_write_text
from tledge.core.input_contract import InputContract
from tledge.core.run_folder import RunFolder
from tledge.trainer.callbacks import StepClock
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
        files.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
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


def write_features(
    model,
    split: Split,
    input_contract: InputContract,
    batch_size: int,
    cache_file: Path,
    log: Callable[[str], None] = lambda message: None,
) -> Path:
    """Write the backbone features of every image of `split` to `cache_file` (.npy).

    Nothing is done when the file exists (on every worker of a multi-worker strategy, so
    all take the same branch; each keeps its own file: machines need not share a
    filesystem). The rows are written batch by batch as the backbone computes them, so
    memory holds one batch of features, never all of them; under a distribution strategy
    Keras' `predict` computes them instead (once across a cluster), in memory.
    Logs the steady images/s of the pass (`StepClock`: without its first and last step)
    and writes it to `<cache_file>.pass.json`.

    Args:
        model: A full model from `build_classifier` (its preprocessing and backbone run).
        split: The images, in the order of the rows.
        input_contract: How the model takes images (the run's `InputContract`).
        batch_size: Images per inference batch.
        cache_file: The .npy file (row i: image i of `split`, float32).
        log: Called with the pass's speed.

    Returns:
        `cache_file`.
    """
    import keras
    import tensorflow as tf

    if all_workers(cache_file.is_file()):
        return cache_file
    extractor = keras.Model(model.inputs, model.get_layer(HEAD_INPUT_LAYER).input)
    width = int(extractor.output.shape[-1])
    dataset = image_dataset(split, 1, input_contract, batch_size).map(lambda image, _: image)
    if tf.distribute.has_strategy():
        # Mirrored or multi-worker: Keras' predict shares the batches out to the replicas
        # and gathers the features in order, computed once across a cluster (held in
        # memory to be written; predict_on_batch below does not gather replicas).
        features = np.asarray(extractor.predict(dataset, verbose=0), dtype="<f4")
        with atomic_path(cache_file, suffix=".npy") as tmp:
            np.save(tmp, features)
        return cache_file
    clock = StepClock()
    with atomic_path(cache_file, suffix=".npy") as tmp, open(tmp, "wb") as stream:
        header = {"descr": "<f4", "fortran_order": False, "shape": (len(split), width)}
        np.lib.format.write_array_header_1_0(stream, header)
        for images in dataset:
            rows = np.asarray(extractor.predict_on_batch(images), dtype="<f4")
            stream.write(rows.tobytes())
            clock.tick()
    seconds = clock.times[-1] - clock.times[0]
    steady, steady_cpu = clock.steady_step_seconds(), clock.steady_step_cpu_seconds()
    speed = {
        "images": len(split),
        "batch_size": batch_size,
        "seconds": round(seconds, 3),
        "steady_images_per_second": None if steady is None else round(batch_size / steady, 2),
        "steady_images_per_cpu_second": (
            None if not steady_cpu else round(batch_size / steady_cpu, 2)
        ),
    }
    atomic_write_text(_pass_file(cache_file), json.dumps(speed))
    rate = speed["steady_images_per_second"] or len(split) / max(seconds, 1e-9)
    log(f"backbone features of {len(split)} images: {seconds:.0f} s, {rate:.1f} images/s")
    return cache_file


def feature_pass(cache_file: Path) -> dict | None:
    """What `write_features` measured when it wrote `cache_file`, or None."""
    path = _pass_file(cache_file)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _pass_file(cache_file: Path) -> Path:
    return cache_file.with_name(cache_file.name + ".pass.json")


def pooled_features(
    model, split: Split, input_contract: InputContract, batch_size: int, cache_file: Path
) -> np.ndarray:
    """Backbone features of every image of `split` in memory (from / to `cache_file`).

    For a few thousand images (`tledge update`); training streams them with
    `feature_dataset` instead.
    """
    return np.load(write_features(model, split, input_contract, batch_size, cache_file))


class FeatureRows:
    """Reads rows of a float32 .npy feature file with plain reads, one row at a time.

    Reads, not a memory map: pages of a map that were read count in the process's
    resident memory, so an epoch over a map would end up holding every feature.

    Args:
        path: A 2-D little-endian float32 .npy file (`write_features`).
    """

    def __init__(self, path: Path):
        self.path = path
        with open(path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            self.offset = stream.tell()
        if len(shape) != 2 or fortran or dtype != np.dtype("<f4"):
            raise ValueError(f"{path}: not a 2-D float32 feature file")
        self.shape = shape

    def read(self, indices: np.ndarray) -> np.ndarray:
        """The rows `indices`, in that order, as a (len(indices), width) array."""
        width = self.shape[1]
        out = np.empty((len(indices), width), dtype="<f4")
        row_bytes = 4 * width
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            for i, index in enumerate(indices):
                data = os.pread(descriptor, row_bytes, self.offset + int(index) * row_bytes)
                out[i] = np.frombuffer(data, dtype="<f4")
        finally:
            os.close(descriptor)
        return out


def feature_dataset(
    cache_file: Path, split: Split, num_classes: int, batch_size: int, shuffle_seed=None
):
    """A batched tf.data dataset of (features, one-hot labels), shuffled like `image_dataset`.

    Rows are read from `cache_file` batch by batch (`FeatureRows`): memory holds the
    shuffled row numbers and a few batches, not the features of every image.
    """
    import tensorflow as tf

    rows = FeatureRows(cache_file)
    if rows.shape[0] != len(split):
        raise ValueError(f"{cache_file}: {rows.shape[0]} rows for {len(split)} images")
    width = rows.shape[1]
    dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(split)), list(split.labels)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)

    def read(indices, labels):
        features = tf.numpy_function(rows.read, [indices], tf.float32)
        features.set_shape((None, width))
        return features, tf.one_hot(labels, num_classes)

    return dataset.batch(batch_size).map(read).prefetch(tf.data.AUTOTUNE)


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


def cached_feature_file(
    model,
    split: Split,
    config: TrainConfig,
    input_contract: InputContract,
    log: Callable[[str], None] = lambda message: None,
) -> Path:
    """The .npy file of `split`'s pooled backbone features for a run with `config`.

    Written by `write_features` the first time, then reused.

    Args:
        model: A full model from `build_classifier` (only its frozen backbone matters).
        split: The images, in the order of the rows.
        config: The resolved run config (backbone, weights, image size, precision).
        input_contract: How the run takes images (its input_contract.json: a resumed run
            keeps the contract it started with).
        log: Called with the feature pass's speed when it runs.
    """
    model_key = {
        "backbone": config.backbone,
        "alpha": config.alpha,
        "weights": config.weights,
        "input_contract": input_contract.to_dict(),
        "precision": config.precision,
    }
    path = feature_cache_dir(config) / f"{feature_cache_key(split, model_key)}.npy"
    return write_features(model, split, input_contract, config.batch_size, path, log)


def cached_features(
    model, split: Split, config: TrainConfig, input_contract: InputContract
) -> np.ndarray:
    """`cached_feature_file`'s features in memory (the head-only calibration's cross-fit)."""
    return np.load(cached_feature_file(model, split, config, input_contract))


def fit_head_on_features(
    model,
    splits: DatasetSplits,
    config: TrainConfig,
    input_contract: InputContract,
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
        config: The resolved run config (backbone, batch size, seed, cache folder).
        input_contract: How the run takes images (its input_contract.json).
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

    def features(split: Split) -> Path:
        return cached_feature_file(model, split, config, input_contract, log)

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
