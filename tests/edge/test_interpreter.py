import pytest

from tledge.core.errors import TledgeError
from tledge.edge.interpreter import available_runtimes, find_runtime, open_interpreter


def test_published_model_opens_with_the_preferred_runtime(shared_data):
    interpreter, runtime = open_interpreter(
        shared_data / "tflite" / "mobilenet_v1_0.25_128_quant.tflite", num_threads=1
    )
    assert runtime.name == available_runtimes()[0]
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 128, 128, 3]


def test_bad_model_files_are_one_line_errors(tmp_path):
    with pytest.raises(TledgeError, match="not found"):
        open_interpreter(tmp_path / "missing.tflite")
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"this is not a flatbuffer" * 10)
    with pytest.raises(TledgeError, match="corrupt.tflite: not a TFLite model") as info:
        open_interpreter(corrupt)
    assert "\n" not in str(info.value)


def test_unknown_runtime_is_rejected():
    with pytest.raises(TledgeError, match="--runtime nope"):
        find_runtime("nope")
