"""The web view on a LAN: token, cookie, Host allow-list, TLS, client cap, quiet errors.

Each test was checked to fail on the old server (no token, no Host check, Python version
in `Server:`, unbounded threads, IPv6 refused, tracebacks on disconnects) and, where it
guards a single line, by breaking that line (e.g. `matches` returning True, the Host
check skipped, the slot semaphore not acquired).
"""

import http.client
import json
import shutil
import socket
import ssl
import struct
import subprocess
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tledge.cli import cli
from tledge.core.errors import TledgeError
from tledge.edge import server as server_module
from tledge.edge.server import PreviewServer
from tledge.edge.web_access import ServeOptions, parse_address

TOKEN = "a-test-token-0123456789"


def request(server, path, headers=None, method="GET", context=None):
    host, port = server._server.server_address[:2]
    if context is None:
        connection = http.client.HTTPConnection(host, port, timeout=10)
    else:
        connection = http.client.HTTPSConnection("localhost", port, timeout=10, context=context)
    headers = {"Host": f"localhost:{port}", **(headers or {})}
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    body = response.read() if path != "/stream.mjpg" or response.status != 200 else b""
    connection.close()
    return response, body


def test_every_path_needs_the_token_which_the_url_hands_to_a_cookie():
    with PreviewServer(ServeOptions("127.0.0.1:0", token=TOKEN)) as server:
        for path in ("/", "/predictions.json", "/stream.mjpg", "/nothing"):
            response, body = request(server, path)
            assert response.status == 401 and b"token" in body, path
        assert request(server, "/?token=wrong-token-0123")[0].status == 401
        response, _ = request(server, f"/predictions.json?token={TOKEN}")
        assert response.status == 303 and response.headers["Location"] == "/predictions.json"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN in cookie
        # A crafted path must not turn the redirect into one to another site.
        response, _ = request(server, f"//evil.example/x?token={TOKEN}")
        assert response.headers["Location"] == "/evil.example/x"
        kept = {"Cookie": cookie.split(";")[0]}
        response, body = request(server, "/", kept)
        assert response.status == 200 and b"predictions.json" in body
        assert (
            request(server, "/predictions.json", {"Authorization": f"Bearer {TOKEN}"})[0].status
            == 200
        )
        assert request(server, "/", {"Cookie": cookie.split(";")[0] + "x"})[0].status == 401


def test_loopback_view_without_a_token_stays_open_and_hides_versions():
    with PreviewServer("127.0.0.1:0") as server:
        response, body = request(server, "/")
    assert response.status == 200 and b"<img" in body
    assert response.headers["Server"] == "tledge"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 403),  # a DNS-rebinding page's own name
        ("evil.example:8080", 403),
        ("localhost", 200),
        ("127.0.0.1:1234", 200),
        ("192.168.1.20:8080", 200),  # IP literals cannot be rebound
        ("[::1]:8080", 200),
        ("camera.lan", 200),  # --allow-host
        (socket.gethostname(), 200),
        (f"{socket.gethostname()}.local", 200),
    ],
)
def test_host_header_allow_list(host, status):
    with PreviewServer(ServeOptions("127.0.0.1:0", allow_hosts=("camera.lan",))) as server:
        assert request(server, "/", {"Host": host})[0].status == status


def test_binding_beyond_loopback_needs_a_token_or_an_explicit_opt_out(color_model, tmp_path):
    with pytest.raises(TledgeError, match="--token auto") as info:
        ServeOptions("0.0.0.0:0").check()
    assert "\n" not in str(info.value)
    assert ServeOptions("0.0.0.0:0", insecure_no_token=True).check() == ("0.0.0.0", 0)
    assert ServeOptions("0.0.0.0:0", token=TOKEN).check() == ("0.0.0.0", 0)
    with pytest.raises(TledgeError, match="--token: use at least 12"):
        PreviewServer(ServeOptions("127.0.0.1:0", token="short"))
    source = tmp_path / "images"
    source.mkdir()
    result = CliRunner(env={"TLEDGE_TOKEN": ""}).invoke(
        cli, ["edge", str(color_model), "--source", str(source), "--serve", "0.0.0.0:8080"]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "--serve 0.0.0.0:8080 lets anyone" in result.stderr
    assert "TLEDGE_TOKEN" in result.stderr and "--insecure-no-token" in result.stderr


def test_ipv6_addresses_are_accepted():
    assert parse_address("[::]:8080") == ("::", 8080)
    with pytest.raises(TledgeError, match="brackets"):
        parse_address("::1:8080")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with PreviewServer("[::1]:0") as server:
        assert server.url.startswith("http://[::1]:")
        connection = http.client.HTTPConnection("::1", server._server.server_address[1], timeout=5)
        connection.request("GET", "/predictions.json")
        assert connection.getresponse().status == 200


def test_connections_beyond_the_cap_get_503_and_stalled_ones_are_dropped(monkeypatch):
    monkeypatch.setattr(server_module, "HEADER_TIMEOUT_S", 1.0)
    with PreviewServer(ServeOptions("127.0.0.1:0", max_clients=2)) as server:
        address = server._server.server_address[:2]
        stalled = [socket.create_connection(address, timeout=10) for _ in range(2)]
        time.sleep(0.3)
        response, body = request(server, "/")
        assert response.status == 503 and b"too many viewers" in body
        # A client that never finishes its request is cut off after the header deadline.
        for connection in stalled:
            connection.sendall(b"GET / HTTP/1.1\r\n")  # and nothing more
            assert connection.recv(100) == b""
            connection.close()
        time.sleep(0.2)
        assert request(server, "/")[0].status == 200


def test_clients_that_hang_up_leave_no_tracebacks(capfd):
    with PreviewServer("127.0.0.1:0") as server:
        frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
        server.publish(frame, {"frame": 1})
        address = server._server.server_address[:2]
        for path in ("/", "/stream.mjpg", "/predictions.json") * 10:
            connection = socket.create_connection(address, timeout=5)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            connection.close()  # reset, before reading anything
        for index in range(20):
            server.publish(frame, {"frame": index})
            time.sleep(0.02)
        assert request(server, "/")[0].status == 200
    assert "Traceback" not in capfd.readouterr().err


@pytest.fixture
def certificate(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_serves_https_with_a_secure_cookie(certificate):
    cert, key = certificate
    options = ServeOptions("127.0.0.1:0", token=TOKEN, tls_cert=str(cert), tls_key=str(key))
    context = ssl.create_default_context(cafile=str(cert))
    with PreviewServer(options) as server:
        assert server.url.startswith("https://")
        response, _ = request(server, f"/?token={TOKEN}", context=context)
        assert response.status == 303 and "; Secure" in response.headers["Set-Cookie"]
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        response, body = request(server, "/predictions.json", bearer, context=context)
        assert response.status == 200 and json.loads(body) == {}
        # Plain HTTP to the TLS port gets nothing useful, and no traceback.
        plain = http.client.HTTPConnection(*server._server.server_address[:2], timeout=5)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("GET", "/")
            plain.getresponse()
    with pytest.raises(TledgeError, match="--tls-cert and --tls-key: give both"):
        ServeOptions("127.0.0.1:0", tls_cert=str(cert)).check()
    with pytest.raises(TledgeError, match="cannot load"):
        PreviewServer(ServeOptions("127.0.0.1:0", tls_cert=str(key), tls_key=str(key)))


def test_predictions_say_how_old_they_are_and_when_they_are_stale():
    with PreviewServer("127.0.0.1:0") as server:
        frame = np.zeros((8, 8, 3), np.uint8)
        server.publish(frame, {"frame": 1, "timestamp": time.time(), "fps": 30.0})
        fresh = json.loads(request(server, "/predictions.json")[1])
        server.publish(frame, {"frame": 2, "timestamp": time.time() - 30, "fps": 30.0})
        old = json.loads(request(server, "/predictions.json")[1])
    assert fresh["stale"] is False and fresh["age_s"] < 2
    assert old["stale"] is True and old["age_s"] >= 30


def test_token_cookie_is_named_after_the_bound_port():
    with PreviewServer(ServeOptions("127.0.0.1:0", token=TOKEN)) as server:
        port = server._server.server_address[1]
        cookie = request(server, f"/?token={TOKEN}")[0].headers["Set-Cookie"]
    assert cookie.startswith(f"tledge_token_{port}={TOKEN};")


def test_token_auto_prints_a_link_with_a_new_token(color_model, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    args = ["edge", str(color_model), "--labels", str(labels), "--source", str(folder),
            "--serve", "127.0.0.1:0", "--no-display"]  # fmt: skip
    result = CliRunner(env={"TLEDGE_TOKEN": ""}).invoke(cli, [*args, "--token", "auto"])
    assert result.exit_code == 0, result.output
    link = [line for line in result.stderr.splitlines() if "Serving the live view" in line]
    token = link[0].split("?token=")[1]
    assert len(token) >= 20 and token != "auto"
    given = CliRunner(env={"TLEDGE_TOKEN": TOKEN}).invoke(cli, args)
    assert given.exit_code == 0, given.output
    assert TOKEN not in given.output and "?token=<your token>" in given.stderr
