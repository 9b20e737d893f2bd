"""Reading a TFLite flatbuffer's graph: op counts, tensor types, and whether it is all-integer.

The flatbuffer is parsed directly (not through an interpreter, whose delegates would
hide the ops behind one delegate node), so what is reported is what the file holds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tledge.edge.contract import Quantization

FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16")
INTEGER_ACTIVATION_TYPES = ("INT8", "UINT8")


@dataclass(frozen=True)
class GraphReport:
    """What the main subgraph of a .tflite computes with.

    Attributes:
        op_counts: Number of ops of each type, e.g. {"CONV_2D": 35, ...}.
        op_versions: Highest version used of each op type.
        input_quantization: dtype, scale and zero point of the (first) input tensor.
        output_quantization: dtype, scale and zero point of the (first) output tensor.
        float_ops: Ops that read or write float tensors, as "CONV_2D #3", excluding the
            QUANTIZE of a float model input and the DEQUANTIZE of a float model output.
        tensor_types: Number of tensors of each type among op inputs and outputs.
    """

    op_counts: dict[str, int]
    op_versions: dict[str, int]
    input_quantization: Quantization
    output_quantization: Quantization
    float_ops: tuple[str, ...]
    tensor_types: dict[str, int]

    @property
    def is_full_integer(self) -> bool:
        """True when no op between the model's input and output computes in float."""
        return not self.float_ops


def inspect_graph(model_bytes: bytes) -> GraphReport:
    """Parse a .tflite (appended bytes are ignored) and report its main subgraph.

    Example:
        >>> report = inspect_graph(Path("model_int8.tflite").read_bytes())
        >>> report.is_full_integer, report.op_counts["CONV_2D"]
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    op_names = {code: name for name, code in vars(schema.BuiltinOperator).items() if name.isupper()}
    type_names = {code: name for name, code in vars(schema.TensorType).items() if name.isupper()}
    graph = model.subgraphs[0]

    def type_of(index: int) -> str:
        return type_names.get(graph.tensors[index].type, "UNKNOWN")

    counts: Counter[str] = Counter()
    versions: dict[str, int] = {}
    tensor_types: Counter[str] = Counter()
    float_ops: list[str] = []
    graph_inputs, graph_outputs = set(graph.inputs), set(graph.outputs)
    seen: set[int] = set()
    for position, operator in enumerate(graph.operators or []):
        code = model.operatorCodes[operator.opcodeIndex]
        name = op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        counts[name] += 1
        versions[name] = max(versions.get(name, 0), code.version)
        inputs = [i for i in operator.inputs if i >= 0]
        outputs = [i for i in operator.outputs if i >= 0]
        for index in set(inputs + outputs) - seen:
            tensor_types[type_of(index)] += 1
        seen.update(inputs + outputs)
        if not any(type_of(i) in FLOAT_TYPES for i in inputs + outputs):
            continue
        boundary = (name == "QUANTIZE" and set(inputs) <= graph_inputs) or (
            name == "DEQUANTIZE" and set(outputs) <= graph_outputs
        )
        if not boundary:
            float_ops.append(f"{name} #{position}")
    return GraphReport(
        op_counts=dict(counts.most_common()),
        op_versions=versions,
        input_quantization=_quantization(graph.tensors[graph.inputs[0]], type_names),
        output_quantization=_quantization(graph.tensors[graph.outputs[0]], type_names),
        float_ops=tuple(float_ops),
        tensor_types=dict(tensor_types.most_common()),
    )


def full_integer_problems(
    report: GraphReport, io_type: str, allow_float_ops: bool = False
) -> list[str]:
    """Reasons a graph that should be full int8 is not; empty when it is.

    Args:
        report: From `inspect_graph`.
        io_type: The requested input/output dtype ("uint8", "int8" or "float32").
        allow_float_ops: Do not count float ops inside the graph as a problem.
    """
    problems = []
    if report.float_ops and not allow_float_ops:
        problems.append(f"float ops remain: {', '.join(report.float_ops)}")
    for side, quantization in (
        ("input", report.input_quantization),
        ("output", report.output_quantization),
    ):
        if quantization.dtype != io_type:
            problems.append(f"{side} is {quantization.dtype}, expected {io_type}")
    return problems


def _quantization(tensor: object, type_names: dict[int, str]) -> Quantization:
    dtype = type_names.get(tensor.type, "UNKNOWN").lower()
    params = tensor.quantization
    if dtype not in (t.lower() for t in INTEGER_ACTIVATION_TYPES) or params is None:
        return Quantization(dtype=dtype)
    scales = list(params.scale) if params.scale is not None else []
    zero_points = list(params.zeroPoint) if params.zeroPoint is not None else []
    if not scales:
        return Quantization(dtype=dtype)
    return Quantization(dtype=dtype, scale=float(scales[0]), zero_point=int(zero_points[0]))
