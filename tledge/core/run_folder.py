"""The layout of a training run folder, shared by the trainer (writer) and everything
that reads runs (exporter, evaluation, benchmarks).

It lives here rather than in the trainer because dependencies point trainer -> exporter
-> edge: the exporter must read runs without importing the trainer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.core.atomic import atomic_write_text
from tledge.core.errors import TledgeError
from tledge.core.input_contract import InputContract, read_input_contract
from tledge.core.labels import read_labels
from tledge.core.run_config import RunConfig


@dataclass(frozen=True)
class RunFolder:
    """Paths inside `runs/<name>/`.

    A TF Hub run (backbone "hub:...") holds tf_keras SavedModel folders instead of the
    .keras files: model_savedmodel/ and checkpoints/best_savedmodel/; `trained_model`
    names whichever final model the run has.

    input_contract.json holds the run's `InputContract` (how its model takes images),
    written by the trainer from the backbone's spec and the run's image size.

    config.json is read and written as a `RunConfig` (`tledge/core/run_config.py`); its
    data folders are absolute (relative to where training ran in older runs).
    """

    root: Path

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunFolder:
        """Return the run at `path`, checking that it holds a trained model.

        Raises:
            TledgeError: when `path` is not a finished run folder.
        """
        run = cls(Path(path))
        if not run.config.is_file():
            raise TledgeError(f"{run.root}: not a tledge run folder (no config.json)")
        if not run.trained_model.exists():
            raise TledgeError(f"{run.root}: run has no model.keras (training not finished?)")
        return run

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def input_contract(self) -> Path:
        """input_contract.json: how the run's model takes images (see `InputContract`)."""
        return self.root / "input_contract.json"

    @property
    def labels(self) -> Path:
        return self.root / "labels.txt"

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def best_checkpoint(self) -> Path:
        return self.root / "checkpoints" / "best.keras"

    @property
    def hub_model(self) -> Path:
        """model_savedmodel/: a TF Hub run's final model (tf_keras SavedModel folder)."""
        return self.root / "model_savedmodel"

    @property
    def hub_best_checkpoint(self) -> Path:
        """A TF Hub run's best checkpoint (tf_keras SavedModel folder)."""
        return self.root / "checkpoints" / "best_savedmodel"

    @property
    def trained_model(self) -> Path:
        """The final model: model.keras, or model_savedmodel/ for a TF Hub run."""
        return self.hub_model if self.hub_model.is_dir() else self.model

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def backup(self) -> Path:
        return self.root / "backup"

    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    def read_config(self) -> RunConfig:
        """Return config.json as a `RunConfig`.

        Raises:
            TledgeError: when config.json is missing, not JSON, not an object, or holds
                a malformed value (naming the file).
        """
        values = read_json(self.config)
        if not isinstance(values, dict):
            raise TledgeError(f"{self.config}: expected a JSON object of run settings")
        try:
            return RunConfig.from_dict(values)
        except TledgeError as error:
            raise TledgeError(f"{self.config}: {error}") from None

    def write_config(self, config: RunConfig) -> Path:
        """Write config.json atomically (the trainer does, when it creates the run)."""
        return atomic_write_text(self.config, json.dumps(config.to_dict(), indent=2))

    def read_input_contract(self) -> InputContract | None:
        """Return the run's input contract, or None for a run trained before it was written.

        Raises:
            TledgeError: when the file exists but is not a valid contract.
        """
        if not self.input_contract.is_file():
            return None
        return read_input_contract(self.input_contract)

    def read_labels(self) -> list[str]:
        """Return the run's class names in output order."""
        return read_labels(self.labels)

    def read_metrics(self) -> dict[str, Any]:
        """Return metrics.json as a dict."""
        return read_json(self.metrics)


def read_json(path: Path) -> dict[str, Any]:
    """Return a JSON file's contents; a missing or unreadable file is a one-line error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TledgeError(f"{path}: file not found") from None
    except (OSError, ValueError) as error:
        raise TledgeError(f"{path}: cannot read JSON ({error})") from None
