"""Timing the frozen phase two ways: a plain `fit` on images vs the feature-cache path.

The benchmarks call `time_frozen_phase` to measure what the feature cache saves; both
paths start from the same head weights, see the same data in the same order and use no
augmentation (the cache's precondition).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tledge.trainer.config import TrainConfig
from tledge.trainer.data import image_dataset, load_splits
from tledge.trainer.features import copy_head, feature_dataset, head_model, pooled_features
from tledge.trainer.phases import FEATURE_EXTRACTION, PhasePlan, compile_for
from tledge.trainer.precision import dtype_policy
from tledge.trainer.training import Log, build_model, resolve_config


@dataclass(frozen=True)
class FrozenPhaseTiming:
    """Wall-clock seconds and validation accuracy of the frozen phase, both ways.

    Attributes:
        epochs: Epochs each path trained.
        num_train_images: Training images per epoch.
        naive_seconds: `fit` of the full model (frozen backbone) on images.
        feature_seconds: Computing the pooled features of train + val once.
        head_seconds: `fit` of the head on the cached features.
        naive_val_accuracy: Validation accuracy after the naive path.
        cached_val_accuracy: Validation accuracy after the cached path.
    """

    epochs: int
    num_train_images: int
    naive_seconds: float
    feature_seconds: float
    head_seconds: float
    naive_val_accuracy: float
    cached_val_accuracy: float

    @property
    def cached_seconds(self) -> float:
        """Total time of the cached path (feature extraction + head epochs)."""
        return self.feature_seconds + self.head_seconds

    @property
    def speedup(self) -> float:
        """How many times faster the cached path is than the naive one."""
        return self.naive_seconds / self.cached_seconds


def time_frozen_phase(config: TrainConfig, log: Log | None = None) -> FrozenPhaseTiming:
    """Train the frozen phase of `config` naively and on cached features; time both.

    Uses `config.epochs` epochs, no augmentation, no callbacks and no run folder; the
    features are computed from scratch (no cache hit), so `feature_seconds` is the cost
    of a first run.

    Example:
        >>> timing = time_frozen_phase(TrainConfig(data="food/train", epochs=10,
        ...                                        weights="weights.h5"))
        >>> print(f"{timing.naive_seconds:.0f} s vs {timing.cached_seconds:.0f} s")
    """
    import keras

    log = log or (lambda message: None)
    config = resolve_config(dataclasses.replace(config, augment=False))
    size = tuple(config.image_size)
    with tempfile.TemporaryDirectory() as scratch, dtype_policy(config.precision):
        splits = load_splits(
            config.data,
            config.val,
            None,
            val_split=config.val_split,
            train_fraction=config.train_fraction,
            seed=config.seed,
            convert_dir=Path(scratch),
            warn=log,
        )
        classes = len(splits.class_names)
        keras.utils.set_random_seed(config.seed)
        model = build_model(config, splits, log)
        initial_head = head_model(model, config.dropout)
        plan = PhasePlan(
            FEATURE_EXTRACTION,
            0,
            config.epochs,
            config.learning_rate,
            "constant",
            config.label_smoothing,
            0,
            (),
        )

        keras.utils.set_random_seed(config.seed)
        compile_for(model, plan)
        train_images = image_dataset(
            splits.train, classes, size, config.batch_size, shuffle_seed=config.seed
        )
        val_images = image_dataset(splits.val, classes, size, config.batch_size)
        started = time.perf_counter()
        model.fit(train_images, epochs=config.epochs, verbose=0, shuffle=False)
        naive_seconds = time.perf_counter() - started
        naive_accuracy = model.evaluate(val_images, verbose=0, return_dict=True)["accuracy"]
        log(f"naive frozen phase: {naive_seconds:.1f} s")

        copy_head(initial_head, model)
        keras.utils.set_random_seed(config.seed)
        started = time.perf_counter()
        train_features = pooled_features(model, splits.train, size, config.batch_size, None)
        val_features = pooled_features(model, splits.val, size, config.batch_size, None)
        feature_seconds = time.perf_counter() - started
        head = head_model(model, config.dropout)
        compile_for(head, plan)
        started = time.perf_counter()
        head.fit(
            feature_dataset(train_features, splits.train, classes, config.batch_size, config.seed),
            epochs=config.epochs,
            verbose=0,
            shuffle=False,
        )
        head_seconds = time.perf_counter() - started
        val_data = feature_dataset(val_features, splits.val, classes, config.batch_size)
        cached_accuracy = head.evaluate(val_data, verbose=0, return_dict=True)["accuracy"]
        log(f"cached frozen phase: {feature_seconds:.1f} s features + {head_seconds:.1f} s head")
    return FrozenPhaseTiming(
        epochs=config.epochs,
        num_train_images=len(splits.train),
        naive_seconds=round(naive_seconds, 3),
        feature_seconds=round(feature_seconds, 3),
        head_seconds=round(head_seconds, 3),
        naive_val_accuracy=float(naive_accuracy),
        cached_val_accuracy=float(cached_accuracy),
    )
