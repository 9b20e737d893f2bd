"""Training speed: frozen-phase epochs the naive way vs the trainer's cached-feature path.

Both methods are the trainer's own code: `phases.fit_phase` on images (what phase 1 runs
with augmentation on) and `features.fit_head_on_features` (what phase 1 runs with it
off), each in a scratch run folder with the trainer's callbacks. Both start from the same
seed, the same model (`build_classifier`: backbone frozen, BatchNorm in inference mode)
and the same training images, with a constant learning rate, no label smoothing and no
validation during training; test accuracy is measured afterwards, untimed.

- naive: `fit_phase` on the images for N epochs; every epoch pushes every image through
  the frozen backbone again.
- cached, cold: `fit_head_on_features` with an empty feature cache: one backbone pass to
  get pooled features (written to the cache; its cost is counted), then N epochs of the
  head alone, whose weights are copied back into the full model;
- cached, warm: the same with the features read back from that cache, as in a rerun or
  a hyperparameter sweep on the same images.

Cold, the ratio cannot reach N: the one backbone pass costs about one naive epoch.

Both timings include the first decode of the images. Top-1 accuracy of each final model is
measured on the test images (not timed). Where a GPU is present, training images/s under
float32 and mixed_float16 are compared too; on a CPU that part is skipped with a note.

    tledge bench training --data food_mnist10/train --test food_mnist10/test \
        --weights mobilenet_v2_1.0_224_no_top.h5 --image-size 128 --per-class 40
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tledge.benchmarks.report import BenchmarkOutput, Log, build_report, write_report
from tledge.core.folders import list_class_folders
from tledge.core.metrics import accuracy, top1

TARGET_SPEEDUP = 10.0
TARGET_ACCURACY_GAP_PP = 1.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingSetup:
    """What both training methods run on.

    Attributes:
        data: Class-per-folder training images.
        test: Class-per-folder test images (same classes).
        weights: "none", "imagenet" or a no-top Keras .h5 weights file.
        backbone: Registry name of the backbone.
        alpha: MobileNetV2 width multiplier.
        image_size: Model input (height, width).
        per_class: Training images per class (the first by name); None = all.
        test_per_class: Test images per class (the first by name); None = all.
        epochs: Frozen-phase epochs of each method.
        batch_size: Images per step.
        learning_rate: Adam learning rate.
        dropout: Dropout before the classifier.
        seed: Seed of the initialisation and shuffling.
    """

    data: str
    test: str
    weights: str = "none"
    backbone: str = "mobilenetv2"
    alpha: float = 1.0
    image_size: tuple[int, int] = (128, 128)
    per_class: int | None = 40
    test_per_class: int | None = None
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    dropout: float = 0.2
    seed: int = 42


@dataclass(frozen=True)
class TrainingRow:
    """One method's result: wall seconds for all epochs, test accuracy, speed-up vs naive."""

    method: str
    epochs: int
    seconds: float
    accuracy: float
    speedup: float


def measure_frozen_phase(setup: TrainingSetup, progress: Progress | None = None) -> dict:
    """Train the frozen phase both ways on `setup` and compare time and accuracy.

    Returns:
        {"setup": ..., "num_train_images", "num_test_images", "rows": [naive, cached],
        "speedup", "accuracy_gap_pp", "meets_target", "precision": {...}}.

    Raises:
        TledgeError: for missing data folders or unusable weights.

    Example:
        >>> section = measure_frozen_phase(TrainingSetup("food/train", "food/test"))
        >>> section["speedup"]
        12.3
    """
    import keras

    from tledge.core.run_folder import RunFolder
    from tledge.trainer.backbones import get_backbone
    from tledge.trainer.config import TrainConfig
    from tledge.trainer.data import DatasetSplits, image_dataset
    from tledge.trainer.features import fit_head_on_features
    from tledge.trainer.model import build_classifier
    from tledge.trainer.phases import FEATURE_EXTRACTION, PhasePlan, fit_phase

    say = progress or (lambda _text: None)
    train, class_names = _split(setup.data, None, setup.per_class)
    test, _ = _split(setup.test, class_names, setup.test_per_class)
    num_classes = len(class_names)
    spec = get_backbone(setup.backbone)
    pixels = spec.run_input_contract(setup.image_size)
    plan = PhasePlan(
        phase=FEATURE_EXTRACTION,
        first_epoch=0,
        epochs=setup.epochs,
        learning_rate=setup.learning_rate,
        lr_schedule="constant",
        label_smoothing=0.0,
        patience=0,
        boundaries=(),
    )

    def fresh_model():
        keras.utils.set_random_seed(setup.seed)
        return build_classifier(
            spec, setup.image_size, setup.alpha, setup.weights, num_classes, setup.dropout
        )

    def test_accuracy(model) -> float:
        dataset = image_dataset(test, num_classes, pixels, setup.batch_size)
        return accuracy(top1(model.predict(dataset, verbose=0)), test.labels)

    def no_checkpoint() -> None:
        """Without validation data no epoch is "best": nothing is saved."""

    with tempfile.TemporaryDirectory() as scratch:
        say(f"naive: the trainer's fit_phase through the frozen backbone, {setup.epochs} epochs")
        model = fresh_model()
        images = image_dataset(
            train, num_classes, pixels, setup.batch_size, shuffle_seed=setup.seed
        )
        run = RunFolder(Path(scratch) / "naive")
        start = time.perf_counter()
        fit_phase(model, images, None, plan, run, no_checkpoint)
        naive_seconds = time.perf_counter() - start
        naive_accuracy = test_accuracy(model)

        config = TrainConfig(
            data=setup.data,
            backbone=setup.backbone,
            alpha=setup.alpha,
            weights=setup.weights,
            image_size=setup.image_size,
            batch_size=setup.batch_size,
            epochs=setup.epochs,
            learning_rate=setup.learning_rate,
            dropout=setup.dropout,
            seed=setup.seed,
            precision="float32",
            output=str(Path(scratch) / "runs"),
        )
        splits = DatasetSplits(class_names, train, None, test, skipped=0)

        def cached_path(name: str) -> tuple[float, float]:
            model = fresh_model()
            run = RunFolder(Path(scratch) / name.replace(" ", "_"))
            start = time.perf_counter()
            fit_head_on_features(model, splits, config, pixels, plan, run, no_checkpoint)
            seconds = time.perf_counter() - start
            return seconds, test_accuracy(model)

        say("cached, cold: one backbone pass (written to the cache), then the head alone")
        cold_seconds, cold_accuracy = cached_path("cached cold")
        say("cached, warm: features read from the cache (a rerun or sweep), then the head")
        warm_seconds, warm_accuracy = cached_path("cached warm")

    speedup = naive_seconds / cold_seconds
    gap_pp = 100 * abs(cold_accuracy - naive_accuracy)
    return {
        "setup": setup,
        "num_train_images": len(train),
        "num_test_images": len(test),
        "rows": [
            TrainingRow(
                "naive fit (frozen backbone)", setup.epochs, naive_seconds, naive_accuracy, 1.0
            ),
            TrainingRow(
                "cached features, cold (tledge, first run)",
                setup.epochs,
                cold_seconds,
                cold_accuracy,
                speedup,
            ),
            TrainingRow(
                "cached features, warm (tledge, rerun)",
                setup.epochs,
                warm_seconds,
                warm_accuracy,
                naive_seconds / warm_seconds,
            ),
        ],
        "speedup": speedup,
        "warm_speedup": naive_seconds / warm_seconds,
        "accuracy_gap_pp": gap_pp,
        "meets_target": speedup >= TARGET_SPEEDUP and gap_pp <= TARGET_ACCURACY_GAP_PP,
        "precision": measure_precision_throughput(setup, say),
    }


def measure_precision_throughput(
    setup: TrainingSetup, progress: Progress | None = None, steps: int = 20, force: bool = False
) -> dict:
    """Training images/s of the full model (backbone trainable) under float32 and mixed_float16.

    Only meaningful on a GPU with tensor cores; without a GPU (and without `force`) it
    returns {"skipped": reason}.
    """
    import keras
    import tensorflow as tf

    from tledge.trainer.backbones import get_backbone
    from tledge.trainer.model import build_classifier
    from tledge.trainer.precision import dtype_policy

    if not tf.config.list_physical_devices("GPU") and not force:
        return {
            "skipped": "no GPU on this machine: float32 vs mixed precision not measured "
            "(mixed_float16 only pays off on GPUs with tensor cores)"
        }
    say = progress or (lambda _text: None)
    rng = np.random.default_rng(setup.seed)
    images = rng.uniform(0, 255, (setup.batch_size, *setup.image_size, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, setup.batch_size), 10)
    rates = {}
    for policy in ("float32", "mixed_float16"):
        say(f"training images/s under {policy}")
        with dtype_policy(policy):
            keras.utils.set_random_seed(setup.seed)
            model = build_classifier(
                get_backbone(setup.backbone),
                setup.image_size,
                setup.alpha,
                "none",
                10,
                setup.dropout,
            )
            model.trainable = True
            _compile(model, setup.learning_rate)
            model.train_on_batch(images, labels)  # builds and compiles the step
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(images, labels)
            rates[policy] = steps * setup.batch_size / (time.perf_counter() - start)
    return {
        "images_per_s": rates,
        "mixed_speedup": rates["mixed_float16"] / rates["float32"],
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
    }


def _split(folder: str, class_names, per_class: int | None):
    from tledge.trainer.data import Split

    listing = list_class_folders(folder, class_names)
    paths, labels, taken = [], [], {}
    for path, label in zip(listing.paths, listing.labels, strict=True):
        if per_class is None or taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            paths.append(path)
            labels.append(label)
    return Split(tuple(paths), tuple(labels)), listing.class_names


def _compile(model, learning_rate: float) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["accuracy"],
    )


def training_notes(section: dict) -> list[str]:
    """One-line verdicts on the targets, for the report's notes."""
    setup = section["setup"]
    verdict = "meets" if section["meets_target"] else "MISSES"
    notes = [
        f"Training: {section['num_train_images']} train / {section['num_test_images']} test "
        f"images, {setup.backbone} alpha {setup.alpha} at {setup.image_size[0]} px, weights "
        f"{Path(setup.weights).name}, batch {setup.batch_size}, dropout {setup.dropout}, "
        f"{setup.epochs} epochs.",
        f"Cached features (cold, first run): {section['speedup']:.1f}x faster, accuracy gap "
        f"{section['accuracy_gap_pp']:.1f} pp: {verdict} the target (>= {TARGET_SPEEDUP:.0f}x "
        f"at +-{TARGET_ACCURACY_GAP_PP:.0f} pp). With the feature cache warm (rerun or "
        f"sweep): {section['warm_speedup']:.1f}x.",
    ]
    precision = section["precision"]
    if "skipped" in precision:
        notes.append(f"Mixed precision: skipped, {precision['skipped']}.")
    else:
        rates = precision["images_per_s"]
        notes.append(
            f"Mixed precision on {precision['device']}: float32 {rates['float32']:.0f} img/s, "
            f"mixed_float16 {rates['mixed_float16']:.0f} img/s "
            f"({precision['mixed_speedup']:.2f}x)."
        )
    return notes


def training_benchmark(
    setup: TrainingSetup, output: Path, command: str = "", log: Log = lambda text: None
) -> BenchmarkOutput:
    """Compare naive and cached frozen-phase training on `setup`; write training.{json,md}."""
    section = measure_frozen_phase(setup, progress=log)
    report = build_report(command, notes=training_notes(section), training=section)
    return BenchmarkOutput(report, write_report(report, output, "training"))
