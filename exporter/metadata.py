"""Writing the standard TFLite Model Metadata, plus tledge's contract, into a .tflite.

MediaPipe Tasks, the TFLite Task Library and Android Studio read the metadata of
tflite-support's `metadata_schema.fbs`: a `ModelMetadata` flatbuffer (identifier "M001")
in a model buffer that the model's `metadata` list names "TFLITE_METADATA", with its
associated files in a zip archive appended to the model. This module writes that with the
`flatbuffers` package alone (tflite-support is unmaintained and pins old packages), laid
out as tflite-support's `MetadataPopulator` and image-classifier writer lay it out:

- input: ImageProperties RGB, NormalizationOptions from the contract (tledge models take
  raw 0-255 pixels: mean 0, std 1), value range stats;
- output: `labels.txt` as its TENSOR_AXIS_LABELS file;
- model: `tledge_contract.json`, the full `ModelContract` that tledge's client reads.

`tledge.edge.model_file` reads it all back without TensorFlow.
"""

from __future__ import annotations

import io
import typing
import zipfile

from tledge.edge.contract import CONTRACT_NAME, ModelContract
from tledge.edge.metadata import (
    IMAGE_PROPERTIES,
    METADATA_IDENTIFIER,
    METADATA_NAME,
    NORMALIZATION_OPTIONS,
    TENSOR_AXIS_LABELS,
)
from tledge.exporter.compact import pack_model

LABELS_NAME = "labels.txt"
# Every field written here is in metadata schema 1.0.0 (see tflite-support's
# metadata_version.cc), so that is the oldest parser that reads the file.
MIN_PARSER_VERSION = "1.0.0"
FEATURE_PROPERTIES = 1  # ContentProperties union member
RGB, UNKNOWN_COLOR_SPACE = 1, 0  # ColorSpaceType; the schema has no BGR
UNKNOWN_FILE_TYPE = 0  # AssociatedFileType
# Fixed member times make exports of the same model byte-identical.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def embed_metadata(model_bytes: bytes, contract: ModelContract, share_zero_points: bool) -> bytes:
    """Return the model with standard metadata, `labels.txt` and the contract embedded.

    Metadata already in the model is replaced; the graph and weights are unchanged.

    Args:
        model_bytes: A .tflite flatbuffer (appended bytes are dropped).
        contract: The model's contract; its labels, normalization and tensor types
            become the standard metadata.
        share_zero_points: Keep identical int64 vectors stored once
            (`tledge.exporter.compact`), for a model that was compacted.

    Example:
        >>> data = embed_metadata(Path("model.tflite").read_bytes(), contract, True)
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    buffer = schema.BufferT()
    buffer.data = list(build_metadata(contract))
    entries = [entry for entry in model.metadata or [] if _name(entry) == METADATA_NAME]
    if entries:
        model.buffers[entries[0].buffer] = buffer
    else:
        model.buffers = [*(model.buffers or []), buffer]
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    files = {LABELS_NAME: "".join(f"{label}\n" for label in contract.labels)}
    files[CONTRACT_NAME] = contract.to_json()
    return _append_archive(pack_model(model, share_zero_points), files)


def build_metadata(contract: ModelContract) -> bytes:
    """The ModelMetadata flatbuffer (identifier "M001") for `contract`'s classifier."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    writer = _Writer(builder)
    image_input = writer.tensor(
        name="image",
        description="Input image to be classified.",
        content=writer.content(
            IMAGE_PROPERTIES, writer.table({0: ("byte", _color_space(contract))})
        ),
        process_units=[
            writer.table(
                {
                    0: ("ubyte", NORMALIZATION_OPTIONS),
                    1: ("offset", writer.table(_normalization(writer, contract))),
                }
            )
        ],
        stats=_input_stats(writer, contract),
        files=[],
    )
    labels = writer.file(
        LABELS_NAME, "Labels for categories that the model can recognize.", TENSOR_AXIS_LABELS
    )
    probabilities = writer.tensor(
        name="probability",
        description=f"Probabilities of the {len(contract.labels)} labels respectively.",
        content=writer.content(FEATURE_PROPERTIES, writer.table({})),
        process_units=[],
        stats=(writer.stats([1.0], [0.0]) if contract.output_kind == "probabilities" else None),
        files=[labels],
    )
    subgraph = writer.table(
        {
            0: ("offset", builder.CreateString("image classifier")),
            2: ("offset", writer.vector([image_input])),
            3: ("offset", writer.vector([probabilities])),
        }
    )
    contract_file = writer.file(
        CONTRACT_NAME,
        "tledge model contract: labels, input size, resize, normalization, quantization "
        "and the accuracy drift measured at export.",
        UNKNOWN_FILE_TYPE,
    )
    what = f"{contract.backbone or 'image'} classifier"
    root = writer.table(
        {
            0: ("offset", builder.CreateString(_model_name(contract))),
            1: (
                "offset",
                builder.CreateString(
                    f"Classifies an RGB image into {len(contract.labels)} classes "
                    f"({what}, {contract.variant or 'tflite'}). Made by tledge; "
                    f"{CONTRACT_NAME} holds its full preprocessing contract."
                ),
            ),
            2: ("offset", builder.CreateString(_model_version(contract))),
            3: ("offset", writer.vector([subgraph])),
            4: ("offset", builder.CreateString("tledge")),
            6: ("offset", writer.vector([contract_file])),
            7: ("offset", builder.CreateString(MIN_PARSER_VERSION)),
        }
    )
    builder.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


class _Writer:
    """Small helpers over `flatbuffers.Builder` for tables addressed by schema slot."""

    PREPEND: typing.ClassVar[dict[str, str]] = {
        "byte": "PrependInt8Slot",
        "ubyte": "PrependUint8Slot",
    }

    def __init__(self, builder) -> None:
        self.builder = builder

    def table(self, fields: dict[int, tuple[str, int]]) -> int:
        """A table from {slot: (kind, value)}; kind "offset" for strings, tables, vectors."""
        builder = self.builder
        builder.StartObject(max(fields, default=-1) + 1)
        for slot, (kind, value) in sorted(fields.items()):
            if kind == "offset":
                builder.PrependUOffsetTRelativeSlot(slot, value, 0)
            else:
                getattr(builder, self.PREPEND[kind])(slot, value, 0)
        return builder.EndObject()

    def vector(self, offsets: list[int]) -> int:
        """A vector of tables or strings."""
        self.builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.builder.PrependUOffsetTRelative(offset)
        return self.builder.EndVector()

    def floats(self, values: list[float]) -> int:
        """A vector of float32."""
        self.builder.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.builder.PrependFloat32(float(value))
        return self.builder.EndVector()

    def stats(self, maximum: list[float], minimum: list[float]) -> int:
        """A Stats table (max, min)."""
        return self.table(
            {0: ("offset", self.floats(maximum)), 1: ("offset", self.floats(minimum))}
        )

    def content(self, properties_type: int, properties: int) -> int:
        """A Content table holding one ContentProperties union member."""
        return self.table({0: ("ubyte", properties_type), 1: ("offset", properties)})

    def file(self, name: str, description: str, file_type: int) -> int:
        """An AssociatedFile table."""
        name_offset = self.builder.CreateString(name)
        description_offset = self.builder.CreateString(description)
        return self.table(
            {0: ("offset", name_offset), 1: ("offset", description_offset), 2: ("byte", file_type)}
        )

    def tensor(
        self,
        name: str,
        description: str,
        content: int,
        process_units: list[int],
        stats: int | None,
        files: list[int],
    ) -> int:
        """A TensorMetadata table."""
        fields = {
            0: ("offset", self.builder.CreateString(name)),
            1: ("offset", self.builder.CreateString(description)),
            3: ("offset", content),
        }
        if process_units:
            fields[4] = ("offset", self.vector(process_units))
        if stats is not None:
            fields[5] = ("offset", stats)
        if files:
            fields[6] = ("offset", self.vector(files))
        return self.table(fields)


def _normalization(writer: _Writer, contract: ModelContract) -> dict[int, tuple[str, int]]:
    return {
        0: ("offset", writer.floats(list(contract.mean))),
        1: ("offset", writer.floats(list(contract.std))),
    }


def _color_space(contract: ModelContract) -> int:
    return RGB if contract.color_order == "RGB" else UNKNOWN_COLOR_SPACE


def _input_stats(writer: _Writer, contract: ModelContract) -> int | None:
    """The input's value range, as tflite-support's image-classifier writer states it."""
    dtype = contract.input_quantization.dtype
    if dtype == "uint8":
        return writer.stats([255.0], [0.0])
    if dtype in ("float32", "float16"):
        maximum = [(255.0 - m) / s for m, s in zip(contract.mean, contract.std, strict=True)]
        minimum = [(0.0 - m) / s for m, s in zip(contract.mean, contract.std, strict=True)]
        return writer.stats(maximum, minimum)
    return None


def _model_name(contract: ModelContract) -> str:
    run = contract.source_run.replace("\\", "/").rstrip("/").rpartition("/")[2]
    return run or f"{contract.backbone or 'tledge'} image classifier"


def _model_version(contract: ModelContract) -> str:
    variant = contract.variant or "tflite"
    return f"{variant} (tledge {contract.tledge_version})" if contract.tledge_version else variant


def _name(entry: object) -> str:
    name = entry.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def _append_archive(model_bytes: bytes, files: dict[str, str]) -> bytes:
    """Append `files` as a stored zip whose offsets count from the model's first byte.

    That is how tflite-support's populator appends them (zip "a" mode on the model file);
    readers that ignore the bytes before an archive find the members all the same.
    """
    stream = io.BytesIO(model_bytes)
    stream.seek(0, io.SEEK_END)
    with zipfile.ZipFile(stream, "a", zipfile.ZIP_STORED) as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_DATE_TIME), text.encode("utf-8"))
    return stream.getvalue()
