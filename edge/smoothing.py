"""Temporal smoothing of class scores: the mean over the last N frames (`--smooth N`)."""

from __future__ import annotations

import numpy as np

from tledge.core.errors import TledgeError


class ScoreSmoother:
    """Running mean of score vectors over a window of frames, without per-frame allocation.

    Args:
        window: Frames to average; 1 returns each vector unchanged.

    Example:
        >>> smoother = ScoreSmoother(3)
        >>> smoothed = smoother.update(result.scores)
    """

    def __init__(self, window: int = 1) -> None:
        if window < 1:
            raise TledgeError(f"--smooth {window}: must be 1 or more frames")
        self.window = window
        self._history: np.ndarray | None = None
        self._total: np.ndarray | None = None
        self._count = 0

    def update(self, scores: np.ndarray) -> np.ndarray:
        """Add this frame's scores and return the mean over the window (a new array)."""
        if self.window == 1:
            return scores
        if self._history is None or self._history.shape[1] != scores.size:
            self._history = np.zeros((self.window, scores.size), dtype=np.float64)
            self._total = np.zeros(scores.size, dtype=np.float64)
            self._count = 0
        slot = self._count % self.window
        self._total -= self._history[slot]
        self._history[slot] = scores
        self._total += self._history[slot]
        self._count += 1
        return (self._total / min(self._count, self.window)).astype(np.float32)

    def reset(self) -> None:
        """Forget the history (e.g. after the scene changed on a reconnect)."""
        self._history = None
        self._total = None
        self._count = 0
