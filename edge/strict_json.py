"""Decoding untrusted JSON into frozen dataclasses, every field checked against its type.

A model file can hold anything, so the contract JSON is bounded before it is parsed (size
and nesting depth) and each value must match its field's annotation exactly: strings are
strings of bounded length, numbers are finite, tuples have the declared length. The
dataclass's own `__post_init__` then checks ranges. Unknown keys are ignored, so newer
files still load.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from tledge.core.errors import TledgeError

MAX_JSON_CHARS = 4 << 20
MAX_DEPTH = 8
MAX_STRING = 4096
MAX_ITEMS = 100_000
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")

T = TypeVar("T")


def decode_dataclass(cls: type[T], text: str, what: str) -> T:
    """Parse `text` as a JSON object and build `cls` from it.

    Args:
        cls: A dataclass whose fields are str, int, float, tuples of those, nested
            dataclasses, or `Mapping[str, Any]` (plain JSON, depth-bounded).
        text: The JSON text.
        what: Name of the document for error messages, e.g. "tledge_contract.json".

    Raises:
        TledgeError: naming `what` and the first field that is wrong.
    """
    if len(text) > MAX_JSON_CHARS:
        raise TledgeError(f"{what}: {len(text)} characters (limit {MAX_JSON_CHARS})")
    if _nesting_depth(text) > MAX_DEPTH:
        raise TledgeError(f"{what}: nested deeper than {MAX_DEPTH} levels")
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise TledgeError(f"{what}: invalid JSON ({error})") from None
    return _dataclass(cls, raw, what)


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _dataclass(cls: type[T], raw: Any, where: str) -> T:
    if not isinstance(raw, dict):
        raise TledgeError(f"{where}: expected a JSON object")
    hints = typing.get_type_hints(cls)
    values = {
        field.name: _value(raw[field.name], hints[field.name], f"{where}: {field.name}")
        for field in dataclasses.fields(cls)
        if field.name in raw
    }
    try:
        return cls(**values)
    except TypeError as error:  # a required field is missing
        raise TledgeError(f"{where}: {error}") from None


def _value(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _dataclass(hint, value, where)
    if hint is str:
        if not isinstance(value, str) or len(value) > MAX_STRING or _UNPRINTABLE.search(value):
            raise TledgeError(
                f"{where}: expected a one-line string of at most {MAX_STRING} characters"
            )
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**31:
            raise TledgeError(f"{where}: expected a 32-bit integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TledgeError(f"{where}: expected a number")
        if not math.isfinite(value):
            raise TledgeError(f"{where}: expected a finite number")
        return float(value)
    if origin is tuple:
        if not isinstance(value, list):
            raise TledgeError(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            if len(value) > MAX_ITEMS:
                raise TledgeError(f"{where}: more than {MAX_ITEMS} items")
            return tuple(_value(item, args[0], where) for item in value)
        if len(value) != len(args):
            raise TledgeError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_value(item, arg, where) for item, arg in zip(value, args, strict=True))
    if origin in (Mapping, dict):
        if not isinstance(value, dict):
            raise TledgeError(f"{where}: expected a JSON object")
        return value
    raise TypeError(f"{where}: unsupported field type {hint}")
