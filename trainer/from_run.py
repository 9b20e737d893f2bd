"""`--from-run`: start phase 2 from another run's trained model, after checking it fits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError
from tledge.core.run_folder import RunFolder
from tledge.trainer.config import TrainConfig


def load_from_run(
    config: TrainConfig, class_names: Sequence[str], load: Callable[[Path], Any]
) -> Any:
    """Load the trained model of `config.from_run` for this run.

    Args:
        config: This run's resolved config (backbone, data, image size, from_run).
        class_names: This run's labels.
        load: Loads a model file of this run's framework (`Trainer.load`).

    Returns:
        The loaded model.

    Raises:
        TledgeError: when the other run trained another backbone, other labels or
            another image size, naming the option to pass.
    """
    source = RunFolder.open(config.from_run)
    trained_with = source.read_config().backbone
    if trained_with and trained_with != config.backbone:
        raise TledgeError(
            f"--from-run {source.root}: it trained --backbone {trained_with}; "
            f"pass --backbone {trained_with}"
        )
    if tuple(source.read_labels()) != tuple(class_names):
        raise TledgeError(f"--from-run {source.root}: its labels differ from {config.data}")
    model = load(source.trained_model)
    if tuple(model.input_shape[1:3]) != tuple(config.image_size):
        raise TledgeError(
            f"--from-run {source.root}: its image size is {model.input_shape[1:3]}; "
            f"pass --image-size {model.input_shape[1]} {model.input_shape[2]}"
        )
    return model
