"""`--strategy`: one device, mirrored over the local GPUs, or over several machines.

`--batch-size` is per replica: a step of a distributed run feeds `batch_size` images to
each replica, `batch_size x replicas` in all (the global batch). The learning rate is not
rescaled: the loss is the mean over the global batch, so the rate given is the rate of
that global batch (scale it yourself, e.g. linearly, when you grow the global batch).

"multiworker" is `MultiWorkerMirroredStrategy` over the cluster in `TF_CONFIG`: every
machine runs the same command. The chief (task "chief", or worker 0 when the cluster has
no chief) writes the run folder; every other worker trains in a scratch folder of its own
(`worker_output`) that it deletes when the run finishes. Distributed phases are fitted by
`tledge.trainer.distributed_fit`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.core.errors import TledgeError

STRATEGIES = ("auto", "one", "mirrored", "multiworker")
# Folder, in --output, where a non-chief worker keeps its own copy of the run until it ends.
WORKER_FOLDER = ".worker-{index}"

Log = Callable[[str], None]


@dataclass(frozen=True)
class Distribution:
    """The strategy a run trains under.

    Attributes:
        name: "one", "mirrored" or "multiworker".
        strategy: The tf.distribute strategy (the default one for "one").
        replicas: Replicas in sync; a step's global batch is `batch_size * replicas`.
        is_chief: True on the process that writes the run folder (always, but for a
            multi-worker run's other workers).
        worker_index: This process' task index in TF_CONFIG (0 off a cluster).
    """

    name: str
    strategy: Any
    replicas: int
    is_chief: bool = True
    worker_index: int = 0

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
    "multiworker" reads TF_CONFIG; call this before any other TensorFlow work (the
    strategy configures collective ops, which must happen before TensorFlow starts).

    Raises:
        TledgeError: for an unknown name, or "multiworker" without a usable TF_CONFIG.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise TledgeError(f"--strategy must be one of {STRATEGIES}")
    if name == "multiworker":
        return _multiworker(batch_size, log)
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


def _multiworker(batch_size: int, log: Log) -> Distribution:
    import tensorflow as tf

    cluster, task = read_tf_config(os.environ.get("TF_CONFIG", ""))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    replicas = strategy.num_replicas_in_sync
    is_chief = bool(strategy.extended.should_checkpoint)
    workers = sum(len(cluster[job]) for job in ("chief", "worker") if job in cluster)
    log(
        f"strategy multiworker: {task['type']} {task['index']} of {workers} workers "
        f"({'chief: writes the run folder' if is_chief else 'not the chief: writes nothing'}), "
        f"{replicas} replicas in sync: batch size {batch_size} per replica, global batch "
        f"{batch_size * replicas}; learning rate as given, for the global batch (not rescaled)"
    )
    return Distribution("multiworker", strategy, replicas, is_chief, int(task["index"]))


def read_tf_config(text: str) -> tuple[dict, dict]:
    """The cluster and this task from TF_CONFIG's JSON text.

    Raises:
        TledgeError: when it is missing or does not name this task in its cluster.
    """
    usage = (
        'set TF_CONFIG on every machine, e.g. {"cluster": {"worker": ["hostA:12345", '
        '"hostB:12345"]}, "task": {"type": "worker", "index": 0}} (docs/scaling.md)'
    )
    if not text.strip():
        raise TledgeError(f"--strategy multiworker: TF_CONFIG is not set; {usage}")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        cluster[task["type"]][int(task["index"])]
    except (ValueError, KeyError, IndexError, TypeError):
        raise TledgeError(f"--strategy multiworker: TF_CONFIG is not usable; {usage}") from None
    return cluster, task


def worker_output(output: str, distribution: Distribution) -> str:
    """Where this process writes: `output` on the chief, a scratch folder on other workers.

    A worker's scratch folder holds its own copy of the run (state, backups, caches) so
    that a restarted worker finds where it stopped; `train` deletes it at the end.
    """
    if distribution.is_chief:
        return output
    return str(Path(output) / WORKER_FOLDER.format(index=distribution.worker_index))


def all_workers(flag: bool) -> bool:
    """True when `flag` is true on every worker of the current multi-worker strategy.

    Workers must take the same branch wherever the other branch runs collective ops
    (e.g. reading a cache file only one of them has); off a cluster this is `flag`.
    """
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return flag
    value = tf.constant(1.0 if flag else 0.0)
    agreeing = strategy.reduce(
        tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(value)), axis=None
    )
    return int(agreeing.numpy()) == strategy.num_replicas_in_sync
