import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_checks import run_layer_test

from keras_selfie.layers import FusedBatchNormalization

SHAPE = (2, 3, 3, 5)  # n = 18 values per channel: (n - 1) / n is 0.94.


def _pair(**kwargs):
    """A fused and a Keras layer with the same random weights."""
    rng = np.random.default_rng(0)
    fused = FusedBatchNormalization(momentum=0.9, **kwargs)
    keras_layer = keras.layers.BatchNormalization(momentum=0.9, **kwargs)
    fused.build(SHAPE)
    keras_layer.build(SHAPE)
    weights = [
        rng.uniform(0.5, 2.0, w.shape).astype(w.dtype)
        for w in keras_layer.weights
    ]
    fused.set_weights(weights)
    keras_layer.set_weights(weights)
    return fused, keras_layer


def _inputs(dtype="float32"):
    rng = np.random.default_rng(1)
    return rng.normal(3.0, 2.0, SHAPE).astype(dtype)


def _op_types(layer, inputs, training):
    function = tf.function(lambda x: layer(x, training=training))
    graph = function.get_concrete_function(tf.constant(inputs)).graph
    return {op.type for op in graph.get_operations()}


class TestTrainingMode:
    @pytest.mark.parametrize(
        "kwargs", [{}, {"center": False}, {"scale": False}],
        ids=["default", "no_center", "no_scale"],
    )
    def test_outputs_equal_keras(self, kwargs):
        fused, keras_layer = _pair(**kwargs)
        x = _inputs()
        np.testing.assert_allclose(
            fused(x, training=True), keras_layer(x, training=True),
            rtol=1e-5, atol=1e-5,
        )

    def test_moving_statistics_equal_keras(self):
        # Keras updates the moving variance with the biased batch variance;
        # the kernel's is unbiased. Without the rescaling the moving
        # variance would differ by 1/0.94 - 1 of the update here.
        fused, keras_layer = _pair()
        x = _inputs()
        before = fused.moving_variance.numpy().copy()
        for _ in range(2):
            fused(x, training=True)
            keras_layer(x, training=True)
        for ours, theirs in (
            (fused.moving_mean, keras_layer.moving_mean),
            (fused.moving_variance, keras_layer.moving_variance),
        ):
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5)
        assert not np.allclose(fused.moving_variance.numpy(), before)
        batch_variance = x.var(axis=(0, 1, 2))
        expected = 0.81 * before + (0.09 + 0.1) * batch_variance
        np.testing.assert_allclose(
            fused.moving_variance.numpy(), expected, rtol=1e-5
        )

    def test_gradients_equal_keras(self):
        fused, keras_layer = _pair()
        x = tf.constant(_inputs())
        upstream = tf.constant(np.random.default_rng(2).normal(size=SHAPE),
                               dtype="float32")
        gradients = []
        for layer in (fused, keras_layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(y * upstream)
            gradients.append(
                tape.gradient(loss, [x, layer.gamma, layer.beta])
            )
        for ours, theirs in zip(*gradients):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)

    def test_runs_on_the_fused_kernel(self):
        fused, _ = _pair()
        assert "FusedBatchNormV3" in _op_types(fused, _inputs(), True)

    def test_under_xla_equals_keras(self):
        fused, keras_layer = _pair()
        x = tf.constant(_inputs())
        compiled = tf.function(
            lambda x: fused(x, training=True), jit_compile=True
        )
        np.testing.assert_allclose(
            compiled(x), keras_layer(x, training=True), rtol=1e-5, atol=1e-5
        )


class TestKerasComputationElsewhere:
    """Where the kernel does not apply the layer is Keras' layer exactly."""

    def test_inference(self):
        fused, keras_layer = _pair()
        x = _inputs()
        np.testing.assert_array_equal(
            fused(x, training=False), keras_layer(x, training=False)
        )
        assert "FusedBatchNormV3" not in _op_types(fused, x, False)

    @pytest.mark.parametrize(
        "kwargs, dtype",
        [
            ({"dtype": "float64"}, "float64"),
            ({"synchronized": True}, "float32"),
            ({"epsilon": 1e-6}, "float32"),
            ({"axis": 1}, "float32"),
        ],
        ids=["float64", "synchronized", "small_epsilon", "axis_1"],
    )
    def test_training(self, kwargs, dtype):
        fused, keras_layer = _pair(**kwargs)
        x = _inputs(dtype)
        np.testing.assert_array_equal(
            fused(x, training=True), keras_layer(x, training=True)
        )
        np.testing.assert_array_equal(
            fused.moving_variance.numpy(), keras_layer.moving_variance.numpy()
        )
        assert "FusedBatchNormV3" not in _op_types(fused, x, True)

    def test_frozen_layer_keeps_moving_statistics(self):
        fused, keras_layer = _pair()
        fused.trainable = keras_layer.trainable = False
        x = _inputs()
        before = fused.moving_mean.numpy().copy()
        np.testing.assert_array_equal(
            fused(x, training=True), keras_layer(x, training=True)
        )
        np.testing.assert_array_equal(fused.moving_mean.numpy(), before)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_reads_and_writes_16_bits(policy):
    fused, keras_layer = _pair(dtype=policy)
    x = _inputs()
    y = fused(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == policy[len("mixed_"):]
    assert fused.moving_mean.dtype == "float32"
    assert "FusedBatchNormV3" in _op_types(fused, x.astype("float16"), True)
    np.testing.assert_allclose(
        np.asarray(y, "float32"),
        np.asarray(keras_layer(x, training=True), "float32"),
        atol=0.05,
    )
    np.testing.assert_allclose(
        fused.moving_mean.numpy(), keras_layer.moving_mean.numpy(), rtol=1e-2
    )


@pytest.mark.parametrize(
    "kwargs, training, num_trainable",
    [
        ({}, False, 2),
        ({}, True, 2),  # The fused kernel.
        ({"center": False}, True, 1),
        ({"scale": False}, True, 1),
    ],
    ids=["inference", "training", "no_center", "no_scale"],
)
def test_layer_checks(kwargs, training, num_trainable):
    # gamma (with `scale`) and beta (with `center`) are trained; the moving
    # mean and variance are not, and there is no other state.
    run_layer_test(
        FusedBatchNormalization,
        dict(momentum=0.95, epsilon=1e-3, **kwargs),
        dict(inputs=_inputs(), training=training),
        expected_output_shape=SHAPE,
        expected_num_trainable_weights=num_trainable,
        expected_num_non_trainable_weights=2,
        expected_num_non_trainable_variables=2,
    )


def test_config_is_keras_batch_normalization_s():
    # The round trips are in `test_layer_checks`.
    layer = FusedBatchNormalization(momentum=0.95, epsilon=1e-3, name="bn")
    assert layer.get_config() == keras.layers.BatchNormalization(
        momentum=0.95, epsilon=1e-3, name="bn"
    ).get_config()


def test_saved_model_predicts_the_same(tmp_path):
    inputs = keras.Input(SHAPE[1:])
    model = keras.Model(inputs, FusedBatchNormalization()(inputs))
    model.layers[-1].moving_mean.assign(np.arange(5, dtype="float32"))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    x = _inputs()
    np.testing.assert_array_equal(restored.predict(x, verbose=0),
                                  model.predict(x, verbose=0))
    assert type(restored.layers[-1]) is FusedBatchNormalization
