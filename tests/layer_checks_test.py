"""`run_layer_test` fails on the faults it is there to find."""

import keras
import numpy as np
import pytest
from keras import ops
from layer_checks import run_layer_test

INPUTS = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
register = keras.saving.register_keras_serializable(package="layer_checks")


@register
class Scale(keras.layers.Layer):
    """`inputs * kernel + bias`, with a factor `scale` in its config."""

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1],), name="kernel")
        self.bias = self.add_weight(shape=(input_shape[-1],), name="bias")
        self.count = self.add_weight(
            shape=(), name="count", trainable=False, initializer="zeros"
        )

    def call(self, inputs):
        return self.scale * inputs * self.kernel + self.bias

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@register
class ForgetsScale(Scale):
    def get_config(self):  # Rebuilt, it computes with scale=1.
        return keras.layers.Layer.get_config(self)


@register
class UnusedBias(Scale):
    def call(self, inputs):
        return self.scale * inputs * self.kernel


@register
class Float32Output(Scale):
    def call(self, inputs):
        return ops.cast(super().call(inputs), "float32")


@register
class WrongShape(Scale):
    def compute_output_shape(self, input_shape):
        return input_shape[:-1]


def check(cls, trainable=2, non_trainable=1, **kwargs):
    run_layer_test(cls, dict(scale=3.0), INPUTS, (2, 3), trainable,
                   non_trainable, **kwargs)


def test_passes_on_a_right_layer():
    check(Scale)


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        # The same config both ways, but other outputs.
        (ForgetsScale, {}, "Not equal to tolerance"),
        (UnusedBias, {}, "unused_bias.*/bias"),  # No gradient.
        # Not the compute dtype under mixed policies.
        (Float32Output, {}, r"\('float32', 'float16'\)"),
        (WrongShape, {}, r"symbolic shape.*\(2,\)"),
        (Scale, dict(trainable=3), "kernel.*bias"),
        (Scale, dict(non_trainable=0), "count"),
    ],
    ids=["config", "gradient", "dtype", "shape", "trainable", "non_trainable"],
)
def test_fails_on_a_faulty_layer(cls, kwargs, match):
    with pytest.raises(AssertionError, match=match):
        check(cls, **kwargs)
