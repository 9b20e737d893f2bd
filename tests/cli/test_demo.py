import pytest
from click.testing import CliRunner

from tledge.cli import cli
from tledge.core.labels import read_labels
from tledge.edge.model_file import read_contract


@pytest.mark.slow
def test_demo_trains_exports_and_classifies_end_to_end(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "demo",
            "--output",
            str(tmp_path),
            "--images-per-class",
            "12",
            "--epochs",
            "2",
            "--fine-tune-epochs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "demo"
    labels = read_labels(run / "labels.txt")
    assert labels == ["circle", "square", "stripes", "triangle"]
    int8 = run / "export" / "model_int8.tflite"
    if not int8.exists():  # the drift gate may reject a model this briefly trained
        int8 = run / "export" / "model_int8.rejected.tflite"
    contract = read_contract(int8)
    assert list(contract.labels) == labels
    assert contract.input_quantization.dtype == "uint8"
    # The edge client and the exporter's drift check read the same images through
    # different code: they must agree on the int8 model's accuracy exactly.
    int8_line = next(line for line in result.output.splitlines() if "int8 tflite" in line)
    edge_line = next(line for line in result.output.splitlines() if "edge client" in line)
    assert int8_line.split()[2] == edge_line.split()[2]
    next_line = next(line for line in result.output.splitlines() if line.startswith("next:"))
    assert next_line.split()[3] == str(int8)
