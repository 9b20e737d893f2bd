import json
import shutil
import subprocess
import threading
import time
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
from tledge.edge.web_access import ServeOptions, WebAccess, parse_address

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


def headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip(f"chromium not installed (install: {CHROMIUM_INSTALL})")
    return [
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


BROWSER_RUN = dict(capture_output=True, text=True, timeout=60, check=True)


@pytest.mark.slow
def test_page_shows_stream_and_predictions_in_headless_chromium(color_model, tmp_path):
    """With the token the page streams; without it the browser gets 401 and no page.

    Checked to fail without the token in the link (the 401 text replaces the page).
    """
    browser = headless_chromium(tmp_path)
    classifier = Classifier(color_model, labels=["red", "green", "blue"])
    red = np.zeros((240, 320, 3), np.uint8)
    red[:, :, 2] = 230
    stop, urls = threading.Event(), []
    token = WebAccess.new_token()
    options = EdgeOptions(serve=ServeOptions("127.0.0.1:0", token=token))
    loop = threading.Thread(
        target=run_edge,
        args=(classifier, simulated_live_source([red], fps=20), options),
        kwargs={"stop": stop, "on_serve": urls.append},
    )
    loop.start()
    try:
        while not urls and loop.is_alive():
            loop.join(timeout=0.05)
        shot = tmp_path / "page.png"
        with_token = f"{urls[0]}?token={token}"
        dom = subprocess.run([*browser, "--dump-dom", with_token], **BROWSER_RUN).stdout
        subprocess.run([*browser, f"--screenshot={shot}", with_token], **BROWSER_RUN)
        refused = subprocess.run([*browser, "--dump-dom", urls[0]], **BROWSER_RUN).stdout
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(urls[0] + "stream.mjpg", timeout=5)
    finally:
        stop.set()
        loop.join(timeout=10)
    assert '<td class="label">red</td>' in dom
    assert "FPS" in dom.split('id="status"')[1]
    page = cv2.imread(str(shot))
    stream_red = (page[..., 2] > 200) & (page[..., 1] < 60) & (page[..., 0] < 60)
    # The 320x240 red frame (minus the overlay panel) is on the page.
    assert stream_red.sum() > 320 * 240 * 0.5
    assert "token required" in refused and "predictions" not in refused


@pytest.mark.slow
def test_page_says_no_signal_instead_of_freezing(tmp_path):
    """Checked to fail with the old page, which had no stale state (no "no signal" text)."""
    browser = headless_chromium(tmp_path)
    with PreviewServer("127.0.0.1:0") as server:
        lost_at = time.time() - 60
        record = {"frame": 9, "timestamp": lost_at, "fps": 20.0, "top_k": []}
        server.publish(np.zeros((40, 60, 3), np.uint8), record)
        # Virtual time stands still while the stream sends nothing: wait in real time.
        browser = [arg for arg in browser if not arg.startswith("--virtual-time")]
        dom = subprocess.run(
            [*browser, "--timeout=3000", "--dump-dom", server.url], **BROWSER_RUN
        ).stdout
    status = dom.split('id="status"')[1].split("</div>")[0]
    assert "no signal since" in status and "FPS" not in status
