"""Running one training phase: compile, compose the callbacks, fit, resume.

Both phases (and the feature-cache head training) go through `fit_phase`, so they log
the same history, TensorBoard and CSV records and resume the same way: AtomicBackupAndRestore
keeps the weights and the epoch of the phase in `backup/<phase>/` after every epoch.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from tledge.core.run_folder import RunFolder
from tledge.trainer.callbacks import (
    AtomicBackupAndRestore,
    BestCheckpoint,
    HistoryRecorder,
    lr_schedule_callback,
    read_history,
    replay_schedule_callback,
)
from tledge.trainer.distributed_fit import fit_distributed

FEATURE_EXTRACTION = "feature_extraction"
FINE_TUNING = "fine_tuning"
REFIT_FEATURE_EXTRACTION = "refit_feature_extraction"
REFIT_FINE_TUNING = "refit_fine_tuning"

# Epochs at the start of a phase that early stopping neither counts nor may restore.
# Fine-tuning opens with a warm-up epoch at a tenth of its rate, and its first epochs at
# the full rate dip before they improve; judged from epoch 1, early stopping can stop
# inside that dip and keep little more than the phase-1 model (the README's early-stopping
# note has the cross-validation numbers).
SETTLING_EPOCHS = {FINE_TUNING: 3}


@dataclass(frozen=True)
class PhasePlan:
    """What one phase trains.

    Attributes:
        phase: FEATURE_EXTRACTION or FINE_TUNING.
        first_epoch: Epochs finished before this phase (Keras' `initial_epoch`).
        epochs: Epochs this phase may run (early stopping can end it sooner).
        learning_rate: Starting learning rate.
        lr_schedule: "constant", "cosine" or "plateau".
        label_smoothing: Label smoothing of the loss.
        patience: EarlyStopping patience on val_accuracy; 0 disables it.
        boundaries: The history's "phase_boundaries".
        learning_rates: One rate per epoch to replay instead of `lr_schedule` (a refit
            phase: no validation data, so no early stopping either).
    """

    phase: str
    first_epoch: int
    epochs: int
    learning_rate: float
    lr_schedule: str
    label_smoothing: float
    patience: int
    boundaries: tuple[int, ...]
    learning_rates: tuple[float, ...] = ()


def compile_for(model, plan: PhasePlan, keras_module=keras) -> None:
    """Compile `model` with Adam at the phase's rate and a (smoothed) cross-entropy.

    Args:
        model: The model to compile.
        plan: The phase.
        keras_module: `keras` (Keras 3) or `tf_keras`, the library `model` belongs to.
    """
    model.compile(
        optimizer=keras_module.optimizers.Adam(plan.learning_rate),
        loss=keras_module.losses.CategoricalCrossentropy(label_smoothing=plan.label_smoothing),
        metrics=["accuracy"],
    )


@dataclass(frozen=True)
class Framework:
    """What differs between fitting a Keras 3 model and a tf_keras (TF Hub) one.

    Attributes:
        keras_module: `keras` or `tf_keras`: optimizer, loss and its own callbacks.
        adapt: Makes one of the project's Keras 3 callbacks (history, best checkpoint,
            learning-rate schedule) usable in this library's `fit`.
        backup: Builds the BackupAndRestore callback for a backup folder.
        fit: Fits a model like `model.fit` (model first, then `fit`'s arguments).
    """

    keras_module: Any
    adapt: Callable[[Any], Any]
    backup: Callable[[str], Any]
    fit: Callable[..., Any] = lambda model, *args, **kwargs: model.fit(*args, **kwargs)


def fit_keras3(model, train_data, **kwargs) -> None:
    """`model.fit`, or `fit_distributed` inside a mirrored or multi-worker strategy's scope.

    On one device this is Keras' own `fit`, unchanged: reading the training data through
    one iterator over the repeated dataset there (as the distributed loop does, see
    `repeated`) cost the default food_mnist10 run about 3 points of test accuracy
    (75.4 / 76.0 % with seeds 42 / 7 against 78.6-79.6 % with `fit`'s own reading; cause
    not found), so one-device runs keep `fit`'s shuffle orders and distributed runs are
    compared with a one-replica run of the same loop.
    """
    import tensorflow as tf

    if tf.distribute.has_strategy():
        train_data, steps_per_epoch = repeated(train_data)
        fit_distributed(model, train_data, steps_per_epoch=steps_per_epoch, **kwargs)
    else:
        model.fit(train_data, **kwargs)


KERAS3 = Framework(
    keras, adapt=lambda callback: callback, backup=AtomicBackupAndRestore, fit=fit_keras3
)


def fit_phase(
    model,
    train_data,
    val_data,
    plan: PhasePlan,
    run: RunFolder,
    save_best: Callable[[], None],
    verbose: int | str = 0,
    framework: Framework = KERAS3,
) -> int:
    """Compile and fit `model` for one phase, resuming from `run`'s backup if one exists.

    Args:
        model: The model to train (full model, or the head for the feature cache).
        train_data: Training tf.data dataset.
        val_data: Validation tf.data dataset, or None (a refit phase).
        plan: The phase.
        run: The run folder (history, logs, checkpoints, backup).
        save_best: Writes the best checkpoint when val_accuracy improves.
        verbose: Keras `fit` verbosity.
        framework: `KERAS3`, or the tf_keras one of a TF Hub run.

    Returns:
        The number of epochs finished at the end of the phase (absolute).
    """
    library = framework.keras_module
    compile_for(model, plan, library)
    run.logs.mkdir(parents=True, exist_ok=True)
    history = read_history(run.history)
    earlier = [e["val_accuracy"] for e in history["epochs"] if e["val_accuracy"] is not None]
    callbacks = [
        framework.adapt(HistoryRecorder(run.history, plan.phase, list(plan.boundaries))),
        framework.adapt(BestCheckpoint(save_best, max(earlier, default=-math.inf))),
        library.callbacks.CSVLogger(str(run.logs / "epochs.csv"), append=True),
    ]
    if tensorboard_available():
        callbacks.append(
            library.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False, profile_batch=0)
        )
    if plan.learning_rates:
        schedule = replay_schedule_callback(plan.learning_rates, plan.first_epoch)
    else:
        schedule = lr_schedule_callback(
            plan.lr_schedule,
            plan.learning_rate,
            plan.first_epoch,
            plan.epochs,
            warmup_epochs=1 if plan.phase == FINE_TUNING and plan.epochs > 1 else 0,
        )
    if schedule is not None:
        callbacks.append(framework.adapt(schedule))
    if plan.patience > 0 and val_data is not None:
        callbacks.append(early_stopping(plan, library))
    # Last, so an epoch is backed up only after its history entry is written.
    callbacks.append(framework.backup(str(run.backup / plan.phase)))
    framework.fit(
        model,
        train_data,
        validation_data=val_data,
        initial_epoch=plan.first_epoch,
        epochs=plan.first_epoch + plan.epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the datasets shuffle themselves, with the run's seed
    )
    finished = read_history(run.history)["epochs"]
    return max((e["epoch"] for e in finished if e["phase"] == plan.phase), default=plan.first_epoch)


def repeated(train_data):
    """`train_data` repeated, and its batches per epoch; or as it is, and None, when unknown.

    Every new iterator of a reshuffling dataset draws the next shuffle order. Keras' `fit`
    opens a finite dataset again at each epoch and once more whenever it runs out (orders
    1, 3, 5, ... on one device, and one more open before epoch 1 under MirroredStrategy);
    the distributed loop reads one iterator over the repeated dataset, so a run on any
    number of replicas or workers trains on orders 1, 2, 3, ... and matches a one-replica
    run of the same loop.
    """
    steps = int(train_data.cardinality())
    if steps <= 0:
        return train_data, None
    return train_data.repeat(), steps


def early_stopping(plan: PhasePlan, keras_module=keras):
    """The phase's EarlyStopping: best val_accuracy after its `SETTLING_EPOCHS`, restored."""
    return keras_module.callbacks.EarlyStopping(
        monitor="val_accuracy",
        mode="max",
        patience=plan.patience,
        restore_best_weights=True,
        start_from_epoch=plan.first_epoch + SETTLING_EPOCHS.get(plan.phase, 0),
    )


def tensorboard_available() -> bool:
    """Keras' TensorBoard callback needs the `tensorboard` package (train extra)."""
    return importlib.util.find_spec("tensorboard") is not None


def discard_backup(run: RunFolder, phase: str) -> None:
    """Remove a finished phase's BackupAndRestore folder (after its state is saved)."""
    shutil.rmtree(run.backup / phase, ignore_errors=True)
