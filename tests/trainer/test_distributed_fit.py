"""`fit_distributed` under MirroredStrategy (two logical CPU devices) trains like `fit`.

Plain SGD on a small softmax layer, so that a wrong loss scale shows (Adam, which the
trainer uses, would hide a constant factor): dividing each replica's loss by its own
batch instead of the global batch doubles every step and fails this test (checked once).
26 examples at global batch 8 end each epoch with a batch of 2 (1 per replica).
The run is a separate process: logical devices are configured before TensorFlow starts.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

RUN = """
import json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tledge.trainer.distributed_fit import fit_distributed
from tledge.trainer.phases import repeated

rng = np.random.default_rng(0)
x = rng.normal(size=(26, 16)).astype("float32")
y = np.eye(3)[rng.integers(0, 3, 26)].astype("float32")


def run(strategy, fit):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(3, activation="softmax")])
        loss = keras.losses.CategoricalCrossentropy()
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss, metrics=["accuracy"])
        data = tf.data.Dataset.from_tensor_slices((x, y))
        train = data.shuffle(26, seed=1, reshuffle_each_iteration=True).batch(8)
        train, steps = repeated(train)
        history = keras.callbacks.History()
        fit(model, train, validation_data=data.batch(8), epochs=3, steps_per_epoch=steps,
            callbacks=[history], verbose=0)
        return history.history


one = run(tf.distribute.get_strategy(), lambda model, *a, **k: model.fit(*a, **k))
mirrored = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), fit_distributed)
print(json.dumps({"one": one, "mirrored": mirrored}))
"""


def test_fit_distributed_matches_fit_on_one_device() -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        one, mirrored = result["one"][key], result["mirrored"][key]
        assert len(one) == len(mirrored) == 3
        for single, distributed in zip(one, mirrored, strict=True):
            assert abs(single - distributed) <= 1e-5, (key, one, mirrored)
