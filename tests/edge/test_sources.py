import importlib.util
import itertools
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.edge import cameras
from tledge.edge.cameras import SimulatedCamera
from tledge.edge.live_source import Backoff, LiveSource, simulated_live_source
from tledge.edge.source_spec import open_source
from tledge.edge.sources import ImageFolderSource, VideoFileSource

FAST_BACKOFF = Backoff(initial=0.01, maximum=0.04)


def numbered_frame(index: int, shape=(48, 64)) -> np.ndarray:
    """A frame whose gray level encodes its index (survives MJPEG compression)."""
    return np.full((*shape, 3), 4 * index, dtype=np.uint8)


def frame_number(image: np.ndarray) -> int:
    return round(float(image.mean()) / 4)


@pytest.fixture
def video_40(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for index in range(40):
        writer.write(numbered_frame(index))
    writer.release()
    return path


def test_video_file_returns_every_frame_in_order_then_ends(video_40):
    with open_source(str(video_40)) as source:
        assert isinstance(source, VideoFileSource) and not source.is_live
        assert source.fps == pytest.approx(25)
        frames = list(source)
        assert source.finished and source.read() is None
    assert [frame.index for frame in frames] == list(range(40))
    assert [frame_number(frame.image) for frame in frames] == list(range(40))
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(frames))


def test_image_folder_is_read_sorted_and_skips_unreadable_files(tmp_path):
    for index in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"img{index}.png"), numbered_frame(index + 1))
    (tmp_path / "img1b.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(str(tmp_path)) as source:
        frames = list(source)
    assert [frame_number(frame.image) for frame in frames] == [1, 2, 3]
    assert [frame.index for frame in frames] == [0, 1, 3]
    assert [Path(frame.path).name for frame in frames] == ["img0.png", "img1.png", "img2.png"]
    assert [path.name for path in source.stats().skipped] == ["img1b.jpg"]
    single = open_source(str(tmp_path / "img0.png"))
    assert isinstance(single, ImageFolderSource) and len(list(single)) == 1


def test_live_source_hands_out_only_the_newest_frame(video_40):
    """A consumer slower than the camera gets the newest frame, never a queued one."""
    lags = []
    with simulated_live_source(video_40, fps=100, loop=True) as source:
        assert source.is_live
        previous = -1
        for _ in range(8):
            frame = source.read(timeout=2.0)
            lags.append(source.latest_index - frame.index)
            assert frame.index > previous
            assert frame_number(frame.image) == frame.index % 40
            previous = frame.index
            time.sleep(0.05)  # "inference" 5x slower than the camera
        stats = source.stats()
        assert stats.captured > stats.delivered + 10
    # At read time the frame is the newest one; one more may arrive while we look.
    assert max(lags) <= 1


class RecordingFit:
    """Halves a frame and records which thread did it; fails on frames numbered `fail_on`."""

    def __init__(self, fail_on: int = -1) -> None:
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        if frame_number(image) == self.fail_on:
            raise TledgeError("bad frame")
        return cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2))


def test_file_sources_fit_every_frame_when_read(video_40, tmp_path):
    fit = RecordingFit(fail_on=3)
    with open_source(str(video_40)) as source:
        assert source.read().fitted is None
        source.fit_frames(fit)
        frames = list(source)
    assert [frame.index for frame in frames] == list(range(1, 40))
    assert frames[2].fitted is None  # frame 3's fit raised: the frame itself still comes
    for frame in frames[:2] + frames[3:]:
        np.testing.assert_array_equal(frame.fitted, fit(frame.image))
    assert fit.threads == {threading.current_thread().name}
    cv2.imwrite(str(tmp_path / "one.png"), numbered_frame(5))
    with open_source(str(tmp_path / "one.png")) as source:
        source.fit_frames(fit)
        assert source.read().fitted.shape == (24, 32, 3)


def test_live_source_fits_frames_in_its_capture_thread(video_40):
    fit = RecordingFit(fail_on=3)
    with simulated_live_source(video_40, fps=200, loop=False) as source:
        source.fit_frames(fit)
        frames = []
        while (frame := source.read(timeout=2.0)) is not None:
            frames.append(frame)
            time.sleep(0.01)
    assert fit.threads == {"capture-simulated"}
    fitted = [frame for frame in frames if frame.fitted is not None]
    assert len(fitted) >= len(frames) - 2  # frames captured before fit_frames, or frame 3
    for frame in fitted:
        np.testing.assert_array_equal(frame.fitted, fit(frame.image))
    assert frames[-1].index == 39  # a failing fit did not stop the capture thread


def test_simulated_camera_without_loop_ends_the_live_source():
    frames = [numbered_frame(i, (8, 8)) for i in range(5)]
    with simulated_live_source(frames, fps=500, loop=False) as source:
        seen = list(source)
        assert source.finished
    assert 1 <= len(seen) <= 5 and seen[-1].index <= 4


class FakeClock:
    """`time.monotonic` and `time.sleep` on a clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_simulated_camera_keeps_its_rate(monkeypatch):
    """At 200 fps frame k is due at 5k ms whatever the consumer does between grabs; a
    consumer 17 ms late gets the frames it missed at once, at most one frame's worth
    behind, then the 5 ms rhythm resumes. On a fake clock: the wall-clock version of this
    test (20 grabs within 0.08-0.5 s) could not hold on a loaded 2-core machine.

    Checked that it fails: with the next frame scheduled from now instead of from its due
    time, with the catch-up not bounded to one frame, and with no wait at all."""
    clock = FakeClock()
    monkeypatch.setattr(
        cameras, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep)
    )
    camera = SimulatedCamera([numbered_frame(0, (4, 4))], fps=200)
    grabbed_ms = []
    for work_s in (0.0, 0.002, 0.004, 0.0, 0.017, 0.0, 0.0, 0.0):
        clock.now += work_s  # the consumer's own time between grabs
        assert camera.grab() is not None
        grabbed_ms.append((clock.now - 100.0) * 1000)
    assert grabbed_ms == pytest.approx([0, 5, 10, 15, 32, 32, 32, 37], abs=1e-6)


class FlakyCamera:
    """Delivers `good` frames, then fails once (None or an exception)."""

    finished = False

    def __init__(self, good: int, raise_error: bool) -> None:
        self.left, self.raise_error = good, raise_error

    def grab(self):
        if self.left == 0:
            if self.raise_error:
                raise RuntimeError("USB device vanished")
            return None
        self.left -= 1
        time.sleep(0.002)
        return numbered_frame(1, (4, 4))

    def close(self):
        pass


def test_live_source_reconnects_with_backoff_after_read_failures():
    opened = []

    def open_camera():
        opened.append(time.monotonic())
        if len(opened) == 3:
            raise OSError("device busy")  # a failed reconnect is retried later
        return FlakyCamera(good=3, raise_error=len(opened) % 2 == 0)

    with LiveSource(open_camera, name="flaky", backoff=FAST_BACKOFF) as source:
        indexes = []
        while len(indexes) < 12:
            frame = source.read(timeout=2.0)
            assert frame is not None, source.last_error
            indexes.append(frame.index)
        assert source.stats().reconnects >= 3
        assert source.last_error
    assert indexes == sorted(set(indexes))
    gaps = np.diff(opened)
    assert gaps.min() >= FAST_BACKOFF.initial * 0.9


def test_first_open_failure_is_a_clear_error():
    def broken():
        raise TledgeError("--source 7: cannot open camera (check the device or URL)")

    with pytest.raises(TledgeError, match="cannot open camera"):
        LiveSource(broken, name="7", backoff=Backoff(give_up_after=0))


def test_close_unblocks_a_waiting_reader():
    source = simulated_live_source([numbered_frame(0, (4, 4))], fps=4)
    source.read(timeout=1.0)
    results = []
    reader = threading.Thread(target=lambda: results.append(source.read()))
    reader.start()
    time.sleep(0.1)
    source.close()
    reader.join(timeout=2.0)
    assert results == [None] and source.finished


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no/such/clip.mp4", "no such file, folder or camera"),
        ("picamera2", "sudo apt install python3-picamera2"),
        ("/dev/video99", "cannot open camera"),
        ("99", "cannot open camera"),
    ],
)
def test_unusable_sources_are_one_line_errors(spec, message):
    if spec == "picamera2" and importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here; the missing-module message cannot show")
    with pytest.raises(TledgeError, match=message) as info:
        open_source(spec, backoff=Backoff(give_up_after=0))
    assert "\n" not in str(info.value)


def test_corrupt_video_is_an_error(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(TledgeError, match="cannot open as a video"):
        open_source(str(path))


def test_opening_sources_works_with_the_opencv_4_log_level_api(video_40, monkeypatch):
    """OpenCV 4.10 (the last for numpy 1, which tflite-runtime needs) has no cv2.utils.logging."""
    levels = [3]
    if hasattr(cv2.utils, "logging"):
        monkeypatch.delattr(cv2.utils, "logging")
    monkeypatch.setattr(cv2, "getLogLevel", lambda: levels[-1], raising=False)
    monkeypatch.setattr(cv2, "setLogLevel", levels.append, raising=False)
    with open_source(str(video_40)) as source:
        assert source.read().index == 0
    assert levels == [3, 0, 3]  # silent while opening, then back


def test_http_mjpeg_stream_is_live_and_reconnects_after_the_server_restarts():
    """A real network stream (our own web view) read through OpenCV's FFmpeg backend."""
    from tledge.edge.server import PreviewServer

    servers = [PreviewServer("127.0.0.1:0")]
    port = servers[0].url.rsplit(":", 1)[1].strip("/")
    publishing = threading.Event()

    def publish():
        index = 0
        while not publishing.is_set():
            servers[-1].publish(numbered_frame(index % 60), {"frame": index})
            index += 1
            time.sleep(0.02)

    threading.Thread(target=publish, daemon=True).start()
    try:
        with open_source(servers[0].url + "stream.mjpg", backoff=FAST_BACKOFF) as source:
            assert source.is_live
            first = source.read(timeout=10)
            assert first is not None and first.image.shape == (48, 64, 3)
            servers[0].close()
            time.sleep(0.3)
            assert source.last_error
            servers.append(PreviewServer(f"127.0.0.1:{port}"))
            after = [source.read(timeout=10) for _ in range(2)]
            assert all(frame is not None for frame in after), source.last_error
            assert source.stats().reconnects >= 1 and after[-1].index > first.index
    finally:
        publishing.set()
        servers[-1].close()


FAKE_PICAMERA2 = """
import numpy as np

class Picamera2:
    def create_video_configuration(self, main):
        return {"main": main}

    def configure(self, config):
        self.size = config["main"]["size"]
        assert config["main"]["format"] == "RGB888"

    def start(self):
        self.frames = 0

    def capture_array(self, name):
        self.frames += 1
        width, height = self.size
        return np.full((height, width, 3), self.frames % 256, np.uint8)

    def stop(self):
        pass

    def close(self):
        pass
"""


def install_fake_picamera2(tmp_path, monkeypatch, body):
    package = tmp_path / "fake" / "picamera2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(body)
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)


def test_picamera2_source_reads_frames_through_the_picamera2_api(tmp_path, monkeypatch):
    install_fake_picamera2(tmp_path, monkeypatch, FAKE_PICAMERA2)
    with open_source("picamera2") as source:
        assert source.is_live and source.name == "picamera2"
        frame = source.read(timeout=5)
    assert frame.image.shape == (480, 640, 3)
    with open_source("picamera2:320x240") as source:
        assert source.read(timeout=5).image.shape == (240, 320, 3)
    with pytest.raises(TledgeError, match="picamera2:WIDTHxHEIGHT"):
        open_source("picamera2:big")


def test_picamera2_broken_by_numpy_2_points_to_simplejpeg(tmp_path, monkeypatch):
    message = "numpy.dtype size changed, may indicate binary incompatibility"
    install_fake_picamera2(tmp_path, monkeypatch, f"raise ValueError({message!r})")
    with pytest.raises(TledgeError, match="pip install --force-reinstall simplejpeg"):
        open_source("picamera2")
    from tledge.edge.doctor import run_checks

    check = next(c for c in run_checks() if c.name == "cameras picamera2")
    assert check.status == "warn" and "simplejpeg" in check.hint and message in check.detail
