"""Out-of-fold predictions of the refit's head, for calibrating a refit model honestly.

A refit model trains on every training and validation image, so no image is left to
fit its temperature on; the validation model's temperature does not carry over (on
food_mnist10 with a frozen backbone the refit model needed T 0.525 on the test photos,
the validation model's 0.764 left test ECE at 0.129). Cross-fitting gives every image a
prediction from a model that did not train on it: the train + val images are split into
`CROSS_FIT_FOLDS` stratified folds, and for each fold a fresh head is trained the way the
refit trained its head (same learning rate per epoch, loss, batch size and dropout) on
the other folds' cached backbone features and predicts the held-out fold.

This is cheap only when the refit trains nothing but the head on cached features (a
`--no-augment` run without fine-tuning); a fine-tuned refit would need one full
training per fold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tledge.core.input_contract import InputContract
from tledge.trainer.config import TrainConfig
from tledge.trainer.data import Split
from tledge.trainer.features import cached_features
from tledge.trainer.model import CLASSIFIER_NAME, classifier_head
from tledge.trainer.phases import (
    KERAS3,
    REFIT_FEATURE_EXTRACTION,
    PhasePlan,
    compile_for,
)

CROSS_FIT_FOLDS = 5


def stratified_folds(labels: Sequence[int], folds: int, seed: int) -> np.ndarray:
    """Fold index (0..folds-1) of each image: every class spread evenly over the folds.

    Example:
        >>> np.bincount(stratified_folds([0] * 10 + [1] * 5, 5, seed=0)).tolist()
        [3, 3, 3, 3, 3]
    """
    truth = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(truth), dtype=np.int64)
    offset = 0
    for label in np.unique(truth):
        members = rng.permutation(np.flatnonzero(truth == label))
        # Continue the round-robin where the previous class stopped: folds stay even.
        fold[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    return fold


def out_of_fold_probabilities(
    features: np.ndarray,
    labels: Sequence[int],
    num_classes: int,
    learning_rates: Sequence[float],
    label_smoothing: float,
    dropout: float,
    batch_size: int,
    seed: int,
    folds: int = CROSS_FIT_FOLDS,
) -> np.ndarray:
    """(N, C) probabilities of every image from a head that never trained on it.

    Args:
        features: (N, D) pooled backbone features of the refit's images.
        labels: Their true classes.
        num_classes: Outputs of the head.
        learning_rates: The refit head's learning rate of each epoch (replayed).
        label_smoothing: Label smoothing of the loss.
        dropout: The head's dropout.
        batch_size: Images per training step.
        seed: Seed of the folds, the heads' initial weights and the shuffles.
        folds: Number of folds (each head trains on (folds - 1) / folds of the images).
    """
    import keras
    import tensorflow as tf

    from tledge.trainer.callbacks import replay_schedule_callback

    truth = np.asarray(labels, dtype=np.int64)
    fold = stratified_folds(truth, folds, seed)
    one_hot = np.eye(num_classes, dtype=np.float32)[truth]
    result = np.zeros((len(truth), num_classes), dtype=np.float32)
    rates = tuple(learning_rates)
    plan = PhasePlan(
        phase=REFIT_FEATURE_EXTRACTION,
        first_epoch=0,
        epochs=len(rates),
        learning_rate=rates[0],
        lr_schedule="constant",
        label_smoothing=label_smoothing,
        patience=0,
        boundaries=(0,),
        learning_rates=rates,
    )
    for index in range(folds):
        held_out = fold == index
        if not held_out.any():
            continue
        keras.utils.set_random_seed(seed + index)
        inputs = keras.Input(features.shape[1:], name="features")
        head = keras.Model(inputs, classifier_head(inputs, num_classes, dropout))
        compile_for(head, plan)
        # A dataset through the trainer's fit, so that a distributed run can fit it too.
        train = tf.data.Dataset.from_tensor_slices((features[~held_out], one_hot[~held_out]))
        train = train.shuffle(int((~held_out).sum()), seed=seed + index).batch(batch_size)
        KERAS3.fit(
            head,
            train,
            epochs=len(rates),
            callbacks=[replay_schedule_callback(rates, 0)],
            verbose=0,
            shuffle=False,  # the dataset shuffles itself
        )
        held_out_data = tf.data.Dataset.from_tensor_slices(features[held_out]).batch(256)
        result[held_out] = head.predict(held_out_data, verbose=0)
    return result


def cross_fitted_predictions(
    model,
    split: Split,
    config: TrainConfig,
    input_contract: InputContract,
    learning_rates: Sequence[float],
) -> tuple[np.ndarray, str]:
    """Out-of-fold probabilities of a head-only refit on `split`, and what they are.

    Args:
        model: The refit model (its frozen backbone gives the cached features).
        split: The refit's images (train + val).
        config: The resolved run config (head dropout, loss, batch size, seed, cache).
        input_contract: How the run takes images (its input_contract.json).
        learning_rates: The refit head's learning rate of each epoch.

    Returns:
        (N, C) probabilities and the name metrics.json records as `fitted_on`.
    """
    probabilities = out_of_fold_probabilities(
        cached_features(model, split, config, input_contract),
        split.labels,
        model.get_layer(CLASSIFIER_NAME).units,
        learning_rates,
        config.label_smoothing,
        config.dropout,
        config.batch_size,
        config.seed,
    )
    return probabilities, f"cross-fitted refit head ({CROSS_FIT_FOLDS} folds, {len(split)} images)"
