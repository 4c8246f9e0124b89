"""`run_layer_test`: the checks every layer of `keras_selfie.layers` gets.

After keras-hub's `TestCase.run_layer_test`: one call checks what each
layer test used to write out by hand, in the same way for every layer.

- `get_config` / `from_config`: the rebuilt layer has the same config (as
  JSON) and, given the original's weights, computes the same outputs;
- `keras.saving.serialize_keras_object` / `deserialize_keras_object`
  (through JSON, as a `.keras` file stores it): the same class, config and
  outputs;
- the eager and the symbolic call give `expected_output_shape`, in the
  layer's compute dtype (float outputs);
- the numbers of trainable and non-trainable weights (and, optionally, of
  non-trainable variables: seed states, which `layer.weights` leaves out)
  are the caller's expected counts, once built by a call and once by a
  symbolic call, and every trainable weight gets a non-zero gradient;
- under each mixed precision policy (given as the layer's `dtype`
  argument, never set globally) float outputs and sub-layers use the
  compute dtype, the variables stay float32, and with the float32 layer's
  weights the outputs are those of the float32 layer, to 16-bit precision.

The checks run with random weights (`randomise_weights`), not the initial
ones, so that outputs depend on every weight. What is particular to a layer
(its computation, the values in its config) stays in its own tests.
"""

import json

import keras
import numpy as np
import tensorflow as tf
from keras import tree

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")
# Outputs of a mixed layer against its float32 twin, relative to the
# largest float32 output: a few roundings of 11 (float16) or 8 (bfloat16)
# significant bits.
PRECISION_ATOL = {"float16": 1e-2, "bfloat16": 5e-2}


def to_numpy(x):
    """A tensor, variable or array as a NumPy array (floats as float64)."""
    # Through a tensor: NumPy 2 warns when it reads a Keras variable directly.
    x = x.numpy() if isinstance(x, keras.Variable) else x
    x = keras.ops.convert_to_numpy(x)
    if x.dtype.kind == "f" or x.dtype.name == "bfloat16":
        x = x.astype("float64")
    return x


def is_float(dtype):
    return "float" in keras.backend.standardize_dtype(dtype)


def randomise_weights(layer, seed=0, scale=0.3):
    """Gives every weight of `layer` random values: `scale` times a standard
    normal draw, or its exponential (positive, around 1) for normalisation
    scales and variances. Non-zero biases and non-trivial scales, so that a
    wrong wiring of any weight shows in the outputs (the initialisers leave
    biases at 0 and layer-norm scales at 1)."""
    rng = np.random.default_rng(seed)
    values = []
    for weight in layer.weights:
        value = scale * rng.normal(size=weight.shape)
        if "gamma" in weight.path or "variance" in weight.path:
            value = np.exp(value)
        values.append(value.astype(weight.dtype))
    layer.set_weights(values)


def _call(layer, input_data):
    if isinstance(input_data, dict):
        return layer(**input_data)
    return layer(input_data)


def _symbolic(input_data):
    """`input_data` with its arrays replaced by `KerasTensor`s."""

    def symbolic(x):
        if not hasattr(x, "shape"):  # A plain argument, e.g. training=True.
            return x
        dtype = keras.backend.standardize_dtype(x.dtype)
        return keras.KerasTensor(tuple(x.shape), dtype)

    if isinstance(input_data, dict):
        return {key: symbolic(x) for key, x in input_data.items()}
    return symbolic(input_data)


def _shapes(outputs):
    return tree.map_structure(lambda x: tuple(x.shape), outputs)


def assert_same_outputs(actual, expected, **tolerance):
    tolerance = tolerance or dict(rtol=1e-6, atol=1e-6)
    for a, e in zip(tree.flatten(actual), tree.flatten(expected)):
        np.testing.assert_allclose(to_numpy(a), to_numpy(e), **tolerance)


def _json_round_trip(config):
    return json.loads(json.dumps(config, sort_keys=True))


def _assert_same_layer(revived, layer, cls, config, input_data, expected):
    assert type(revived) is cls
    assert _json_round_trip(revived.get_config()) == config
    _call(revived, input_data)  # Builds it.
    revived.set_weights(layer.get_weights())
    assert_same_outputs(_call(revived, input_data), expected)


def check_serialization(layer, input_data, expected):
    """`layer` (built, giving `expected` on `input_data`) survives both
    round trips: `get_config`/`from_config` and
    `serialize_keras_object`/`deserialize_keras_object`."""
    cls = type(layer)
    config = _json_round_trip(layer.get_config())
    revived = cls.from_config(layer.get_config())
    _assert_same_layer(revived, layer, cls, config, input_data, expected)
    serialized = _json_round_trip(keras.saving.serialize_keras_object(layer))
    revived = keras.saving.deserialize_keras_object(serialized)
    _assert_same_layer(revived, layer, cls, config, input_data, expected)


def _assert_weight_counts(layer, trainable, non_trainable, variables):
    assert layer.built
    assert len(layer.trainable_weights) == trainable, [
        w.path for w in layer.trainable_weights
    ]
    assert len(layer.non_trainable_weights) == non_trainable, [
        w.path for w in layer.non_trainable_weights
    ]
    if variables is not None:
        assert len(layer.non_trainable_variables) == variables, [
            v.path for v in layer.non_trainable_variables
        ]


def _assert_float_outputs_in(dtype, *outputs):
    for output in tree.flatten(outputs):
        if is_float(output.dtype):
            actual = keras.backend.standardize_dtype(output.dtype)
            assert actual == dtype, (actual, dtype)


def _assert_every_weight_has_a_gradient(layer, input_data):
    """Each trainable weight moves the loss `sum(outputs * upstream)`."""
    rng = np.random.default_rng(0)
    with tf.GradientTape() as tape:
        outputs = tree.flatten(_call(layer, input_data))
        loss = 0.0
        for y in outputs:
            upstream = rng.normal(size=y.shape).astype("float32")
            loss += tf.reduce_sum(tf.cast(y, "float32") * upstream)
    gradients = tape.gradient(loss, layer.trainable_weights)
    for weight, gradient in zip(layer.trainable_weights, gradients):
        assert gradient is not None, weight.path
        gradient = to_numpy(tf.convert_to_tensor(gradient))
        assert np.abs(gradient).max() > 0, weight.path


def check_precision(cls, init_kwargs, input_data, reference, policies):
    """Under each policy: compute-dtype outputs and sub-layers, float32
    variables, and the float32 `reference` layer's outputs."""
    expected = tree.flatten(_call(reference, input_data))
    for name in policies:
        policy = keras.DTypePolicy(name)
        layer = cls(**init_kwargs, dtype=policy)
        symbolic = _call(layer, _symbolic(input_data))
        _call(layer, input_data)  # Builds it.
        layer.set_weights(reference.get_weights())
        outputs = _call(layer, input_data)
        _assert_float_outputs_in(policy.compute_dtype, symbolic, outputs)
        for weight in layer.weights:
            assert keras.backend.standardize_dtype(weight.dtype) == "float32"
        for sublayer in layer._flatten_layers():
            assert sublayer.compute_dtype == policy.compute_dtype, sublayer
            assert sublayer.variable_dtype == "float32", sublayer
        for output, want in zip(tree.flatten(outputs), expected):
            want = to_numpy(want)
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(
                to_numpy(output), want,
                atol=PRECISION_ATOL[policy.compute_dtype] * scale,
            )


def run_layer_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights,
    expected_num_non_trainable_weights,
    expected_num_non_trainable_variables=None,
    randomise=True,
    run_precision_checks=True,
):
    """Runs the checks of the module docstring on `cls(**init_kwargs)`.

    Args:
        cls: the layer class.
        init_kwargs: dict of constructor arguments (not `dtype`).
        input_data: an array, or a dict of call arguments by name: arrays,
            or plain values such as `training=True`.
        expected_output_shape: shape (tuple) of the output on `input_data`,
            or a structure of shapes.
        expected_num_trainable_weights: exact int.
        expected_num_non_trainable_weights: exact int.
        expected_num_non_trainable_variables: exact int, or `None` not to
            check (it counts the `SeedGenerator` states of dropout too).
        randomise: whether the checks run with `randomise_weights` rather
            than the initial weights.
        run_precision_checks: whether to check `MIXED_POLICIES`.

    Returns:
        The built float32 layer.
    """
    counts = (
        expected_num_trainable_weights,
        expected_num_non_trainable_weights,
        expected_num_non_trainable_variables,
    )
    global_policy = keras.config.dtype_policy().name

    # Built by a symbolic call.
    layer = cls(**init_kwargs)
    symbolic = _call(layer, _symbolic(input_data))
    _assert_weight_counts(layer, *counts)
    assert _shapes(symbolic) == expected_output_shape, ("symbolic shape",
                                                        _shapes(symbolic))
    _assert_float_outputs_in(layer.compute_dtype, symbolic)

    # Built by an eager call.
    layer = cls(**init_kwargs)
    outputs = _call(layer, input_data)
    _assert_weight_counts(layer, *counts)
    if randomise:
        randomise_weights(layer)
        outputs = _call(layer, input_data)
    assert _shapes(outputs) == expected_output_shape, ("eager shape",
                                                       _shapes(outputs))
    _assert_float_outputs_in(layer.compute_dtype, outputs)
    _assert_every_weight_has_a_gradient(layer, input_data)

    check_serialization(layer, input_data, outputs)
    if run_precision_checks:
        check_precision(cls, init_kwargs, input_data, layer, MIXED_POLICIES)
    assert keras.config.dtype_policy().name == global_policy
    return layer
