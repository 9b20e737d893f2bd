"""The edge client: run exported tledge models (or any TFLite classifier) without TensorFlow.

Only numpy, OpenCV and a TFLite runtime are imported here.

- `classifier`: `Classifier` (frame in, top-k labels and timings out).
- `sources`, `live_source`, `source_spec`: video files and image folders; live cameras
  and streams (newest frame only, reconnects); opening one from `--source` (`open_source`).
- `cameras`: the devices live sources read (OpenCV, Picamera2, a simulated camera).
- `app`, `stopping`: the run loop behind `tledge edge` (`run_edge`); clean stops on signals.
- `overlay`, `smoothing`, `outputs`: drawing, `--smooth`, `--jsonl`/`--save`.
- `server`, `web_access`, `web_page`: the `--serve` web view, who may use it (token,
  Host allow-list, TLS), and its page.
- `model_dir`, `model_check`, `model_version`: `--model-dir` (validated hot swap, pins) and
  the model version every JSON line names.
- `collect`: `--collect` (doubtful frames kept for review); `capture`, `capture_page`:
  `tledge capture`.
- `doctor`: what `tledge doctor` checks.
- `contract`, `interpreter`, `images`: the model contract, runtime loading, decoding.
- `model_file`: what a .tflite carries (`read_model_metadata`): tledge's contract and the
  standard TFLite metadata (`metadata`, read with `flatbuffer_tables`), checked, never
  guessed; `strict_json` decodes the contract.

Generic helpers (errors, atomic writes, labels, folder listing) live in `tledge.core`.
"""
