"""Seeded pretraining runs whose losses and weights tests compare.

Shared by the in-process distribution tests and the worker scripts that
tests start as subprocesses (`multi_worker_worker.py`,
`determinism_worker.py`), which cannot import `conftest`.
"""

import keras
import numpy as np

import keras_selfie


def random_images(count=16, seed=0):
    """`count` random uint8 32x32 RGB images."""
    return np.random.RandomState(seed).randint(
        0, 256, size=(count, 32, 32, 3), dtype="uint8"
    )


class BatchLosses(keras.callbacks.Callback):
    """Records the loss that `fit` reports after every batch."""

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def seeded_pretrainer(
    config,
    strategy,
    dtype="float64",
    jit_compile=False,
    loss=None,
    run_eagerly=False,
    method="selfie",
):
    """A compiled pretrainer built from `keras.utils.set_random_seed(1)`.

    No dropout and synchronized batch normalisation, so one device and
    several replicas compute the same step; float64 by default, so that
    reordered sums leave only rounding differences.
    """
    cls = keras_selfie.methods.get(method)
    no_dropout = (
        {"dropout": 0.0}
        if "dropout" in keras_selfie.models.pretrainer.constructor_arguments(
            cls
        )
        else {}
    )
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = cls(
            **config,
            **no_dropout,
            synchronized_batch_norm=True,
            seed=3,
            dtype=dtype,
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
            loss=loss or model.default_loss(dtype=dtype),
            jit_compile=jit_compile,
            run_eagerly=run_eagerly,
        )
    return model


def fit_and_record(model, dataset, epochs):
    """Fits `model`; returns the per-batch losses and the final weights."""
    recorder = BatchLosses()
    model.fit(dataset, epochs=epochs, verbose=0, callbacks=[recorder])
    return recorder.losses, [np.array(v.numpy()) for v in model.weights]
