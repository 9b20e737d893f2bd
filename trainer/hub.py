"""TF Hub feature-vector backbones (`--backbone hub:HANDLE`): which names are hub handles,
whether one can be used here, its precision and its download into the TF Hub cache.

The tf_keras model built around a hub layer is `trainer/hub_model.py`. Needs the `hub`
extra (tensorflow-hub, tf-keras).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tledge.core.errors import TledgeError, first_line

HUB_PREFIX = "hub:"
HUB_MODULES = ("tensorflow_hub", "tf_keras")
# TF Hub image models take float RGB in [0, 1].
HUB_RESCALE = (1 / 255, 0.0)
HUB_DEFAULT_SIZE = (224, 224)


def is_hub(backbone: str) -> bool:
    """True for a `--backbone hub:HANDLE` name."""
    return backbone.startswith(HUB_PREFIX)


def hub_handle(backbone: str) -> str:
    """The HANDLE of "hub:HANDLE" (a URL or a local SavedModel folder)."""
    return backbone[len(HUB_PREFIX) :]


def is_url(handle: str) -> bool:
    """True when a hub handle is a URL rather than a local folder."""
    return "://" in handle


def check_hub_backbone(backbone: str) -> None:
    """Check that a hub backbone can be built here: the extra is installed, the handle
    is not empty, and a local handle is a SavedModel folder.

    Raises:
        TledgeError: naming what is missing and what to do.
    """
    missing = [module for module in HUB_MODULES if importlib.util.find_spec(module) is None]
    if missing:
        raise TledgeError(
            f"--backbone {backbone}: TF Hub backbones need the hub extra "
            f"(pip install 'tledge[hub]'); missing: {', '.join(missing)}"
        )
    handle = hub_handle(backbone)
    if not handle:
        raise TledgeError("--backbone hub:HANDLE: give a TF Hub URL or a local SavedModel folder")
    if is_url(handle):
        return
    folder = Path(handle).expanduser()
    if not folder.is_dir():
        raise TledgeError(f"--backbone {backbone}: folder {folder} not found")
    if not any((folder / name).is_file() for name in ("saved_model.pb", "saved_model.pbtxt")):
        raise TledgeError(
            f"--backbone {backbone}: {folder} is not a SavedModel folder (no saved_model.pb)"
        )


def hub_precision(requested: str) -> str:
    """The dtype policy of a hub run: always float32.

    A hub module's SavedModel computes in the dtypes it was saved with, so a mixed
    policy would only cast around it; "auto" therefore means float32 here.

    Raises:
        TledgeError: for an explicit mixed policy.
    """
    if requested in ("auto", "float32"):
        return "float32"
    raise TledgeError(
        f"--precision {requested}: TF Hub backbones train in float32 only; "
        "use --precision float32 (or auto)"
    )


def fetch_hub_module(backbone: str) -> None:
    """Make sure the module of a URL handle is in the TF Hub cache (download it if not).

    Called before a run folder is created, so an offline URL fails without leaving one.
    A local folder handle needs nothing.

    Raises:
        TledgeError: when the URL cannot be downloaded, suggesting a local folder.
    """
    check_hub_backbone(backbone)
    handle = hub_handle(backbone)
    if not is_url(handle):
        return
    import tensorflow_hub as hub

    try:
        hub.resolve(handle)
    except Exception as error:
        raise download_error(backbone, error) from None


def download_error(backbone: str, error: Exception) -> TledgeError:
    """The one-line error for a hub handle that could not be downloaded."""
    return TledgeError(
        f"--backbone {backbone}: could not download the TF Hub model (offline? "
        f"{first_line(error)}); download and extract it on a connected machine and pass "
        "--backbone hub:/path/to/saved_model_folder, or set TFHUB_CACHE_DIR to a cache "
        "that holds it"
    )
