"""Tiny .tflite models built with the flatbuffer schema that ships with ai-edge-litert,
and fresh virtual environments for running the edge client without TensorFlow.

No TensorFlow is needed: each model is one or two builtin ops, small enough to build in
milliseconds, and its answer can be computed by hand.
"""

from __future__ import annotations

import io
import os
import subprocess
import threading
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _schema():
    return pytest.importorskip(
        "ai_edge_litert.schema_py_generated", reason="ai-edge-litert is not installed"
    )


COLOR_LABELS = ["red", "green", "blue"]
TYPE_NAMES = {"float32": "FLOAT32", "uint8": "UINT8", "int8": "INT8", "int32": "INT32"}


def _tensor(shape, dtype, buffer, name, scale=None, zero_point=None):
    schema = _schema()
    tensor = schema.TensorT()
    tensor.shape = list(shape)
    tensor.type = getattr(schema.TensorType, TYPE_NAMES[dtype])
    tensor.buffer = buffer
    tensor.name = name
    if scale is not None:
        quantization = schema.QuantizationParametersT()
        quantization.scale = [scale]
        quantization.zeroPoint = [zero_point]
        tensor.quantization = quantization
    return tensor


def _operator(opcode_index, inputs, outputs, options_type=0, options=None):
    operator = _schema().OperatorT()
    operator.opcodeIndex = opcode_index
    operator.inputs = inputs
    operator.outputs = outputs
    operator.builtinOptionsType = options_type
    operator.builtinOptions = options
    return operator


def _model(tensors, operators, opcodes, inputs, outputs, buffers) -> bytes:
    schema = _schema()
    codes = []
    for op in opcodes:
        code = schema.OperatorCodeT()
        code.builtinCode = op
        code.deprecatedBuiltinCode = min(op, 127)
        code.version = 1
        codes.append(code)
    subgraph = schema.SubGraphT()
    subgraph.tensors = tensors
    subgraph.operators = operators
    subgraph.inputs = inputs
    subgraph.outputs = outputs
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = codes
    model.subgraphs = [subgraph]
    model.buffers = []
    for data in buffers:
        buffer = schema.BufferT()
        buffer.data = list(data) if data else None
        model.buffers.append(buffer)
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def channel_mean_model(
    size: int = 8, dtype: str = "float32", scale=None, zero_point=None, softmax=False
) -> bytes:
    """A 3-class "classifier" whose logits are the mean of each input channel.

    Integer inputs are dequantized first, so the logits are mean(scale * (q - zero_point)),
    or cast when they have no quantization parameters (logits = mean(q)).
    With `softmax` the model outputs probabilities instead of logits.
    """
    schema = _schema()
    axes = np.array([1, 2], dtype=np.int32).tobytes()
    tensors = [_tensor([1, size, size, 3], dtype, 0, "image", scale, zero_point)]
    operators, opcodes = [], []
    pixels = 0
    if dtype != "float32":
        tensors.append(_tensor([1, size, size, 3], "float32", 0, "real"))
        operators.append(_operator(len(opcodes), [0], [1]))
        # Without quantization parameters the integers are the values: a plain cast.
        cast = scale is None
        opcodes.append(schema.BuiltinOperator.CAST if cast else schema.BuiltinOperator.DEQUANTIZE)
        pixels = 1
    tensors.append(_tensor([2], "int32", 1, "axes"))
    tensors.append(_tensor([1, 3], "float32", 0, "logits"))
    options = schema.ReducerOptionsT()
    options.keepDims = False
    operators.append(
        _operator(
            len(opcodes),
            [pixels, len(tensors) - 2],
            [len(tensors) - 1],
            schema.BuiltinOptions.ReducerOptions,
            options,
        )
    )
    opcodes.append(schema.BuiltinOperator.MEAN)
    if softmax:
        tensors.append(_tensor([1, 3], "float32", 0, "probabilities"))
        options = schema.SoftmaxOptionsT()
        options.beta = 1.0
        operators.append(
            _operator(
                len(opcodes),
                [len(tensors) - 2],
                [len(tensors) - 1],
                schema.BuiltinOptions.SoftmaxOptions,
                options,
            )
        )
        opcodes.append(schema.BuiltinOperator.SOFTMAX)
    return _model(tensors, operators, opcodes, [0], [len(tensors) - 1], [b"", axes])


def image_to_image_model(size: int = 8) -> bytes:
    """Not a classifier: output = input + input, an image."""
    schema = _schema()
    tensors = [
        _tensor([1, size, size, 3], "float32", 0, "image"),
        _tensor([1, size, size, 3], "float32", 0, "doubled"),
    ]
    operators = [_operator(0, [0, 0], [1], schema.BuiltinOptions.AddOptions, schema.AddOptionsT())]
    return _model(tensors, operators, [schema.BuiltinOperator.ADD], [0], [1], [b""])


def with_metadata(model_bytes: bytes, contract, golden_images=None) -> bytes:
    """`model_bytes` with standard metadata and `contract`, as `tledge export` writes them;
    `golden_images` maps the contract's golden image names to RGB pixels."""
    from tledge.edge.golden import encode_golden
    from tledge.exporter.metadata import embed_metadata

    pngs = {name: encode_golden(rgb) for name, rgb in (golden_images or {}).items()}
    return embed_metadata(model_bytes, contract, share_zero_points=False, golden_images=pngs)


def legacy_contract_file(model_bytes: bytes, contract) -> bytes:
    """`model_bytes` as tledge 0.x wrote it: the contract alone, in a deflated zip appended."""
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tledge_contract.json", contract.to_json())
    return model_bytes + stream.getvalue()


@pytest.fixture
def model_bytes():
    """The builders of model bytes: .plain(size=8) (the float channel-mean classifier),
    .with_metadata(data, contract) and .legacy(data, contract)."""
    return SimpleNamespace(
        plain=channel_mean_model, with_metadata=with_metadata, legacy=legacy_contract_file
    )


@pytest.fixture
def make_model(tmp_path: Path):
    """Factory writing a tiny model to tmp_path and returning its path.

    make_model("color", dtype="float32" | "uint8" | "int8", scale=..., zero_point=...,
    contract=ModelContract | None, legacy=False, name="model.tflite"): the channel-mean
    classifier (labels red/green/blue), optionally with the contract embedded as the
    exporter embeds it (standard TFLite metadata + contract), or with `legacy` as tledge
    0.x did (the contract alone in an appended zip); `golden_images` (name -> RGB pixels)
    for the contract's golden examples;
    make_model("softmax"): the same with a softmax at the end (probabilities out);
    make_model("image"): the image-to-image model.
    """

    def make(
        kind="color",
        dtype="float32",
        scale=None,
        zero_point=None,
        contract=None,
        name="model.tflite",
        size=8,
        legacy=False,
        golden_images=None,
    ):
        if kind == "image":
            data = image_to_image_model(size)
        else:
            data = channel_mean_model(size, dtype, scale, zero_point, softmax=kind == "softmax")
        if contract is not None:
            if legacy:
                data = legacy_contract_file(data, contract)
            else:
                data = with_metadata(data, contract, golden_images)
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return make


@pytest.fixture
def color_model(make_model) -> Path:
    """Float 8x8 model: logits = channel means of (pixel - 127.5) / 127.5 (red/green/blue)."""
    return make_model()


@dataclass(frozen=True)
class BuiltVenv:
    """A virtual environment made by `make_venv`.

    Attributes:
        bin: Its bin/ folder (python, pip, tledge).
        env: Environment for running its programs (no PYTHONPATH from the test process).
        pip: The last pip run; a nonzero returncode means an install failed.
    """

    bin: Path
    env: dict
    pip: subprocess.CompletedProcess

    def run(self, program: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run bin/`program` with `args`, capturing text output."""
        return subprocess.run(
            [str(self.bin / program), *args], capture_output=True, text=True, env=self.env, **kwargs
        )


@pytest.fixture
def make_venv(tmp_path: Path):
    """Factory: make_venv(packages) -> BuiltVenv, a venv in tmp_path/venv.

    `packages` and then this repository (without its dependencies) are pip-installed;
    installing stops at the first failed pip run, and the caller decides whether that
    fails or skips its test.
    """

    def make(packages: list[str]) -> BuiltVenv:
        folder = tmp_path / "venv"
        venv.EnvBuilder(with_pip=True).create(folder)
        bin_dir = folder / "bin"
        env = {**os.environ, "PIP_NO_INPUT": "1"}
        env.pop("PYTHONPATH", None)
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-compile"]
        pip.append("--disable-pip-version-check")
        result = None
        for arguments in (packages, ["--no-deps", str(REPO_ROOT)]):
            result = subprocess.run(
                [*pip, *arguments], capture_output=True, text=True, timeout=600, env=env
            )
            if result.returncode != 0:
                break
        return BuiltVenv(bin_dir, env, result)

    return make


class FakeStream:
    """An HTTP MJPEG stream on 127.0.0.1 (our own web view) that can go down and come back.

    Frames are numbered gray images published 50 times a second while the stream is up.
    """

    def __init__(self) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self._server = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish, daemon=True)
        self._thread.start()

    def up(self) -> None:
        from tledge.edge.server import PreviewServer

        self._server = PreviewServer(f"127.0.0.1:{self.port}")

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.down()

    def _publish(self) -> None:
        index = 0
        while not self._stop.wait(0.02):
            server = self._server
            if server is not None:
                server.publish(np.full((48, 64, 3), (4 * index) % 256, np.uint8), {"frame": index})
                index += 1


@pytest.fixture
def fake_stream():
    """A `FakeStream`, down at first; closed after the test."""
    stream = FakeStream()
    yield stream
    stream.close()
