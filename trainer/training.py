"""`train(config)`: a whole transfer-learning run, from folders of images to a run folder.

It resolves the config, opens (or resumes) the run folder, loads the images and runs the
phases of a `Trainer` (`trainer/trainer.py`) in order: phase 1, phase 2, the refit, then
metrics.json.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.core.labels import write_labels
from tledge.core.run_folder import RunFolder
from tledge.core.sources import TFDS_FILES_FOLDER, is_tfds, record_sources
from tledge.trainer.backbones import get_backbone
from tledge.trainer.caching import choose_cache
from tledge.trainer.config import TrainConfig
from tledge.trainer.data import load_splits
from tledge.trainer.distribution import choose_strategy, worker_output
from tledge.trainer.hub import fetch_hub_module, hub_precision, is_hub
from tledge.trainer.phases import tensorboard_available
from tledge.trainer.precision import dtype_policy, resolve_precision
from tledge.trainer.run_state import RunState
from tledge.trainer.runs import open_run
from tledge.trainer.tfds_source import resolve_sources
from tledge.trainer.trainer import IMAGE_CACHE_FOLDER, Trainer
from tledge.trainer.validation import ProgressCallback

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult:
    """What `train` produced.

    Attributes:
        run: The run folder.
        metrics: The contents of metrics.json.
        resumed: True when an unfinished run was continued.
    """

    run: RunFolder
    metrics: dict[str, Any]
    resumed: bool


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Fill in what "default" means on this machine: image size and precision.

    A TF Hub URL handle is downloaded into the TF Hub cache here, before any run folder
    exists.

    Raises:
        TledgeError: for an unknown backbone, an unusable precision or a TF Hub model
            that cannot be downloaded.
    """
    spec = get_backbone(config.backbone)
    if is_hub(config.backbone):
        precision = hub_precision(config.precision)
        fetch_hub_module(config.backbone)
    else:
        precision = resolve_precision(config.precision, config.force_precision)
    return dataclasses.replace(
        config, image_size=tuple(config.image_size or spec.default_size), precision=precision
    )


def train(
    config: TrainConfig,
    log: Log | None = None,
    verbose: int | str = 0,
    on_progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train (or resume) the run described by `config` and write its run folder.

    Args:
        config: The run's settings.
        log: Called with progress notes and warnings (e.g. skipped files).
        verbose: Keras `fit` verbosity (0 silent, 1 progress bar, 2 one line per epoch).
        on_progress: Called with (stage, done, total) during long steps (the image check).

    Returns:
        The run folder, its metrics and whether it was resumed.

    Raises:
        TledgeError: on bad data, options or weights, or an existing run in the way.

    Example:
        >>> result = train(TrainConfig(data="photos/train", test="photos/test",
        ...                            weights="none", image_size=(96, 96)))
        >>> result.metrics["test_accuracy"]
    """
    import keras

    log = log or (lambda message: None)
    started = time.perf_counter()
    # First: a multi-worker strategy must exist before TensorFlow starts.
    distribution = choose_strategy(config.strategy, config.batch_size, log)
    config = dataclasses.replace(config, output=worker_output(config.output, distribution))
    config = resolve_config(config)
    run, resumed = open_run(config)
    log(f"{'resuming' if resumed else 'new'} run {run.root} (precision {config.precision})")
    if not tensorboard_available():
        log("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
    keras.utils.set_random_seed(config.seed)
    sources = resolve_sources(
        config.data,
        config.val,
        config.test,
        config.tfds_data_dir,
        Path(config.output) / TFDS_FILES_FOLDER,
        on_progress,
    )
    if any(is_tfds(value) for value in (config.data, config.val, config.test)):
        # Readers of the run (evaluate, export, updates) find the written-out splits here.
        record_sources(run, {"data": sources.data, "val": sources.val, "test": sources.test})
    splits = load_splits(
        sources.data,
        sources.val,
        sources.test,
        val_split=config.val_split,
        train_fraction=config.train_fraction,
        seed=config.seed,
        convert_dir=run.root / "converted",
        warn=log,
        on_progress=on_progress,
        class_names=sources.class_names,
    )
    write_labels(run.labels, splits.class_names)
    cache = choose_cache(
        config.cache,
        [len(splits.train), len(splits.val), len(splits.test) if splits.test else 0],
        tuple(config.image_size),
        run.root / IMAGE_CACHE_FOLDER,
        log,
    )
    log(
        f"{len(splits.class_names)} classes: {len(splits.train)} train, {len(splits.val)} val, "
        f"{len(splits.test) if splits.test else 0} test images"
    )
    state = RunState.load(run)
    # The trainer batches globally; config.json keeps the per-replica batch.
    global_batch = config.batch_size * distribution.replicas
    trainer_config = dataclasses.replace(config, batch_size=global_batch)
    with dtype_policy(config.precision), distribution.scope():
        trainer = trainer_class(config.backbone)(
            trainer_config, run, splits, state, log, verbose, started, cache
        )
        model = trainer.phase_one()
        model = trainer.phase_two(model)
        model = trainer.refit(model)
        calibration = trainer.calibrate(model, splits.val)
        metrics = trainer.finish(model, calibration)
    if not distribution.is_chief:
        shutil.rmtree(config.output, ignore_errors=True)
        log(f"worker {distribution.worker_index} done; the chief wrote the run folder")
    return TrainResult(run, metrics, resumed)


def trainer_class(backbone: str) -> type[Trainer]:
    """The `Trainer` for `backbone`: `HubTrainer` (tf_keras) for "hub:HANDLE", else `Trainer`."""
    if is_hub(backbone):
        # Imported here: it imports tf_keras, which only a hub run needs.
        from tledge.trainer.hub_training import HubTrainer

        return HubTrainer
    return Trainer
