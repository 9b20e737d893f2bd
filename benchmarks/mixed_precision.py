"""float32 vs mixed_float16 on the same fine-tune: training images/s and test accuracy.

Runs `train()` (the product path) once per precision with the same config, each in its
own run folder, and reports per precision the steady images/s of each phase (phase 1:
the backbone feature pass; phase 2: the fine-tuning epochs; the first and last step of
each pass, which trace and fill the pipeline, are left out), the wall seconds of each
phase and the test accuracy. Meant for a GPU (mixed_float16 pays off only on tensor
cores; on a CPU it is refused unless --force-precision). The course's exercise, Food-101
at 10 %, as one command on a GPU machine:

    tledge bench mixed-precision --data tfds:food101 --test tfds:food101/validation \
        --train-fraction 0.1 --tfds-data-dir DIR --output benchmarks/results/mixed_precision
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.benchmarks.report import BenchmarkOutput, Log, build_report, write_report

POLICIES = ("float32", "mixed_float16")


@dataclass(frozen=True)
class PrecisionSetup:
    """The fine-tune both precisions run (TrainConfig fields of the same names)."""

    data: str
    test: str
    weights: str = "imagenet"
    backbone: str = "mobilenetv2"
    train_fraction: float = 1.0
    epochs: int = 3
    fine_tune_epochs: int = 3
    batch_size: int = 64
    image_size: int = 224
    tfds_data_dir: str | None = None
    force_precision: bool = False


def measure_precision(setup: PrecisionSetup, policy: str, runs: Path, log: Log) -> dict[str, Any]:
    """Train `setup` under `policy` in `runs/<policy>`; images/s per phase and accuracy."""
    from tledge.trainer.callbacks import read_history
    from tledge.trainer.config import TrainConfig
    from tledge.trainer.features import feature_pass
    from tledge.trainer.training import train

    features = runs / ".feature_cache"
    # The phase-1 pass is what is timed: features of an earlier run would skip it.
    shutil.rmtree(features, ignore_errors=True)
    config = TrainConfig(
        data=setup.data,
        test=setup.test,
        weights=setup.weights,
        backbone=setup.backbone,
        train_fraction=setup.train_fraction,
        epochs=setup.epochs,
        fine_tune_epochs=setup.fine_tune_epochs,
        batch_size=setup.batch_size,
        image_size=(setup.image_size, setup.image_size),
        tfds_data_dir=setup.tfds_data_dir,
        precision=policy,
        force_precision=setup.force_precision,
        refit=False,
        augment=False,
        patience=0,
        output=str(runs),
        name=policy,
        overwrite=True,
    )
    result = train(config, log=lambda text: log(f"{policy}: {text}"))
    passes = [feature_pass(path) for path in features.glob("*.npy")]
    passes = sorted((p for p in passes if p), key=lambda p: p["images"])
    steps = [
        e["steady_step_seconds"]
        for e in read_history(result.run.history)["epochs"]
        if e["phase"] == "fine_tuning" and e["steady_step_seconds"]
    ]
    return {
        "precision": policy,
        "test_accuracy": result.metrics["test_accuracy"],
        "images_per_second": {
            "feature_extraction": passes[-1]["steady_images_per_second"] if passes else None,
            "fine_tuning": round(setup.batch_size * len(steps) / sum(steps), 2) if steps else None,
        },
        "phase_seconds": result.metrics["phase_seconds"],
        "training_images": passes[-1]["images"] if passes else None,
    }


def mixed_precision_benchmark(
    setup: PrecisionSetup, output: Path, command: str = "", log: Log = lambda text: None
) -> BenchmarkOutput:
    """Train under each of `POLICIES`; write mixed_precision.{json,md} into `output`."""
    rows = [measure_precision(setup, policy, output / "runs", log) for policy in POLICIES]
    notes = [
        "Images/s are steady state (first and last step of each pass left out): phase 1 "
        "is the backbone feature pass, phase 2 the mean over the fine-tuning epochs.",
        f"Same config for both: {setup}.",
    ]
    section = {"rows": rows}
    report = build_report(command, notes=notes, mixed_precision=section)
    return BenchmarkOutput(report, write_report(report, output, "mixed_precision"))
