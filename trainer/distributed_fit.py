"""`fit_distributed`: `model.fit`'s job for a Keras 3 model under a tf.distribute strategy.

Keras 3's `model.fit` cannot serve `--strategy mirrored|multiworker` as it is:
- under `MultiWorkerMirroredStrategy` it fails ("Attempt to convert a value
  (PerReplica...)", keras-team/keras#20585);
- under `MirroredStrategy` it opens the training dataset once more before the first
  epoch to build the model's metrics (`_maybe_symbolic_build`), and every new iterator
  of a reshuffling dataset draws the next order, so a mirrored run trains on other
  orders than a one-device run: the losses drift apart.

This loop is tf.distribute's own custom-training recipe: `strategy.run` of a step over
`strategy.experimental_distribute_dataset`, the loss averaged over the global batch,
the optimizer's `apply_gradients` (which all-reduces the gradients). It reads the
training data as `fit` does given `steps_per_epoch` (one iterator over the repeated
dataset, see `phases.repeated`) and drives the same Keras callbacks (history, best
checkpoint, schedules, early stopping, CSV, TensorBoard, BackupAndRestore) with the same
per-epoch logs, so a phase behaves as under `fit`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import keras
import numpy as np

# Totals each step returns, summed over replicas (and workers).
SUM_LOSS, CORRECT, COUNT = range(3)


def fit_distributed(
    model,
    train_data,
    validation_data=None,
    initial_epoch: int = 0,
    epochs: int = 1,
    callbacks: Sequence = (),
    verbose: int | str = 0,
    steps_per_epoch: int | None = None,
    **unused,
) -> None:
    """Train compiled `model` under the current strategy, as `model.fit` would.

    Args:
        model: A Keras 3 model built and compiled (with a `keras.losses.Loss`, e.g. by
            `phases.compile_for`) inside the strategy's scope.
        train_data: tf.data dataset batched at the global batch size; it is split over
            the replicas (and workers) by `experimental_distribute_dataset`.
        validation_data: Dataset scored after every epoch, or None.
        initial_epoch: Epochs finished before this call (BackupAndRestore may move it on).
        epochs: Absolute epoch to stop after.
        callbacks: Keras callbacks; they get `fit`'s per-epoch logs.
        verbose: 0 silent, else Keras' progress bar.
        steps_per_epoch: Batches per epoch of a repeated `train_data` (read through one
            iterator, as `fit` does), or None to read it to its end every epoch.
        unused: Other `model.fit` arguments (e.g. shuffle), ignored: the datasets
            shuffle themselves.
    """
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    optimizer = model.optimizer
    per_example_loss = _per_example(model.loss)
    optimizer.build(model.trainable_variables)

    def totals(labels, predictions, losses):
        correct = tf.cast(
            tf.equal(tf.argmax(labels, axis=-1), tf.argmax(predictions, axis=-1)), tf.float32
        )
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        return tf.stack([tf.reduce_sum(losses), tf.reduce_sum(correct), count])

    def train_replica(images, labels):
        context = tf.distribute.get_replica_context()
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        global_count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        with tf.GradientTape() as tape:
            predictions = model(images, training=True)
            losses = per_example_loss(labels, predictions)
            # The mean over the global batch: the replicas' gradients are summed.
            loss = tf.reduce_sum(losses) / tf.maximum(global_count, 1.0)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return totals(labels, predictions, losses)

    def test_replica(images, labels):
        predictions = model(images, training=False)
        return totals(labels, predictions, per_example_loss(labels, predictions))

    @tf.function(reduce_retracing=True)
    def train_step(batch):
        per_replica = strategy.run(train_replica, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    @tf.function(reduce_retracing=True)
    def test_step(batch):
        per_replica = strategy.run(test_replica, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def run_epoch(dataset, step, on_batch=None) -> dict[str, float]:
        total = np.zeros(3)
        for index, batch in enumerate(dataset):
            total += step(batch).numpy()
            if on_batch is not None:
                on_batch(index, _logs(total))
        return _logs(total)

    # Distributed once: each new iterator of it draws the next shuffle order (a new
    # distributed copy would start again from the first).
    train_batches = strategy.experimental_distribute_dataset(train_data)
    if steps_per_epoch is not None:
        train_iterator = iter(train_batches)
        train_batches = _EpochSlice(train_iterator, steps_per_epoch)
    val_batches = None
    if validation_data is not None:
        val_batches = strategy.experimental_distribute_dataset(validation_data)
    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
    )
    model.stop_training = False
    model._initial_epoch = None  # set by BackupAndRestore when it restores
    callback_list.on_train_begin()
    first = _from_chief(strategy, model, model._initial_epoch or initial_epoch)
    logs: dict[str, float] = {}
    for epoch in range(first, epochs):
        callback_list.on_epoch_begin(epoch)
        logs = run_epoch(train_batches, train_step, callback_list.on_train_batch_end)
        if val_batches is not None:
            scored = run_epoch(val_batches, test_step)
            logs.update({f"val_{key}": value for key, value in scored.items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)


def _from_chief(strategy, model, first_epoch: int) -> int:
    """Give every worker the chief's weights, optimizer state and first epoch; return it.

    After a restart each worker restores its own backup, and a killed worker's may be an
    epoch behind the chief's: the chief's backup is the one that counts. One all-reduce
    of a vector that only the first replica (on the chief) fills.
    """
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return first_epoch
    variables = list(model.variables) + list(model.optimizer.variables)
    values = [np.asarray(variable.numpy()) for variable in variables]
    flat = [np.ravel(value).astype(np.float64) for value in values]
    vector = tf.constant(np.concatenate([[float(first_epoch)], *flat]))

    def chief_only():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.where(tf.equal(replica, 0), vector, tf.zeros_like(vector))

    summed = strategy.reduce(
        tf.distribute.ReduceOp.SUM, strategy.run(chief_only), axis=None
    ).numpy()
    offset = 1
    for variable, value in zip(variables, values, strict=True):
        size = value.size
        variable.assign(summed[offset : offset + size].reshape(value.shape).astype(value.dtype))
        offset += size
    return int(summed[0])


class _EpochSlice:
    """Iterating it yields the next `steps` batches of one iterator over a repeated dataset."""

    def __init__(self, iterator, steps: int):
        self.iterator = iterator
        self.steps = steps

    def __iter__(self):
        return itertools.islice(self.iterator, self.steps)


def _per_example(loss):
    """The compiled Keras loss, returning one value per example (no reduction)."""
    config = {**loss.get_config(), "reduction": None}
    return type(loss).from_config(config)


def _logs(total: np.ndarray) -> dict[str, float]:
    count = max(float(total[COUNT]), 1.0)
    return {"loss": float(total[SUM_LOSS]) / count, "accuracy": float(total[CORRECT]) / count}
