"""Rewrite a .tflite flatbuffer so identical quantization zero points are stored once.

Per-channel quantization gives every weight and bias tensor its own int64 zero-point
vector, one entry per output channel, and for symmetric int8 weights they are all zero:
about 10 % of a full-integer MobileNetV2. A flatbuffer may point many tables at one
vector, so the repacked file keeps a single copy of each distinct vector. Nothing else
changes: the same tensors, scales, buffers (16-byte aligned, as the converter writes
them), operators, signatures and metadata.
"""

from __future__ import annotations

import numpy as np

TFLITE_FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16


def share_zero_points(model_bytes: bytes) -> bytes:
    """Return `model_bytes` repacked with each distinct int64 zero-point vector written once.

    Args:
        model_bytes: A .tflite flatbuffer as written by the converter (appended bytes are
            ignored and dropped).

    Returns:
        The repacked flatbuffer; it loads and computes exactly like the input.
    """
    from ai_edge_litert import schema_py_generated as schema

    return pack_model(schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0))


def pack_model(model: object, share_zero_points: bool = True) -> bytes:
    """Serialize a `ModelT` (TFLite object API) the way the converter lays it out.

    Byte buffers are 16-byte aligned, as the runtime reads int32 and float data in place;
    with `share_zero_points` each distinct int64 vector is written once.

    Example:
        >>> model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
        >>> same = pack_model(model)
    """
    import flatbuffers

    class AligningBuilder(flatbuffers.Builder):
        """Builder that aligns byte vectors to 16 and may reuse identical int64 vectors."""

        def __init__(self, initial_size: int) -> None:
            super().__init__(initial_size)
            self.int64_vectors: dict[bytes, int] = {}

        def CreateNumpyVector(self, x: np.ndarray) -> int:
            if x.dtype == np.int64 and share_zero_points:
                key = x.tobytes()
                if key not in self.int64_vectors:
                    self.int64_vectors[key] = super().CreateNumpyVector(x)
                return self.int64_vectors[key]
            if x.dtype == np.uint8:
                self.StartVector(1, x.size, BUFFER_ALIGNMENT)
                self.head -= x.size
                self.Bytes[self.head : self.head + x.size] = x.tobytes()
                self.vectorNumElems = x.size
                return self.EndVector()
            return super().CreateNumpyVector(x)

    builder = AligningBuilder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_FILE_IDENTIFIER)
    return bytes(builder.Output())
