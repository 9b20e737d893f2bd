"""Training a TF Hub backbone run: the same phases, files and logs as a Keras 3 run, in tf_keras.

`HubTrainer` is the `train` steps with a tf_keras model (see `trainer/hub_model.py`): it
builds, fits, unfreezes and saves differently, and everything else (data, run folder,
state.json, metrics.json) is shared. `phases.fit_phase` fits it with
the `TF_KERAS` framework: tf_keras' own CSVLogger, TensorBoard, EarlyStopping and
BackupAndRestore; the project's history.json, best-checkpoint and learning-rate callbacks
are Keras 3 callbacks that only read logs and the optimizer, so they run inside tf_keras'
`fit` through `TfKerasAdapter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tf_keras

from tledge.trainer.hub_model import (
    build_hub_classifier,
    load_hub_model,
    save_hub_model,
    unfreeze_hub,
)
from tledge.trainer.phases import Framework
from tledge.trainer.trainer import Trainer


class TfKerasAdapter(tf_keras.callbacks.Callback):
    """Runs a Keras 3 callback's train and epoch hooks inside a tf_keras `fit`.

    Args:
        callback: A Keras 3 callback that uses only the logs, `model.optimizer` and
            `model.stop_training` (HistoryRecorder, BestCheckpoint, LR schedules).
    """

    def __init__(self, callback: Any):
        super().__init__()
        self.callback = callback

    def set_model(self, model):
        super().set_model(model)
        self.callback.set_model(model)

    def on_train_begin(self, logs=None):
        self.callback.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch, logs)


def _tf_keras_backup(backup_dir: str):
    # TF checkpoints are written to temporary files and renamed, so a kill cannot leave
    # a half-written backup.
    return tf_keras.callbacks.BackupAndRestore(
        backup_dir, save_freq="epoch", delete_checkpoint=False
    )


TF_KERAS = Framework(tf_keras, adapt=TfKerasAdapter, backup=_tf_keras_backup)


class HubTrainer(Trainer):
    """The steps of `train` for a "hub:HANDLE" backbone (tf_keras model, SavedModel files).

    Phase 1 always trains on images: the feature cache is a Keras 3 fast path.
    """

    framework = TF_KERAS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.phase_one_file = self.run.root / "checkpoints" / "feature_extraction_savedmodel"
        self.refit_one_file = self.run.root / "checkpoints" / "refit_feature_extraction_savedmodel"
        self.model_file = self.run.hub_model
        self.best_file = self.run.hub_best_checkpoint

    def build(self):
        if self.config.weights != "imagenet":
            self.log(f"--weights {self.config.weights} ignored: a TF Hub model has its own")
        return build_hub_classifier(
            self.config.backbone, self.image_size, self.num_classes, self.config.dropout
        )

    def load(self, path: Path):
        return load_hub_model(path, self.config.backbone)

    def unfreeze(self, model) -> str:
        count = unfreeze_hub(model, self.config.backbone)
        return (
            f"phase 2: fine-tuning the whole TF Hub layer ({count} variables, BatchNorm "
            f"statistics fixed) at lr {self.config.phase2_lr:g}; --fine-tune-layers does not "
            "apply: a hub layer is one block"
        )

    def uses_feature_cache(self) -> bool:
        return False

    def save_model(self, model, path: Path) -> None:
        save_hub_model(model, path)
