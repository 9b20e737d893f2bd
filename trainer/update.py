"""`tledge train --from-run RUN --add-data DIR`: a head-only update with reviewed photos.

The previous run's model is kept whole; only its classification head is trained further,
on backbone features of the run's training photos plus the new ones (e.g. frames filed
in `tledge app`), starting from the head it has. The backbone (possibly fine-tuned)
is the previous run's own, so the features are computed with that model and cached in
`RUN/features/` under a key of the model file and the image files: a second update
computes features only for photos it has not seen. The result is a new run folder that
`tledge export` takes like any other (the drift gate uses the previous run's test set).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tledge.core.atomic import atomic_path, atomic_write_text
from tledge.core.errors import TledgeError
from tledge.core.folders import list_class_folders
from tledge.core.input_contract import InputContract
from tledge.core.run_folder import RunFolder, read_json
from tledge.core.sources import run_image_folder
from tledge.trainer.data import Split
from tledge.trainer.features import copy_head, feature_cache_key, head_model, pooled_features
from tledge.trainer.scoring import classification_metrics

FEATURES_FOLDER = "features"


@dataclass(frozen=True)
class UpdateConfig:
    """A head-only update.

    Attributes:
        from_run: The run to update.
        add_data: Class-per-folder new photos (classes must be the run's).
        output: Folder of run folders.
        name: New run's name (default: `<from_run>-update-<n>`).
        epochs: Passes over old + new features.
        learning_rate: Adam learning rate of the head.
        batch_size: Images per batch (feature extraction and head training).
        seed: Shuffle seed.
        overwrite: Replace an existing run of that name.
    """

    from_run: Path
    add_data: Path
    output: Path = Path("runs")
    name: str | None = None
    epochs: int = 20
    learning_rate: float = 3e-4
    batch_size: int = 32
    seed: int = 42
    overwrite: bool = False


@dataclass(frozen=True)
class UpdateResult:
    """How the update went.

    Attributes:
        run: The new run folder.
        added: New photos used.
        seconds: Wall time of the whole update.
        accuracy_before: The previous model's test accuracy (None without a test set).
        accuracy_after: The updated model's test accuracy (None without a test set).
    """

    run: RunFolder
    added: int
    seconds: float
    accuracy_before: float | None
    accuracy_after: float | None


def update_run(
    config: UpdateConfig, log: Callable[[str], None] = lambda line: None
) -> UpdateResult:
    """Train the head of `config.from_run` on its photos plus `config.add_data`.

    Raises:
        TledgeError: for a missing run, new photos of unknown classes, or an existing
            output run without `overwrite`.
    """
    import keras

    started = time.monotonic()
    source = RunFolder.open(config.from_run)
    settings = read_json(source.config)
    labels = source.read_labels()
    # How the model takes images; runs from before input_contract.json took raw RGB, stretched.
    input_contract = source.read_input_contract() or InputContract.raw_rgb_stretch_half_pixel(
        tuple(settings["image_size"])
    )
    old = _split(_run_folder(source, "data"), labels, "the run's --data")
    new = _split(config.add_data, labels, "--add-data")
    test = (
        _split(_run_folder(source, "test"), labels, "the run's --test")
        if settings.get("test")
        else None
    )
    target = _target(config, source)
    keras.utils.set_random_seed(config.seed)
    model = keras.saving.load_model(source.trained_model)

    def features(split: Split, what: str) -> np.ndarray:
        log(f"features of {len(split)} {what}")
        key = feature_cache_key(split, {"model": _file_key(source.trained_model)})
        cache = source.root / FEATURES_FOLDER / f"{key}.npy"
        return pooled_features(model, split, input_contract, config.batch_size, cache)

    train_x = np.concatenate([features(old, "training photos"), features(new, "new photos")])
    train_y = np.asarray(old.labels + new.labels)
    test_x = features(test, "test photos") if test is not None else None
    head = head_model(model, float(settings.get("dropout", 0.2)))
    before = _metrics(head, test_x, test, labels)
    head.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(
            label_smoothing=float(settings.get("label_smoothing", 0.0))
        ),
        metrics=["accuracy"],
    )
    log(f"training the head: {config.epochs} epochs on {len(train_y)} photos")
    fit = head.fit(
        train_x,
        keras.utils.to_categorical(train_y, len(labels)),
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        verbose=0,
    )
    after = _metrics(head, test_x, test, labels)
    copy_head(head, model)
    seconds = time.monotonic() - started
    _write_run(target, model, source, settings, config, fit.history, before, after, len(new))
    return UpdateResult(
        RunFolder(target),
        len(new),
        seconds,
        before["test_accuracy"] if before else None,
        after["test_accuracy"] if after else None,
    )


def _split(folder: str | os.PathLike, labels: list[str], what: str) -> Split:
    try:
        found = list_class_folders(folder, labels)
    except TledgeError as error:
        hint = " (a new class needs a full `tledge train`)" if "not in" in str(error) else ""
        raise TledgeError(f"{what}: {error}{hint}") from None
    if not found.paths:
        raise TledgeError(f"{what} {folder}: no images")
    return Split(tuple(found.paths), tuple(found.labels))


def _run_folder(source: RunFolder, key: str) -> Path:
    """The source run's --data or --test images (a folder or a written-out TFDS split)."""
    folder = run_image_folder(source, key)
    if folder is None:
        stored = getattr(source.read_config(), key)
        raise TledgeError(f"{source.root}: its --{key} {stored} is not found here")
    return folder


def _target(config: UpdateConfig, source: RunFolder) -> Path:
    if config.name is not None:
        target = config.output / config.name
    else:
        number = 1
        while (config.output / f"{source.root.name}-update-{number}").exists():
            number += 1
        target = config.output / f"{source.root.name}-update-{number}"
    if target.exists():
        if not config.overwrite:
            raise TledgeError(f"{target}: exists; pass --overwrite or another --name")
        shutil.rmtree(target)
    return target


def _file_key(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def _metrics(head, test_x: np.ndarray | None, test: Split | None, labels: list[str]) -> dict:
    if test_x is None or test is None:
        return {}
    probabilities = np.asarray(head.predict(test_x, verbose=0), dtype=np.float64)
    return classification_metrics(probabilities, test.labels, labels)


def _write_run(
    target: Path,
    model,
    source: RunFolder,
    settings: dict,
    config: UpdateConfig,
    history: dict,
    before: dict,
    after: dict,
    added: int,
) -> None:
    run = RunFolder(target)
    target.mkdir(parents=True)
    shutil.copyfile(source.labels, run.labels)
    if source.input_contract.is_file():
        shutil.copyfile(source.input_contract, run.input_contract)
    new_settings = {
        **settings,
        "name": target.name,
        "output": str(config.output),
        "from_run": str(source.root),
        "add_data": str(config.add_data),
        "update": "head",
        "update_epochs": config.epochs,
        "update_learning_rate": config.learning_rate,
    }
    atomic_write_text(run.config, json.dumps(new_settings, indent=2) + "\n")
    epochs = [
        {"epoch": i + 1, "phase": "head_update", "loss": loss, "accuracy": accuracy}
        for i, (loss, accuracy) in enumerate(zip(history["loss"], history["accuracy"], strict=True))
    ]
    atomic_write_text(run.history, json.dumps({"epochs": epochs}, indent=2) + "\n")
    with atomic_path(run.model, suffix=".keras") as tmp:
        model.save(tmp)
    metrics = {**after, "added_images": added}
    if before:
        metrics["test_accuracy_before_update"] = before["test_accuracy"]
    # Written last, as the trainer does: metrics.json marks a finished run.
    atomic_write_text(run.metrics, json.dumps(metrics, indent=2) + "\n")
