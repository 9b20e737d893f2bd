"""`train(config)`: a whole transfer-learning run, from folders of images to a run folder.

Phase 1 trains the head on a frozen backbone (on cached features when augmentation is
off); phase 2 fine-tunes the top of the backbone; the refit trains a fresh model the same
way on training + validation images, for the epochs chosen on validation. Each finished
phase is recorded in state.json, and each finished epoch in a BackupAndRestore folder,
so running the same command again after a crash or a kill continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.core.atomic import atomic_path, atomic_write_text
from tledge.core.errors import TledgeError
from tledge.core.labels import write_labels
from tledge.core.run_folder import RunFolder
from tledge.trainer.backbones import get_backbone
from tledge.trainer.caching import choose_cache
from tledge.trainer.callbacks import read_history
from tledge.trainer.config import TrainConfig
from tledge.trainer.data import (
    NO_CACHE,
    DatasetSplits,
    build_augmenter,
    build_mixer,
    combined,
    image_dataset,
    load_splits,
)
from tledge.trainer.features import (
    copy_head,
    feature_cache_key,
    feature_dataset,
    head_model,
    pooled_features,
)
from tledge.trainer.hub import fetch_hub_module, hub_precision, is_hub
from tledge.trainer.metrics import classification_metrics
from tledge.trainer.model import build_classifier, calibrate_batchnorm, unfreeze_top
from tledge.trainer.phases import (
    FEATURE_EXTRACTION,
    FINE_TUNING,
    KERAS3,
    REFIT_FEATURE_EXTRACTION,
    REFIT_FINE_TUNING,
    SETTLING_EPOCHS,
    PhasePlan,
    discard_backup,
    fit_phase,
    tensorboard_available,
)
from tledge.trainer.precision import dtype_policy, resolve_precision
from tledge.trainer.runs import open_run, read_state, write_state
from tledge.trainer.tfds_source import resolve_sources
from tledge.trainer.validation import ProgressCallback

Log = Callable[[str], None]
# Images whose statistics initialise a random backbone's BatchNorm layers.
CALIBRATION_IMAGES = 64
# Run sub-folder of the tf.data file caches of `--cache disk`; removed when the run ends.
IMAGE_CACHE_FOLDER = "image_cache"
# Folder (in --output) of TFDS splits written out as class folders, shared by runs.
TFDS_FILES_FOLDER = ".tfds_files"


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
    state = read_state(run)
    trainer_type = _Trainer
    if is_hub(config.backbone):
        from tledge.trainer.hub_training import HubTrainer

        trainer_type = HubTrainer
    with dtype_policy(config.precision):
        trainer = trainer_type(config, run, splits, state, log, verbose, started, cache)
        model = trainer.phase_one()
        model = trainer.phase_two(model)
        model = trainer.refit(model)
        metrics = trainer.finish(model)
    return TrainResult(run, metrics, resumed)


def build_model(config: TrainConfig, splits: DatasetSplits, log: Log):
    """Build the untrained classifier of `config` for `splits`' classes.

    A random backbone (`weights="none"`) gets BatchNorm statistics calibrated on the
    first training images (see `calibrate_batchnorm`).
    """
    num_classes = len(splits.class_names)
    image_size = tuple(config.image_size or get_backbone(config.backbone).default_size)
    model = build_classifier(
        get_backbone(config.backbone),
        image_size,
        config.alpha,
        config.weights,
        num_classes,
        config.dropout,
    )
    if config.weights == "none":
        sample = image_dataset(splits.train, num_classes, image_size, CALIBRATION_IMAGES)
        images, _ = next(iter(sample))
        calibrate_batchnorm(model, images)
        log("random backbone: BatchNorm statistics calibrated on training images")
    return model


def chosen_learning_rates(history: dict, up_to_best: bool) -> dict[str, tuple[float, ...]]:
    """The learning rates of the epochs that made each phase's final model.

    Early stopping (patience > 0) restores each phase's best val_accuracy epoch (the
    first of equal ones) after its `SETTLING_EPOCHS`, or keeps the last epoch when the
    phase ran no further; without early stopping a phase ends with its last epoch.

    Args:
        history: history.json contents.
        up_to_best: Stop each phase at its best val_accuracy epoch.

    Returns:
        {FEATURE_EXTRACTION: rates, FINE_TUNING: rates}; a phase that did not run has ().
    """
    chosen: dict[str, tuple[float, ...]] = {}
    for phase in (FEATURE_EXTRACTION, FINE_TUNING):
        epochs = [e for e in history["epochs"] if e["phase"] == phase]
        settling = SETTLING_EPOCHS.get(phase, 0)
        scores = [e["val_accuracy"] if e["val_accuracy"] is not None else -1.0 for e in epochs]
        judged = scores[settling:]
        last = settling + judged.index(max(judged)) + 1 if judged and up_to_best else len(epochs)
        chosen[phase] = tuple(e["learning_rate"] for e in epochs[:last])
    return chosen


class _Trainer:
    """The steps of one `train` call, sharing its config, data and run folder.

    `framework`, `build`, `load`, `unfreeze` and `_save_model` are what a TF Hub run does
    differently (see `trainer/hub_training.py`), as are the model file names.
    """

    framework = KERAS3

    def __init__(
        self, config, run, splits: DatasetSplits, state, log, verbose, started, cache=NO_CACHE
    ):
        self.config = config
        self.cache = cache
        self.run = run
        self.splits = splits
        self.state = state
        self.log = log
        self.verbose = verbose
        self.phase_started = started
        self.num_classes = len(splits.class_names)
        self.image_size = tuple(config.image_size)
        self.phase_one_file = run.root / "checkpoints" / "feature_extraction.keras"
        self.refit_one_file = run.root / "checkpoints" / "refit_feature_extraction.keras"
        self.model_file = run.model
        self.best_file = run.best_checkpoint
        self._test_data = None

    def build(self):
        return build_model(self.config, self.splits, self.log)

    def load(self, path: Path):
        import keras

        return keras.saving.load_model(path)

    def fit(self, model, plan: PhasePlan) -> int:
        """Fit `model` on the images for one phase; return the epochs finished."""
        train_data, val_data = self.datasets()
        return fit_phase(
            model,
            train_data,
            val_data,
            plan,
            self.run,
            self._saver(model),
            self.verbose,
            self.framework,
        )

    def datasets(self):
        """The training and validation datasets (validation None during the refit)."""
        val = self.splits.val
        val_data = self.images(val, training=False) if val is not None else None
        return self.images(self.splits.train, training=True), val_data

    def unfreeze(self, model) -> str:
        """Make the top of the backbone trainable; return a note saying what trains."""
        config = self.config
        trainable = unfreeze_top(model, config.fine_tune_layers)
        return (
            f"phase 2: fine-tuning the top {config.fine_tune_layers} backbone layers "
            f"({trainable} with weights, BatchNorm statistics fixed) at lr {config.phase2_lr:g}"
        )

    def uses_feature_cache(self) -> bool:
        config = self.config
        return config.feature_cache and not config.augment and not config.mixup

    def images(self, split, training: bool):
        config = self.config
        return image_dataset(
            split,
            self.num_classes,
            self.image_size,
            config.batch_size,
            shuffle_seed=config.seed if training else None,
            augmenter=build_augmenter(config.seed) if training and config.augment else None,
            mixer=build_mixer(config.mixup, config.seed) if training and config.mixup else None,
            cache=self.cache,
        )

    def phase_one(self):
        """Train the head on the frozen backbone; return the model phase 2 starts from."""
        config = self.config
        if config.from_run:
            self.log(f"phase 1 skipped: starting from {config.from_run}")
            return self._load_from_run()
        if config.epochs == 0:
            return self.build()
        if FEATURE_EXTRACTION in self.state["phases_done"]:
            self.log("phase 1 already finished; loading it")
            return self.load(self.phase_one_file)
        plan = self._plan(FEATURE_EXTRACTION, 0, config.epochs, config.learning_rate, ())
        model, epochs = self._train_frozen(plan, self.phase_one_file)
        self._phase_done(FEATURE_EXTRACTION, epochs, model)
        return model

    def phase_two(self, model):
        """Fine-tune the top of the backbone; save and return the final model."""
        config = self.config
        if config.fine_tune_epochs == 0:
            return model
        if FINE_TUNING in self.state["phases_done"]:
            return self.load(self.model_file)
        first = self.state.get("epochs_finished", 0)
        if not config.from_run and config.epochs > 0 and first == 0:
            raise TledgeError(f"{self.run.root}: phase 1 finished no epoch")
        self.log(self.unfreeze(model))
        plan = self._plan(FINE_TUNING, first, config.fine_tune_epochs, config.phase2_lr, (first,))
        epochs = self.fit(model, plan)
        self._save_model(model, self.model_file)
        self._phase_done(FINE_TUNING, epochs, None)
        return model

    def refit(self, model):
        """Train a fresh model on train + val for the epochs chosen on val; return it.

        Each refit phase replays the learning rates of the epochs that made its phase's
        model (see `chosen_learning_rates`). Resumes like the other phases.
        """
        config = self.config
        if not config.refit:
            return model
        if config.from_run or config.epochs == 0:
            self.log("refit skipped: it repeats both phases, and phase 1 did not run here")
            return model
        done = self.state["phases_done"]
        if REFIT_FINE_TUNING in done:
            return self.load(self.model_file)
        if "before_refit_test_accuracy" not in self.state:
            self.state["before_refit_test_accuracy"] = self._test_accuracy(model)
            write_state(self.run, self.state)
        history = read_history(self.run.history)
        rates = chosen_learning_rates(history, up_to_best=config.patience > 0)
        self.splits = dataclasses.replace(
            self.splits, train=combined(self.splits.train, self.splits.val), val=None
        )
        self.log(
            f"refit: a fresh model on all {len(self.splits.train)} train + val images for "
            f"{len(rates[FEATURE_EXTRACTION])} + {len(rates[FINE_TUNING])} epochs "
            "(those of the model chosen on val)"
        )
        if REFIT_FEATURE_EXTRACTION in done:
            model = self.load(self.refit_one_file)
        else:
            first = self.state["epochs_finished"]
            plan = self._refit_plan(REFIT_FEATURE_EXTRACTION, first, rates)
            model, epochs = self._train_frozen(plan, self.refit_one_file)
            self._phase_done(REFIT_FEATURE_EXTRACTION, epochs, None)
        if rates[FINE_TUNING]:
            first = self.state["epochs_finished"]
            self.log(self.unfreeze(model))
            plan = self._refit_plan(REFIT_FINE_TUNING, first, rates)
            epochs = self.fit(model, plan)
            self._save_model(model, self.model_file)
            self._phase_done(REFIT_FINE_TUNING, epochs, None)
        return model

    def finish(self, model) -> dict[str, Any]:
        """Write metrics.json, and model.keras when phase 2 did not already.

        metrics.json is written last: it marks the run as finished.
        """
        if self.config.fine_tune_epochs == 0:
            self._save_model(model, self.model_file)
        history = json.loads(self.run.history.read_text(encoding="utf-8"))
        val_accuracies = [e["val_accuracy"] for e in history["epochs"] if e["val_accuracy"]]
        metrics: dict[str, Any] = {
            "test_accuracy": None,
            "test_loss": None,
            "num_test_images": 0,
            "per_class": {},
        }
        if self.splits.test is not None:
            metrics.update(self._test_metrics(model))
        seconds = self.state["phase_seconds"]
        metrics.update(
            best_val_accuracy=max(val_accuracies, default=None),
            train_seconds=round(sum(seconds.values()), 3),
            feature_extraction_test_accuracy=self.state.get("feature_extraction_test_accuracy"),
            before_refit_test_accuracy=self.state.get("before_refit_test_accuracy"),
            skipped_files=self.splits.skipped,
            phase_seconds=seconds,
            precision=self.config.precision,
        )
        if self.run.backup.is_dir() and not any(self.run.backup.iterdir()):
            self.run.backup.rmdir()
        shutil.rmtree(self.run.root / IMAGE_CACHE_FOLDER, ignore_errors=True)
        atomic_write_text(self.run.metrics, json.dumps(metrics, indent=2))
        return metrics

    def _plan(self, phase, first, epochs, lr, boundaries) -> PhasePlan:
        return PhasePlan(
            phase=phase,
            first_epoch=first,
            epochs=epochs,
            learning_rate=lr,
            lr_schedule=self.config.lr_schedule,
            label_smoothing=self.config.label_smoothing,
            patience=self.config.patience,
            boundaries=boundaries,
        )

    def _train_frozen(self, plan: PhasePlan, path: Path):
        """Build a model, train its head on the frozen backbone, save it; return it and epochs."""
        model = self.build()
        if self.uses_feature_cache():
            epochs = self._fit_on_features(model, plan)
        else:
            epochs = self.fit(model, plan)
        self._save_model(model, path)
        return model, epochs

    def _refit_plan(self, phase, first, rates) -> PhasePlan:
        replayed = rates[FEATURE_EXTRACTION if phase == REFIT_FEATURE_EXTRACTION else FINE_TUNING]
        # A resumed phase finds its own start in the history already.
        earlier = read_history(self.run.history)["phase_boundaries"]
        boundaries = (*(epoch for epoch in earlier if epoch < first), first)
        plan = self._plan(phase, first, len(replayed), replayed[0], boundaries)
        return dataclasses.replace(plan, learning_rates=replayed)

    def _fit_on_features(self, model, plan: PhasePlan) -> int:
        config = self.config
        cache_dir = Path(config.output) / ".feature_cache"
        model_key = {
            "backbone": config.backbone,
            "alpha": config.alpha,
            "weights": config.weights,
            "image_size": list(self.image_size),
            "precision": config.precision,
        }

        def features(split):
            key = feature_cache_key(split, model_key)
            path = cache_dir / f"{key}.npy"
            return pooled_features(model, split, self.image_size, config.batch_size, path)

        self.log(f"phase 1 on cached backbone features ({cache_dir})")
        head = head_model(model, config.dropout)
        train, val = self.splits.train, self.splits.val
        batch = config.batch_size
        train_data = feature_dataset(features(train), train, self.num_classes, batch, config.seed)
        val_data = None
        if val is not None:
            val_data = feature_dataset(features(val), val, self.num_classes, batch)

        def save_best() -> None:
            copy_head(head, model)
            self._save_model(model, self.run.best_checkpoint)

        epochs = fit_phase(head, train_data, val_data, plan, self.run, save_best, self.verbose)
        copy_head(head, model)
        return epochs

    def _saver(self, model) -> Callable[[], None]:
        return lambda: self._save_model(model, self.best_file)

    def _save_model(self, model, path: Path) -> None:
        with atomic_path(path, suffix=".keras") as tmp:
            model.save(tmp)

    def _load_from_run(self):
        source = RunFolder.open(self.config.from_run)
        trained_with = source.read_config().get("backbone")
        if trained_with and trained_with != self.config.backbone:
            raise TledgeError(
                f"--from-run {source.root}: it trained --backbone {trained_with}; "
                f"pass --backbone {trained_with}"
            )
        if tuple(source.read_labels()) != self.splits.class_names:
            raise TledgeError(
                f"--from-run {source.root}: its labels differ from {self.config.data}"
            )
        model = self.load(source.trained_model)
        if tuple(model.input_shape[1:3]) != self.image_size:
            raise TledgeError(
                f"--from-run {source.root}: its image size is {model.input_shape[1:3]}; "
                f"pass --image-size {model.input_shape[1]} {model.input_shape[2]}"
            )
        if "feature_extraction_test_accuracy" not in self.state:
            self.state["feature_extraction_test_accuracy"] = self._test_accuracy(model)
            write_state(self.run, self.state)
        return model

    def _phase_done(self, phase: str, epochs: int, model) -> None:
        now = time.perf_counter()
        seconds = self.state["phase_seconds"]
        seconds[phase] = round(seconds.get(phase, 0.0) + now - self.phase_started, 3)
        self.phase_started = now
        self.state["phases_done"].append(phase)
        self.state["epochs_finished"] = epochs
        if model is not None:
            self.state["feature_extraction_test_accuracy"] = self._test_accuracy(model)
        write_state(self.run, self.state)
        discard_backup(self.run, phase)
        self.log(f"{phase} finished after epoch {epochs} ({seconds[phase]:.0f} s)")

    def _test_accuracy(self, model) -> float | None:
        if self.splits.test is None:
            return None
        return self._test_metrics(model)["test_accuracy"]

    def _test_metrics(self, model) -> dict[str, Any]:
        if self._test_data is None:
            self._test_data = self.images(self.splits.test, training=False)
        probabilities = model.predict(self._test_data, verbose=0)
        return classification_metrics(
            probabilities, self.splits.test.labels, self.splits.class_names
        )
