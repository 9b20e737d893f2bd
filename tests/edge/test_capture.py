"""`tledge capture`: photos by web button and headless, unique names, disk full.

Checked to fail: with `atomic_write_bytes` replaced by a plain write, the disk-full test
found the partial photo left behind.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tledge.cli import cli
from tledge.core.errors import TledgeError
from tledge.edge.capture import (
    CaptureOptions,
    CaptureStopped,
    PhotoStore,
    parse_interval,
    run_capture,
)
from tledge.edge.live_source import simulated_live_source

FRAME = np.full((120, 160, 3), (10, 200, 30), np.uint8)


def post(url, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + "capture", json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_store_counts_existing_photos_and_names_are_unique(tmp_path):
    (tmp_path / "pizza").mkdir()
    cv2.imwrite(str(tmp_path / "pizza" / "old.jpg"), FRAME)
    store = PhotoStore(tmp_path, classes=("salad",))
    assert store.counts() == {"salad": 0, "pizza": 1}
    paths = [store.save("pizza", FRAME) for _ in range(5)]
    assert len(set(paths)) == 5 and store.counts()["pizza"] == 6
    assert cv2.imread(str(paths[0])).shape == FRAME.shape  # full resolution
    for bad in ("../up", ".hidden", "a/b", ""):
        with pytest.raises(TledgeError, match="class name"):
            store.save(bad, FRAME)


def test_disk_full_is_one_line_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    store = PhotoStore(tmp_path / "data")
    store.save("pizza", FRAME)

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # the bytes were written, the flush fails
    with pytest.raises(CaptureStopped) as caught:
        store.save("pizza", FRAME)
    message = str(caught.value)
    assert message.endswith("disk full; capture stopped after 1 photos, nothing half-written")
    assert "\n" not in message
    assert len(os.listdir(tmp_path / "data" / "pizza")) == 1  # no temporary file left


def test_headless_takes_count_photos_at_the_interval(tmp_path):
    source = simulated_live_source([FRAME], fps=100)
    store = PhotoStore(tmp_path)
    options = CaptureOptions(label="pizza", every_s=0.02, count=5)
    assert run_capture(source, store, options) == 5
    assert store.counts() == {"pizza": 5}


def test_headless_disk_full_stops_the_capture(tmp_path, monkeypatch):
    source = simulated_live_source([FRAME], fps=100)
    store = PhotoStore(tmp_path)
    monkeypatch.setattr(os, "fsync", lambda _fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "")))
    with pytest.raises(CaptureStopped, match="disk full"):
        run_capture(source, store, CaptureOptions(label="pizza", every_s=0.0, count=5))
    assert source.finished  # the camera was closed


def test_web_page_buttons_save_the_current_frame(tmp_path):
    source = simulated_live_source([FRAME], fps=50)
    store = PhotoStore(tmp_path, classes=("pizza",))
    stop = threading.Event()
    urls = []
    thread = threading.Thread(
        target=run_capture,
        args=(source, store, CaptureOptions(serve="127.0.0.1:0"), stop, urls.append),
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not urls and time.monotonic() < deadline:
            time.sleep(0.01)
        url = urls[0]
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "tledge capture" in page and "keydown" in page
        status, reply = post(url, {"label": "pizza"})
        while status == 400 and "no frame" in reply["error"] and time.monotonic() < deadline:
            time.sleep(0.05)
            status, reply = post(url, {"label": "pizza"})
        assert status == 200 and reply["counts"] == {"pizza": 1}
        status, reply = post(url, {"label": "new salad"})
        assert status == 200 and reply["counts"] == {"pizza": 1, "new salad": 1}
        form = urllib.request.Request(url + "capture", b"label=pizza")  # a cross-site form
        with pytest.raises(urllib.error.HTTPError, match="415"):
            urllib.request.urlopen(form, timeout=10)
        status, reply = post(url, {"label": "../etc"})
        assert status == 400 and "class name" in reply["error"]
        expected = {"pizza": 1, "new salad": 1}
        published = {}
        while published != expected and time.monotonic() < deadline:
            time.sleep(0.02)  # the counts ride along with the next frame
            published = json.loads(urllib.request.urlopen(url + "predictions.json").read())
            published = published.get("counts")
        assert published == expected
    finally:
        stop.set()
        thread.join(timeout=10)
    saved = list((tmp_path / "new salad").iterdir())
    assert len(saved) == 1 and cv2.imread(str(saved[0])).shape == FRAME.shape


def test_the_buttons_need_the_token_like_the_live_view(tmp_path):
    from tledge.edge.web_access import ServeOptions

    token = "capture-token-123"
    source = simulated_live_source([FRAME], fps=50)
    store = PhotoStore(tmp_path)
    stop, urls = threading.Event(), []
    options = CaptureOptions(serve=ServeOptions("127.0.0.1:0", token=token), label=None)
    thread = threading.Thread(target=run_capture, args=(source, store, options, stop, urls.append))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not urls and time.monotonic() < deadline:
            time.sleep(0.01)
        anonymous = urllib.request.Request(
            urls[0] + "capture", b'{"label": "pizza"}', {"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(anonymous, timeout=10)
        status, reply = post(urls[0], {"label": "pizza"}, token)
        while status == 400 and "no frame" in reply["error"] and time.monotonic() < deadline:
            time.sleep(0.05)
            status, reply = post(urls[0], {"label": "pizza"}, token)
        assert status == 200 and reply["counts"] == {"pizza": 1}
    finally:
        stop.set()
        thread.join(timeout=10)


def test_capture_command_headless_and_bad_options(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    for _ in range(10):
        writer.write(FRAME)
    writer.release()
    runner = CliRunner()
    data = str(tmp_path / "data")
    headless = ["--label", "pizza", "--every", "0s", "--count", "3"]
    result = runner.invoke(cli, ["capture", data, "--source", str(video), *headless])
    assert result.exit_code == 0, result.output
    assert "3 photos saved" in result.output and "(pizza 3)" in result.output
    both = runner.invoke(cli, ["capture", data, "--source", str(video)])
    assert both.exit_code == 1 and "give --serve for the page or --label" in both.output
    assert parse_interval("500ms") == 0.5 and parse_interval("1m") == 60.0
    with pytest.raises(TledgeError, match="--every soon"):
        parse_interval("soon")


@pytest.mark.parametrize("command", ["capture", "edge"])
def test_serving_beyond_loopback_without_token_names_only_options_the_command_has(
    tmp_path, command
):
    """Checked to fail: `tledge capture` suggested --insecure-no-token, which it lacks."""
    from tledge.commands.capture import capture
    from tledge.commands.edge import edge

    arguments = [str(tmp_path / "data")] if command == "capture" else ["model.tflite"]
    arguments += ["--source", str(tmp_path / "clip.avi"), "--serve", "0.0.0.0:0"]
    result = CliRunner().invoke(cli, [command, *arguments], env={"TLEDGE_TOKEN": ""})
    assert result.exit_code != 0
    line = next(line for line in result.output.splitlines() if "--serve 0.0.0.0:0" in line)
    assert "--token auto" in line
    named = set(re.findall(r"--[a-z][a-z-]+", line))
    known = {
        opt for param in (capture if command == "capture" else edge).params for opt in param.opts
    }
    assert named <= known, f"{command} has no {named - known}"
    assert ("--insecure-no-token" in named) == (command == "edge")
