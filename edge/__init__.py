"""The edge client: run exported tledge models (or any TFLite classifier) without TensorFlow.

Only numpy, OpenCV and a TFLite runtime are imported here.

- `classifier`: `Classifier` (frame in, top-k labels and timings out).
- `sources`: cameras, Picamera2, video files, image folders, streams (`open_source`).
- `app`: the run loop behind `tledge edge` (`run_edge`).
- `overlay`, `smoothing`, `outputs`, `server`: drawing, `--smooth`, `--jsonl`/`--save`,
  the `--serve` web view.
- `doctor`: what `tledge doctor` checks.
- `contract`, `interpreter`, `images`, `labels`, `atomic`, `errors`: shared foundations.
"""
