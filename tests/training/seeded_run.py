"""Seeded pretraining runs whose losses and weights tests compare.

Shared by the in-process distribution tests and the worker scripts that
tests start as subprocesses (`multi_worker_worker.py`,
`determinism_worker.py`), which cannot import `conftest`.
"""

import keras
import numpy as np
import tensorflow as tf

import keras_selfie
from keras_selfie.models import resnet
from keras_selfie.training.callbacks import random_state_variables


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


def shallow_patch_network(
    stem="cifar", width=0.125, synchronized=False, dtype=None
):
    """P with one bottleneck block per stage instead of ResNet-50's 3, 4
    and 6: the same stem, blocks, strides, feature map (`patch_pool`'s
    input) and batch normalisation, in a third of the layers.

    For the tests of a method's own step (its loss, random draws and
    gathers under `MirroredStrategy` and XLA), passed as `backbone=`: they
    hold for any P, and a step of the full P costs about three times as
    much. The full P's own step is checked the same ways in
    `distribution_test` (Selfie), and exact transfer and saving use it.
    """
    make = resnet._Layers(synchronized, dtype)
    inputs = keras.Input((None, None, 3), name="patches")
    x = resnet._stem(inputs, stem, width, make)
    stages = resnet.STAGES[:resnet.PATCH_NETWORK_STAGES]
    for name, filters, _, stride in stages:
        x = resnet._bottleneck_block(
            x, resnet.scaled_filters(filters, width), stride=stride,
            conv_shortcut=True, name=f"{name}_block1", make=make,
        )
    outputs = keras.layers.GlobalAveragePooling2D(
        name="patch_pool", dtype=dtype
    )(x)
    return keras.Model(inputs, outputs, name="shallow_patch_network")


def seeded_pretrainer(
    config,
    strategy,
    dtype="float64",
    jit_compile=False,
    loss=None,
    run_eagerly=False,
    method="selfie",
    shallow=False,
):
    """A compiled pretrainer built from `keras.utils.set_random_seed(1)`.

    No dropout and synchronized batch normalisation, so one device and
    several replicas compute the same step; float64 by default, so that
    reordered sums leave only rounding differences. `shallow=True` gives
    it `shallow_patch_network` as its backbone, at `config`'s stem and
    width.
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
        backbone = {}
        if shallow:
            backbone["backbone"] = shallow_patch_network(
                config.get("stem", "cifar"), config["width"],
                synchronized=True, dtype=dtype,
            )
        model = cls(
            **config,
            **backbone,
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


def step_state(model):
    """Everything a next training step starts from, each replica's copy.

    The weights, the `SeedGenerator` states (the next step's random draws)
    and the optimizer's variables (momentum, step count): runs whose states
    agree after a step agree in the next one too, so comparing the state
    after one step checks what a second step would, for a step's cost.

    Returns:
        A list with, per variable, the list of its replicas' values.
    """
    strategy = model.distribute_strategy
    variables = (
        model.weights + random_state_variables(model)
        + model.optimizer.variables
    )
    return [
        [np.array(copy.numpy())
         for copy in strategy.experimental_local_results(variable)]
        for variable in variables
    ]


def fit_one_step(model, images):
    """One training step on `images` (one batch); returns its loss and
    `step_state(model)` after it."""
    recorder = BatchLosses()
    batch = tf.data.Dataset.from_tensor_slices(images).batch(len(images))
    model.fit(batch, epochs=1, verbose=0, callbacks=[recorder])
    (loss,) = recorder.losses
    return loss, step_state(model)


def assert_same_state(state, reference, rtol=1e-8, atol=1e-9):
    """Each replica's copy of every variable in `state` equals the one
    copy in `reference` (a one-device run), up to float64 rounding."""
    assert len(state) == len(reference)
    for copies, (expected,) in zip(state, reference):
        for copy in copies:
            np.testing.assert_allclose(copy, expected, rtol=rtol, atol=atol)
