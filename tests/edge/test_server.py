import json
import shutil
import subprocess
import threading
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.edge.app import EdgeOptions, run_edge
from tledge.edge.classifier import Classifier
from tledge.edge.live_source import simulated_live_source
from tledge.edge.server import PreviewServer
from tledge.edge.web_access import parse_address

CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"


def test_parse_address_defaults_to_localhost():
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_address("[::1]:81") == ("::1", 81)
    for bad in ("http", "host:", "1:99999"):
        with pytest.raises(TledgeError, match=f"--serve {bad}"):
            parse_address(bad)


def test_page_predictions_and_mjpeg_stream_over_http():
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:, :, 2] = 255
    with PreviewServer("127.0.0.1:0") as server:
        page = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert '<img id="stream" src="stream.mjpg"' in page and "predictions.json" in page
        assert json.load(urllib.request.urlopen(server.url + "predictions.json", timeout=5)) == {}
        server.publish(frame, {"frame": 7, "top_k": [{"label": "red", "score": 0.9}]})
        data = json.load(urllib.request.urlopen(server.url + "predictions.json", timeout=5))
        assert data["frame"] == 7 and data["top_k"][0]["label"] == "red"
        with urllib.request.urlopen(server.url + "stream.mjpg", timeout=5) as stream:
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            threading.Timer(0.2, server.publish, (frame, {"frame": 8})).start()
            head = b""
            while b"\r\n\r\n" not in head:
                head += stream.read(1)
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            jpeg = cv2.imdecode(np.frombuffer(stream.read(length), np.uint8), cv2.IMREAD_COLOR)
        assert jpeg.shape == frame.shape and jpeg[..., 2].mean() > 240
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.url + "nothing", timeout=5)


def test_port_in_use_is_a_one_line_error():
    with PreviewServer("127.0.0.1:0") as server:
        port = server.url.rsplit(":", 1)[1].strip("/")
        with pytest.raises(TledgeError, match=f"--serve 127.0.0.1:{port}: cannot listen"):
            PreviewServer(f"127.0.0.1:{port}")


@pytest.mark.slow
def test_page_shows_stream_and_predictions_in_headless_chromium(color_model, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip(f"chromium not installed (install: {CHROMIUM_INSTALL})")
    classifier = Classifier(color_model, labels=["red", "green", "blue"])
    red = np.zeros((240, 320, 3), np.uint8)
    red[:, :, 2] = 230
    stop, urls = threading.Event(), []
    loop = threading.Thread(
        target=run_edge,
        args=(classifier, simulated_live_source([red], fps=20), EdgeOptions(serve="127.0.0.1:0")),
        kwargs={"stop": stop, "on_serve": urls.append},
    )
    loop.start()
    try:
        while not urls and loop.is_alive():
            loop.join(timeout=0.05)
        browser = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=800,600",
            "--virtual-time-budget=3000",
        ]
        shot = tmp_path / "page.png"
        run = dict(capture_output=True, text=True, timeout=60, check=True)
        dom = subprocess.run([*browser, "--dump-dom", urls[0]], **run).stdout
        subprocess.run([*browser, f"--screenshot={shot}", urls[0]], **run)
    finally:
        stop.set()
        loop.join(timeout=10)
    assert '<td class="label">red</td>' in dom
    assert "FPS" in dom.split('id="status"')[1]
    page = cv2.imread(str(shot))
    stream_red = (page[..., 2] > 200) & (page[..., 1] < 60) & (page[..., 0] < 60)
    # The 320x240 red frame (minus the overlay panel) is on the page.
    assert stream_red.sum() > 320 * 240 * 0.5
