"""float32 vs mixed_float16 on the same fine-tune: training images/s and test accuracy.

Runs `train()` (the product path) twice with the same config but `precision`, each in
its own run folder, and reports, per precision, images/s of each phase (training images x
epochs / phase seconds) and the test accuracy. Meant for a GPU (mixed_float16 pays off
only on tensor cores; on a CPU it is refused unless --force-precision). The course's
exercise, Food-101 at 10 %:

    python -m tledge.benchmarks.mixed_precision --data tfds:food101 \
        --test tfds:food101/validation --train-fraction 0.1 --epochs 3 --fine-tune-epochs 3 \
        --output benchmarks/results/mixed_precision
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from tledge.benchmarks.machine_info import machine_info
from tledge.core.atomic import atomic_write_text

POLICIES = ("float32", "mixed_float16")


def compare_precisions(
    base: dict[str, Any], output: Path, force: bool = False
) -> dict[str, dict[str, Any]]:
    """Train `base` (TrainConfig fields) once per policy; return images/s and accuracy."""
    from tledge.trainer.config import TrainConfig
    from tledge.trainer.training import train

    report: dict[str, dict[str, Any]] = {}
    for policy in POLICIES:
        config = TrainConfig(
            **base, precision=policy, force_precision=force, output=str(output), name=policy
        )
        messages: list[str] = []

        def log(message: str, messages: list[str] = messages) -> None:
            messages.append(message)
            print(message, flush=True)

        metrics = train(config, log=log, verbose=2).metrics
        epochs = {"feature_extraction": config.epochs, "fine_tuning": config.fine_tune_epochs}
        images = _training_images(messages)
        report[policy] = {
            "test_accuracy": metrics["test_accuracy"],
            "images_per_second": {
                phase: round(images * epochs.get(phase, 1) / seconds, 1)
                for phase, seconds in metrics["phase_seconds"].items()
                if seconds > 0
            },
            "phase_seconds": metrics["phase_seconds"],
        }
    return report


def _training_images(messages: list[str]) -> int:
    """The training image count from the trainer's "N classes: X train, ..." log line."""
    for message in messages:
        found = re.search(r"classes: (\d+) train", message)
        if found:
            return int(found.group(1))
    raise RuntimeError("the trainer did not log its split sizes")


def main(argv: list[str] | None = None) -> None:
    """Parse options, compare the two precisions, write mixed_precision.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--train-fraction", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fine-tune-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--tfds-data-dir")
    parser.add_argument("--force-precision", action="store_true")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/mixed_precision"))
    args = parser.parse_args(argv)
    base = {
        "data": args.data,
        "test": args.test,
        "train_fraction": args.train_fraction,
        "epochs": args.epochs,
        "fine_tune_epochs": args.fine_tune_epochs,
        "batch_size": args.batch_size,
        "image_size": (args.image_size, args.image_size),
        "tfds_data_dir": args.tfds_data_dir,
        "refit": False,
        "augment": False,
    }
    report = compare_precisions(base, args.output / "runs", args.force_precision)
    args.output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        args.output / "mixed_precision.json",
        json.dumps({"machine": machine_info(), "config": base, "results": report}, indent=2),
    )
    lines = ["| precision | test accuracy | images/s per phase |", "|---|---|---|"]
    for policy, row in report.items():
        rates = ", ".join(f"{k} {v}" for k, v in row["images_per_second"].items())
        lines.append(f"| {policy} | {row['test_accuracy']} | {rates} |")
    atomic_write_text(args.output / "mixed_precision.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
