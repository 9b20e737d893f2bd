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
# The newest schema version whose fields this reader knows (metadata_version.cc).
SUPPORTED_PARSER_MAJOR = 1
MAX_METADATA_BYTES = 1 << 20

# Slots of the TFLite model schema (schema.fbs) and of metadata_schema.fbs.
MODEL_BUFFERS, MODEL_METADATA = 4, 6
METADATA_NAME_SLOT, METADATA_BUFFER_SLOT = 0, 1
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
MODEL_META = {"name": 0, "description": 1, "version": 2, "subgraphs": 3, "files": 6}
MODEL_META_MIN_PARSER = 7
SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS = 2, 3
TENSOR_CONTENT, TENSOR_PROCESS_UNITS, TENSOR_FILES = 3, 4, 6
CONTENT_PROPERTIES_TYPE, CONTENT_PROPERTIES = 0, 1
IMAGE_COLOR_SPACE = 0
PROCESS_UNIT_TYPE, PROCESS_UNIT_OPTIONS = 0, 1
NORMALIZATION_MEAN, NORMALIZATION_STD = 0, 1
FILE_NAME, FILE_TYPE = 0, 2

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
        for entry in root.tables(MODEL_METADATA, limit=256)
        if entry.string(METADATA_NAME_SLOT) == METADATA_NAME
    ]
    if not entries:
        return None
    if len(entries) > 1:
        raise FlatbufferError(f"{len(entries)} {METADATA_NAME} entries")
    index = entries[0].scalar(METADATA_BUFFER_SLOT, "<I")
    buffer = root.table_at(MODEL_BUFFERS, index)
    data = buffer.byte_vector(BUFFER_DATA, limit=MAX_METADATA_BYTES)
    offset = buffer.scalar(BUFFER_OFFSET, "<Q")
    if offset > 1:  # large models keep buffers outside the flatbuffer, at a file offset
        size = buffer.scalar(BUFFER_SIZE, "<Q")
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
    min_parser = root.string(MODEL_META_MIN_PARSER, limit=32) or ""
    _check_parser_version(min_parser)
    files = [_file_name(file) for file in root.tables(MODEL_META["files"])]
    subgraphs = root.tables(MODEL_META["subgraphs"], limit=1)
    color_space, mean, std, labels_file = "", None, None, None
    if subgraphs:
        subgraph = subgraphs[0]
        inputs = subgraph.tables(SUBGRAPH_INPUTS, limit=1)
        outputs = subgraph.tables(SUBGRAPH_OUTPUTS, limit=1)
        if inputs:
            color_space = _color_space(inputs[0])
            mean, std = _normalization(inputs[0])
            files += [_file_name(file) for file in inputs[0].tables(TENSOR_FILES)]
        if outputs:
            output_files = outputs[0].tables(TENSOR_FILES)
            files += [_file_name(file) for file in output_files]
            labels = [
                _file_name(file)
                for file in output_files
                if file.scalar(FILE_TYPE, "<b") == TENSOR_AXIS_LABELS
            ]
            labels_file = labels[0] if labels else None
    return StandardMetadata(
        name=root.string(MODEL_META["name"]) or "",
        version=root.string(MODEL_META["version"]) or "",
        description=root.string(MODEL_META["description"], limit=65536) or "",
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
    name = file.string(FILE_NAME, limit=256)
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise FlatbufferError(f"associated file name {name!r} is not a plain file name")
    return name


def _color_space(tensor: Table) -> str:
    content = tensor.table(TENSOR_CONTENT)
    if content is None or content.scalar(CONTENT_PROPERTIES_TYPE, "<B") != IMAGE_PROPERTIES:
        return ""
    properties = content.table(CONTENT_PROPERTIES)
    code = 0 if properties is None else properties.scalar(IMAGE_COLOR_SPACE, "<b")
    if code not in COLOR_SPACES:
        raise FlatbufferError(f"unknown color space {code}")
    return COLOR_SPACES[code]


def _normalization(tensor: Table) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    units = [
        unit
        for unit in tensor.tables(TENSOR_PROCESS_UNITS)
        if unit.scalar(PROCESS_UNIT_TYPE, "<B") == NORMALIZATION_OPTIONS
    ]
    if not units:
        return None, None
    if len(units) > 1:
        raise FlatbufferError("more than one NormalizationOptions")
    options = units[0].table(PROCESS_UNIT_OPTIONS)
    if options is None:
        raise FlatbufferError("NormalizationOptions without values")
    mean = options.floats(NORMALIZATION_MEAN, limit=3)
    std = options.floats(NORMALIZATION_STD, limit=3)
    if not mean or not std or len(mean) != len(std) or len(mean) not in (1, 3):
        raise FlatbufferError("NormalizationOptions needs 1 or 3 means and as many stds")
    if min(std) <= 0:
        raise FlatbufferError("NormalizationOptions std must be positive")
    return tuple(mean), tuple(std)
