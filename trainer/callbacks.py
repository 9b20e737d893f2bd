"""Keras callbacks of a run: history.json, best checkpoint, learning-rate schedules.

Each is small and does one thing; `trainer/phases.py` composes them with Keras' own
(TensorBoard, CSVLogger, EarlyStopping).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import keras

from tledge.core.atomic import atomic_path, atomic_write_text

LOG_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
WARMUP_FACTOR = 0.1


class StepClock:
    """Times the steps of one pass over a dataset (an epoch, or a feature pass).

    The steady step time leaves out the first step (tracing the step function and
    filling the input pipeline) and the last one (often a short batch, traced again),
    so it says what each further image costs, whatever the start-up. Wall time and the
    process's CPU time (all its threads) are both kept: on a machine shared with other
    work the wall time follows the CPU share left over, the CPU time does not.
    """

    def __init__(self):
        self.start()

    def start(self) -> None:
        """Start a new pass."""
        self.times = [time.perf_counter()]
        self.cpu_times = [time.process_time()]

    def tick(self) -> None:
        """Mark the end of a step."""
        self.times.append(time.perf_counter())
        self.cpu_times.append(time.process_time())

    @property
    def steps(self) -> int:
        """Steps finished in this pass."""
        return len(self.times) - 1

    def steady_step_seconds(self) -> float | None:
        """Mean wall seconds of steps 2 .. n-1, or None with fewer than 3 steps."""
        return self._steady(self.times)

    def steady_step_cpu_seconds(self) -> float | None:
        """Mean CPU seconds of steps 2 .. n-1, or None with fewer than 3 steps."""
        return self._steady(self.cpu_times)

    def _steady(self, times: list[float]) -> float | None:
        steps = self.steps
        if steps < 3:
            return None
        return (times[steps - 1] - times[1]) / (steps - 2)


def read_history(path: Path) -> dict:
    """Return history.json, or an empty history when it does not exist yet."""
    if not path.is_file():
        return {"epochs": [], "phase_boundaries": []}
    return json.loads(path.read_text(encoding="utf-8"))


class HistoryRecorder(keras.callbacks.Callback):
    """Appends one entry per finished epoch to history.json (rewritten atomically).

    Each entry has the epoch's seconds and its steady step wall and CPU time
    (`StepClock`: without the first and last step; None with fewer than 3 steps). An
    epoch that is trained again after a resume replaces its earlier entry and any later
    ones, so the file always describes one consistent training.

    Args:
        path: history.json.
        phase: "feature_extraction" or "fine_tuning".
        boundaries: The "phase_boundaries" list to store.
    """

    def __init__(self, path: Path, phase: str, boundaries: list[int]):
        super().__init__()
        self.path = path
        self.phase = phase
        self.boundaries = boundaries
        self._started = 0.0
        self._clock = StepClock()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        self._clock.start()

    def on_train_batch_end(self, batch, logs=None):
        self._clock.tick()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        entry = {"epoch": epoch + 1, "phase": self.phase}
        entry.update({key: _number(logs.get(key)) for key in LOG_KEYS})
        entry["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        entry["seconds"] = round(time.perf_counter() - self._started, 3)
        for key, steady in (
            ("steady_step_seconds", self._clock.steady_step_seconds()),
            ("steady_step_cpu_seconds", self._clock.steady_step_cpu_seconds()),
        ):
            entry[key] = None if steady is None else round(steady, 6)
        history = read_history(self.path)
        epochs = [e for e in history["epochs"] if e["epoch"] <= epoch] + [entry]
        record = {"epochs": epochs, "phase_boundaries": self.boundaries}
        atomic_write_text(self.path, json.dumps(record, indent=2))


class BestCheckpoint(keras.callbacks.Callback):
    """Calls `save` whenever val_accuracy beats the best so far.

    `save` writes the full model; the feature-cache path trains a head-only model, so
    it passes a function that first copies the head into the full model.

    Args:
        save: Writes the checkpoint.
        best: Best val_accuracy of earlier epochs or phases (-inf when none).
    """

    def __init__(self, save: Callable[[], None], best: float = -math.inf):
        super().__init__()
        self.save = save
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_accuracy")
        if value is not None and value > self.best:
            self.best = float(value)
            self.save()


def lr_schedule_callback(
    schedule: str, base_lr: float, first_epoch: int, epochs: int, warmup_epochs: int = 0
):
    """The learning-rate callback of a phase, or None for a plain constant rate.

    Args:
        schedule: "constant"; "cosine" (decay from `base_lr` towards 0 over the phase);
            "plateau" (divide the rate by 5 when val_loss has not improved for 2 epochs).
        base_lr: The phase's learning rate.
        first_epoch: Keras' absolute number of the phase's first epoch.
        epochs: Epochs of the phase.
        warmup_epochs: Epochs at `base_lr / 10` first ("constant" and "cosine" only).
            Fine-tuning uses one: Adam's first steps, before its moment estimates
            settle, otherwise wreck the pretrained features.
    """
    if schedule == "plateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.2, patience=2, min_lr=base_lr / 100
        )
    if schedule == "constant" and warmup_epochs == 0:
        return None

    def rate(epoch: int, lr: float) -> float:
        index = max(epoch - first_epoch, 0)
        if index < warmup_epochs:
            return base_lr * WARMUP_FACTOR
        if schedule == "constant":
            return base_lr
        progress = min((index - warmup_epochs) / max(epochs - warmup_epochs, 1), 1.0)
        return base_lr * 0.5 * (1 + math.cos(math.pi * progress))

    return keras.callbacks.LearningRateScheduler(rate)


def replay_schedule_callback(rates: tuple[float, ...], first_epoch: int):
    """A callback that sets the rate of epoch `first_epoch + i` to `rates[i]`.

    A refit phase replays the rates its model's phase used, whatever schedule made them.
    """
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: rates[min(max(epoch - first_epoch, 0), len(rates) - 1)]
    )


def _number(value) -> float | None:
    return None if value is None else float(value)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore whose backup survives a kill at any moment.

    Keras writes the backup weights in place, so a SIGKILL during the write leaves an
    unreadable .h5 and the next run cannot resume. Here the weights and the epoch
    metadata are each written to a temporary file and renamed over the old backup.
    """

    def __init__(self, backup_dir: str):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_path(self._weights_path, suffix=".weights.h5") as tmp:
            self.model.save_weights(filepath=str(tmp), overwrite=True)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        atomic_write_text(self._training_metadata_path, json.dumps(metadata))
