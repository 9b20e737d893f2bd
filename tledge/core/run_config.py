"""`RunConfig`: a run's config.json, typed, for everything that reads runs.

The trainer writes config.json from its `TrainConfig` (resolved: a concrete image size
and precision); the exporter, analysis and benchmarks read it back through
`RunFolder.read_config()` as a `RunConfig`. It lives in the core because those readers
must not import the trainer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tledge.core.errors import TledgeError


@dataclass(frozen=True)
class RunConfig:
    """The settings a run trained with, as its config.json stores them.

    The typed fields are the keys other layers read. A key missing from an older
    config.json reads as the field's default (None: "not recorded"; `train_fraction`
    1.0: older runs used every training image). Every key of the file, typed or not
    (hyperparameters only the trainer and run comparisons use, and keys a newer tledge
    added), is kept unchanged in `settings`, so reading and writing back loses nothing.

    Attributes:
        backbone: Registry name ("mobilenetv2") or "hub:HANDLE".
        image_size: Model input (height, width).
        precision: The Keras dtype policy the run trained under ("float32", ...).
        data: Training folder.
        val: Validation folder, or None when `val_split` of `data` was held out.
        test: Test folder, or None.
        val_split: Fraction of `data` held out for validation.
        train_fraction: Stratified fraction of the training images used.
        seed: Seed of every random choice of the run.
        augment: Whether training images were augmented.
        epochs: Phase 1 epochs asked for.
        fine_tune_epochs: Phase 2 epochs asked for.
        tledge_version: The tledge version that wrote the file.
        settings: Every key of config.json, as stored (read-only).

    Example:
        >>> config = RunConfig.from_dict({"backbone": "mobilenetv2", "image_size": [256, 256]})
        >>> config.image_size
        (256, 256)
    """

    backbone: str | None = None
    image_size: tuple[int, int] | None = None
    precision: str | None = None
    data: str | None = None
    val: str | None = None
    test: str | None = None
    val_split: float | None = None
    train_fraction: float = 1.0
    seed: int | None = None
    augment: bool | None = None
    epochs: int | None = None
    fine_tune_epochs: int | None = None
    tledge_version: str | None = None
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build a `RunConfig` from config.json contents (missing keys take the defaults).

        Raises:
            TledgeError: when "image_size" is not two positive integers.
        """
        typed = {name: values[name] for name in TYPED_KEYS if values.get(name) is not None}
        if "image_size" in typed:
            typed["image_size"] = _image_size(typed["image_size"])
        return cls(**typed, settings=MappingProxyType(dict(values)))

    def to_dict(self) -> dict[str, Any]:
        """The config.json contents: `settings` with the typed fields written over them."""
        values = dict(self.settings)
        for name in TYPED_KEYS:
            value = getattr(self, name)
            if name in values or value != DEFAULTS[name]:
                values[name] = list(value) if name == "image_size" and value else value
        return values

    def setting(self, key: str, default: Any = None) -> Any:
        """The stored value of any config.json key, or `default` when it is absent."""
        return self.settings.get(key, default)


TYPED_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name != "settings")
DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig) if f.name != "settings"}


def _image_size(value: Any) -> tuple[int, int]:
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(side, int) and side > 0 for side in value)
    ):
        return (value[0], value[1])
    raise TledgeError(f"image_size {value!r}: expected [height, width] in pixels")
