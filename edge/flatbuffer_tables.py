"""Reading FlatBuffer tables from untrusted bytes with the standard library only.

The `flatbuffers` package reads wherever an offset points and trusts every length, so a
damaged file gives an IndexError, a struct.error or a read of the wrong bytes. Here every
offset, length and nesting step is checked against the buffer first, and any violation
is one `FlatbufferError`. Only what tledge reads is supported: scalars, strings, tables,
unions, and vectors of tables, strings, floats and bytes.

Fields are addressed by their slot, the 0-based position in the schema (a union takes two
slots: its type, then its value).
"""

from __future__ import annotations

import math
import struct

MAX_VECTOR_LENGTH = 1 << 20
MAX_DEPTH = 16


class FlatbufferError(ValueError):
    """The bytes are not a well-formed FlatBuffer of the expected shape."""


class Table:
    """One table inside `data`, starting at `position`; reads check every bound."""

    def __init__(self, data: bytes, position: int, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise FlatbufferError("tables nested too deeply")
        self.data = data
        self.position = position
        self.depth = depth
        vtable = position - _read(data, "<i", position)
        self._vtable = vtable
        self._vtable_size = _read(data, "<H", vtable)
        table_size = _read(data, "<H", vtable + 2)
        if self._vtable_size < 4 or self._vtable_size % 2:
            raise FlatbufferError("bad vtable size")
        _check_range(data, vtable, self._vtable_size)
        _check_range(data, position, max(table_size, 4))
        self._table_size = table_size

    @classmethod
    def root(cls, data: bytes, identifier: bytes | None = None) -> Table:
        """The root table of a finished buffer, checking its 4-byte file identifier."""
        if identifier is not None and data[4:8] != identifier:
            raise FlatbufferError(f"file identifier is not {identifier.decode()}")
        return cls(data, _read(data, "<I", 0))

    def _field(self, slot: int) -> int | None:
        """Absolute position of the field in `slot`, or None when it is absent."""
        entry = 4 + 2 * slot
        if entry + 2 > self._vtable_size:
            return None
        offset = _read(self.data, "<H", self._vtable + entry)
        if offset == 0:
            return None
        if offset + 1 > self._table_size:
            raise FlatbufferError("field outside its table")
        return self.position + offset

    def scalar(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        """The scalar in `slot` (a struct format such as "<I", "<b", "<f")."""
        position = self._field(slot)
        return default if position is None else _read(self.data, fmt, position)

    def _target(self, slot: int) -> int | None:
        position = self._field(slot)
        if position is None:
            return None
        return position + _read(self.data, "<I", position)

    def string(self, slot: int, limit: int = 4096) -> str | None:
        """The UTF-8 string in `slot` (at most `limit` bytes), or None when absent."""
        target = self._target(slot)
        return None if target is None else _string_at(self.data, target, limit)

    def table(self, slot: int) -> Table | None:
        """The table in `slot` (also a union's value), or None when absent."""
        target = self._target(slot)
        return None if target is None else Table(self.data, target, self.depth + 1)

    def tables(self, slot: int, limit: int = 64) -> list[Table]:
        """The vector of tables in `slot` (at most `limit`); empty when absent."""
        return [
            Table(self.data, element + _read(self.data, "<I", element), self.depth + 1)
            for element in self._elements(slot, 4, limit)
        ]

    def table_at(self, slot: int, index: int) -> Table:
        """Element `index` of the vector of tables in `slot`, without reading the others."""
        target = self._target(slot)
        if target is None or index >= _read(self.data, "<I", target):
            raise FlatbufferError(f"no element {index} in the vector of slot {slot}")
        element = target + 4 + 4 * index
        return Table(self.data, element + _read(self.data, "<I", element), self.depth + 1)

    def floats(self, slot: int, limit: int = 64) -> list[float] | None:
        """The vector of finite float32 in `slot` (at most `limit`), or None when absent."""
        if self._field(slot) is None:
            return None
        values = [_read(self.data, "<f", element) for element in self._elements(slot, 4, limit)]
        if not all(math.isfinite(value) for value in values):
            raise FlatbufferError("a float that is not finite")
        return values

    def byte_vector(self, slot: int, limit: int = MAX_VECTOR_LENGTH) -> bytes | None:
        """The byte vector in `slot` (at most `limit` bytes), or None when absent."""
        target = self._target(slot)
        if target is None:
            return None
        length = _read(self.data, "<I", target)
        if length > limit:
            raise FlatbufferError(f"byte vector of {length} bytes (limit {limit})")
        _check_range(self.data, target + 4, length)
        return self.data[target + 4 : target + 4 + length]

    def _elements(self, slot: int, size: int, limit: int) -> list[int]:
        target = self._target(slot)
        if target is None:
            return []
        length = _read(self.data, "<I", target)
        if length > limit:
            raise FlatbufferError(f"vector of {length} elements (limit {limit})")
        _check_range(self.data, target + 4, length * size)
        return [target + 4 + size * index for index in range(length)]


def _check_range(data: bytes, start: int, length: int) -> None:
    if start < 0 or length < 0 or start + length > len(data):
        raise FlatbufferError("offset points outside the buffer")


def _read(data: bytes, fmt: str, position: int) -> int | float:
    _check_range(data, position, struct.calcsize(fmt))
    return struct.unpack_from(fmt, data, position)[0]


def _string_at(data: bytes, position: int, limit: int) -> str:
    length = _read(data, "<I", position)
    if length > limit:
        raise FlatbufferError(f"string of {length} bytes (limit {limit})")
    _check_range(data, position + 4, length)
    try:
        return data[position + 4 : position + 4 + length].decode("utf-8")
    except UnicodeDecodeError:
        raise FlatbufferError("a string that is not UTF-8") from None
