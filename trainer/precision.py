"""Choosing and applying the Keras dtype policy of a run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tledge.core.errors import TledgeError


def gpu_compute_capability() -> tuple[int, int] | None:
    """Compute capability of the first visible GPU, or None without a GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability")
    return tuple(capability) if capability else (0, 0)


def resolve_precision(requested: str, force: bool) -> str:
    """Turn `--precision` into a concrete Keras policy name.

    "auto" is mixed_float16 on a GPU of compute capability >= 7.0 (tensor cores) and
    float32 otherwise.

    Raises:
        TledgeError: for mixed_float16 on a machine without a GPU, unless `force`.
    """
    capability = gpu_compute_capability()
    if requested == "auto":
        return "mixed_float16" if capability and capability >= (7, 0) else "float32"
    if requested == "mixed_float16" and capability is None and not force:
        raise TledgeError(
            "--precision mixed_float16: no GPU found, and on a CPU mixed_float16 training "
            "is many times slower than float32; use --precision float32 (or add "
            "--force-precision)"
        )
    return requested


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Set the global Keras dtype policy to `name` inside the block, then restore it."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
