"""Reading the standard TFLite Model Metadata of a .tflite, without TensorFlow.

The standard (tflite-support's `metadata_schema.fbs`, read by MediaPipe Tasks, the TFLite
Task Library and Android Studio) stores a `ModelMetadata` flatbuffer (file identifier
"M001") in a model buffer that the model's `metadata` list names "TFLITE_METADATA"; the
files it mentions (labels) are members of a zip archive appended to the model.

`find_metadata_buffer` finds that flatbuffer and `parse_metadata` reads the parts an image
classifier needs into a validated `StandardMetadata`. Both read untrusted bytes through
`tledge.edge.flatbuffer_tables`, so damage is one `FlatbufferError`, never a wrong value.
"""

from __future__ import annotations

from dataclasses import dataclass

from tledge.edge.flatbuffer_tables import FlatbufferError, Table

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
# Files that need a parser of a later major version than this are refused; minor versions
# only add fields this reader does not need (tflite-support's metadata_version.cc).
SUPPORTED_PARSER_MAJOR = 1
MAX_METADATA_BYTES = 1 << 20

# Field slots (0-based schema order; a union takes two: its type, then its value) of the
# TFLite model schema (schema.fbs) and of metadata_schema.fbs.
MODEL_SLOTS = {"buffers": 4, "metadata": 6}
MODEL_METADATA_ENTRY_SLOTS = {"name": 0, "buffer": 1}
BUFFER_SLOTS = {"data": 0, "offset": 1, "size": 2}
MODEL_META_SLOTS = {
    "name": 0,
    "description": 1,
    "version": 2,
    "subgraphs": 3,
    "author": 4,
    "files": 6,
    "min_parser_version": 7,
}
SUBGRAPH_SLOTS = {"name": 0, "inputs": 2, "outputs": 3}
TENSOR_SLOTS = {
    "name": 0,
    "description": 1,
    "content": 3,
    "process_units": 4,
    "stats": 5,
    "files": 6,
}
CONTENT_SLOTS = {"properties_type": 0, "properties": 1}
IMAGE_PROPERTIES_SLOTS = {"color_space": 0}
PROCESS_UNIT_SLOTS = {"options_type": 0, "options": 1}
NORMALIZATION_SLOTS = {"mean": 0, "std": 1}
STATS_SLOTS = {"max": 0, "min": 1}
FILE_SLOTS = {"name": 0, "description": 1, "type": 2}

IMAGE_PROPERTIES = 2  # ContentProperties union member
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union member
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}


@dataclass(frozen=True)
class StandardMetadata:
    """What the standard metadata says about an image classifier.

    Attributes:
        name: Model name.
        version: Model version string.
        description: Model description.
        min_parser_version: Oldest metadata parser that reads every field.
        color_space: Input color space: "RGB", "GRAYSCALE" or "UNKNOWN" (or "" when the
            input has no ImageProperties).
        mean: Per-channel (1 or 3 values) mean of the input NormalizationOptions, or None.
        std: Per-channel standard deviation of the NormalizationOptions, or None.
        labels_file: The output's TENSOR_AXIS_LABELS associated file, or None.
        associated_files: Every associated file the metadata names.
    """

    name: str
    version: str
    description: str
    min_parser_version: str
    color_space: str
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    labels_file: str | None
    associated_files: tuple[str, ...]


def find_metadata_buffer(model: bytes) -> bytes | None:
    """The ModelMetadata flatbuffer of the .tflite bytes `model`, or None when it has none.

    Raises:
        FlatbufferError: when the model or its metadata entry cannot be read.
    """
    root = Table.root(model)
    entries = [
        entry
        for entry in root.tables(MODEL_SLOTS["metadata"], limit=256)
        if entry.string(MODEL_METADATA_ENTRY_SLOTS["name"]) == METADATA_NAME
    ]
    if not entries:
        return None
    if len(entries) > 1:
        raise FlatbufferError(f"{len(entries)} {METADATA_NAME} entries")
    index = entries[0].scalar(MODEL_METADATA_ENTRY_SLOTS["buffer"], "<I")
    buffer = root.table_at(MODEL_SLOTS["buffers"], index)
    data = buffer.byte_vector(BUFFER_SLOTS["data"], limit=MAX_METADATA_BYTES)
    offset = buffer.scalar(BUFFER_SLOTS["offset"], "<Q")
    if offset > 1:  # large models keep buffers outside the flatbuffer, at a file offset
        size = buffer.scalar(BUFFER_SLOTS["size"], "<Q")
        if size > MAX_METADATA_BYTES or offset + size > len(model):
            raise FlatbufferError("metadata buffer outside the file")
        data = model[offset : offset + size]
    if not data:
        raise FlatbufferError(f"{METADATA_NAME} buffer is empty")
    return data


def parse_metadata(data: bytes) -> StandardMetadata:
    """Read and validate a ModelMetadata flatbuffer.

    Raises:
        FlatbufferError: when it is damaged, needs a newer parser, has more than one
            subgraph, input or output, or holds invalid normalization values.
    """
    root = Table.root(data, METADATA_IDENTIFIER)
    min_parser = root.string(MODEL_META_SLOTS["min_parser_version"], limit=32) or ""
    _check_parser_version(min_parser)
    files = [_file_name(file) for file in root.tables(MODEL_META_SLOTS["files"])]
    subgraphs = root.tables(MODEL_META_SLOTS["subgraphs"], limit=1)
    color_space, mean, std, labels_file = "", None, None, None
    if subgraphs:
        subgraph = subgraphs[0]
        inputs = subgraph.tables(SUBGRAPH_SLOTS["inputs"], limit=1)
        outputs = subgraph.tables(SUBGRAPH_SLOTS["outputs"], limit=1)
        if inputs:
            color_space = _color_space(inputs[0])
            mean, std = _normalization(inputs[0])
            files += [_file_name(file) for file in inputs[0].tables(TENSOR_SLOTS["files"])]
        if outputs:
            output_files = outputs[0].tables(TENSOR_SLOTS["files"])
            files += [_file_name(file) for file in output_files]
            labels = [
                _file_name(file)
                for file in output_files
                if file.scalar(FILE_SLOTS["type"], "<b") == TENSOR_AXIS_LABELS
            ]
            labels_file = labels[0] if labels else None
    return StandardMetadata(
        name=root.string(MODEL_META_SLOTS["name"]) or "",
        version=root.string(MODEL_META_SLOTS["version"]) or "",
        description=root.string(MODEL_META_SLOTS["description"], limit=65536) or "",
        min_parser_version=min_parser,
        color_space=color_space,
        mean=mean,
        std=std,
        labels_file=labels_file,
        associated_files=tuple(dict.fromkeys(files)),
    )


def _check_parser_version(version: str) -> None:
    if not version:
        return
    parts = version.split(".")
    if not all(part.isdigit() and len(part) <= 4 for part in parts) or len(parts) > 3:
        raise FlatbufferError(f"min_parser_version {version!r} is not a version")
    if int(parts[0]) > SUPPORTED_PARSER_MAJOR:
        raise FlatbufferError(f"needs a metadata parser of version {version} or newer")


def _file_name(file: Table) -> str:
    name = file.string(FILE_SLOTS["name"], limit=256)
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise FlatbufferError(f"associated file name {name!r} is not a plain file name")
    return name


def _color_space(tensor: Table) -> str:
    content = tensor.table(TENSOR_SLOTS["content"])
    kind = None if content is None else content.scalar(CONTENT_SLOTS["properties_type"], "<B")
    if kind != IMAGE_PROPERTIES:
        return ""
    properties = content.table(CONTENT_SLOTS["properties"])
    slot = IMAGE_PROPERTIES_SLOTS["color_space"]
    code = 0 if properties is None else properties.scalar(slot, "<b")
    if code not in COLOR_SPACES:
        raise FlatbufferError(f"unknown color space {code}")
    return COLOR_SPACES[code]


def _normalization(tensor: Table) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    units = [
        unit
        for unit in tensor.tables(TENSOR_SLOTS["process_units"])
        if unit.scalar(PROCESS_UNIT_SLOTS["options_type"], "<B") == NORMALIZATION_OPTIONS
    ]
    if not units:
        return None, None
    if len(units) > 1:
        raise FlatbufferError("more than one NormalizationOptions")
    options = units[0].table(PROCESS_UNIT_SLOTS["options"])
    if options is None:
        raise FlatbufferError("NormalizationOptions without values")
    mean = options.floats(NORMALIZATION_SLOTS["mean"], limit=3)
    std = options.floats(NORMALIZATION_SLOTS["std"], limit=3)
    if not mean or not std or len(mean) != len(std) or len(mean) not in (1, 3):
        raise FlatbufferError("NormalizationOptions needs 1 or 3 means and as many stds")
    if min(std) <= 0:
        raise FlatbufferError("NormalizationOptions std must be positive")
    return tuple(mean), tuple(std)
