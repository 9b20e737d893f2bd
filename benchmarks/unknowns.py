"""Calibration and unknown rejection on real photos: a run trained on some classes, photos
of its other classes as near-distribution unknowns, non-food photos as easy unknowns.

Every model of the run (model.keras and each export/*.tflite) scores the run's test
photos (known), the near unknowns and the easy unknowns with the product's own code
(`evaluate_model`, `score_folder`: the edge `Classifier` for .tflite files). Reported per
model: test ECE (15 bins) and log loss as exported and with the temperature undone, the
AUROC of the shipped score (calibrated top probability) and of the baseline (the
uncalibrated model's top probability), and at the run's threshold the share of known
photos accepted, accuracy on them, and the share of unknowns falsely accepted.

    python -m tledge.benchmarks.unknowns --run runs/food8 --near runs/bench_data/near_ood \
        --sanity ../shared/data/tflite/sanity_images --output benchmarks/results

The easy set is written to `<run>/easy_unknowns/`: the sanity photos except hot_dog.jpg
(food) and the images scikit-image ships inside its package (`skimage.data`, no download).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tledge.core.atomic import atomic_write_text
from tledge.core.calibration import (
    accuracy_coverage,
    auroc,
    expected_calibration_error,
    fit_temperature,
    log_loss,
    rejection_report,
    temperature_scaled,
    unknown_score,
)
from tledge.core.errors import TledgeError
from tledge.core.run_folder import RunFolder

# Food photos among the sanity images: not an easy unknown for a food classifier.
FOOD_SANITY_IMAGES = ("hot_dog.jpg",)
# Resamples of the ECE intervals.
ECE_DRAWS = 1000


def write_easy_unknowns(sanity: Path | None, folder: Path) -> Path:
    """Fill `folder` with the non-food sanity photos and scikit-image's bundled images.

    Only images stored inside the installed package are used (never a download).
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if sanity is not None:
        for path in sorted(sanity.glob("*.jpg")):
            if path.name not in FOOD_SANITY_IMAGES:
                Image.open(path).convert("RGB").save(folder / f"sanity_{path.stem}.png")
    try:
        import skimage.data
    except ImportError:
        return folder
    bundled = Path(skimage.data.__file__).parent
    for path in sorted(bundled.iterdir()):
        if path.suffix.lower() not in (".png", ".jpg"):
            continue
        image = Image.open(path)
        if min(image.size) < 64:
            continue
        image.convert("RGB").save(folder / f"skimage_{path.stem}.png")
    return folder


def bootstrap_ece_interval(
    probabilities: np.ndarray, labels: Sequence[int], draws: int = ECE_DRAWS
) -> list[float]:
    """95 % bootstrap interval of the test ECE (photos resampled with replacement)."""
    rng = np.random.default_rng(0)
    truth = np.asarray(labels)
    values = []
    for _ in range(draws):
        rows = rng.integers(0, len(truth), len(truth))
        values.append(expected_calibration_error(probabilities[rows], truth[rows]))
    return np.percentile(values, [2.5, 97.5]).tolist()


def calibrated_ece_floor(probabilities: np.ndarray, draws: int = ECE_DRAWS) -> list[float]:
    """Mean and 95 % range of the ECE a perfectly calibrated model would score here.

    Labels are drawn from the model's own probabilities (so it is calibrated by
    construction) for the same photos; the ECE that remains is binning and sampling
    noise of 15 bins on this many photos, the floor below which no method can go.
    """
    rng = np.random.default_rng(0)
    probs = np.asarray(probabilities, dtype=np.float64)
    cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    values = []
    for _ in range(draws):
        drawn = (rng.random((len(probs), 1)) > cumulative).sum(axis=1)
        values.append(expected_calibration_error(probs, np.minimum(drawn, probs.shape[1] - 1)))
    return [float(np.mean(values)), *np.percentile(values, [2.5, 97.5]).tolist()]


def measure_model(
    run: RunFolder, model_path: Path, unknown_folders: dict[str, Path]
) -> dict[str, Any]:
    """Every number of the table for one model file."""
    from tledge.analysis.evaluation import default_data, evaluate_model
    from tledge.analysis.prediction import load_model
    from tledge.analysis.unknown_evaluation import score_folder

    loaded = load_model(model_path, num_threads=2)
    contract = loaded.contract
    temperature = contract.temperature
    threshold = contract.unknown_threshold
    known = evaluate_model(loaded, default_data(run))
    probs, truth = known.probabilities, known.true
    raw = temperature_scaled(probs, 1 / temperature)
    # The best any temperature could do here: T fitted on the test photos themselves.
    oracle = fit_temperature(raw, truth)
    result: dict[str, Any] = {
        "model": model_path.name,
        "temperature": temperature,
        "threshold": threshold,
        "test_images": len(truth),
        "accuracy": known.accuracy,
        "ece_uncalibrated": expected_calibration_error(raw, truth),
        "ece": expected_calibration_error(probs, truth),
        "log_loss_uncalibrated": log_loss(raw, truth),
        "log_loss": log_loss(probs, truth),
        "ece_interval": bootstrap_ece_interval(probs, truth),
        "oracle_temperature": oracle,
        "ece_oracle": expected_calibration_error(temperature_scaled(raw, oracle), truth),
        "ece_floor": calibrated_ece_floor(probs),
        "scores": {"known": unknown_score(probs).tolist()},
        "coverage": [values.tolist() for values in accuracy_coverage(probs, truth)],
    }
    for name, folder in unknown_folders.items():
        unknown = score_folder(loaded, folder)
        unknown_raw = temperature_scaled(unknown, 1 / temperature)
        report = rejection_report(probs, truth, unknown, threshold or 0.0)
        result[name] = {
            "images": len(unknown),
            "auroc": report.auroc,
            "auroc_baseline": auroc(unknown_score(raw), unknown_score(unknown_raw)),
            "falsely_accepted": report.unknown_accepted,
        }
        result["known_accepted"] = report.known_accepted
        result["accepted_accuracy"] = report.accepted_accuracy
        result["scores"][name] = unknown_score(unknown).tolist()
    return result


def alternative_scores(run: RunFolder, unknown_folders: dict[str, Path]) -> dict[str, Any]:
    """AUROC of scores the device cannot compute from the probability output alone.

    From the Keras model: the negative energy (logsumexp of the logits), the maximum
    logit, the Mahalanobis distance of the pooled backbone features to the nearest
    class mean (shared covariance fitted on the training photos), and on L2-normalised
    pooled features the cosine similarity to the nearest class centre and to the k-th
    nearest training photo (k = 1, 10: the deep nearest-neighbour score of Sun et al.,
    ICML 2022), as tried in the literature. The feature scores would need the pooled
    features as a second output of the exported file and the centres or reference
    features in its metadata. Not shipped; measured to compare.
    """
    import keras

    from tledge.analysis.evaluation import default_data
    from tledge.analysis.prediction import collect_images, iter_prepared_batches, load_model
    from tledge.core.folders import list_class_folders
    from tledge.trainer.features import HEAD_INPUT_LAYER
    from tledge.trainer.model import CLASSIFIER_NAME

    loaded = load_model(run.model)
    network = keras.saving.load_model(run.model, compile=False)
    probe = keras.Model(
        network.input,
        [network.get_layer(HEAD_INPUT_LAYER).input, network.get_layer(CLASSIFIER_NAME).output],
    )

    def features_and_logits(paths):
        parts = [
            probe.predict(batch.astype("float32"), verbose=0)
            for _, batch, _ in iter_prepared_batches(loaded, paths)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    config = run.read_config()
    train = list_class_folders(config.data)
    train_features, _ = features_and_logits(train.paths)
    labels = np.asarray(train.labels)
    means = np.stack([train_features[labels == c].mean(axis=0) for c in np.unique(labels)])
    centred = train_features - means[labels]
    covariance = centred.T @ centred / len(centred)
    # 480 photos for 1280 features: shrink towards a scaled identity so it inverts.
    covariance += 0.1 * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    precision = np.linalg.inv(covariance)
    reference = _unit_rows(train_features)
    centres = _unit_rows(np.stack([reference[labels == c].mean(axis=0) for c in np.unique(labels)]))

    def scores(paths) -> dict[str, np.ndarray]:
        features, logits = features_and_logits(paths)
        top = logits.max(axis=1)
        diffs = features[:, None, :] - means[None, :, :]
        distance = np.einsum("nkd,de,nke->nk", diffs, precision, diffs).min(axis=1)
        unit = _unit_rows(features)
        nearest = -np.sort(-(unit @ reference.T), axis=1)
        return {
            "energy": top + np.log(np.exp(logits - top[:, None]).sum(axis=1)),
            "max_logit": top,
            "mahalanobis": -distance,
            "centre_cosine": (unit @ centres.T).max(axis=1),
            "knn1_cosine": nearest[:, 0],
            "knn10_cosine": nearest[:, 9],
        }

    known = scores(list_class_folders(default_data(run)).paths)
    result: dict[str, Any] = {}
    for name, folder in unknown_folders.items():
        unknown = scores(collect_images([folder]))
        result[name] = {key: auroc(known[key], unknown[key]) for key in known}
    return result


def _unit_rows(values: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1."""
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def markdown(results: Sequence[dict[str, Any]], command: str) -> str:
    """The committed table."""
    lines = [
        "# Calibration and unknown rejection",
        "",
        f"Made with `{command}`.",
        "",
        "| model | top-1 | ECE before → after | log loss before → after | near AUROC "
        "(baseline) | easy AUROC (baseline) | known accepted | accuracy on accepted | "
        "near / easy falsely accepted |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        near, easy = r.get("near", {}), r.get("easy", {})
        lines.append(
            f"| {r['model']} | {r['accuracy']:.1%} | {r['ece_uncalibrated']:.3f} → {r['ece']:.3f} "
            f"| {r['log_loss_uncalibrated']:.3f} → {r['log_loss']:.3f} "
            f"| {_auroc(near)} | {_auroc(easy)} | {r.get('known_accepted', 0):.1%} "
            f"| {r.get('accepted_accuracy') or 0:.1%} "
            f"| {near.get('falsely_accepted', 0):.1%} / {easy.get('falsely_accepted', 0):.1%} |"
        )
    lines += [
        "",
        "How much of the test ECE is noise (15 bins, this many photos): the 95 % bootstrap "
        "interval of the calibrated model's ECE, and the ECE a perfectly calibrated model "
        "with the same confidences scores (labels drawn from its own probabilities); and "
        "the ECE with T fitted on the test photos themselves (the best any temperature "
        "could do):",
        "",
        "| model | ECE after [95 % bootstrap] | perfectly calibrated: mean [95 %] "
        "| T fitted on test → ECE |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        low, high = r["ece_interval"]
        mean, floor_low, floor_high = r["ece_floor"]
        lines.append(
            f"| {r['model']} | {r['ece']:.3f} [{low:.3f}, {high:.3f}] "
            f"| {mean:.3f} [{floor_low:.3f}, {floor_high:.3f}] "
            f"| {r['oracle_temperature']:.3f} → {r['ece_oracle']:.3f} |"
        )
    first = results[0]
    tried = first.get("alternatives")
    if tried:
        lines += [
            "",
            "Scores that need more than the probability output (Keras model, AUROC):",
            "",
            "| unknowns | " + " | ".join(next(iter(tried.values()))) + " |",
            "|---|" + "---:|" * len(next(iter(tried.values()))),
        ]
        for name, values in tried.items():
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values.values()) + " |")
    lines += [
        "",
        f"Temperature {first['temperature']:.3f}, threshold {first['threshold']}; "
        f"{first['test_images']} known test photos, {first.get('near', {}).get('images')} near "
        f"and {first.get('easy', {}).get('images')} easy unknowns.",
        "",
    ]
    return "\n".join(lines)


def _auroc(entry: dict[str, Any]) -> str:
    if not entry:
        return ""
    return f"{entry['auroc']:.3f} ({entry['auroc_baseline']:.3f})"


def plot(results: Sequence[dict[str, Any]], output: Path) -> list[Path]:
    """Score histograms of each model and the accuracy-coverage curves."""
    from tledge.analysis.calibration_plots import plot_accuracy_coverage, plot_score_histograms

    files = []
    for r in results:
        stem = Path(r["model"]).stem
        scores = {name: np.asarray(values) for name, values in r["scores"].items()}
        files.append(
            plot_score_histograms(
                scores, r["threshold"], output / f"unknowns_scores_{stem}.png", r["model"]
            )
        )
    curves = {r["model"]: tuple(np.asarray(v) for v in r["coverage"]) for r in results}
    marks = [
        (r["known_accepted"], r["accepted_accuracy"], "threshold")
        for r in results[:1]
        if r.get("accepted_accuracy") is not None
    ]
    files.append(
        plot_accuracy_coverage(curves, marks, output / "unknowns_coverage.png", "known test photos")
    )
    return files


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="Run folder (exported with --all/--int8).")
    parser.add_argument("--near", required=True, help="Photos of classes the run did not learn.")
    parser.add_argument("--sanity", help="Folder of the ImageNet sanity photos.")
    parser.add_argument("--output", default="benchmarks/results")
    parser.add_argument(
        "--alternatives", action="store_true", help="Also measure energy, max logit, Mahalanobis."
    )
    args = parser.parse_args(argv)
    try:
        run = RunFolder.open(args.run)
        easy = write_easy_unknowns(
            Path(args.sanity) if args.sanity else None, run.root / "easy_unknowns"
        )
        folders = {"near": Path(args.near), "easy": easy}
        models = [run.model, *sorted(run.export_dir.glob("model_*.tflite"))]
        results = []
        for path in models:
            print(f"scoring {path}", file=sys.stderr)
            results.append(measure_model(run, path, folders))
        if args.alternatives:
            results[0]["alternatives"] = alternative_scores(run, folders)
    except TledgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    command = "python -m tledge.benchmarks.unknowns " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    atomic_write_text(output / "unknowns.json", json.dumps(results, indent=1) + "\n")
    atomic_write_text(output / "unknowns.md", markdown(results, command))
    plot(results, output)
    print(markdown(results, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
