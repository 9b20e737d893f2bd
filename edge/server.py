"""A live web view for headless devices: annotated MJPEG stream plus the latest predictions.

`PreviewServer` runs the standard library's ThreadingHTTPServer in a background thread:

- `/` a small page showing the stream and a predictions table it polls,
- `/stream.mjpg` the annotated frames as multipart/x-mixed-replace JPEGs,
- `/predictions.json` the latest predictions, timings and FPS.

A frame is JPEG-encoded only when a viewer asks for it, once for all viewers, so the
classification loop pays nothing while nobody watches.

Example:
    >>> with PreviewServer("0.0.0.0:8080") as server:
    ...     server.publish(annotated_bgr, {"frame": 1, "top_k": [...]})
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from tledge.core.errors import TledgeError

DEFAULT_HOST = "127.0.0.1"
JPEG_QUALITY = 80
BOUNDARY = "tledgeframe"
# POST bodies are small JSON commands (e.g. `tledge capture`'s {"label": "pizza"}).
MAX_POST_BYTES = 4096

# Answers a POST: (path, JSON body) -> (HTTP status, JSON reply).
PostHandler = Callable[[str, Any], tuple[int, dict[str, Any]]]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tledge edge</title>
<style>
  body { font-family: system-ui, sans-serif; background: #111; color: #eee; margin: 1rem; }
  main { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
  img { max-width: 100%; border: 1px solid #333; }
  table { border-collapse: collapse; min-width: 16rem; }
  td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #333; }
  td.score { text-align: right; font-variant-numeric: tabular-nums; }
  #status { color: #aaa; margin-top: 0.5rem; }
</style>
</head>
<body>
<h1>tledge edge</h1>
<main>
  <img id="stream" src="stream.mjpg" alt="annotated camera stream">
  <section>
    <table id="predictions"><tbody></tbody></table>
    <div id="status">waiting for predictions...</div>
  </section>
</main>
<script>
async function refresh() {
  try {
    const response = await fetch("predictions.json", {cache: "no-store"});
    const data = await response.json();
    const rows = (data.top_k || []).map(item =>
      `<tr><td class="label"></td><td class="score">${(item.score * 100).toFixed(1)}%</td></tr>`);
    const body = document.querySelector("#predictions tbody");
    body.innerHTML = rows.join("");
    (data.top_k || []).forEach((item, i) => {
      body.rows[i].cells[0].textContent = item.label;
    });
    if (data.frame !== undefined) {
      const fps = data.fps ? `${data.fps.toFixed(1)} FPS` : "";
      document.getElementById("status").textContent =
        `frame ${data.frame} | ${data.timings_ms.invoke.toFixed(1)} ms | ${fps}`;
    }
  } catch (error) {
    document.getElementById("status").textContent = "connection lost, retrying...";
  }
}
setInterval(refresh, 500);
refresh();
</script>
</body>
</html>
"""


def parse_address(text: str) -> tuple[str, int]:
    """Split "[HOST:]PORT" into (host, port); the host defaults to 127.0.0.1.

    Raises:
        TledgeError: when the port is not a number in 0-65535.
    """
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or int(port) > 65535:
        raise TledgeError(f"--serve {text}: expected [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080")
    return host, int(port)


class _LatestFrame:
    """The newest published frame and predictions, shared with the request threads."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.sequence = 0
        self.closed = False
        self.predictions: dict[str, Any] = {}
        self._image: np.ndarray | None = None
        self._jpeg: tuple[int, bytes] | None = None

    def publish(self, image: np.ndarray, predictions: dict[str, Any]) -> None:
        with self.changed:
            self._image = image
            self.predictions = predictions
            self.sequence += 1
            self.changed.notify_all()

    def jpeg(self) -> tuple[int, bytes] | None:
        """(sequence, JPEG bytes) of the newest frame, encoded at most once per frame."""
        with self.changed:
            sequence, image, cached = self.sequence, self._image, self._jpeg
        if image is None:
            return None
        if cached is not None and cached[0] == sequence:
            return cached
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        result = (sequence, encoded.tobytes() if ok else b"")
        with self.changed:
            self._jpeg = result
        return result

    def wait_newer(self, sequence: int, timeout: float) -> bool:
        """Wait until a frame newer than `sequence` exists; False on timeout or close."""
        with self.changed:
            self.changed.wait_for(lambda: self.sequence > sequence or self.closed, timeout)
            return self.sequence > sequence and not self.closed

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server: _PreviewHTTPServer

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self.server.page)
        elif path == "/predictions.json":
            with self.server.latest.changed:
                body = json.dumps(self.server.latest.predictions).encode("utf-8")
            self._send(HTTPStatus.OK, "application/json", body)
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def do_POST(self) -> None:
        handler = self.server.post_handler
        length = int(self.headers.get("Content-Length") or 0)
        if handler is None:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
            return
        if self.headers.get_content_type() != "application/json":
            # A cross-site HTML form cannot send JSON without a CORS preflight, which this
            # server never grants: only the page itself can press its buttons.
            self._send(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "text/plain", b"send JSON\n")
            return
        if not 0 < length <= MAX_POST_BYTES:
            self._send(HTTPStatus.BAD_REQUEST, "text/plain", b"expected a small JSON body\n")
            return
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            self._send(HTTPStatus.BAD_REQUEST, "text/plain", b"body is not JSON\n")
            return
        status, reply = handler(self.path.split("?")[0], body)
        self._send(HTTPStatus(status), "application/json", json.dumps(reply).encode("utf-8"))

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: a per-request log line would flood the client's output."""

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        latest = self.server.latest
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        sent = 0
        try:
            while not latest.closed:
                if not latest.wait_newer(sent, timeout=1.0):
                    continue
                frame = latest.jpeg()
                if frame is None:
                    continue
                sent, jpeg = frame
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n".encode("ascii")
                )
                self.wfile.write(jpeg + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


class _PreviewHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        latest: _LatestFrame,
        page: bytes,
        post_handler: PostHandler | None,
    ) -> None:
        super().__init__(address, _Handler)
        self.latest = latest
        self.page = page
        self.post_handler = post_handler


class PreviewServer:
    """Serves the annotated stream and predictions over HTTP from a background thread.

    Args:
        address: "[HOST:]PORT"; port 0 picks a free port (see `url`).
        page: The HTML served at `/` (default: the live view).
        post_handler: Answers POST requests (e.g. `tledge capture`'s buttons); None
            refuses them.

    Raises:
        TledgeError: when the address is invalid or the port cannot be bound.
    """

    def __init__(
        self, address: str, page: str = PAGE, post_handler: PostHandler | None = None
    ) -> None:
        host, port = parse_address(address)
        self._latest = _LatestFrame()
        try:
            self._server = _PreviewHTTPServer(
                (host, port), self._latest, page.encode("utf-8"), post_handler
            )
        except OSError as error:
            raise TledgeError(f"--serve {address}: cannot listen ({error.strerror})") from None
        # A short poll interval makes close() quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="preview-server", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The page address, with the port actually bound."""
        host, port = self._server.server_address[:2]
        shown = "localhost" if host in ("0.0.0.0", "::") else host
        return f"http://{shown}:{port}/"

    def publish(self, image: np.ndarray, predictions: dict[str, Any]) -> None:
        """Make `image` (BGR, not modified afterwards) and `predictions` the newest."""
        self._latest.publish(image, predictions)

    def close(self) -> None:
        """End open streams and stop the server; safe to call twice."""
        self._latest.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> PreviewServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
