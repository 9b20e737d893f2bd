"""`run_demo`: the whole tledge pipeline on a generated dataset, end to end.

Generate images -> train (ImageNet weights when they can be had, else random init) ->
export fp32 and int8 TFLite with the drift gate -> classify the test images with the
edge client, which reads only the .tflite file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tledge.core.errors import TledgeError
from tledge.core.folders import list_class_folders
from tledge.edge.classifier import Classifier
from tledge.edge.images import read_rgb
from tledge.exporter.export import ExportOptions, ExportResult, export_model
from tledge.trainer.backbones import build_base, get_backbone
from tledge.trainer.config import TrainConfig
from tledge.trainer.synthetic import generate_dataset
from tledge.trainer.training import TrainResult, train

IMAGE_SIZE = (96, 96)
ALPHA = 0.35

Log = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes:
        data: The generated dataset (train/ and test/).
        training: The trained run.
        export: The exported TFLite variants and their drift numbers.
        weights: "imagenet" or "none", whichever the demo could use.
        edge_model: The int8 file the edge client ran (`model_int8.rejected.tflite` when
            the drift gate rejected it).
        edge_accuracy: Top-1 accuracy of that model on the test images, measured
            through the edge client.
        edge_invoke_ms: Mean interpreter time per image in the edge client.
        seconds: Wall time of the whole demo.
    """

    data: Path
    training: TrainResult
    export: ExportResult
    weights: str
    edge_model: Path
    edge_accuracy: float
    edge_invoke_ms: float
    seconds: float


def imagenet_weights_available() -> bool:
    """True when Keras can load (or download) the ImageNet weights the demo uses."""
    try:
        build_base(get_backbone("mobilenetv2"), IMAGE_SIZE, ALPHA, "imagenet")
    except TledgeError:
        return False
    return True


def run_demo(
    folder: str | os.PathLike,
    images_per_class: int = 60,
    epochs: int = 5,
    fine_tune_epochs: int = 10,
    log: Log | None = None,
) -> DemoResult:
    """Run generate -> train -> export -> edge classify in `folder` and return the results.

    The demo run (`folder/runs/demo`) is replaced on every call; nothing outside
    `folder` is written.

    Args:
        folder: Where the dataset, the run and the exported models go.
        images_per_class: Training images per class; twice as many test images, so the
            int8 drift is measured to 0.2 pp and its sampling noise (about 3 % of the
            answers are near ties that may flip) stays well under the 1 pp gate.
        epochs: Phase 1 (frozen backbone) epochs.
        fine_tune_epochs: Phase 2 (fine-tuning) epochs.
        log: Called with progress notes.

    Example:
        >>> result = run_demo("tledge-demo")
        >>> result.edge_accuracy
    """
    log = log or (lambda message: None)
    started = time.perf_counter()
    root = Path(folder)
    data = root / "data"
    log(f"generating {images_per_class} images per class in {data}")
    generate_dataset(data / "train", per_class=images_per_class, size=IMAGE_SIZE[0], seed=0)
    generate_dataset(
        data / "test", per_class=max(4, 2 * images_per_class), size=IMAGE_SIZE[0], seed=1
    )
    weights = "imagenet" if imagenet_weights_available() else "none"
    if weights == "none":
        log(
            "ImageNet weights could not be downloaded (offline?): training from random "
            "weights (--weights none), which is enough for these simple shapes"
        )
    # Random weights need the whole backbone trained; pretrained ones only its top.
    fine_tune_layers = 30 if weights == "imagenet" else 1000
    config = TrainConfig(
        data=str(data / "train"),
        test=str(data / "test"),
        backbone="mobilenetv2",
        alpha=ALPHA,
        weights=weights,
        image_size=IMAGE_SIZE,
        epochs=epochs,
        fine_tune_epochs=fine_tune_epochs,
        fine_tune_layers=fine_tune_layers,
        fine_tune_lr=1e-4 if weights == "imagenet" else 1e-3,
        augment=False,
        output=str(root / "runs"),
        name="demo",
        overwrite=True,
    )
    training = train(config, log=log, verbose=0)
    log("exporting fp32 and int8 TFLite models with the drift check")
    exported = export_model(training.run.root, ExportOptions(variants=("fp32", "int8")))
    int8 = next(v for v in exported.variants if v.variant == "int8")
    classifier = Classifier(int8.path, num_threads=2)
    test_set = list_class_folders(data / "test", classifier.labels)
    correct = 0
    invoke_ms = 0.0
    for path, label in zip(test_set.paths, test_set.labels, strict=True):
        answer = classifier.classify_rgb(read_rgb(path), top_k=1)
        correct += answer.label == classifier.labels[label]
        invoke_ms += answer.timings.invoke_ms
    count = len(test_set.paths)
    return DemoResult(
        data=data,
        training=training,
        export=exported,
        weights=weights,
        edge_model=int8.path,
        edge_accuracy=correct / count,
        edge_invoke_ms=invoke_ms / count,
        seconds=time.perf_counter() - started,
    )
