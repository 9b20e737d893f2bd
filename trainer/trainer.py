"""`Trainer`: the phases of one run in order, each resumable, for a Keras 3 backbone.

Phase 1 trains the head on a frozen backbone (on cached features when augmentation is
off); phase 2 fine-tunes the top of the backbone; the refit trains a fresh model the same
way on training + validation images, for the epochs chosen on validation. Each finished
phase is recorded in state.json, and each finished epoch in a BackupAndRestore folder,
so running the same command again after a crash or a kill continues where it stopped.

A TF Hub run extends `Trainer` (`trainer/hub_training.py`) through its public hooks:
`framework`, `build`, `load`, `unfreeze`, `uses_feature_cache`, `save_model` and the
model file attributes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tledge.core.atomic import atomic_path, atomic_write_text
from tledge.core.errors import TledgeError
from tledge.core.run_folder import RunFolder
from tledge.trainer.backbones import get_backbone
from tledge.trainer.caching import CachePlan
from tledge.trainer.calibrate import calibrate_model
from tledge.trainer.callbacks import read_history
from tledge.trainer.config import TrainConfig
from tledge.trainer.crossfit import CROSS_FIT_FOLDS, cross_fitted_predictions
from tledge.trainer.data import (
    NO_CACHE,
    DatasetSplits,
    Split,
    build_augmenter,
    build_mixer,
    combined,
    image_dataset,
)
from tledge.trainer.features import fit_head_on_features
from tledge.trainer.from_run import load_from_run
from tledge.trainer.model import build_classifier, calibrate_batchnorm, unfreeze_top
from tledge.trainer.phases import (
    FEATURE_EXTRACTION,
    FINE_TUNING,
    KERAS3,
    REFIT_FEATURE_EXTRACTION,
    REFIT_FINE_TUNING,
    Framework,
    PhasePlan,
    discard_backup,
    fit_phase,
)
from tledge.trainer.refit import chosen_learning_rates, refit_boundaries
from tledge.trainer.run_state import RunState
from tledge.trainer.scoring import ModelScorer, run_metrics

Log = Callable[[str], None]
# Images whose statistics initialise a random backbone's BatchNorm layers.
CALIBRATION_IMAGES = 64
# Run sub-folder of the tf.data file caches of `--cache disk`; removed when the run ends.
IMAGE_CACHE_FOLDER = "image_cache"


def build_model(config: TrainConfig, splits: DatasetSplits, log: Log):
    """Build the untrained classifier of `config` for `splits`' classes.

    A random backbone (`weights="none"`) gets BatchNorm statistics calibrated on the
    first training images (see `calibrate_batchnorm`).
    """
    num_classes = len(splits.class_names)
    spec = get_backbone(config.backbone)
    image_size = tuple(config.image_size or spec.default_size)
    model = build_classifier(
        spec,
        image_size,
        config.alpha,
        config.weights,
        num_classes,
        config.dropout,
    )
    if config.weights == "none":
        # Only the first images are decoded, and read to the end: stopping early inside
        # a cached dataset makes TensorFlow warn that the cache was left incomplete.
        first = Split(
            splits.train.paths[:CALIBRATION_IMAGES], splits.train.labels[:CALIBRATION_IMAGES]
        )
        pixels = spec.run_input_contract(image_size)
        [(images, _)] = list(image_dataset(first, num_classes, pixels, CALIBRATION_IMAGES))
        calibrate_batchnorm(model, images)
        log("random backbone: BatchNorm statistics calibrated on training images")
    return model


class Trainer:
    """The phases of one `train` call, sharing its config, data, run folder and state.

    Args:
        config: The resolved run config (`training.resolve_config`).
        run: The run folder (config.json and labels.txt written).
        splits: The run's images.
        state: The run's state.json.
        log: Called with progress notes.
        verbose: Keras `fit` verbosity.
        started: `time.perf_counter()` when the run (or this resume) started.
        cache: Where decoded images live between epochs (`tledge.trainer.caching`).

    Attributes:
        framework: How to fit this kind of model (Keras 3 here).
        phase_one_file, refit_one_file: Where each frozen-backbone phase saves its model.
        model_file: The run's final model.
        best_file: The best-epoch checkpoint of the phase being fitted.
    """

    framework: Framework = KERAS3

    def __init__(
        self,
        config: TrainConfig,
        run: RunFolder,
        splits: DatasetSplits,
        state: RunState,
        log: Log,
        verbose: int | str,
        started: float,
        cache: CachePlan = NO_CACHE,
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
        self.input_contract = run.read_input_contract()
        self.phase_one_file = run.root / "checkpoints" / "feature_extraction.keras"
        self.refit_one_file = run.root / "checkpoints" / "refit_feature_extraction.keras"
        self.model_file = run.model
        self.best_file = run.best_checkpoint
        self.scorer = ModelScorer(splits, self.images)

    # The hooks a trainer for another kind of model overrides.

    def build(self):
        """Build the untrained classifier."""
        return build_model(self.config, self.splits, self.log)

    def load(self, path: Path):
        """Load a model this trainer saved."""
        import keras

        return keras.saving.load_model(path)

    def unfreeze(self, model) -> str:
        """Make the top of the backbone trainable; return a note saying what trains."""
        config = self.config
        trainable = unfreeze_top(model, config.fine_tune_layers)
        return (
            f"phase 2: fine-tuning the top {config.fine_tune_layers} backbone layers "
            f"({trainable} with weights, BatchNorm statistics fixed) at lr {config.phase2_lr:g}"
        )

    def uses_feature_cache(self) -> bool:
        """True when phase 1 trains the head on cached backbone features."""
        config = self.config
        return config.feature_cache and not config.augment and not config.mixup

    def save_model(self, model, path: Path) -> None:
        """Save `model` at `path` atomically."""
        with atomic_path(path, suffix=".keras") as tmp:
            model.save(tmp)

    # Data and fitting.

    def images(self, split: Split, training: bool):
        """A batched dataset of `split` (shuffled and augmented when `training`)."""
        config = self.config
        return image_dataset(
            split,
            self.num_classes,
            self.input_contract,
            config.batch_size,
            shuffle_seed=config.seed if training else None,
            augmenter=build_augmenter(config.seed) if training and config.augment else None,
            mixer=build_mixer(config.mixup, config.seed) if training and config.mixup else None,
            cache=self.cache,
        )

    def datasets(self):
        """The training and validation datasets (validation None during the refit)."""
        val = self.splits.val
        val_data = self.images(val, training=False) if val is not None else None
        return self.images(self.splits.train, training=True), val_data

    def fit(self, model, plan: PhasePlan) -> int:
        """Fit `model` on the images for one phase; return the epochs finished."""
        train_data, val_data = self.datasets()
        save_best = functools.partial(self.save_model, model, self.best_file)
        return fit_phase(
            model, train_data, val_data, plan, self.run, save_best, self.verbose, self.framework
        )

    # The phases, in the order `train` runs them.

    def phase_one(self):
        """Train the head on the frozen backbone; return the model phase 2 starts from."""
        config = self.config
        if config.from_run:
            self.log(f"phase 1 skipped: starting from {config.from_run}")
            model = load_from_run(config, self.splits.class_names, self.load)
            if not self.state.has("feature_extraction_test_accuracy"):
                self.state.record("feature_extraction_test_accuracy", self.scorer.accuracy(model))
            return model
        if config.epochs == 0:
            return self.build()
        if self.state.is_done(FEATURE_EXTRACTION):
            self.log("phase 1 already finished; loading it")
            return self.load(self.phase_one_file)
        plan = self._plan(FEATURE_EXTRACTION, 0, config.epochs, config.learning_rate, ())
        model, epochs = self._train_frozen(plan, self.phase_one_file)
        self._phase_done(FEATURE_EXTRACTION, epochs, scored=model)
        return model

    def phase_two(self, model):
        """Fine-tune the top of the backbone; save and return the final model."""
        config = self.config
        if config.fine_tune_epochs == 0:
            return model
        if self.state.is_done(FINE_TUNING):
            return self.load(self.model_file)
        first = self.state.epochs_finished
        if not config.from_run and config.epochs > 0 and first == 0:
            raise TledgeError(f"{self.run.root}: phase 1 finished no epoch")
        self.log(self.unfreeze(model))
        plan = self._plan(FINE_TUNING, first, config.fine_tune_epochs, config.phase2_lr, (first,))
        epochs = self.fit(model, plan)
        self.save_model(model, self.model_file)
        self._phase_done(FINE_TUNING, epochs)
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
        if self.state.is_done(REFIT_FINE_TUNING):
            return self.load(self.model_file)
        if not self.state.has("before_refit_test_accuracy"):
            self.state.record("before_refit_test_accuracy", self.scorer.accuracy(model))
        rates = chosen_learning_rates(read_history(self.run.history), config.patience > 0)
        self.splits = dataclasses.replace(
            self.splits, train=combined(self.splits.train, self.splits.val), val=None
        )
        self.log(
            f"refit: a fresh model on all {len(self.splits.train)} train + val images for "
            f"{len(rates[FEATURE_EXTRACTION])} + {len(rates[FINE_TUNING])} epochs "
            "(those of the model chosen on val)"
        )
        if self.state.is_done(REFIT_FEATURE_EXTRACTION):
            model = self.load(self.refit_one_file)
        else:
            plan = self._refit_plan(REFIT_FEATURE_EXTRACTION, rates[FEATURE_EXTRACTION])
            model, epochs = self._train_frozen(plan, self.refit_one_file)
            self._phase_done(REFIT_FEATURE_EXTRACTION, epochs)
        if rates[FINE_TUNING]:
            self.log(self.unfreeze(model))
            plan = self._refit_plan(REFIT_FINE_TUNING, rates[FINE_TUNING])
            epochs = self.fit(model, plan)
            self.save_model(model, self.model_file)
            self._phase_done(REFIT_FINE_TUNING, epochs)
        return model

    def calibrate(self, model, val: Split | None) -> dict[str, Any] | None:
        """Fold a temperature into `model`, save it, return metrics.json's "calibration".

        T and the unknown threshold come from held-out predictions (see
        `_held_out_predictions` and `tledge.trainer.calibrate`). Done once: the state
        records it, so a resumed run does not divide by T twice.
        """
        config = self.config
        if not config.calibrate or val is None or not len(val):
            if config.calibrate:
                self.log("calibration skipped: no validation images")
            return None
        if self.state.has("calibration"):
            return self.state.get("calibration")
        held_out, labels, fitted_on = self._held_out_predictions(model, val)
        test = self.splits.test
        entry = calibrate_model(
            model,
            held_out,
            labels,
            self._predict(model, test) if test is not None else None,
            test.labels if test is not None else None,
            config.accept_rate,
            fitted_on,
        )
        self.save_model(model, self.model_file)
        self.state.record("calibration", entry)
        self.log(
            f"calibrated: temperature {entry['temperature']:.3f}, unknown below "
            f"{entry['unknown_threshold']:.3f} (accepts {config.accept_rate:.0%} of "
            f"{entry['val_images']} held-out photos; fitted on {entry['fitted_on']})"
        )
        return entry

    def _predict(self, model, split: Split):
        return model.predict(self.images(split, False), verbose=0)

    def _held_out_predictions(self, model, val: Split):
        """Uncalibrated predictions of images the predicting model did not train on.

        Without a refit: `model` on validation. After a head-only refit on cached
        features: out-of-fold predictions of that head (`tledge.trainer.crossfit`).
        After a fine-tuned refit: the validation model (checkpoints/best.keras) on
        validation. Returns (probabilities, labels, what they came from).
        """
        if not self.state.is_done(REFIT_FEATURE_EXTRACTION):
            return self._predict(model, val), val.labels, "model.keras"
        rates = chosen_learning_rates(read_history(self.run.history), self.config.patience > 0)
        if self.uses_feature_cache() and not rates[FINE_TUNING]:
            splits = self.splits  # the refit replaced train by train + val
            everything = splits.train if splits.val is None else combined(splits.train, val)
            self.log(f"calibration: cross-fitting the refit head ({CROSS_FIT_FOLDS} folds)")
            probabilities, name = cross_fitted_predictions(
                model, everything, self.config, self.input_contract, rates[FEATURE_EXTRACTION]
            )
            return probabilities, everything.labels, name
        chosen = self.load(self.best_file)
        return (
            self._predict(chosen, val),
            val.labels,
            str(self.best_file.relative_to(self.run.root)),
        )

    def finish(self, model, calibration: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write metrics.json, and the final model when phase 2 did not already.

        metrics.json is written last: it marks the run as finished.
        """
        if self.config.fine_tune_epochs == 0 and calibration is None:
            self.save_model(model, self.model_file)
        history = json.loads(self.run.history.read_text(encoding="utf-8"))
        test_metrics = self.scorer.metrics(model) if self.splits.test is not None else None
        metrics = run_metrics(
            test_metrics,
            history,
            self.state.values,
            self.splits.skipped,
            self.config.precision,
        )
        metrics["calibration"] = calibration
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

    def _refit_plan(self, phase: str, replayed: tuple[float, ...]) -> PhasePlan:
        first = self.state.epochs_finished
        earlier = read_history(self.run.history)["phase_boundaries"]
        plan = self._plan(
            phase, first, len(replayed), replayed[0], refit_boundaries(earlier, first)
        )
        return dataclasses.replace(plan, learning_rates=replayed)

    def _train_frozen(self, plan: PhasePlan, path: Path):
        """Build a model, train its head on the frozen backbone, save it; return it and epochs."""
        model = self.build()
        if self.uses_feature_cache():
            save_best = functools.partial(self.save_model, model, self.run.best_checkpoint)
            epochs = fit_head_on_features(
                model,
                self.splits,
                self.config,
                self.input_contract,
                plan,
                self.run,
                save_best,
                self.verbose,
                self.log,
            )
        else:
            epochs = self.fit(model, plan)
        self.save_model(model, path)
        return model, epochs

    def _phase_done(self, phase: str, epochs: int, scored=None) -> None:
        """Record `phase` as finished (with `scored`'s test accuracy, after phase 1)."""
        now = time.perf_counter()
        measured = {}
        if scored is not None:
            measured["feature_extraction_test_accuracy"] = self.scorer.accuracy(scored)
        seconds = self.state.phase_done(phase, epochs, now - self.phase_started, **measured)
        self.phase_started = now
        discard_backup(self.run, phase)
        self.log(f"{phase} finished after epoch {epochs} ({seconds:.0f} s)")
