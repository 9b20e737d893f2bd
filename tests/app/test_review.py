"""Reviewing collected frames: order by doubt, filing, deleting, the review log."""

from __future__ import annotations

import json

import pytest

from tledge.app.review import REVIEW_LOG, ReviewQueue
from tledge.core.errors import TledgeError


def test_pending_is_most_doubtful_first(collected, tmp_path):
    queue = ReviewQueue(collected, tmp_path / "data")
    pending = queue.pending()
    assert [frame.info["frame"] for frame in pending] == [1, 3, 2]
    assert [round(frame.doubt, 2) for frame in pending] == [0.95, 0.75, 0.5]
    assert pending[0].top_k[0] == ("pizza", 0.4)


def test_filing_moves_the_image_and_logs_the_decision(collected, tmp_path):
    queue = ReviewQueue(collected, tmp_path / "data")
    first, second, third = queue.pending()
    target = queue.file(first, "salad")
    assert target == tmp_path / "data" / "salad" / first.image.name and target.is_file()
    assert not first.image.exists() and not first.sidecar.exists()
    queue.delete(second)
    assert not second.image.exists()
    assert [frame.stem for frame in queue.pending()] == [third.stem]
    assert queue.classes() == ["salad"]
    log = [json.loads(line) for line in (collected / REVIEW_LOG).read_text().splitlines()]
    assert [(e["action"], e["label"], e["model_top_1"]) for e in log] == [
        ("filed", "salad", "pizza"),
        ("deleted", None, "salad"),
    ]
    with pytest.raises(TledgeError, match="class name"):
        queue.file(third, "../escape")
    assert third.image.exists()
