"""The Streamlit app through Streamlit's own AppTest API (no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the [app] extra (streamlit) is not installed")
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "tledge" / "app" / "streamlit_app.py"
TIMEOUT = 60


@pytest.fixture
def app(monkeypatch, tmp_path, collected):
    monkeypatch.setenv("TLEDGE_APP_COLLECTED", str(collected))
    monkeypatch.setenv("TLEDGE_APP_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TLEDGE_APP_RUNS", str(tmp_path / "runs"))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def open_page(app: AppTest, page: str) -> AppTest:
    app.run()
    app.sidebar.radio(key="page").set_value(page).run()
    assert not app.exception, app.exception
    return app


def test_review_files_the_most_doubtful_frame_with_one_click(app, collected, tmp_path):
    open_page(app, "Review")
    assert "3 frames to review" in app.caption[0].value
    assert app.markdown[0].value == "**doubt 0.95** (low-confidence, small-margin)"
    app.button(key="file-soup").click().run()
    assert not app.exception
    filed = list((tmp_path / "data" / "soup").iterdir())
    assert len(filed) == 1 and filed[0].name.endswith("-0000001.jpg")
    assert "2 frames to review" in app.caption[0].value
    app.button(key="skip").click().run()
    app.button(key="delete").click().run()
    assert "Nothing left to review." in app.success[0].value
    log = (collected / "reviewed.jsonl").read_text().splitlines()
    assert [json.loads(line)["action"] for line in log] == ["filed", "deleted"]


@pytest.mark.slow
def test_review_new_class(app, tmp_path):
    open_page(app, "Review")
    app.text_input(key="new-class").input("garlic bread").run()
    app.button(key="file-new").click().run()
    assert not app.exception
    assert len(list((tmp_path / "data" / "garlic bread").iterdir())) == 1


@pytest.mark.slow
def test_runs_page_compares_runs_and_shows_curves(app, tmp_path):
    for name, accuracy in (("first", 0.75), ("second", 0.8)):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"backbone": "mobilenetv2"}))
        (run / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy}))
        epochs = [{"accuracy": 0.5 + i / 10, "val_accuracy": 0.4 + i / 10} for i in range(3)]
        (run / "history.json").write_text(json.dumps({"epochs": epochs}))
    open_page(app, "Runs")
    table = app.dataframe[0].value
    assert sorted(table["test accuracy"].tolist()) == [0.75, 0.8]
    assert app.metric[0].value.endswith(" %")
    assert len(app.get("arrow_line_chart")) + len(app.get("vega_lite_chart")) >= 1


@pytest.mark.slow
@pytest.mark.integration
def test_try_page_classifies_with_a_model(app, shared_data):
    open_page(app, "Try photos")
    model = shared_data / "tflite" / "mobilenet_v1_0.25_128_quant.tflite"
    app.text_input(key="model-path").input(str(model)).run()
    assert not app.exception and not app.error
