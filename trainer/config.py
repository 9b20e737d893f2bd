"""`TrainConfig`: every choice a training run makes, stored as the run's config.json."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge import __version__
from tledge.core.calibration import DEFAULT_ACCEPT_RATE
from tledge.core.errors import TledgeError
from tledge.core.run_config import RunConfig
from tledge.core.sources import is_tfds
from tledge.trainer.caching import CACHE_MODES
from tledge.trainer.distribution import STRATEGIES

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
LR_SCHEDULES = ("constant", "cosine", "plateau")

# Fields that say where or how to write a run, not what the run is: they do not enter
# the run name hash and may differ when a run is resumed.
LOCATION_FIELDS = (
    "name",
    "output",
    "overwrite",
    "force_precision",
    "feature_cache",
    "cache",
    "tfds_data_dir",
    "strategy",
)
# Folders config.json stores as resolved absolute paths (a "tfds:" source stays as given).
DATA_PATH_FIELDS = ("data", "val", "test", "from_run")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and inputs of one transfer-learning run.

    The defaults were chosen on the validation split (never the test set) of
    food_mnist10 with MobileNetV2 ImageNet weights: batch 16 lets the head converge in
    10 epochs at 1e-3; fine-tuning at 1e-4 (10x lower) improves on it, while 3e-4
    wrecked the pretrained features even after a warm-up epoch.

    Attributes:
        data: Training folder with one sub-folder of images per class, or
            "tfds:NAME[/SPLIT]" for a TensorFlow Datasets split (default split "train").
        val: Validation folder or "tfds:NAME[/SPLIT]" (same classes; default split
            "validation"); None holds out `val_split` of `data`.
        test: Test folder or "tfds:NAME[/SPLIT]" (same classes; default split "test");
            None skips the test metrics.
        tfds_data_dir: Folder of prepared TFDS datasets (read, never downloaded into);
            None uses TFDS_DATA_DIR or TFDS' default folder.
        backbone: Registry name ("mobilenetv2", "efficientnetb0") or "hub:HANDLE" for a
            TF Hub feature-vector model (URL or local SavedModel folder).
        alpha: Width multiplier of MobileNetV2 (0.35, 0.5, 0.75, 1.0, 1.3, 1.4).
        weights: "imagenet" (Keras download), "none" (random init) or the path of a
            no-top Keras .h5 weights file.
        image_size: Model input (height, width); None takes the backbone's default.
        batch_size: Images per training step and replica (the global batch of a
            distributed run is `batch_size` x replicas; see `tledge.trainer.distribution`).
        epochs: Phase 1 epochs (feature extraction: backbone frozen); 0 skips phase 1.
        fine_tune_epochs: Phase 2 epochs (top of the backbone trainable); 0 skips it.
        fine_tune_layers: How many of the backbone's top layers phase 2 unfreezes
            (BatchNormalization layers keep their moving statistics; gamma and beta train).
        learning_rate: Phase 1 learning rate (Adam).
        fine_tune_lr: Phase 2 learning rate; None means `learning_rate / 10`.
        dropout: Dropout rate before the classification layer.
        label_smoothing: Label smoothing of the cross-entropy loss.
        val_split: Fraction of `data` held out for validation when `val` is None.
        train_fraction: Stratified fraction of the training images to use (e.g. 0.1).
        seed: Seed of every random choice (splits, shuffling, augmentation, init).
        augment: Random flip, rotation, zoom, translation and contrast while training.
        mixup: MixUp strength (Beta(mixup, mixup) blend weights) while training; 0 is off.
        precision: "auto" (mixed_float16 on a GPU of compute capability >= 7.0, else
            float32), "float32", "mixed_float16" or "mixed_bfloat16".
        force_precision: Allow a mixed policy on a CPU, where it is much slower.
        lr_schedule: "constant", "cosine" (decay to 0 over each phase) or "plateau"
            (divide by 5 when val_loss stops improving).
        patience: Early stopping patience in epochs (on val_accuracy); 0 disables it.
            Fine-tuning is judged from its 4th epoch on (see phases.SETTLING_EPOCHS).
        cache: Where decoded images stay between epochs: "memory", "disk" (a tf.data
            file cache in the run folder, removed when the run finishes), "none" (decode
            every epoch, in parallel) or "auto" (memory when the decoded images take at
            most a quarter of the free memory, else disk, else none; the log says which).
            It changes only the shuffle order, not what the run computes.
        strategy: "auto" (mirrored over the local GPUs when there are two or more),
            "one" (one device), "mirrored" (tf.distribute.MirroredStrategy) or
            "multiworker" (MultiWorkerMirroredStrategy over TF_CONFIG's cluster; every
            machine runs the same command, the chief writes the run folder).
        feature_cache: Train phase 1 on cached backbone features when `augment` is off.
        refit: After both phases, train a fresh model on the training and validation
            images together, replaying the epochs and learning rates up to each phase's
            best validation epoch; it becomes model.keras (the model chosen on validation
            stays in checkpoints/best.keras). A held-out 20 % is a fifth of a small
            dataset: on food_mnist10's validation split, fine-tuning on 480 instead of
            600 images scored 72.0 % instead of 77.3 %.
        calibrate: Fit a temperature on held-out predictions (validation, or after a
            head-only refit out-of-fold predictions on train + val) and fold it into the
            final model, and choose the unknown threshold (see `tledge.trainer.calibrate`).
        accept_rate: Fraction of validation images the unknown threshold accepts.
        from_run: Run folder whose model.keras phase 2 starts from (phase 1 skipped).
        name: Run folder name; None derives one from the backbone, data and config.
        output: Folder that holds the run folders.
        overwrite: Replace an existing run folder of the same name.
    """

    data: str
    val: str | None = None
    test: str | None = None
    backbone: str = "mobilenetv2"
    alpha: float = 1.0
    weights: str = "imagenet"
    image_size: tuple[int, int] | None = None
    batch_size: int = 16
    epochs: int = 10
    fine_tune_epochs: int = 10
    fine_tune_layers: int = 40
    learning_rate: float = 1e-3
    fine_tune_lr: float | None = None
    dropout: float = 0.2
    label_smoothing: float = 0.1
    val_split: float = 0.2
    train_fraction: float = 1.0
    seed: int = 42
    augment: bool = True
    mixup: float = 0.0
    precision: str = "auto"
    force_precision: bool = False
    lr_schedule: str = "cosine"
    patience: int = 4
    cache: str = "auto"
    tfds_data_dir: str | None = None
    strategy: str = "auto"
    feature_cache: bool = True
    refit: bool = True
    calibrate: bool = True
    accept_rate: float = DEFAULT_ACCEPT_RATE
    from_run: str | None = None
    name: str | None = None
    output: str = "runs"
    overwrite: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.precision in PRECISIONS, f"--precision must be one of {PRECISIONS}"),
            (self.strategy in STRATEGIES, f"--strategy must be one of {STRATEGIES}"),
            (self.cache in CACHE_MODES, f"--cache must be one of {CACHE_MODES}"),
            (self.lr_schedule in LR_SCHEDULES, f"--lr-schedule must be one of {LR_SCHEDULES}"),
            (0 < self.train_fraction <= 1, "--train-fraction must be in (0, 1]"),
            (0 <= self.val_split < 1, "--val-split must be in [0, 1)"),
            (self.batch_size > 0, "--batch-size must be positive"),
            (self.epochs >= 0 and self.fine_tune_epochs >= 0, "epochs must be >= 0"),
            (self.epochs + self.fine_tune_epochs > 0, "--epochs and --fine-tune-epochs are 0"),
            (self.fine_tune_layers > 0, "--fine-tune-layers must be positive"),
            (0 <= self.dropout < 1, "--dropout must be in [0, 1)"),
            (0 <= self.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (0 <= self.mixup <= 1, "--mixup must be in [0, 1]"),
            (self.alpha > 0, "--alpha must be positive"),
            (self.patience >= 0, "--patience must be >= 0"),
            (0 < self.accept_rate <= 1, "--accept-rate must be in (0, 1], e.g. 0.95"),
        ]
        for ok, message in checks:
            if not ok:
                raise TledgeError(message)
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 32):
            raise TledgeError("--image-size must be two sides of at least 32 pixels")
        if self.from_run is not None and self.fine_tune_epochs == 0:
            raise TledgeError("--from-run starts phase 2: give --fine-tune-epochs > 0")

    @property
    def phase2_lr(self) -> float:
        """The fine-tuning learning rate (`fine_tune_lr`, default `learning_rate / 10`)."""
        return self.fine_tune_lr if self.fine_tune_lr is not None else self.learning_rate / 10

    def to_dict(self) -> dict[str, Any]:
        """Return the config as config.json stores it (plus "tledge_version").

        Data folders (`DATA_PATH_FIELDS`) are resolved to absolute paths.
        """
        values = dataclasses.asdict(self)
        # Absolute, so the run's data is found from any working folder (the exporter,
        # `tledge evaluate`, a resumed run).
        for key in DATA_PATH_FIELDS:
            if values[key] is not None and not is_tfds(values[key]):
                values[key] = str(Path(values[key]).resolve())
        values["image_size"] = list(self.image_size) if self.image_size else None
        values["fine_tune_lr"] = self.phase2_lr
        values["tledge_version"] = __version__
        return values

    def identity(self) -> dict[str, Any]:
        """The fields that define what the run computes (no location or version)."""
        values = self.to_dict()
        for key in (*LOCATION_FIELDS, "tledge_version"):
            values.pop(key)
        return values

    def fingerprint(self) -> str:
        """Short hash of `identity()`: the same command gives the same run name."""
        text = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]

    def run_config(self) -> RunConfig:
        """The config.json this config writes, as the `RunConfig` readers get back."""
        return RunConfig.from_dict(self.to_dict())

    @classmethod
    def from_run_config(cls, config: RunConfig) -> TrainConfig:
        """The config a run folder stored (every key of its config.json that is a field)."""
        return cls.from_dict(config.settings)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build a config from config.json contents; unknown keys are ignored."""
        known = {field.name for field in dataclasses.fields(cls)}
        kept = {key: value for key, value in values.items() if key in known}
        if kept.get("image_size") is not None:
            kept["image_size"] = tuple(kept["image_size"])
        return cls(**kept)
