"""Training speed: frozen-phase epochs the naive way vs the trainer's cached-feature path.

The measurement itself is the trainer's `time_frozen_phase` (same seed, same head
weights, same images in the same order, no augmentation, backbone frozen with BatchNorm
in inference mode):

- naive: `model.fit` on the images for N epochs; every epoch pushes every image
  through the frozen backbone again.
- cached, cold (a first run): one backbone pass over train + validation images to get
  the pooled features, then N epochs of the head alone.
- cached, warm (a rerun or sweep whose features are already in the on-disk cache): the
  N head epochs alone.

Cold, the ratio cannot reach N: the one backbone pass costs about one naive epoch.
Accuracy is measured on the held-out test photos, which are given to the trainer as its
validation folder. Where a GPU is present, training images/s under float32 and
mixed_float16 are compared too; on a CPU that part is skipped with a note.

    python -m tledge.benchmarks.training --data food_mnist10/train --test food_mnist10/test \
        --weights mobilenet_v2_1.0_224_no_top.h5 --image-size 128 --train-fraction 0.5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
        train_fraction: Stratified, seeded fraction of the training images to use.
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
    train_fraction: float = 0.5
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    dropout: float = 0.2
    seed: int = 42


@dataclass(frozen=True)
class TrainingRow:
    """One method's result: wall seconds for all epochs, held-out accuracy, speed-up vs naive."""

    method: str
    epochs: int
    seconds: float
    accuracy: float
    speedup: float


def measure_frozen_phase(setup: TrainingSetup, progress: Progress | None = None) -> dict:
    """Train the frozen phase both ways on `setup` with the trainer and compare.

    Returns:
        {"setup", "num_train_images", "rows": [naive, cached cold, cached warm],
        "feature_seconds", "speedup", "warm_speedup", "accuracy_gap_pp", "meets_target",
        "precision": {...}}.

    Raises:
        TledgeError: for missing data folders or unusable weights.

    Example:
        >>> section = measure_frozen_phase(TrainingSetup("food/train", "food/test"))
        >>> section["speedup"]
        4.1
    """
    from tledge.trainer import TrainConfig, time_frozen_phase

    say = progress or (lambda _text: None)
    config = TrainConfig(
        data=setup.data,
        val=setup.test,
        backbone=setup.backbone,
        alpha=setup.alpha,
        weights=setup.weights,
        image_size=setup.image_size,
        batch_size=setup.batch_size,
        epochs=setup.epochs,
        fine_tune_epochs=0,
        learning_rate=setup.learning_rate,
        dropout=setup.dropout,
        train_fraction=setup.train_fraction,
        seed=setup.seed,
        augment=False,
        precision="float32",
    )
    say(f"training the frozen phase naively, then on cached features ({setup.epochs} epochs each)")
    timing = time_frozen_phase(config, log=say)
    gap_pp = 100 * abs(timing.cached_val_accuracy - timing.naive_val_accuracy)
    warm_speedup = timing.naive_seconds / timing.head_seconds
    return {
        "setup": setup,
        "num_train_images": timing.num_train_images,
        "rows": [
            TrainingRow(
                "naive fit (frozen backbone)",
                timing.epochs,
                timing.naive_seconds,
                timing.naive_val_accuracy,
                1.0,
            ),
            TrainingRow(
                "cached features, cold (first run)",
                timing.epochs,
                timing.cached_seconds,
                timing.cached_val_accuracy,
                timing.speedup,
            ),
            TrainingRow(
                "cached features, warm (rerun)",
                timing.epochs,
                timing.head_seconds,
                timing.cached_val_accuracy,
                warm_speedup,
            ),
        ],
        "feature_seconds": timing.feature_seconds,
        "speedup": timing.speedup,
        "warm_speedup": warm_speedup,
        "accuracy_gap_pp": gap_pp,
        "meets_target": timing.speedup >= TARGET_SPEEDUP and gap_pp <= TARGET_ACCURACY_GAP_PP,
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


def _compile(model, learning_rate: float) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["accuracy"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: compare the two methods and write training.{json,md}."""
    from tledge.benchmarks.report import build_report, training_table, write_report

    parser = argparse.ArgumentParser(prog="python -m tledge.benchmarks.training")
    parser.add_argument("--data", required=True, help="class-per-folder training images")
    parser.add_argument("--test", required=True, help="class-per-folder test images")
    parser.add_argument("--weights", default="none", help="none, imagenet or a no-top .h5")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--train-fraction", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--output", type=Path, default=Path("tledge-bench"))
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    setup = TrainingSetup(
        data=args.data,
        test=args.test,
        weights=args.weights,
        alpha=args.alpha,
        image_size=(args.image_size, args.image_size),
        train_fraction=args.train_fraction,
        epochs=args.epochs,
    )
    section = measure_frozen_phase(setup, progress=lambda text: print(text, file=sys.stderr))
    notes = training_notes(section)
    command = " ".join(["python -m tledge.benchmarks.training", *sys.argv[1:]])
    report = build_report(command, notes=notes, training=section)
    written = write_report(report, args.output, "training")
    print(training_table(report["training"]))
    print("Wrote " + ", ".join(map(str, written)), file=sys.stderr)
    return 0


def training_notes(section: dict) -> list[str]:
    """One-line verdicts on the targets, for the report's notes."""
    setup = section["setup"]
    verdict = "meets" if section["meets_target"] else "MISSES"
    notes = [
        f"Training: {section['num_train_images']} train images, accuracy on {setup.test}, "
        f"{setup.backbone} alpha {setup.alpha} at {setup.image_size[0]} px, weights "
        f"{Path(setup.weights).name}, batch {setup.batch_size}, {setup.epochs} epochs.",
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


if __name__ == "__main__":
    sys.exit(main())
