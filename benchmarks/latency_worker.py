"""Time one model at one thread count in this process and print the result as JSON.

`tledge.benchmarks.latency` starts this module in a fresh Python process per (model,
thread count), so the peak resident memory it reports belongs to that model alone and the
thread setting of one run cannot leak into the next (TensorFlow fixes its thread pools
when it starts). TensorFlow is imported only for kind "keras".

Usage:
    python -m tledge.benchmarks.latency_worker '{"kind": "tflite", "path": "m.tflite",
        "threads": 2, "runs": 100, "warmup": 10, "runtime": "auto"}'
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

INPUT_SEED = 0


def peak_rss_kb() -> int:
    """Peak resident memory of this process so far, in KiB.

    On Linux this is VmHWM of the process's own address space. `ru_maxrss` is not used
    there: the kernel carries it over from the parent across fork and exec, so a worker
    started by a big parent would report the parent's size.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS reports bytes


def time_calls(call: Callable[[], Any], runs: int, warmup: int) -> list[float]:
    """Call `call` `warmup` times untimed, then `runs` times; return each run's ms."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def random_input(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A deterministic input of `shape` filled across the dtype's pixel range."""
    rng = np.random.default_rng(INPUT_SEED)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.uniform(0, 255, size=shape).astype(dtype)


def measure_tflite(spec: dict[str, Any]) -> dict[str, Any]:
    """Time `interpreter.invoke()` of the .tflite in `spec` with a fixed input tensor."""
    from tledge.edge.interpreter import find_runtime, open_interpreter

    find_runtime(spec["runtime"])  # import the runtime library before the baseline
    baseline = peak_rss_kb()
    interpreter, runtime = open_interpreter(spec["path"], spec["threads"], spec["runtime"])
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], random_input(tuple(detail["shape"]), detail["dtype"]))
    output = interpreter.get_output_details()[0]
    times = time_calls(interpreter.invoke, spec["runs"], spec["warmup"])
    return {
        "times_ms": times,
        "baseline_rss_kb": baseline,
        "peak_rss_kb": peak_rss_kb(),
        "runtime": f"{runtime.name} {runtime.version}",
        "input_shape": [int(v) for v in detail["shape"]],
        "input_dtype": np.dtype(detail["dtype"]).name,
        "num_outputs": int(np.prod(output["shape"])),
    }


def measure_keras(spec: dict[str, Any]) -> dict[str, Any]:
    """Time a batch-1 call of the .keras model in `spec`, compiled with `tf.function`."""
    import tensorflow as tf

    # Must happen before TensorFlow creates its thread pools, hence one process per count.
    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    baseline = peak_rss_kb()
    model = keras.models.load_model(spec["path"], compile=False, safe_mode=True)
    shape = (1, *model.input_shape[1:])
    inputs = tf.constant(random_input(shape, np.dtype("float32")))
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def call() -> None:
        predict(inputs).numpy()  # .numpy() waits for the result

    times = time_calls(call, spec["runs"], spec["warmup"])
    return {
        "times_ms": times,
        "baseline_rss_kb": baseline,
        "peak_rss_kb": peak_rss_kb(),
        "runtime": f"tensorflow {tf.__version__}",
        "input_shape": list(shape),
        "input_dtype": "float32",
        "num_outputs": int(np.prod(model.output_shape[1:])),
    }


def main(argv: list[str]) -> int:
    """Run the measurement described by the JSON in argv[1] and print its JSON result."""
    spec = json.loads(argv[1])
    measure = measure_keras if spec["kind"] == "keras" else measure_tflite
    try:
        result = measure(spec)
    except Exception as error:  # reported to the parent process, which raises TledgeError
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
