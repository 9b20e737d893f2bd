"""`--strategy`: training on one device or mirrored over every local GPU (tf.distribute).

`--batch-size` is per replica: a step of a mirrored run feeds `batch_size` images to each
replica, `batch_size x replicas` in all (the global batch). The learning rate is not
rescaled: the loss is the mean over the global batch, so the rate given is the rate of
that global batch (scale it yourself, e.g. linearly, when you grow the global batch).

Multi-worker training (MultiWorkerMirroredStrategy over TF_CONFIG) is not offered: Keras
3's `model.fit` fails under it (keras-team/keras#20585) and the trainer fits with
`model.fit`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tledge.core.errors import TledgeError

STRATEGIES = ("auto", "one", "mirrored")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Distribution:
    """The strategy a run trains under.

    Attributes:
        name: "one" or "mirrored".
        strategy: The tf.distribute strategy (the default one for "one").
        replicas: Replicas in sync; a step's global batch is `batch_size * replicas`.
    """

    name: str
    strategy: Any
    replicas: int

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build, compile, fit and save models in here."""
        with self.strategy.scope():
            yield


def choose_strategy(name: str, batch_size: int, log: Log) -> Distribution:
    """Create the strategy of `--strategy` and log the replicas and the global batch.

    "auto" mirrors over the local GPUs when there are two or more, else trains on one
    device. "mirrored" uses every local GPU, or, on a machine without one, every logical
    CPU device (two or more are configured only by tests and benchmarks).

    Raises:
        TledgeError: for an unknown name.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise TledgeError(f"--strategy must be one of {STRATEGIES}")
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one"
    if name == "one":
        return Distribution("one", tf.distribute.get_strategy(), 1)
    devices = gpus or [device.name for device in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    replicas = strategy.num_replicas_in_sync
    log(
        f"strategy mirrored over {replicas} device(s) ({', '.join(devices)}): batch size "
        f"{batch_size} per replica, global batch {batch_size * replicas}; learning rate "
        "as given, for the global batch (not rescaled)"
    )
    return Distribution("mirrored", strategy, replicas)
