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
- model: `tledge_contract.json`, the full `ModelContract` that tledge's client reads;
- the contract's golden self-test images (`tledge.edge.golden`), as further zip members.

`tledge.edge.model_file` reads it all back without TensorFlow.
"""

from __future__ import annotations

import io
import typing
import zipfile
from collections.abc import Mapping

import numpy as np

from tledge.edge.contract import CONTRACT_NAME, ModelContract
from tledge.edge.metadata import (
    CONTENT_SLOTS,
    FILE_SLOTS,
    IMAGE_PROPERTIES,
    IMAGE_PROPERTIES_SLOTS,
    METADATA_IDENTIFIER,
    METADATA_NAME,
    MODEL_META_SLOTS,
    NORMALIZATION_OPTIONS,
    NORMALIZATION_SLOTS,
    PROCESS_UNIT_SLOTS,
    STATS_SLOTS,
    SUBGRAPH_SLOTS,
    TENSOR_AXIS_LABELS,
    TENSOR_SLOTS,
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


def embed_metadata(
    model_bytes: bytes,
    contract: ModelContract,
    share_zero_points: bool,
    golden_images: Mapping[str, bytes] | None = None,
) -> bytes:
    """Return the model with standard metadata, `labels.txt` and the contract embedded.

    Metadata already in the model is replaced; the graph and weights are unchanged.

    Args:
        model_bytes: A .tflite flatbuffer (appended bytes are dropped).
        contract: The model's contract; its labels, normalization and tensor types
            become the standard metadata.
        share_zero_points: Keep identical int64 vectors stored once
            (`tledge.exporter.compact`), for a model that was compacted.
        golden_images: PNG bytes of each golden image the contract names.

    Example:
        >>> data = embed_metadata(Path("model.tflite").read_bytes(), contract, True)
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    buffer = schema.BufferT()
    # A numpy array packs 16-byte aligned like the other buffers (`pack_model`).
    buffer.data = np.frombuffer(build_metadata(contract), dtype=np.uint8)
    entries = [entry for entry in model.metadata or [] if _name(entry) == METADATA_NAME]
    if entries:
        model.buffers[entries[0].buffer] = buffer
    else:
        model.buffers = [*(model.buffers or []), buffer]
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    files = {LABELS_NAME: "".join(f"{label}\n" for label in contract.labels).encode("utf-8")}
    files[CONTRACT_NAME] = contract.to_json().encode("utf-8")
    golden_images = golden_images or {}
    for example in contract.golden:
        files[example.image] = golden_images[example.image]
    return _append_archive(pack_model(model, share_zero_points), files)


def build_metadata(contract: ModelContract) -> bytes:
    """The ModelMetadata flatbuffer (identifier "M001") for `contract`'s classifier."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    writer = _Writer(builder)
    normalization = writer.table(
        {
            NORMALIZATION_SLOTS["mean"]: ("offset", writer.floats(contract.mean)),
            NORMALIZATION_SLOTS["std"]: ("offset", writer.floats(contract.std)),
        }
    )
    image_properties = writer.table(
        {IMAGE_PROPERTIES_SLOTS["color_space"]: ("byte", _color_space(contract))}
    )
    image_input = writer.tensor(
        name="image",
        description="Input image to be classified.",
        content=writer.content(IMAGE_PROPERTIES, image_properties),
        process_units=[
            writer.table(
                {
                    PROCESS_UNIT_SLOTS["options_type"]: ("ubyte", NORMALIZATION_OPTIONS),
                    PROCESS_UNIT_SLOTS["options"]: ("offset", normalization),
                }
            )
        ],
        stats=_input_stats(writer, contract),
    )
    labels = writer.file(
        LABELS_NAME, "Labels for categories that the model can recognize.", TENSOR_AXIS_LABELS
    )
    probabilities = writer.tensor(
        name="probability",
        description=f"Probabilities of the {len(contract.labels)} labels respectively.",
        content=writer.content(FEATURE_PROPERTIES, writer.table({})),
        stats=(writer.stats([1.0], [0.0]) if contract.output_kind == "probabilities" else None),
        files=[labels],
    )
    subgraph = writer.table(
        {
            SUBGRAPH_SLOTS["name"]: ("offset", builder.CreateString("image classifier")),
            SUBGRAPH_SLOTS["inputs"]: ("offset", writer.vector([image_input])),
            SUBGRAPH_SLOTS["outputs"]: ("offset", writer.vector([probabilities])),
        }
    )
    contract_file = writer.file(
        CONTRACT_NAME,
        "tledge model contract: labels, input size, resize, normalization, quantization "
        "and the accuracy drift measured at export.",
        UNKNOWN_FILE_TYPE,
    )
    strings = {
        "name": _model_name(contract),
        "description": (
            f"Classifies an RGB image into {len(contract.labels)} classes "
            f"({contract.backbone or 'image'} classifier, {contract.variant or 'tflite'}). "
            f"Made by tledge; {CONTRACT_NAME} holds its full preprocessing contract."
        ),
        "version": _model_version(contract),
        "author": "tledge",
        "min_parser_version": MIN_PARSER_VERSION,
    }
    fields = {
        MODEL_META_SLOTS[key]: ("offset", builder.CreateString(text))
        for key, text in strings.items()
    }
    fields[MODEL_META_SLOTS["subgraphs"]] = ("offset", writer.vector([subgraph]))
    fields[MODEL_META_SLOTS["files"]] = ("offset", writer.vector([contract_file]))
    builder.Finish(writer.table(fields), file_identifier=METADATA_IDENTIFIER)
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
        """A vector of tables."""
        self.builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.builder.PrependUOffsetTRelative(offset)
        return self.builder.EndVector()

    def floats(self, values: typing.Sequence[float]) -> int:
        """A vector of float32."""
        self.builder.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.builder.PrependFloat32(float(value))
        return self.builder.EndVector()

    def stats(self, maximum: list[float], minimum: list[float]) -> int:
        """A Stats table."""
        return self.table(
            {
                STATS_SLOTS["max"]: ("offset", self.floats(maximum)),
                STATS_SLOTS["min"]: ("offset", self.floats(minimum)),
            }
        )

    def content(self, properties_type: int, properties: int) -> int:
        """A Content table holding one ContentProperties union member."""
        return self.table(
            {
                CONTENT_SLOTS["properties_type"]: ("ubyte", properties_type),
                CONTENT_SLOTS["properties"]: ("offset", properties),
            }
        )

    def file(self, name: str, description: str, file_type: int) -> int:
        """An AssociatedFile table."""
        name_offset = self.builder.CreateString(name)
        description_offset = self.builder.CreateString(description)
        return self.table(
            {
                FILE_SLOTS["name"]: ("offset", name_offset),
                FILE_SLOTS["description"]: ("offset", description_offset),
                FILE_SLOTS["type"]: ("byte", file_type),
            }
        )

    def tensor(
        self,
        name: str,
        description: str,
        content: int,
        stats: int | None,
        process_units: typing.Sequence[int] = (),
        files: typing.Sequence[int] = (),
    ) -> int:
        """A TensorMetadata table."""
        fields = {
            TENSOR_SLOTS["name"]: ("offset", self.builder.CreateString(name)),
            TENSOR_SLOTS["description"]: ("offset", self.builder.CreateString(description)),
            TENSOR_SLOTS["content"]: ("offset", content),
        }
        if process_units:
            fields[TENSOR_SLOTS["process_units"]] = ("offset", self.vector(list(process_units)))
        if stats is not None:
            fields[TENSOR_SLOTS["stats"]] = ("offset", stats)
        if files:
            fields[TENSOR_SLOTS["files"]] = ("offset", self.vector(list(files)))
        return self.table(fields)


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


def _append_archive(model_bytes: bytes, files: dict[str, bytes]) -> bytes:
    """Append `files` as a stored zip whose offsets count from the model's first byte.

    That is how tflite-support's populator appends them (zip "a" mode on the model file);
    readers that ignore the bytes before an archive find the members all the same.
    """
    stream = io.BytesIO(model_bytes)
    stream.seek(0, io.SEEK_END)
    with zipfile.ZipFile(stream, "a", zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_DATE_TIME), content)
    return stream.getvalue()
