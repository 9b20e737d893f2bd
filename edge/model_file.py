"""What a .tflite file says about itself: tledge's contract and the standard TFLite metadata.

An exported tledge file carries both: the standard Model Metadata that MediaPipe Tasks and
the TFLite Task Library read (labels, RGB input, normalization), and tledge's richer
`ModelContract`, as associated files in the zip archive appended to the flatbuffer. Files
from earlier tledge versions carry only the contract; published models may carry only
the standard metadata, or nothing.

The reader never guesses: a file that carries metadata which cannot be read, fails
validation or disagrees with itself is refused with one `TledgeError` naming the file and
the problem. Nothing is decompressed before its declared size and compression ratio are
checked.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from tledge.core.errors import TledgeError
from tledge.edge.contract import CONTRACT_NAME, ModelContract
from tledge.edge.flatbuffer_tables import FlatbufferError
from tledge.edge.golden import GoldenImage, decode_golden
from tledge.edge.metadata import StandardMetadata, find_metadata_buffer, parse_metadata

MAX_MEMBER_BYTES = 4 << 20
MAX_COMPRESSION_RATIO = 20
MAX_MEMBERS = 64
MAX_LABEL_LENGTH = 256
END_OF_ARCHIVE = b"PK\x05\x06"
# Everything zipfile raises on damaged bytes (zlib, struct and EOF errors escape it).
ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
    OverflowError,
    KeyError,
    IndexError,
)
RE_EXPORT = "re-export it with `tledge export`"


@dataclass(frozen=True)
class EmbeddedMetadata:
    """The metadata a .tflite carries.

    Attributes:
        contract: tledge's contract, or None when the file has none.
        standard: The standard TFLite Model Metadata, or None when the file has none.
        standard_labels: Class names of the standard metadata's labels file, or None.
        golden: The contract's embedded self-test images, decoded (empty when none).
    """

    contract: ModelContract | None
    standard: StandardMetadata | None
    standard_labels: tuple[str, ...] | None
    golden: tuple[GoldenImage, ...] = ()

    @property
    def labels(self) -> tuple[str, ...] | None:
        """The class names the file carries (the contract's first), or None."""
        return self.contract.labels if self.contract is not None else self.standard_labels


def read_model_metadata(path: str | os.PathLike) -> EmbeddedMetadata:
    """Read and cross-check the metadata of the .tflite at `path`.

    Raises:
        TledgeError: when the file is missing, or carries metadata that is damaged,
            invalid, or disagrees with itself.

    Example:
        >>> read_model_metadata("model_int8.tflite").labels
        ('apple_pie', 'baklava', ...)
    """
    file = Path(path)
    if not file.is_file():
        raise TledgeError(f"{file}: model file not found")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise TledgeError(f"{file}: cannot read the model file ({error.strerror})") from None
    try:
        return _read(data)
    except (TledgeError, FlatbufferError) as error:
        raise TledgeError(f"{file}: {error}") from None


def read_contract(path: str | os.PathLike) -> ModelContract | None:
    """tledge's contract embedded in the .tflite at `path`, or None for other models.

    Raises:
        TledgeError: as `read_model_metadata`.
    """
    return read_model_metadata(path).contract


def _read(data: bytes) -> EmbeddedMetadata:
    archive = _Archive.find(data)
    standard = _standard_metadata(data)
    contract = None
    if archive is not None and CONTRACT_NAME in archive.names:
        contract = _contract(archive.read(CONTRACT_NAME))
    elif CONTRACT_NAME.encode() in data:
        # The name is there but no readable archive holds it: a damaged tledge file.
        raise TledgeError(
            f"its tledge metadata is damaged (no readable {CONTRACT_NAME}); {RE_EXPORT}"
        )
    labels = None
    if standard is not None:
        missing = [
            name
            for name in standard.associated_files
            if archive is None or name not in archive.names
        ]
        if missing:
            raise TledgeError(
                f"its metadata names {', '.join(missing)}, which the file lacks; {RE_EXPORT}"
            )
        if standard.labels_file is not None:
            labels = _labels(archive.read(standard.labels_file), standard.labels_file)
    if contract is not None and standard is not None:
        _check_agreement(contract, standard, labels)
    golden = () if contract is None else _golden(archive, contract)
    return EmbeddedMetadata(contract, standard, labels, golden)


def _standard_metadata(data: bytes) -> StandardMetadata | None:
    try:
        buffer = find_metadata_buffer(data)
    except FlatbufferError as error:
        raise TledgeError(f"not a TFLite model, or a damaged one ({error})") from None
    try:
        return None if buffer is None else parse_metadata(buffer)
    except FlatbufferError as error:
        raise TledgeError(f"its TFLite metadata cannot be read ({error}); {RE_EXPORT}") from None


def _contract(raw: bytes) -> ModelContract:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TledgeError(f"{CONTRACT_NAME} is not UTF-8 text; {RE_EXPORT}") from None
    return ModelContract.from_json(text)


def _golden(archive: _Archive, contract: ModelContract) -> tuple[GoldenImage, ...]:
    """The contract's golden examples with their images, each checked against the file."""
    golden = []
    for example in contract.golden:
        if example.image not in archive.names:
            raise TledgeError(
                f"its contract names golden image {example.image}, which the file lacks; "
                f"{RE_EXPORT}"
            )
        if example.label not in contract.labels:
            raise TledgeError(
                f"golden image {example.image} expects {example.label!r}, not a label of "
                f"the model; {RE_EXPORT}"
            )
        pixels = decode_golden(archive.read(example.image), example.image, contract.input_size)
        golden.append(GoldenImage(example, pixels))
    return tuple(golden)


def _labels(raw: bytes, name: str) -> tuple[str, ...]:
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise TledgeError(f"labels file {name} is not UTF-8 text") from None
    labels = tuple(line.strip() for line in lines if line.strip())
    if not labels or max(len(label) for label in labels) > MAX_LABEL_LENGTH:
        raise TledgeError(
            f"labels file {name} is empty or has a label over {MAX_LABEL_LENGTH} characters"
        )
    return labels


def _check_agreement(
    contract: ModelContract, standard: StandardMetadata, labels: tuple[str, ...] | None
) -> None:
    """The two descriptions of one file must agree; a mismatch means damage."""
    problems = []
    if labels is not None and labels != contract.labels:
        problems.append("labels")
    if standard.mean is not None and (
        _per_channel(standard.mean) != _float32(contract.mean)
        or _per_channel(standard.std) != _float32(contract.std)
    ):
        problems.append("normalization")
    if standard.color_space not in ("", "RGB" if contract.color_order == "RGB" else "UNKNOWN"):
        problems.append("color space")
    if problems:
        raise TledgeError(
            f"its TFLite metadata and contract disagree on {', '.join(problems)}; {RE_EXPORT}"
        )


def _float32(values: tuple[float, ...]) -> tuple[float, ...]:
    """`values` as the metadata's float32 vectors store them."""
    return struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values))


def _per_channel(values: tuple[float, ...] | None) -> tuple[float, ...] | None:
    return values * 3 if values is not None and len(values) == 1 else values


class _Archive:
    """The zip archive appended to a model, read within size and ratio limits."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(infos) > MAX_MEMBERS or len(set(names)) != len(names):
            raise TledgeError(
                f"its associated-file archive has {len(infos)} members or repeats a name"
            )
        self._archive = archive
        self._infos = {info.filename: info for info in infos}
        self.names = frozenset(names)

    @classmethod
    def find(cls, data: bytes) -> _Archive | None:
        """The archive at the end of `data`, or None when there is no archive."""
        if END_OF_ARCHIVE not in data[-(22 + 0xFFFF) :]:
            return None
        try:
            return cls(zipfile.ZipFile(io.BytesIO(data)))
        except ARCHIVE_ERRORS as error:
            raise TledgeError(
                f"its associated-file archive is damaged ({_reason(error)}); {RE_EXPORT}"
            ) from None

    def read(self, name: str) -> bytes:
        """The bytes of member `name`, refused when big, highly compressed or damaged."""
        info = self._infos[name]
        if info.file_size > MAX_MEMBER_BYTES:
            raise TledgeError(f"{name} declares {info.file_size} bytes (limit {MAX_MEMBER_BYTES})")
        if (
            info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
            or info.flag_bits & 1
        ):
            raise TledgeError(f"{name} is encrypted or compressed in an unsupported way")
        if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise TledgeError(f"{name} is compressed more than {MAX_COMPRESSION_RATIO}:1; refused")
        try:
            with self._archive.open(info) as member:
                content = member.read(info.file_size + 1)
        except ARCHIVE_ERRORS as error:
            raise TledgeError(
                f"{name} in the appended archive is damaged ({_reason(error)}); {RE_EXPORT}"
            ) from None
        if len(content) != info.file_size:
            raise TledgeError(f"{name} in the appended archive has the wrong size; {RE_EXPORT}")
        return content


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:120] if text else type(error).__name__
