"""Reviewing frames that `tledge edge --collect` kept: most doubtful first, one action each.

Each collected frame is `<stem>.jpg` with its sidecar `<stem>.json`. Filing a frame moves
its image into `DATA/<class>/<stem>.jpg` (a class-per-folder dataset for `tledge train
--add-data`); deleting removes it. Either way the sidecar is removed and one line is
appended to `reviewed.jsonl` in the collection folder (what happened, the model's answer),
so the decision is on record and the frame does not come back.

Example:
    >>> queue = ReviewQueue("collected", "new_photos")
    >>> frame = queue.pending()[0]
    >>> queue.file(frame, "pizza")
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.core.atomic import atomic_path
from tledge.core.errors import TledgeError
from tledge.edge.capture import check_class_name
from tledge.edge.collect import IMAGE_SUFFIX, SIDECAR_SUFFIX

REVIEW_LOG = "reviewed.jsonl"


@dataclass(frozen=True)
class CollectedFrame:
    """One frame waiting for review.

    Attributes:
        image: The JPEG.
        sidecar: Its JSON sidecar.
        doubt: 0 (sure) to 1 (a tie), from the sidecar.
        top_k: (label, score) pairs the model gave, best first.
        info: The whole sidecar.
    """

    image: Path
    sidecar: Path
    doubt: float
    top_k: tuple[tuple[str, float], ...]
    info: dict[str, Any]

    @property
    def stem(self) -> str:
        """The frame's name without suffix (its UTC time and frame number)."""
        return self.image.stem


class ReviewQueue:
    """The collected frames of one folder and the dataset they are filed into.

    Args:
        collected: The `--collect` folder.
        dataset: The class-per-folder dataset filed frames go to (created when needed).

    Raises:
        TledgeError: when `collected` is not a folder.
    """

    def __init__(self, collected: str | os.PathLike, dataset: str | os.PathLike) -> None:
        self.collected = Path(collected)
        self.dataset = Path(dataset)
        if not self.collected.is_dir():
            raise TledgeError(f"{self.collected}: not a folder of collected frames")

    def pending(self) -> list[CollectedFrame]:
        """Frames not reviewed yet, most doubtful first (ties: oldest first)."""
        frames = []
        for sidecar in sorted(self.collected.glob(f"*{SIDECAR_SUFFIX}")):
            image = sidecar.with_suffix(IMAGE_SUFFIX)
            if sidecar.name.startswith(".") or not image.is_file():
                continue
            try:
                info = json.loads(sidecar.read_text(encoding="utf-8"))
                top_k = tuple((item["label"], float(item["score"])) for item in info["top_k"])
                doubt = float(info["doubt"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a --collect sidecar (or removed meanwhile)
            frames.append(CollectedFrame(image, sidecar, doubt, top_k, info))
        return sorted(frames, key=lambda frame: -frame.doubt)

    def classes(self) -> list[str]:
        """Class folders of the dataset, sorted."""
        if not self.dataset.is_dir():
            return []
        return sorted(
            p.name for p in self.dataset.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def file(self, frame: CollectedFrame, label: str) -> Path:
        """Move `frame`'s image into the dataset as a photo of `label`; return its path.

        Raises:
            TledgeError: for a bad class name or when the move fails.
        """
        label = check_class_name(label)
        target = self.dataset / label / frame.image.name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(frame.image, target)
            except OSError:  # another file system: copy atomically, then remove
                with atomic_path(target, suffix=IMAGE_SUFFIX) as tmp:
                    shutil.copyfile(frame.image, tmp)
                frame.image.unlink()
        except OSError as error:
            raise TledgeError(f"{target}: cannot file the frame ({error.strerror})") from None
        self._close(frame, "filed", label)
        return target

    def delete(self, frame: CollectedFrame) -> None:
        """Remove `frame` (not worth keeping)."""
        frame.image.unlink(missing_ok=True)
        self._close(frame, "deleted", None)

    def _close(self, frame: CollectedFrame, action: str, label: str | None) -> None:
        entry = {
            "frame": frame.stem,
            "action": action,
            "label": label,
            "model_top_1": frame.top_k[0][0] if frame.top_k else None,
            "model": frame.info.get("model"),
            "doubt": frame.doubt,
            "reviewed": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        with open(self.collected / REVIEW_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")
        frame.sidecar.unlink(missing_ok=True)
