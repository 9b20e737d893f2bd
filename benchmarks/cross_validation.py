"""Compare training settings by k-fold cross-validation on the training photos only.

One 150-photo validation split is too small to choose between settings: a single
photo is 0.7 pp, and epoch-to-epoch validation accuracy moves by several points. This
script splits the training folder into k stratified folds (symlinks under
`<output>/folds/`), and for every fold trains each variant on the other k-1 folds with the
trainer itself (`train(TrainConfig(...))`, no refit, no test set) and predicts the held-out
fold. Every training photo is predicted once per variant, so variants are compared on the
same photos: pooled accuracy and log loss, and the paired difference to the first variant
with a bootstrap 95 % interval.

A variant that changes only fine-tuning settings (`PHASE_TWO_FIELDS`) starts from one
shared phase-1 run per fold (`--from-run`), so those comparisons cost one phase 2 each.
Accuracy is that of the model the trainer keeps, chosen on the same held-out fold
(early stopping restores the best epoch), so it is slightly optimistic, equally for all.

    tledge bench cross-validation --data food_mnist10/train \
        --weights mobilenet_v2_1.0_224_no_top.h5 --folds 5 \
        --variant layers40:fine_tune_layers=40 --variant layers100:fine_tune_layers=100

Runs are resumable: re-running the same command reuses finished folds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tledge.benchmarks.report import BenchmarkOutput, Log, build_report, write_report
from tledge.core.calibration import log_loss
from tledge.core.errors import TledgeError
from tledge.core.folders import list_class_folders
from tledge.core.run_folder import RunFolder

PHASE_TWO_FIELDS = frozenset({"fine_tune_layers", "fine_tune_lr", "fine_tune_epochs"})
PHASE_ONE = "phase1"
BOOTSTRAP_SAMPLES = 2000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Variant:
    """A named set of `TrainConfig` fields to compare (the first variant is the reference)."""

    name: str
    settings: Mapping[str, Any]

    @property
    def phase_two_only(self) -> bool:
        """True when the variant can start from the fold's shared phase-1 run."""
        return set(self.settings) <= PHASE_TWO_FIELDS


def parse_variant(text: str) -> Variant:
    """Parse "name:field=value:field=value"; values are JSON (else plain strings).

    Example:
        >>> parse_variant("big:fine_tune_layers=100:image_size=[256,256]")
    """
    name, _, pairs = text.partition(":")
    if not name:
        raise TledgeError(f"--variant {text}: the variant needs a name before the first ':'")
    usage = f"--variant {text}: expected name:field=value[:field=value...]"
    return Variant(name, parse_settings(pairs, usage) if pairs else {})


def parse_settings(text: str, usage: str) -> dict[str, Any]:
    """Parse "field=value[:field=value...]"; values are JSON (else plain strings).

    Raises:
        TledgeError: `usage` when a part has no "field=".
    """
    settings: dict[str, Any] = {}
    for pair in text.split(":"):
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise TledgeError(usage)
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def make_folds(data: str | os.PathLike, folds: int, root: Path, seed: int = 0) -> list[Path]:
    """Split `data` into `folds` stratified folds of symlinks; return the fold folders.

    Fold i holds `train/<class>/` (the other folds) and `val/<class>/` (fold i). Each
    class's files are shuffled with `seed` and dealt round-robin, so every file is held
    out exactly once.
    """
    listing = list_class_folders(data)
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[Path]] = {}
    for path, label in zip(listing.paths, listing.labels, strict=True):
        by_class.setdefault(label, []).append(Path(path))
    for label, files in by_class.items():
        if len(files) < folds:
            name = listing.class_names[label]
            raise TledgeError(f"{data}/{name}: {len(files)} images, fewer than {folds} folds")
    fold_dirs = [root / f"fold{index}" for index in range(folds)]
    for label, files in by_class.items():
        name = listing.class_names[label]
        order = rng.permutation(len(files))
        for index, fold_dir in enumerate(fold_dirs):
            held = {int(i) for i in order[index::folds]}
            for position, file in enumerate(files):
                part = "val" if position in held else "train"
                _link(file, fold_dir / part / name / file.name)
    return fold_dirs


def _link(source: Path, link: Path) -> None:
    if link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(source.resolve())


def cross_validate(
    data: str,
    variants: Sequence[Variant],
    output: str | os.PathLike,
    folds: int = 5,
    common: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train every variant on every fold; return the pooled comparison.

    Args:
        data: Class-per-folder training photos (no test photos are used).
        variants: The settings to compare; the first is the reference.
        output: Folder for the folds, the run folders and the predictions.
        folds: Number of folds (k).
        common: `TrainConfig` fields shared by all variants (weights, image size, ...).
        progress: Called with one line per finished training run.

    Returns:
        {"data", "folds", "num_images", "reference", "rows": [one dict per variant]}.
    """
    from tledge.trainer.config import TrainConfig

    if not variants:
        raise TledgeError("give at least one --variant")
    names = [variant.name for variant in variants]
    if len(set(names)) != len(names) or PHASE_ONE in names:
        raise TledgeError(f"variant names must be unique and not {PHASE_ONE!r}: {names}")
    default_backbone = (common or {}).get("backbone", "")
    backbones = [str(v.settings.get("backbone", default_backbone)) for v in variants]
    if any(backbone.startswith("hub:") for backbone in backbones):
        raise TledgeError("cross-validation takes Keras 3 backbones only, not hub:HANDLE")
    say = progress or (lambda _text: None)
    root = Path(output)
    fold_dirs = make_folds(data, folds, root / "folds")
    shared = {"refit": False, "output": str(root / "runs"), **(common or {})}
    results: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in names}
    for index, fold_dir in enumerate(fold_dirs):
        held_out = _held_out_photos(fold_dir, root)
        base = {**shared, "data": str(fold_dir / "train"), "val": str(fold_dir / "val")}
        first = f"fold{index}_{PHASE_ONE}"
        if any(variant.phase_two_only for variant in variants):
            _trained(TrainConfig(**{**base, "fine_tune_epochs": 0, "name": first}))
        for variant in variants:
            settings = {**base, **variant.settings, "name": f"fold{index}_{variant.name}"}
            if variant.phase_two_only:
                settings["from_run"] = str(root / "runs" / first)
            run = _trained(TrainConfig(**settings))
            results[variant.name].append(_predict(run, held_out))
            say(f"fold {index}: {variant.name} done")
    rows = compare(results, names[0])
    return {
        "data": str(data),
        "folds": folds,
        "num_images": int(sum(len(fold["labels"]) for fold in results[names[0]])),
        "reference": names[0],
        "settings": {variant.name: dict(variant.settings) for variant in variants},
        "rows": rows,
    }


def _trained(config) -> RunFolder:
    """Train (or resume) `config`'s run; a run that finished with the same settings is reused."""
    from tledge.trainer.config import TrainConfig
    from tledge.trainer.training import resolve_config, train

    run = RunFolder(Path(config.output) / config.name)
    if run.metrics.is_file():
        stored = TrainConfig.from_run_config(run.read_config())
        if stored.identity() == resolve_config(config).identity():
            return run
    return train(config).run


def _held_out_photos(fold_dir: Path, root: Path):
    """The fold's held-out photos, checked and converted as the trainer reads them."""
    from tledge.trainer.data import load_splits

    return load_splits(
        str(fold_dir / "train"),
        str(fold_dir / "val"),
        None,
        val_split=0.0,
        train_fraction=1.0,
        seed=0,
        convert_dir=root / "converted",
        warn=lambda _message: None,
    )


def _predict(run: RunFolder, photos) -> dict[str, np.ndarray]:
    """The run's class probabilities for `photos` (DatasetSplits; its val split is scored)."""
    import keras

    from tledge.trainer.data import image_dataset

    model = keras.saving.load_model(run.trained_model)
    pixels = run.read_input_contract()
    images = image_dataset(photos.val, len(photos.class_names), pixels, batch_size=32)
    probabilities = model.predict(images, verbose=0)
    return {"probabilities": probabilities, "labels": np.asarray(photos.val.labels)}


def compare(results: Mapping[str, Sequence[Mapping[str, np.ndarray]]], reference: str) -> list:
    """Pool each variant's folds; pair every variant's answers with the reference's.

    Returns:
        One dict per variant: accuracy, log_loss, per_fold_accuracy, and against the
        reference: diff_pp, wins, losses, ci95_pp (bootstrap over photos).
    """
    rng = np.random.default_rng(0)

    def correct_per_fold(name: str) -> list[np.ndarray]:
        return [fold["probabilities"].argmax(axis=1) == fold["labels"] for fold in results[name]]

    reference_correct = np.concatenate(correct_per_fold(reference))
    rows = []
    for name, folds in results.items():
        per_fold = correct_per_fold(name)
        correct = np.concatenate(per_fold)
        probabilities = np.concatenate([fold["probabilities"] for fold in folds])
        labels = np.concatenate([fold["labels"] for fold in folds])
        row: dict[str, Any] = {
            "variant": name,
            "accuracy": float(correct.mean()),
            "log_loss": log_loss(probabilities, labels),
            "per_fold_accuracy": [float(fold.mean()) for fold in per_fold],
        }
        if name != reference:
            diff = correct.astype(float) - reference_correct
            samples = rng.integers(0, len(diff), (BOOTSTRAP_SAMPLES, len(diff)))
            means = diff[samples].mean(axis=1)
            row.update(
                diff_pp=100 * float(diff.mean()),
                wins=int((diff > 0).sum()),
                losses=int((diff < 0).sum()),
                ci95_pp=[100 * float(np.percentile(means, q)) for q in (2.5, 97.5)],
            )
        rows.append(row)
    return rows


def cross_validation_benchmark(
    data: str,
    variants: Sequence[str],
    output: Path,
    settings: Sequence[str] = (),
    weights: str = "imagenet",
    backbone: str = "mobilenetv2",
    folds: int = 5,
    command: str = "",
    log: Log = lambda text: None,
) -> BenchmarkOutput:
    """Cross-validate training variants on `data`; write cross_validation.{json,md}.

    Args:
        data: Class-per-folder training images.
        variants: "name:field=value[:field=value...]" (TrainConfig fields); the first is
            the reference.
        output: Folder for the report and one run folder per fold and variant.
        settings: "field=value[:field=value...]" applied to every variant.
        weights: Backbone weights ("imagenet", "none" or a no-top .h5).
        backbone: Registry name of the backbone.
        folds: Number of folds.
        command: The command line, recorded in the report.
        log: Called with progress lines.

    Raises:
        TledgeError: for a malformed variant or setting, or from the trainer.
    """
    common: dict[str, Any] = {"weights": weights, "backbone": backbone}
    for text in settings:
        common.update(parse_settings(text, f"--set {text}: expected field=value[:field=value...]"))
    section = cross_validate(
        data,
        [parse_variant(text) for text in variants],
        output,
        folds=folds,
        common=common,
        progress=log,
    )
    report = build_report(command, cross_validation=section)
    return BenchmarkOutput(report, write_report(report, output, "cross_validation"))
