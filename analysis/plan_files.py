"""Reading experiment plan files: TOML/YAML parsing, field and type checks, paths.

The plan format itself is described in `tledge.analysis.experiments`.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError
from tledge.core.text_files import read_text_file
from tledge.trainer.config import TrainConfig

# Fields a plan may not set: the plan decides where each run goes.
RESERVED_FIELDS = ("name", "output", "overwrite")
PATH_FIELDS = ("data", "val", "test", "from_run")
WEIGHT_KEYWORDS = ("imagenet", "none")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Parse `KEY=VALUE` strings; VALUE is read as TOML (1, 0.1, true, [96, 96]) and
    falls back to a plain string (paths, names).

    Raises:
        TledgeError: when an item has no "=".

    Example:
        >>> parse_overrides(["epochs=1", "augment=false", "weights=w.h5"])
        {'epochs': 1, 'augment': False, 'weights': 'w.h5'}
    """
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise TledgeError(f"--set {item}: expected KEY=VALUE, e.g. --set epochs=1")
        try:
            value = toml_loads(f"value = {text.strip()}")["value"]
        except ValueError:
            value = text.strip()
        values[key.strip()] = value
    return values


def read_plan_file(source: Path) -> dict[str, Any]:
    """The top-level table of a .toml (or .yaml / .yml) plan file.

    Raises:
        TledgeError: when the file is missing, unreadable or not a table.
    """
    text = read_text_file(source, "plan")
    if source.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise TledgeError(
                f"{source}: YAML plans need PyYAML (`pip install pyyaml`); or write TOML"
            ) from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise TledgeError(f"{source}: invalid YAML ({error})") from None
    else:
        try:
            raw = toml_loads(text)
        except ValueError as error:
            raise TledgeError(f"{source}: invalid TOML ({error})") from None
    if not isinstance(raw, dict):
        raise TledgeError(f"{source}: expected a table with [defaults] and [[run]] entries")
    return raw


def toml_loads(text: str) -> dict[str, Any]:
    """Parse TOML with tomllib (Python 3.11+) or the tomli backport.

    Raises:
        ValueError: on invalid TOML (TOMLDecodeError is a ValueError).
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        try:
            import tomli as tomllib
        except ImportError:
            raise TledgeError("TOML plans need `pip install tomli` on Python 3.10") from None
    return tomllib.loads(text)


def check_fields(source: Path, where: str, values: Any) -> dict[str, Any]:
    """Check that `values` are `TrainConfig` fields of the right types (`where` names them).

    Raises:
        TledgeError: for a reserved or unknown key or a value of the wrong type.
    """
    if not isinstance(values, dict):
        raise TledgeError(f"{source}: {where} must be a table of TrainConfig fields")
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    reserved = sorted(set(values) & set(RESERVED_FIELDS))
    if reserved:
        raise TledgeError(
            f"{source}: {where} sets {reserved}; the plan names runs and their folder"
        )
    unknown = sorted(set(values) - known)
    if unknown:
        raise TledgeError(
            f"{source}: {where} has unknown keys {unknown}; "
            f"valid: {', '.join(sorted(known - set(RESERVED_FIELDS)))}"
        )
    hints = typing.get_type_hints(TrainConfig)
    for key, value in values.items():
        if not _has_type(value, hints[key]):
            expected = getattr(hints[key], "__name__", str(hints[key]))
            raise TledgeError(f"{source}: {where}: {key} = {value!r} is not of type {expected}")
    values = dict(values)
    if isinstance(values.get("image_size"), list):
        values["image_size"] = tuple(values["image_size"])
    return values


def _has_type(value: Any, hint: Any) -> bool:
    """True when a TOML value fits a TrainConfig field type (ints pass for floats)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, (list, tuple)) and all(_has_type(item, int) for item in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def resolve_paths(values: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """`values` with relative data/weights/run paths made absolute against `base`."""
    resolved = dict(values)
    for key in PATH_FIELDS:
        if isinstance(resolved.get(key), str):
            resolved[key] = str((base / resolved[key]).resolve())
    weights = resolved.get("weights")
    if isinstance(weights, str) and weights.lower() not in WEIGHT_KEYWORDS:
        resolved["weights"] = str((base / weights).resolve())
    return resolved


def cap_epochs(settings: dict[str, Any], max_epochs: int) -> dict[str, Any]:
    """`settings` with each phase's epochs capped at `max_epochs` (0 stays 0)."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    capped = dict(settings)
    for key in ("epochs", "fine_tune_epochs"):
        capped[key] = min(int(settings.get(key, defaults[key])), max_epochs)
    return capped
