"""Classifying one frame ahead: `invoke()` of frame N+1 runs while the loop handles frame N.

The edge run loop (`tledge.edge.app.run_edge`) takes each finished frame from a
`ClassifyAhead`, which has already handed the next frame to its worker thread.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from tledge.edge.classification import Classification
from tledge.edge.model_version import LoadedModel, ModelSource
from tledge.edge.sources import Frame, Source


class ClassifyAhead:
    """Classifies one frame in a worker thread while the caller handles the one before.

    `next` waits for the frame in flight, hands the worker the next frame, and returns
    the finished one, so `invoke()` runs while the caller draws and writes outputs.
    TFLite's `invoke()` and OpenCV release the GIL, so the two really overlap. File
    frames are read ahead (decoding overlaps classification too) and all classified in
    order; a live source is read only once the worker is free, so it gets the newest
    frame and a result is never older than the one frame in flight. The source fits
    frames to the model input as it reads them (`Source.fit_frames`), so the resize runs
    in the capture thread or during the read-ahead, not in the worker.

    Args:
        models: `models.current` is read once per frame, so a swap takes effect from
            the next frame started; its classifier is then used by the worker only.
        source: Frames to classify.
        limit: Classify at most this many frames; None for no limit.
    """

    def __init__(self, models: ModelSource, source: Source, limit: int | None) -> None:
        self._models = models
        self._source = source
        self._left = limit
        # A swapped-in model fits frames the same way (`model_check` refuses others).
        source.fit_frames(models.current.classifier.fit_to_input)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify")
        self._in_flight: tuple[Frame, Future[Classification], LoadedModel] | None = None
        self._read_ahead: Frame | None = None

    @property
    def finished(self) -> bool:
        """True once every frame that will be classified has been returned."""
        idle = self._in_flight is None and self._read_ahead is None
        return idle and (self._left == 0 or self._source.finished)

    def next(self, timeout: float) -> tuple[Frame, Classification, LoadedModel] | None:
        """Return the next (frame, classification, model that classified it).

        None when no frame came within `timeout`.
        """
        if self._in_flight is None:
            self._start(self._read(timeout))
            if self._in_flight is None:
                return None
        if not self._source.is_live and self._read_ahead is None:
            self._read_ahead = self._read(timeout)
        frame, future, model = self._in_flight
        result = future.result()
        self._in_flight = None
        if self._source.is_live:
            self._start(self._read(timeout=0.0))
        else:
            self._start(self._read_ahead)
            self._read_ahead = None
        return frame, result, model

    def close(self) -> None:
        """Wait for the frame in flight (its result is dropped) and stop the worker."""
        self._worker.shutdown(wait=True)

    def __enter__(self) -> ClassifyAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self, timeout: float) -> Frame | None:
        return self._source.read(timeout=timeout) if self._left != 0 else None

    def _start(self, frame: Frame | None) -> None:
        if frame is None:
            return
        # Ranking waits for smoothing, so the classifier itself ranks nothing. A frame
        # read before fitting was switched on goes in whole; the answer is the same.
        model = self._models.current
        if frame.fitted is not None:
            future = self._worker.submit(
                model.classifier.classify, frame.fitted, top_k=0, fitted=True
            )
        else:
            future = self._worker.submit(model.classifier.classify, frame.image, top_k=0)
        self._in_flight = (frame, future, model)
        if self._left is not None:
            self._left -= 1
