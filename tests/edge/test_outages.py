"""Live sources that go down: retries at start and mid-run, one line each, a bounded wait.

The stream is our own MJPEG web view on 127.0.0.1 (`fake_stream`), read through
OpenCV's FFmpeg backend like a real camera. Checked to fail before the fix: a stream
down at start raised "cannot open stream" at once, and nothing was reported mid-run.
"""

import json
import time

import pytest
from click.testing import CliRunner

from tledge.cli import cli
from tledge.edge.live_source import Backoff
from tledge.edge.source_spec import open_source

QUICK = Backoff(initial=0.05, maximum=0.2, give_up_after=20.0)


def read_frame(source, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = source.read(timeout=0.2)
        if frame is not None:
            return frame
    raise AssertionError(f"no frame in {seconds} s: {source.last_error}")


def wait_for(events, text, seconds=15, count=1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sum(text in line for line in events) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"no event with {text!r}: {events}")


@pytest.mark.slow
def test_stream_down_at_start_and_mid_run_is_retried_and_each_step_reported(fake_stream):
    events = []
    with open_source(fake_stream.url, QUICK, on_event=events.append) as source:
        wait_for(events, "attempt 2")  # the stream is down: retried, not an error
        fake_stream.up()
        first = read_frame(source)
        wait_for(events, "back after")
        fake_stream.down()
        wait_for(events, "no frames")
        fake_stream.up()
        wait_for(events, "back after", count=2)
        later = read_frame(source)
        stats = source.stats()
    assert later.index > first.index
    assert stats.reconnects >= 2 and not stats.lost
    assert all(line.startswith(f"--source {fake_stream.url}: ") for line in events)
    assert all("\n" not in line for line in events)
    assert sum("back after" in line for line in events) == 2


def test_an_outage_longer_than_allowed_ends_the_source(fake_stream):
    events = []
    policy = Backoff(initial=0.05, maximum=0.1, give_up_after=0.5)
    with open_source(fake_stream.url, policy, on_event=events.append) as source:
        deadline = time.monotonic() + 15
        while not source.finished and time.monotonic() < deadline:
            source.read(timeout=0.1)
        assert source.finished
        assert "no frames for" in source.stats().lost
    assert len(events) >= 2


def test_files_never_retry(tmp_path):
    with pytest.raises(Exception, match="no such file"):
        open_source(str(tmp_path / "gone.mp4"), QUICK)


def test_edge_command_reports_attempts_and_gives_up_with_one_error_line(
    color_model, fake_stream, tmp_path
):
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    args = [
        "edge", color_model, "--labels", labels, "--source", fake_stream.url,
        "--reconnect-for", "1", "--jsonl", tmp_path / "frames.jsonl",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert any("attempt 2" in line for line in lines)
    assert lines[-1].startswith(f"Error: --source {fake_stream.url}: no frames for")
    assert "--reconnect-for" in lines[-1]
    assert "(stopped: source-lost)" in result.stdout


def test_json_lines_carry_the_frame_age(color_model, tmp_path):
    import cv2
    import numpy as np

    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    result = CliRunner().invoke(
        cli, ["edge", str(color_model), "--labels", str(labels), "--source", str(folder)]
    )
    record = json.loads(result.stdout.splitlines()[0])
    assert 0 <= record["age_s"] < 60
