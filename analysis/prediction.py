"""Classifying image files with a run's Keras model or any exported .tflite, the same way.

Both kinds of model get identical input: the file read as RGB (grayscale, alpha and CMYK
converted) and fitted to the model input as its input contract says: a .tflite's embedded
contract, or for a Keras model its run's input_contract.json.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.folders import is_image_file
from tledge.core.labels import read_labels
from tledge.core.run_folder import RunFolder
from tledge.edge.contract import ModelContract
from tledge.edge.images import fit_image, read_rgb
from tledge.edge.model_file import read_model_metadata
from tledge.exporter.tf_keras_model import is_saved_model_folder

DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class LoadedModel:
    """A classifier ready to score batches of RGB images.

    Attributes:
        path: The model file (.keras or .tflite).
        name: Short name for output folders and tables, e.g. "model" or "model_int8".
        kind: "keras" or "tflite".
        labels: Class names in output order.
        contract: How images are prepared (input size, resize, mean/std).
        prepare: Maps one HxWx3 uint8 RGB image of any size to the model's input (H, W, 3).
        score_batch: Maps a stack of `prepare` outputs to an (N, num_classes) float32
            array of probabilities.
    """

    path: Path
    name: str
    kind: str
    labels: tuple[str, ...]
    contract: ModelContract
    prepare: Callable[[np.ndarray], np.ndarray]
    score_batch: Callable[[np.ndarray], np.ndarray]

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the images are resized to."""
        return self.contract.input_size


@dataclass(frozen=True)
class ImagePrediction:
    """The answer for one image.

    Attributes:
        path: The image file.
        scores: Probability of every class, in label order.
        top_k: The best (label, probability) pairs, best first.
    """

    path: Path
    scores: np.ndarray
    top_k: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        """The predicted class."""
        return self.top_k[0][0]

    @property
    def confidence(self) -> float:
        """The probability of the predicted class."""
        return self.top_k[0][1]


@dataclass(frozen=True)
class PredictionReport:
    """Predictions for a set of files plus the files that could not be read.

    Attributes:
        model: The model that predicted.
        predictions: One entry per readable image, in input order.
        unreadable: (path, reason) for each file that was skipped.
    """

    model: LoadedModel
    predictions: tuple[ImagePrediction, ...]
    unreadable: tuple[tuple[Path, str], ...]


def load_model(
    path: str | os.PathLike,
    num_threads: int | None = None,
    labels: Sequence[str] | None = None,
) -> LoadedModel:
    """Load a run folder's model.keras, a .keras file or a .tflite file for prediction.

    A TF Hub run's model is a tf_keras SavedModel folder (model_savedmodel/); it loads
    like a .keras file.

    Labels come from `labels`, else the .tflite's embedded contract, else a labels.txt
    beside the model file or in its run folder. A .tflite is fed by the edge client
    (`tledge.edge.classifier.Classifier`), so scores match what the device computes.

    Args:
        path: A run folder, a .keras file or a .tflite file.
        num_threads: CPU threads for a TFLite interpreter; None lets the runtime choose.
        labels: Class names in output order, overriding the model's own.

    Returns:
        The model, with its labels and input contract.

    Raises:
        TledgeError: when the path is missing, of an unknown kind, or has no labels.

    Example:
        >>> model = load_model("runs/food/export/model_int8.tflite")
        >>> report = predict_files(model, ["photos/pizza.jpg"], top_k=3)
    """
    file = Path(path)
    if file.is_dir() and not is_saved_model_folder(file):
        file = RunFolder(file).trained_model
        if not file.exists():
            raise TledgeError(f"{path}: no model.keras in this folder (not a finished run?)")
    if is_saved_model_folder(file):
        return _load_keras(file, labels)
    if not file.is_file():
        raise TledgeError(f"{file}: model file not found")
    suffix = file.suffix.lower()
    if suffix == ".keras":
        return _load_keras(file, labels)
    if suffix == ".tflite":
        return _load_tflite(file, num_threads, labels)
    raise TledgeError(f"{file}: expected a run folder, a .keras or a .tflite file")


def find_labels(model_file: Path) -> list[str]:
    """Return the labels.txt beside `model_file` or in the run folder that holds it.

    Raises:
        TledgeError: when no labels.txt is found.
    """
    # model.keras sits in the run folder; export/*.tflite and checkpoints/*.keras one below.
    for folder in (model_file.parent, model_file.parent.parent):
        candidate = folder / "labels.txt"
        if candidate.is_file():
            return read_labels(candidate)
    raise TledgeError(
        f"{model_file}: no labels.txt beside the model or in its run folder; pass --labels FILE"
    )


def collect_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand `paths` into image files: files are kept as given, folders are searched
    recursively for image files (sorted).

    Raises:
        TledgeError: when a path does not exist.
    """
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p)))
        elif path.exists():
            found.append(path)
        else:
            raise TledgeError(f"{path}: no such file or folder")
    return found


def iter_prepared_batches(
    model: LoadedModel, paths: Sequence[Path], batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[tuple[list[int], np.ndarray, list[tuple[int, str]]]]:
    """Read and resize images in batches.

    Yields:
        (indices of the readable images in `paths`, their (N, H, W, 3) uint8 batch,
        (index, reason) of the unreadable ones), one tuple per batch of `batch_size` paths.
    """
    for start in range(0, len(paths), batch_size):
        indices: list[int] = []
        images: list[np.ndarray] = []
        failed: list[tuple[int, str]] = []
        for index in range(start, min(start + batch_size, len(paths))):
            try:
                images.append(model.prepare(read_rgb(paths[index])))
                indices.append(index)
            except TledgeError as error:
                failed.append((index, str(error)))
        height, width = model.input_size
        batch = np.stack(images) if images else np.zeros((0, height, width, 3), np.uint8)
        yield indices, batch, failed


def predict_files(
    model: LoadedModel,
    paths: Iterable[str | os.PathLike],
    top_k: int = 5,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> PredictionReport:
    """Classify image files (folders are searched recursively).

    Unreadable files are skipped and listed in the report's `unreadable`.

    Args:
        model: From `load_model`.
        paths: Image files and folders.
        top_k: How many (label, probability) pairs to keep per image.
        batch_size: Images scored at once.

    Returns:
        A `PredictionReport`.

    Raises:
        TledgeError: when a path does not exist or `top_k` is below 1.
    """
    if top_k < 1:
        raise TledgeError(f"--top-k {top_k}: must be at least 1")
    files = collect_images(paths)
    predictions: list[ImagePrediction] = []
    unreadable: list[tuple[Path, str]] = []
    for indices, batch, failed in iter_prepared_batches(model, files, batch_size):
        unreadable.extend((files[index], reason) for index, reason in failed)
        if not indices:
            continue
        for index, scores in zip(indices, model.score_batch(batch), strict=True):
            predictions.append(_image_prediction(files[index], scores, model.labels, top_k))
    return PredictionReport(model, tuple(predictions), tuple(unreadable))


def _image_prediction(
    path: Path, scores: np.ndarray, labels: Sequence[str], top_k: int
) -> ImagePrediction:
    order = np.argsort(-scores, kind="stable")[:top_k]
    pairs = tuple((labels[i], float(scores[i])) for i in order)
    return ImagePrediction(path, scores, pairs)


def _load_keras(file: Path, given_labels: Sequence[str] | None) -> LoadedModel:
    import keras

    from tledge.exporter.loading import load_keras_model, model_input_contract

    labels = tuple(given_labels) if given_labels is not None else tuple(find_labels(file))
    network = load_keras_model(file)
    height, width = network.input_shape[1:3]
    if height is None or width is None:
        raise TledgeError(f"{file}: model input has no fixed size; cannot resize images for it")
    outputs = network.output_shape[-1]
    if outputs != len(labels):
        raise TledgeError(f"{file}: model has {outputs} outputs but {len(labels)} labels")
    input_contract, _ = model_input_contract(file, (int(height), int(width)))
    contract = ModelContract.for_input(input_contract, labels=labels)

    def prepare(rgb: np.ndarray) -> np.ndarray:
        return fit_image(rgb, input_contract)

    def score_batch(batch: np.ndarray) -> np.ndarray:
        scores = network(batch.astype(np.float32), training=False)
        return np.asarray(keras.ops.convert_to_numpy(scores), dtype=np.float32)

    name = "model" if file.parent.name != "checkpoints" else f"checkpoint_{file.stem}"
    return LoadedModel(file, name, "keras", labels, contract, prepare, score_batch)


def _load_tflite(file: Path, num_threads: int | None, labels: Sequence[str] | None) -> LoadedModel:
    from tledge.edge.classifier import Classifier

    if labels is None and read_model_metadata(file).labels is None:
        labels = _optional_labels(file)
    classifier = Classifier(file, labels=labels, num_threads=num_threads)
    interpreter = classifier.interpreter
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def prepare(rgb: np.ndarray) -> np.ndarray:
        # The edge client's own preprocessing: the model gets exactly what it gets on a Pi.
        return classifier.preprocess(rgb, is_bgr=False)[0].copy()

    def score_batch(batch: np.ndarray) -> np.ndarray:
        scores = np.zeros((len(batch), len(classifier.labels)), np.float32)
        for row, image in enumerate(batch):
            interpreter.set_tensor(input_index, image[np.newaxis])
            interpreter.invoke()
            scores[row] = classifier.scores_from_output(interpreter.get_tensor(output_index))
        return scores

    return LoadedModel(
        file, file.stem, "tflite", classifier.labels, classifier.contract, prepare, score_batch
    )


def _optional_labels(model_file: Path) -> list[str] | None:
    try:
        return find_labels(model_file)
    except TledgeError:
        return None
