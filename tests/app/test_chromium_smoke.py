"""One real browser: `tledge app` served by Streamlit, driven by headless Chromium (CDP).

The page is rendered by Streamlit's JavaScript over its websocket, so the test reads
the page text through the Chrome DevTools Protocol rather than a static DOM dump.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("streamlit", reason="the [app] extra (streamlit) is not installed")
websockets_sync = pytest.importorskip("websockets.sync.client", reason="websockets missing")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
# Wide enough that Streamlit shows the sidebar (with the page choice) expanded.
WINDOW = "--window-size=1280,900"
DEADLINE_S = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(url: str, deadline: float) -> str:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer")


def page_text(debug_port: int, url: str, wanted: tuple[str, ...], deadline: float) -> str:
    """Open `url` in the browser and return the page text once it contains all `wanted`."""
    targets = json.loads(wait_http(f"http://127.0.0.1:{debug_port}/json", deadline))
    socket_url = next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]
    text = ""
    with websockets_sync.connect(socket_url, max_size=None) as browser:
        browser.send(json.dumps({"id": 1, "method": "Page.navigate", "params": {"url": url}}))
        request = 2
        while time.monotonic() < deadline and not all(part in text for part in wanted):
            time.sleep(0.5)
            expression = {"expression": "document.body ? document.body.innerText : ''"}
            browser.send(
                json.dumps({"id": request, "method": "Runtime.evaluate", "params": expression})
            )
            while True:
                reply = json.loads(browser.recv(timeout=10))
                if reply.get("id") == request:
                    text = reply["result"]["result"].get("value", "")
                    break
            request += 1
    return text


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium not installed")
def test_the_review_app_renders_in_a_real_browser(collected, tmp_path):
    app_port, debug_port = free_port(), free_port()
    deadline = time.monotonic() + DEADLINE_S
    app = subprocess.Popen(
        [sys.executable, "-m", "tledge", "app", "--runs", str(tmp_path / "runs"),
         "--collected", str(collected), "--data", str(tmp_path / "data"),
         "--port", str(app_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    browser = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, WINDOW, f"--remote-debugging-port={debug_port}",
         f"--user-data-dir={tmp_path / 'chromium'}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{app_port}/_stcore/health", deadline)
        wanted = ("No runs in", "Review", "Try photos")
        text = page_text(debug_port, f"http://127.0.0.1:{app_port}/", wanted, deadline)
    finally:
        for process in (browser, app):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
    assert "No runs in" in text and "Review" in text and "Try photos" in text
