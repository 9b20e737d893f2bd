"""Creating, resuming and tracking run folders (`runs/<name>/`).

A run is finished when metrics.json exists. An unfinished run with the same config is
resumed; anything else is an error unless `overwrite` is set, so no run is replaced
silently. state.json (`trainer/run_state.py`) records which phase is done so a resumed run
skips it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tledge.core.errors import TledgeError
from tledge.core.input_contract import write_input_contract
from tledge.core.run_folder import RunFolder
from tledge.trainer.backbones import get_backbone
from tledge.trainer.config import TrainConfig

GENERIC_FOLDER_NAMES = {"train", "training", "images", "data"}


def run_name(config: TrainConfig) -> str:
    """`--name`, else "<backbone>_<dataset>_<config hash>" (the same command, the same name).

    Example:
        >>> run_name(TrainConfig(data="food/train"))  # doctest: +SKIP
        'mobilenetv2_food_1a2b3c4d'
    """
    if config.name:
        return config.name
    folder = Path(config.data).resolve()
    dataset = folder.parent.name if folder.name.lower() in GENERIC_FOLDER_NAMES else folder.name
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{config.backbone}_{dataset}").strip("-")
    return f"{slug}_{config.fingerprint()}"


def open_run(config: TrainConfig) -> tuple[RunFolder, bool]:
    """Create the run folder for `config`, or find the unfinished one to resume.

    Writes config.json for a new run, and input_contract.json (the backbone's input
    contract at the run's image size) for a new run or one that lacks it.

    Returns:
        The run folder and whether an unfinished run is being resumed.

    Raises:
        TledgeError: when the folder holds a finished run, a run with other settings, or
            something that is not a run (and `overwrite` is not set).
    """
    run = RunFolder(Path(config.output) / run_name(config))
    root = run.root
    exists = root.is_dir() and any(root.iterdir())
    if exists and config.overwrite:
        shutil.rmtree(root)
        exists = False
    if exists:
        if run.metrics.is_file():
            raise TledgeError(
                f"{root}: a finished run already exists; use --name NEW or --overwrite"
            )
        if not run.config.is_file():
            raise TledgeError(f"{root}: folder exists and is not a tledge run; use another --name")
        stored = TrainConfig.from_run_config(run.read_config())
        if stored.identity() != config.identity():
            raise TledgeError(
                f"{root}: an unfinished run with different settings exists; "
                "use --name NEW or --overwrite"
            )
        if not run.input_contract.is_file():
            _write_input_contract(run, config)
        return run, True
    root.mkdir(parents=True, exist_ok=True)
    run.write_config(config.run_config())
    _write_input_contract(run, config)
    return run, False


def _write_input_contract(run: RunFolder, config: TrainConfig) -> None:
    spec = get_backbone(config.backbone)
    write_input_contract(run.input_contract, spec.run_input_contract(config.image_size))
