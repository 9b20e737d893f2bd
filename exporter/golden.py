"""Choosing the self-test examples that `tledge export` embeds in each file.

The device re-runs them and must get the same top-1 and nearly the same score
(`tledge.edge.golden`), so the examples are held-out images the file classifies with a
clear lead (`MIN_GOLDEN_MARGIN` over the second label: no runtime's rounding can swap
their top-1), taken one per predicted class in turn, least confident first among those:
a score near 1.0 would hide a runtime that computes something else.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tledge.edge.contract import GoldenExample
from tledge.edge.golden import MIN_GOLDEN_MARGIN, encode_golden

GOLDEN_COUNT = 4
GOLDEN_PREFIX = "tledge_golden_"


def pick_golden(scores: np.ndarray, count: int = GOLDEN_COUNT) -> list[int]:
    """Indices of up to `count` rows of `scores` [N, classes] to embed, in embedding order.

    Example:
        >>> pick_golden(np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]))
        [2, 0]
    """
    ranked = np.sort(scores, axis=1)
    margins = ranked[:, -1] - ranked[:, -2]
    predicted = np.argmax(scores, axis=1)
    clear = [int(i) for i in np.flatnonzero(margins >= MIN_GOLDEN_MARGIN)]
    clear.sort(key=lambda i: (float(ranked[i, -1]), i))
    queues: dict[int, list[int]] = {}
    for index in clear:
        queues.setdefault(int(predicted[index]), []).append(index)
    picked: list[int] = []
    while len(picked) < count and any(queues.values()):
        for queue in queues.values():
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def golden_examples(
    images: np.ndarray, scores: np.ndarray, labels: Sequence[str], count: int = GOLDEN_COUNT
) -> tuple[tuple[GoldenExample, ...], dict[str, bytes]]:
    """The examples to embed and their PNG bytes, from fitted RGB `images` and the file's
    `scores` for them (rows in the same order)."""
    examples, pngs = [], {}
    for number, index in enumerate(pick_golden(scores, count)):
        top = int(np.argmax(scores[index]))
        name = f"{GOLDEN_PREFIX}{number}.png"
        examples.append(GoldenExample(name, labels[top], round(float(scores[index, top]), 6)))
        pngs[name] = encode_golden(images[index])
    return tuple(examples), pngs
