"""Which model produced a result: a version name and a short content hash.

Every JSON line of `tledge edge` names the model that classified its frame, so results
stay traceable when `--model-dir` swaps models while the client runs.

Example:
    >>> version = ModelVersion.of("models/food-v3.tflite")
    >>> version.as_record()
    {'version': 'food-v3', 'sha': '1a2b3c4d5e'}
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tledge.core.errors import TledgeError
from tledge.edge.classifier import Classifier

SHA_LENGTH = 10


@dataclass(frozen=True)
class ModelVersion:
    """A model file's identity.

    Attributes:
        name: The file name without `.tflite` (what `--model-version` takes).
        sha: The first `SHA_LENGTH` hex digits of the file's SHA-256.
    """

    name: str
    sha: str

    @classmethod
    def of(cls, path: str | os.PathLike) -> ModelVersion:
        """Hash the file at `path`.

        Raises:
            TledgeError: when it cannot be read.
        """
        file = Path(path)
        digest = hashlib.sha256()
        try:
            with open(file, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
        except OSError as error:
            raise TledgeError(f"{file}: cannot read ({error.strerror})") from None
        return cls(file.stem, digest.hexdigest()[:SHA_LENGTH])

    def as_record(self) -> dict[str, str]:
        """The `model` field of a JSON line."""
        return {"version": self.name, "sha": self.sha}

    def __str__(self) -> str:
        return f"{self.name} (sha {self.sha})"


@dataclass(frozen=True)
class LoadedModel:
    """A classifier ready to run, with its identity.

    Attributes:
        classifier: The loaded model; once handed to the run loop only its worker uses it.
        version: Its file's identity.
        golden_answers: Its top-1 label for each golden image (file name -> label), used
            to self-test a successor with the same labels.
    """

    classifier: Classifier
    version: ModelVersion
    golden_answers: dict[str, str] = field(default_factory=dict)


class ModelSource(Protocol):
    """Where the run loop gets the model for each frame (`FixedModel`, `ModelWatcher`)."""

    current: LoadedModel


class FixedModel:
    """The model source for a run on one model file: `current` never changes.

    `run_edge` reads `current` before each frame; `ModelWatcher` offers the same
    attribute and changes it when a new model is accepted.
    """

    def __init__(self, classifier: Classifier) -> None:
        self.current = LoadedModel(classifier, ModelVersion.of(classifier.model_path))
