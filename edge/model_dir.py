"""`tledge edge --model-dir DIR`: run the newest accepted model in DIR, swap in new ones.

A model folder holds:

- `NAME.tflite`: one version per file; the file name (without `.tflite`) is the version;
- `NAME.golden.json` (optional): the expected top-1 label of each golden image for NAME;
- `golden/` (optional): the user's images, every new version is also self-tested on
  besides the examples `tledge export` embeds in each file (`model_check`);
- `PINNED` (optional): a version to run instead of the newest (`tledge models rollback`).

A new version is one more file, arriving by an atomic rename (`rsync`, or `scp` to a
temporary name then `mv`). Names starting with "." are never
read: rsync and tledge's own atomic writes keep their partial files there. "Newest" is
the file that arrived last (its inode change time, which a rename sets), so a copied
model counts from when it landed, whatever its modification time.

`ModelWatcher` polls the folder from a background thread (one directory listing per
poll). A new file is loaded and self-tested on that thread; when it passes it becomes
`current`, which the run loop reads before each frame, so the swap happens between two
frames and nothing else (camera, web view, outputs) is touched. A file that fails is
reported in one line and the running model stays. After a swap, versions beyond the
newest `keep` are deleted (never the running or the pinned one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tledge.core.atomic import atomic_write_text
from tledge.core.errors import TledgeError
from tledge.core.folders import list_images
from tledge.edge.classifier import Classifier
from tledge.edge.model_check import GOLDEN_FOLDER, check_candidate, golden_answers_path
from tledge.edge.model_version import LoadedModel, ModelVersion

MODEL_SUFFIX = ".tflite"
PIN_FILE = "PINNED"
DEFAULT_KEEP = 3
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ModelFile:
    """A version in a model folder.

    Attributes:
        path: The .tflite file.
        arrived_ns: When it arrived in the folder (inode change time, ns).
        stat_key: (size, modification time ns): changes when the file is rewritten.
    """

    path: Path
    arrived_ns: int
    stat_key: tuple[int, int]

    @property
    def name(self) -> str:
        """The version name."""
        return self.path.stem


def list_model_files(folder: str | os.PathLike) -> list[ModelFile]:
    """The versions in `folder`, newest arrival first.

    Raises:
        TledgeError: when `folder` is not a folder.
    """
    directory = Path(folder)
    files = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.name.endswith(MODEL_SUFFIX):
                    continue
                try:
                    info = entry.stat()
                except FileNotFoundError:
                    continue  # removed while listing
                key = (info.st_size, info.st_mtime_ns)
                files.append(ModelFile(Path(entry.path), info.st_ctime_ns, key))
    except (FileNotFoundError, NotADirectoryError):
        raise TledgeError(f"--model-dir {directory}: not a folder") from None
    return sorted(files, key=lambda f: (f.arrived_ns, f.name), reverse=True)


def find_version(folder: str | os.PathLike, name: str) -> ModelFile:
    """The version called `name` (a file name with or without `.tflite`).

    Raises:
        TledgeError: when the folder has no such version.
    """
    wanted = name.removesuffix(MODEL_SUFFIX)
    files = list_model_files(folder)
    for file in files:
        if file.name == wanted:
            return file
    known = ", ".join(file.name for file in files) or "none"
    raise TledgeError(f"model version {wanted}: not in {folder} (versions: {known})")


def read_pin(folder: str | os.PathLike) -> str | None:
    """The pinned version name, None when the folder follows the newest model."""
    try:
        return (Path(folder) / PIN_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def write_pin(folder: str | os.PathLike, name: str | None) -> None:
    """Pin `folder` to version `name` (checked to exist); None follows the newest again."""
    path = Path(folder) / PIN_FILE
    if name is None:
        path.unlink(missing_ok=True)
        return
    atomic_write_text(path, find_version(folder, name).name + "\n")


def read_golden_images(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """The golden images of a model folder (file name -> BGR pixels); {} when none."""
    golden = Path(folder) / GOLDEN_FOLDER
    if not golden.is_dir():
        return {}
    images = {}
    for path in list_images(golden):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise TledgeError(f"{path}: unreadable golden image; remove or replace it")
        images[path.name] = image
    return images


class ModelWatcher:
    """Runs the newest accepted (or the pinned) version of a model folder and follows it.

    Args:
        folder: The model folder.
        load: Opens a model file (e.g. `Classifier` with the user's threads and runtime).
        keep: Versions kept on disk after a swap.
        on_event: Called with one line for people on every swap, refusal and removal.
        poll_s: Seconds between two looks at the folder.

    Attributes:
        current: The `LoadedModel` to use for the next frame.

    Raises:
        TledgeError: when no version in the folder (or the pinned one) passes the checks.

    Example:
        >>> with ModelWatcher("models", lambda p: Classifier(p, num_threads=2)) as models:
        ...     run_edge(models, source, options)
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        load: Callable[[Path], Classifier],
        keep: int = DEFAULT_KEEP,
        on_event: Callable[[str], None] | None = None,
        poll_s: float = POLL_SECONDS,
    ) -> None:
        if keep < 1:
            raise TledgeError(f"--keep-models {keep}: keep at least 1 version")
        self.folder = Path(folder)
        self._load = load
        self._keep = keep
        self._on_event = on_event or (lambda line: None)
        self._poll_s = poll_s
        self._golden = read_golden_images(self.folder)
        self._refused: dict[str, tuple[int, int]] = {}
        self._last_refusal = "none"
        self._last_seen: dict[str, tuple[int, int]] = {}
        self._pin = read_pin(self.folder)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: LoadedModel = self._first_model()

    def start(self) -> ModelWatcher:
        """Start following the folder in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="model-dir", daemon=True)
            self._thread.start()
        return self

    def poll(self) -> None:
        """Look at the folder once and swap to a new (or newly pinned) version that passes."""
        files = list_model_files(self.folder)
        stable = [file for file in files if self._last_seen.get(file.name) == file.stat_key]
        self._last_seen = {file.name: file.stat_key for file in files}
        pin = read_pin(self.folder)
        if pin != self._pin:
            self._pin = pin
            self._on_event(f"model: pinned to {pin}" if pin else "model: following the newest")
        for file in self._wanted(stable):
            if self._refused.get(file.name) == file.stat_key:
                continue
            loaded = self._accept(file, self.current)
            if loaded is not None:
                self.current = loaded
                self._current_file = file
                self._prune(files)
                return

    def close(self) -> None:
        """Stop following the folder."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def __enter__(self) -> ModelWatcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _first_model(self) -> LoadedModel:
        files = list_model_files(self.folder)
        self._last_seen = {file.name: file.stat_key for file in files}
        candidates = [find_version(self.folder, self._pin)] if self._pin else files
        for file in candidates:
            loaded = self._accept(file, None)
            if loaded is not None:
                self._current_file = file
                return loaded
        if self._pin is not None:
            raise TledgeError(
                f"--model-dir {self.folder}: pinned version {self._pin} is refused; "
                "`tledge models follow` or pin another"
            )
        raise TledgeError(
            f"--model-dir {self.folder}: no usable model "
            f"({len(files)} .tflite files, {len(self._refused)} refused; {self._last_refusal})"
        )

    def _wanted(self, stable: list[ModelFile]) -> list[ModelFile]:
        """Versions to try, best first: the pinned one, or those newer than the running one."""
        current = self._current_file
        if self._pin is not None:
            pinned = [file for file in stable if file.name == self._pin]
            if not pinned:
                return []
            same = pinned[0].name == current.name and pinned[0].stat_key == current.stat_key
            return [] if same else pinned
        return [file for file in stable if file.arrived_ns > current.arrived_ns]

    def _accept(self, file: ModelFile, running: LoadedModel | None) -> LoadedModel | None:
        try:
            classifier = self._load(file.path)
            version = ModelVersion.of(file.path)
            answers, note = check_candidate(
                classifier,
                self._golden,
                running.classifier if running else None,
                running.golden_answers if running else None,
            )
        except Exception as error:  # a corrupt file can make a runtime raise anything
            self._refused[file.name] = file.stat_key
            reason = str(error) if isinstance(error, TledgeError) else repr(error)
            reason = reason.removeprefix(f"{file.path}: ")
            self._last_refusal = f"{file.name}: {reason}"
            still = f"; still running {running.version}" if running else ""
            self._on_event(f"model: refused {file.path.name}: {reason}{still}")
            return None
        verb = "now running" if running else "running"
        self._on_event(f"model: {verb} {version}: {note}")
        return LoadedModel(classifier, version, answers)

    def _prune(self, files: list[ModelFile]) -> None:
        keep = {self.current.version.name, self._pin}
        accepted = [file for file in files if self._refused.get(file.name) != file.stat_key]
        for file in accepted[self._keep :]:
            if file.name in keep:
                continue
            file.path.unlink(missing_ok=True)
            golden_answers_path(file.path).unlink(missing_ok=True)
            self._on_event(f"model: removed old version {file.name} (keeping {self._keep})")

    def _follow(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.poll()
            except Exception as error:  # the folder may vanish or flicker; keep running
                self._on_event(f"model: cannot read {self.folder}: {error}")
