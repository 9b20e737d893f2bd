"""A live web view for headless devices: annotated MJPEG stream plus the latest predictions.

`PreviewServer` serves from background threads:

- `/` a small page showing the stream and a predictions table it polls,
- `/stream.mjpg` the annotated frames as multipart/x-mixed-replace JPEGs,
- `/predictions.json` the latest predictions, timings, FPS, the frame's age and a
  `stale` flag (true when the source stopped delivering).

A frame is JPEG-encoded only when a viewer asks for it, once for all viewers, so the
classification loop pays nothing while nobody watches. Access rules (token, Host
allow-list) are in `tledge.edge.web_access`; a view bound beyond loopback needs a
token unless `ServeOptions.insecure_no_token` says otherwise. At most
`ServeOptions.max_clients` connections are served at once (the rest get 503), each with
a deadline for its request headers and a timeout for every read and write.

Example:
    >>> with PreviewServer(ServeOptions("0.0.0.0:8080", token=WebAccess.new_token())) as server:
    ...     server.publish(annotated_bgr, {"frame": 1, "timestamp": time.time(), "top_k": []})
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from tledge.core.errors import TledgeError
from tledge.edge.latest_frame import LatestFrame
from tledge.edge.web_access import ServeOptions, WebAccess, tls_context
from tledge.edge.web_page import PAGE

BOUNDARY = "tledgeframe"
# POST bodies are small JSON commands (e.g. `tledge capture`'s {"label": "pizza"}).
MAX_POST_BYTES = 4096

# Answers a POST: (path, JSON body) -> (HTTP status, JSON reply).
PostHandler = Callable[[str, Any], tuple[int, dict[str, Any]]]
# A client must send its whole request (and finish a TLS handshake) within this time.
HEADER_TIMEOUT_S = 10.0
# Any single read or write that waits longer than this ends the connection.
IDLE_TIMEOUT_S = 20.0
LISTEN_BACKLOG = 64
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class _Handler(BaseHTTPRequestHandler):
    server: _PreviewHTTPServer

    def __init__(self, request, client_address, server, header_deadline: threading.Timer):
        self._header_deadline = header_deadline
        super().__init__(request, client_address, server)

    def version_string(self) -> str:
        """No software versions in the Server header."""
        return "tledge"

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self._header_deadline.cancel()
        return parsed

    def do_GET(self) -> None:
        access = self.server.access
        url = urlsplit(self.path)
        if not self._host_allowed():
            return
        query_token = access.token_from_query(url.query)
        if access.token is not None and query_token is not None:
            if access.matches(query_token):
                # Keep the token in a cookie and drop it from the address bar.
                self.send_response(HTTPStatus.SEE_OTHER)
                self.send_header("Location", "/" + url.path.lstrip("/"))
                self.send_header("Set-Cookie", access.cookie())
                self.send_header("Content-Length", "0")
                self._security_headers()
                self.end_headers()
            else:
                self._unauthorized("wrong token")
            return
        if not access.authorized(self.headers.get("Cookie"), self.headers.get("Authorization")):
            self._unauthorized("token required")
            return
        if url.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self.server.page)
        elif url.path == "/predictions.json":
            body = json.dumps(self.server.latest.status(time.time())).encode("utf-8")
            self._send(HTTPStatus.OK, "application/json", body)
        elif url.path == "/stream.mjpg":
            self._stream()
        else:
            self._send_text(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        """A JSON command for the page's owner (`tledge capture`'s buttons), same access rules."""
        handler = self.server.post_handler
        if not self._host_allowed():
            return
        if not self.server.access.authorized(
            self.headers.get("Cookie"), self.headers.get("Authorization")
        ):
            self._unauthorized("token required")
            return
        if handler is None:
            self._send_text(HTTPStatus.NOT_FOUND, "not found")
            return
        if self.headers.get_content_type() != "application/json":
            # A cross-site HTML form cannot send JSON without a CORS preflight, which this
            # server never grants: only the page itself can press its buttons.
            self._send_text(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_POST_BYTES:
            self._send_text(HTTPStatus.BAD_REQUEST, "expected a small JSON body")
            return
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            self._send_text(HTTPStatus.BAD_REQUEST, "body is not JSON")
            return
        status, reply = handler(urlsplit(self.path).path, body)
        self._send(HTTPStatus(status), "application/json", json.dumps(reply).encode("utf-8"))

    def _host_allowed(self) -> bool:
        if self.server.access.host_allowed(self.headers.get("Host")):
            return True
        self._send_text(
            HTTPStatus.FORBIDDEN,
            "host not allowed: open the view by IP address, or start tledge edge "
            "with --allow-host NAME",
        )
        return False

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: a per-request log line would flood the client's output."""

    def _security_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)

    def _unauthorized(self, reason: str) -> None:
        self.send_response(HTTPStatus.UNAUTHORIZED)
        body = (f"{reason}: open the address tledge edge printed, with ?token=... once\n").encode()
        self.send_header("WWW-Authenticate", 'Bearer realm="tledge"')
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self._security_headers()
        self.end_headers()
        self.wfile.write(body)

    def _send_text(self, status: HTTPStatus, text: str) -> None:
        self._send(status, "text/plain; charset=utf-8", (text + "\n").encode("utf-8"))

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._security_headers()
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        latest = self.server.latest
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self._security_headers()
        self.end_headers()
        sent = 0
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


class _PreviewHTTPServer(ThreadingHTTPServer):
    """One thread per connection, at most `max_clients` at once; disconnects stay quiet."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        latest: LatestFrame,
        access: WebAccess,
        tls: ssl.SSLContext | None,
        max_clients: int,
        page: bytes,
        post_handler: PostHandler | None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.latest = latest
        self.page = page
        self.post_handler = post_handler
        self.access = access
        self.tls = tls
        self._slots = threading.BoundedSemaphore(max_clients)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request, client_address) -> None:
        request.settimeout(IDLE_TIMEOUT_S)
        connection = [request]
        deadline = threading.Timer(HEADER_TIMEOUT_S, _hang_up, (connection,))
        deadline.daemon = True
        deadline.start()
        try:
            if self.tls is not None:
                connection[0] = self.tls.wrap_socket(
                    request, server_side=True, do_handshake_on_connect=False
                )
                connection[0].do_handshake()
            _Handler(connection[0], client_address, self, deadline)
        finally:
            deadline.cancel()
            if connection[0] is not request:
                connection[0].close()

    def handle_error(self, request, client_address) -> None:
        """Clients hanging up, timing out or failing TLS are normal; others get one line."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        print(f"web view: {type(error).__name__}: {error}", file=sys.stderr)


def _hang_up(connection: list[socket.socket]) -> None:
    with contextlib.suppress(OSError):
        connection[0].shutdown(socket.SHUT_RDWR)


def _refuse_busy(request: socket.socket) -> None:
    body = b"too many viewers; try again later\n"
    response = (
        b"HTTP/1.0 503 Service Unavailable\r\nServer: tledge\r\nRetry-After: 5\r\n"
        b"Content-Type: text/plain\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        request.setblocking(False)
        request.send(response + body)


class PreviewServer:
    """Serves the annotated stream and predictions over HTTP(S) from background threads.

    Args:
        options: `ServeOptions`, or just its "[HOST:]PORT" address.
        page: The HTML served at `/` (default: the live view).
        post_handler: Answers JSON POSTs (e.g. `tledge capture`'s buttons) under the same
            access rules; None refuses them.

    Raises:
        TledgeError: when the options are invalid or the port cannot be bound.
    """

    def __init__(
        self,
        options: ServeOptions | str,
        page: str = PAGE,
        post_handler: PostHandler | None = None,
    ) -> None:
        if isinstance(options, str):
            options = ServeOptions(options)
        host, port = options.check()
        tls = tls_context(options.tls_cert, options.tls_key) if options.tls_cert else None
        access = WebAccess.for_address(
            host, options.token, options.allow_hosts, secure_cookie=tls is not None
        )
        self._latest = LatestFrame()
        try:
            self._server = _PreviewHTTPServer(
                (host, port),
                self._latest,
                access,
                tls,
                options.max_clients,
                page.encode("utf-8"),
                post_handler,
            )
        except OSError as error:
            reason = error.strerror or str(error)
            raise TledgeError(f"--serve {options.address}: cannot listen ({reason})") from None
        # The cookie is named after the port actually bound (port 0 picks one).
        self.access = access.for_port(self._server.server_address[1])
        self._server.access = self.access
        self._scheme = "https" if tls is not None else "http"
        # A short poll interval makes close() quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="preview-server", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The page address, with the port actually bound (no token)."""
        host, port = self._server.server_address[:2]
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        shown = f"[{host}]" if ":" in host else host
        return f"{self._scheme}://{shown}:{port}/"

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
