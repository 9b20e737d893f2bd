"""`tledge train`: transfer learning on a class-per-folder image dataset."""

from __future__ import annotations

import dataclasses

import click

from tledge.commands.progress import ProgressBars
from tledge.trainer.caching import CACHE_MODES
from tledge.trainer.config import LR_SCHEDULES, PRECISIONS, TrainConfig
from tledge.trainer.distribution import STRATEGIES

# The library's defaults, so the command and `train(TrainConfig(...))` never disagree.
DEFAULTS = {
    field.name: field.default
    for field in dataclasses.fields(TrainConfig)
    if field.default is not dataclasses.MISSING
}

DEFAULTS_NOTE = "defaults chosen by cross-validation on food_mnist10's training photos (see README)"


@click.command(epilog=DEFAULTS_NOTE)
@click.option(
    "--data",
    type=click.Path(),
    help="Training folder DATA/<class>/*.jpg, or tfds:NAME[/SPLIT] (TensorFlow Datasets) "
    "(required).",
)
@click.option(
    "--val",
    type=click.Path(),
    help="Validation folder or tfds:NAME[/SPLIT] (default: hold out --val-split).",
)
@click.option("--test", type=click.Path(), help="Test folder or tfds:NAME[/SPLIT].")
@click.option(
    "--tfds-data-dir",
    type=click.Path(),
    envvar="TFDS_DATA_DIR",
    help="Prepared TFDS datasets to read (never downloads into it) [env: TFDS_DATA_DIR].",
)
@click.option(
    "--backbone",
    default=DEFAULTS["backbone"],
    show_default=True,
    help="mobilenetv2, efficientnetb0, or hub:HANDLE (needs the hub extra).",
)
@click.option(
    "--alpha", default=DEFAULTS["alpha"], show_default=True, help="MobileNetV2 width multiplier."
)
@click.option(
    "--weights",
    default=DEFAULTS["weights"],
    show_default=True,
    help="imagenet (download), none, or PATH of a no-top Keras .h5 file.",
)
@click.option(
    "--image-size",
    type=int,
    nargs=2,
    metavar="H W",
    help="Input size (default: 256 256 for mobilenetv2, 224 224 otherwise).",
)
@click.option(
    "--batch-size",
    default=DEFAULTS["batch_size"],
    show_default=True,
    help="Images per step and replica (global batch = this x replicas in sync; the log says it).",
)
@click.option(
    "--strategy",
    default=DEFAULTS["strategy"],
    show_default=True,
    type=click.Choice(STRATEGIES),
    help="one device; mirrored over every local GPU (auto: mirrored with 2+ GPUs); "
    "multiworker: the same command on every machine of TF_CONFIG's cluster (docs/scaling.md).",
)
@click.option(
    "--epochs",
    default=DEFAULTS["epochs"],
    show_default=True,
    help="Phase 1 (frozen backbone) epochs.",
)
@click.option(
    "--fine-tune-epochs",
    default=DEFAULTS["fine_tune_epochs"],
    show_default=True,
    help="Phase 2 epochs.",
)
@click.option(
    "--fine-tune-layers",
    default=DEFAULTS["fine_tune_layers"],
    show_default=True,
    help="Top backbone layers phase 2 unfreezes (BatchNorm statistics stay fixed).",
)
@click.option("--learning-rate", default=DEFAULTS["learning_rate"], show_default=True)
@click.option("--fine-tune-lr", type=float, help="Phase 2 learning rate [default: lr / 10].")
@click.option("--dropout", default=DEFAULTS["dropout"], show_default=True)
@click.option("--label-smoothing", default=DEFAULTS["label_smoothing"], show_default=True)
@click.option("--val-split", default=DEFAULTS["val_split"], show_default=True)
@click.option(
    "--train-fraction",
    default=DEFAULTS["train_fraction"],
    show_default=True,
    help="Stratified fraction of the training images to use.",
)
@click.option("--seed", default=DEFAULTS["seed"], show_default=True)
@click.option("--augment/--no-augment", default=DEFAULTS["augment"], show_default=True)
@click.option(
    "--mixup",
    default=DEFAULTS["mixup"],
    show_default=True,
    help="MixUp strength (Beta alpha) while training; 0 is off.",
)
@click.option(
    "--precision",
    default=DEFAULTS["precision"],
    show_default=True,
    type=click.Choice(PRECISIONS),
)
@click.option("--force-precision", is_flag=True, help="Allow mixed_float16 without a GPU.")
@click.option(
    "--lr-schedule",
    default=DEFAULTS["lr_schedule"],
    show_default=True,
    type=click.Choice(LR_SCHEDULES),
)
@click.option(
    "--patience",
    default=DEFAULTS["patience"],
    show_default=True,
    help="Early stopping patience (epochs; fine-tuning is judged from its 4th); 0 disables it.",
)
@click.option(
    "--cache",
    default=DEFAULTS["cache"],
    show_default=True,
    type=click.Choice(CACHE_MODES),
    help="Decoded images between epochs: memory, disk (run folder), none (decode each "
    "epoch), or auto (memory if they fit in a quarter of free memory).",
)
@click.option(
    "--feature-cache/--no-feature-cache",
    default=True,
    show_default=True,
    help="Train phase 1 on cached features when augmentation is off.",
)
@click.option(
    "--refit/--no-refit",
    default=DEFAULTS["refit"],
    show_default=True,
    help="Finally retrain on train + val for the epochs chosen on val.",
)
@click.option(
    "--calibrate/--no-calibrate",
    default=DEFAULTS["calibrate"],
    show_default=True,
    help="Fold a temperature fitted on val into the model and set the unknown threshold.",
)
@click.option(
    "--accept-rate",
    type=float,
    default=DEFAULTS["accept_rate"],
    show_default=True,
    help="Fraction of val images the unknown threshold accepts.",
)
@click.option("--from-run", type=click.Path(), help="Fine-tune the model of an existing run.")
@click.option(
    "--add-data",
    type=click.Path(file_okay=False),
    help="With --from-run: update only its head on its photos plus these (class folders).",
)
@click.option("--name", help="Run folder name (default: backbone, dataset and config hash).")
@click.option(
    "--output", default=DEFAULTS["output"], show_default=True, help="Folder of run folders."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing run of the same name.")
@click.option("--quiet", is_flag=True, help="No per-epoch lines.")
def train(quiet: bool, image_size: tuple[int, int] | None, add_data: str | None, **options) -> None:
    """Train a classifier: frozen-backbone phase, then fine-tuning; writes runs/<name>/.

    Re-running the same command resumes an interrupted run. With --from-run RUN
    --add-data DIR, only RUN's head is trained further, on its photos plus DIR's
    (--epochs, --learning-rate, --batch-size apply; features are cached in RUN).

    \b
    Examples:
      tledge train --data photos/train --test photos/test --backbone mobilenetv2
      tledge train --from-run runs/food --add-data new_photos --name food-v2
    """
    from tledge.core.errors import TledgeError

    if add_data is not None:
        click.echo(update_head(add_data, **options))
        return
    if options["data"] is None:
        raise TledgeError("--data is required (or --from-run RUN --add-data DIR)")
    from tledge.trainer.training import train as run_training

    config = TrainConfig(image_size=tuple(image_size) if image_size else None, **options)
    bars = ProgressBars()

    def log(message: str) -> None:
        bars.close()
        click.echo(message, err=True)

    try:
        result = run_training(config, log=log, verbose=0 if quiet else 2, on_progress=bars)
    finally:
        bars.close()
    click.echo(format_summary(result.run.root, result.metrics))


def update_head(add_data: str, **options) -> str:
    """Run a head-only update (`--add-data`) and return its summary lines."""
    from pathlib import Path

    from tledge.core.errors import TledgeError
    from tledge.trainer.update import UpdateConfig, update_run

    if options["from_run"] is None:
        raise TledgeError("--add-data needs --from-run RUN (the run to update)")
    config = UpdateConfig(
        from_run=Path(options["from_run"]),
        add_data=Path(add_data),
        output=Path(options["output"]),
        name=options["name"],
        epochs=options["epochs"],
        learning_rate=options["learning_rate"],
        batch_size=options["batch_size"],
        seed=options["seed"],
        overwrite=options["overwrite"],
    )
    result = update_run(config, log=lambda message: click.echo(message, err=True))
    lines = [f"run: {result.run.root}", f"added photos: {result.added}"]
    if result.accuracy_after is not None:
        lines.append(
            f"test accuracy: {result.accuracy_before:.1%} before -> "
            f"{result.accuracy_after:.1%} after the update"
        )
    lines.append(f"update time: {result.seconds:.1f} s")
    return "\n".join(lines)


def format_summary(run_root, metrics: dict) -> str:
    """The few lines printed when training ends."""
    lines = [f"run: {run_root}"]
    final = metrics.get("test_accuracy")
    first = metrics.get("feature_extraction_test_accuracy")
    if final is not None:
        start = f"{first:.1%} after phase 1 -> " if first is not None else ""
        lines.append(
            f"test accuracy: {start}{final:.1%} final ({metrics['num_test_images']} images)"
        )
    if metrics.get("best_val_accuracy") is not None:
        lines.append(f"best val accuracy: {metrics['best_val_accuracy']:.1%}")
    calibration = metrics.get("calibration")
    if calibration:
        lines.append(calibration_line(calibration))
    lines.append(f"training time: {metrics['train_seconds']:.0f} s")
    if metrics.get("skipped_files"):
        lines.append(f"skipped files: {metrics['skipped_files']}")
    return "\n".join(lines)


def calibration_line(calibration: dict) -> str:
    """Temperature, unknown threshold and (with a test set) the test ECE before -> after."""
    line = (
        f"calibration: temperature {calibration['temperature']:.3f}, "
        f"unknown below {calibration['unknown_threshold']:.3f}"
    )
    if calibration.get("test_ece_before") is not None:
        line += (
            f"; test ECE {calibration['test_ece_before']:.3f} -> "
            f"{calibration['test_ece_after']:.3f}, log loss "
            f"{calibration['test_log_loss_before']:.3f} -> {calibration['test_log_loss_after']:.3f}"
        )
    return line
