import math

import keras
import numpy as np
import pytest
from layer_checks import randomise_weights
from layer_checks import run_layer_test
from layer_checks import to_numpy as _np

from keras_selfie.layers import TransformerBlock
from keras_selfie.layers.transformer_block import check_num_heads
from keras_selfie.layers.transformer_block import valid_num_heads

_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _layer_norm(x, norm):
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    normed = (x - mean) / np.sqrt(variance + norm.epsilon)
    return normed * _np(norm.gamma) + _np(norm.beta)


def _softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def _reference(block, x, attention_mask=None):
    """BERT post-LN block in NumPy, from the block's own weights."""
    x = x.astype("float64")
    num_heads = block.num_heads

    def dense(inputs, layer):
        return inputs @ _np(layer.kernel) + _np(layer.bias)

    def heads(y):  # Column h * key_dim + k is head h's component k.
        return y.reshape(*y.shape[:2], num_heads, -1)

    q = heads(dense(x, block._query_dense))
    k = heads(dense(x, block._key_dense))
    v = heads(dense(x, block._value_dense))
    key_dim = q.shape[-1]
    scores = np.einsum("bqhk,bshk->bhqs", q, k) / math.sqrt(key_dim)
    if attention_mask is not None:
        scores = np.where(attention_mask[:, None], scores, -1e9)
    probs = _softmax(scores)
    context = np.einsum("bhqs,bshk->bqhk", probs, v)
    attended = dense(
        context.reshape(*context.shape[:2], -1), block._attention_output_dense
    )
    x = _layer_norm(x + attended, block._attention_norm)
    hidden = _gelu(
        x @ _np(block._intermediate_dense.kernel)
        + _np(block._intermediate_dense.bias)
    )
    hidden = hidden @ _np(block._output_dense.kernel) + _np(
        block._output_dense.bias
    )
    return _layer_norm(x + hidden, block._output_norm)


def _block(seed=0, dim=8, num_heads=2, intermediate_dim=16, **kwargs):
    block = TransformerBlock(
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        dropout=kwargs.pop("dropout", 0.0),
        **kwargs,
    )
    block.build((None, None, dim))
    randomise_weights(block, seed)
    return block


def _inputs(seed, shape=(2, 5, 8)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")



def test_check_num_heads():
    assert valid_num_heads(12) == [1, 2, 3, 4, 6, 12]
    assert check_num_heads(4, 8) == 4
    with pytest.raises(
        ValueError,
        match=r"Argument `heads` must divide .*\[1, 2, 4, 8\]\. "
        "Received: heads=3 for feature size 8",
    ):
        check_num_heads(3, 8, name="heads")


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_matches_numpy_bert_block(num_heads):
    block = _block(seed=num_heads, num_heads=num_heads)
    x = _inputs(10)
    outputs = keras.ops.convert_to_numpy(block(x))
    np.testing.assert_allclose(outputs, _reference(block, x), atol=1e-4)


def test_matches_numpy_bert_block_with_mask():
    block = _block(seed=3)
    x = _inputs(11)
    mask = np.ones((2, 5, 5), bool)
    mask[0, :, 3] = False
    mask[1, :, 0:2] = False
    outputs = keras.ops.convert_to_numpy(block(x, attention_mask=mask))
    np.testing.assert_allclose(
        outputs, _reference(block, x, attention_mask=mask), atol=1e-4
    )


def test_output_is_post_layer_norm():
    # Post-LN: the last op is the output layer norm, so with gamma = 1 and
    # beta = 0 every output vector has mean 0 and variance 1.
    block = _block(seed=4)
    block._output_norm.gamma.assign(np.ones(8, "float32"))
    block._output_norm.beta.assign(np.zeros(8, "float32"))
    outputs = keras.ops.convert_to_numpy(block(3.0 * _inputs(12) + 1.0))
    np.testing.assert_allclose(outputs.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(outputs.var(-1), 1.0, atol=1e-4)


def test_residual_connections():
    # With both branches switched off (zero output kernels and biases) the
    # block reduces to LayerNorm(LayerNorm(x)), i.e. the residuals carry x.
    block = _block(seed=5)
    zeros = np.zeros_like
    attention_out = block._attention_output_dense
    attention_out.kernel.assign(zeros(_np(attention_out.kernel), dtype="float32"))
    attention_out.bias.assign(zeros(_np(attention_out.bias), dtype="float32"))
    block._output_dense.kernel.assign(np.zeros((16, 8), "float32"))
    block._output_dense.bias.assign(np.zeros(8, "float32"))
    x = _inputs(13)
    expected = _layer_norm(
        _layer_norm(x.astype("float64"), block._attention_norm),
        block._output_norm,
    )
    outputs = keras.ops.convert_to_numpy(block(x))
    np.testing.assert_allclose(outputs, expected, atol=1e-4)


def test_attention_mask_masks_keys():
    block = _block(seed=6)
    x = _inputs(14)
    mask = np.ones((2, 5, 5), bool)
    mask[:, :, 2] = False
    changed = x.copy()
    changed[:, 2] += 5.0

    before = keras.ops.convert_to_numpy(block(x, attention_mask=mask))
    after = keras.ops.convert_to_numpy(block(changed, attention_mask=mask))
    others = [0, 1, 3, 4]
    np.testing.assert_allclose(after[:, others], before[:, others], atol=1e-5)
    # The masked position's own output still depends on its input.
    assert not np.allclose(after[:, 2], before[:, 2], atol=1e-3)

    # Without the mask, the change reaches every position.
    unmasked = keras.ops.convert_to_numpy(block(changed))
    assert not np.allclose(
        unmasked[:, others],
        keras.ops.convert_to_numpy(block(x))[:, others],
        atol=1e-3,
    )


def test_dropout_zero_training_equals_inference():
    block = _block(seed=7)
    x = _inputs(15)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(block(x, training=True)),
        keras.ops.convert_to_numpy(block(x, training=False)),
        atol=1e-6,
    )


def test_dropout_active_only_in_training():
    block = _block(seed=8, dropout=0.5)
    x = _inputs(16)
    first = keras.ops.convert_to_numpy(block(x, training=True))
    second = keras.ops.convert_to_numpy(block(x, training=True))
    assert not np.allclose(first, second, atol=1e-3)
    inference = keras.ops.convert_to_numpy(block(x, training=False))
    np.testing.assert_allclose(inference, _reference(block, x), atol=1e-4)


@pytest.mark.parametrize("num_heads, dim", [(3, 8), (5, 8), (16, 8)])
def test_num_heads_must_divide_width(num_heads, dim):
    block = TransformerBlock(num_heads=num_heads, intermediate_dim=16)
    with pytest.raises(
        ValueError, match=f"num_heads={num_heads} for feature size {dim}"
    ):
        block(np.zeros((1, 3, dim), "float32"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_heads=0, intermediate_dim=8), "num_heads"),
        (dict(num_heads=2, intermediate_dim=0), "intermediate_dim"),
        (dict(num_heads=2, intermediate_dim=8, dropout=1.0), "dropout"),
        (dict(num_heads=2, intermediate_dim=8, dropout=-0.1), "dropout"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransformerBlock(**kwargs)


@pytest.mark.parametrize(
    "dim, num_heads, intermediate_dim", [(8, 2, 16), (12, 3, 20), (16, 4, 8)]
)
def test_weight_count(dim, num_heads, intermediate_dim):
    block = TransformerBlock(
        num_heads=num_heads, intermediate_dim=intermediate_dim
    )
    block.build((None, None, dim))
    attention = 4 * dim * dim + 4 * dim
    layer_norms = 2 * 2 * dim
    feed_forward = 2 * dim * intermediate_dim + intermediate_dim + dim
    assert block.count_params() == attention + layer_norms + feed_forward


def test_weights_not_initialised_equal():
    block = TransformerBlock(num_heads=2, intermediate_dim=16)
    block.build((None, None, 8))
    query = _np(block._query_dense.kernel)
    key = _np(block._key_dense.kernel)
    value = _np(block._value_dense.kernel)
    assert not np.allclose(query, key)
    assert not np.allclose(key, value)
    assert 0.005 < query.std() < 0.03


def test_weights_not_initialised_equal_with_seeded_initializer():
    # Identical query and key kernels make every attention score start as
    # <Wx_i, Wx_j>; a seeded initializer must not force that.
    block = TransformerBlock(
        num_heads=2,
        intermediate_dim=16,
        kernel_initializer=keras.initializers.TruncatedNormal(
            stddev=0.02, seed=3
        ),
    )
    block.build((None, None, 8))
    assert not np.allclose(
        _np(block._query_dense.kernel), _np(block._key_dense.kernel)
    )


# Not the defaults, so that a round trip that loses one shows.
LAYER_KWARGS = dict(
    num_heads=4,
    intermediate_dim=32,
    dropout=0.2,
    activation="relu",
    layer_norm_epsilon=1e-6,
    kernel_initializer=keras.initializers.RandomNormal(stddev=0.1),
)


@pytest.mark.parametrize("query", [False, True], ids=["self", "query"])
def test_layer_checks(query):
    x = _inputs(17)
    inputs, shape = x, (2, 5, 8)
    if query:
        mask = np.ones((2, 2, 5), bool)
        mask[0, :, 4] = False
        inputs = dict(inputs=x, attention_mask=mask, query=x[:, :2])
        shape = (2, 2, 8)
    # Kernel and bias of the query, key, value, attention output and both
    # feed-forward Dense layers (12), gamma and beta of both layer norms
    # (4); nothing non-trainable; the three Dropout layers (attention
    # probabilities, both residual branches) hold a seed state each.
    run_layer_test(
        TransformerBlock,
        LAYER_KWARGS,
        inputs,
        expected_output_shape=shape,
        expected_num_trainable_weights=16,
        expected_num_non_trainable_weights=0,
        expected_num_non_trainable_variables=3,
    )


def test_output_shape():
    block = _block(seed=9)
    assert block.compute_output_shape((2, 5, 8)) == (2, 5, 8)
    outputs = block(keras.Input((None, 8)))
    assert tuple(outputs.shape) == (None, None, 8)


def test_config_holds_the_arguments():
    # The round trips are in `test_layer_checks`; these are the values.
    config = TransformerBlock(**LAYER_KWARGS).get_config()
    for key in ("num_heads", "intermediate_dim", "dropout",
                "layer_norm_epsilon"):
        assert config[key] == LAYER_KWARGS[key], key
    restored = TransformerBlock.from_config(config)
    assert restored.activation is keras.activations.relu
    assert restored.kernel_initializer.stddev == 0.1


def test_query_gives_those_rows_of_the_full_layer():
    block = _block(seed=6, num_heads=2)
    x = _inputs(14)
    mask = np.ones((2, 5, 5), bool)
    mask[0, :, 4] = False
    full = keras.ops.convert_to_numpy(block(x, attention_mask=mask))
    first_two = block(x, attention_mask=mask[:, :2], query=x[:, :2])
    assert tuple(first_two.shape) == (2, 2, 8)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(first_two), full[:, :2], atol=1e-5
    )
    # The keys and values are all of `inputs`: changing a later token moves
    # the first token's output.
    moved = x.copy()
    moved[:, 3] += 1.0
    assert not np.allclose(
        keras.ops.convert_to_numpy(block(moved, query=moved[:, :1])),
        keras.ops.convert_to_numpy(block(x, query=x[:, :1])),
        atol=1e-3,
    )


def test_output_shape_with_query():
    block = _block(seed=9)
    assert block.compute_output_shape((2, 5, 8), query_shape=(2, 1, 8)) == (
        2,
        1,
        8,
    )
    outputs = block(keras.Input((None, 8)), query=keras.Input((1, 8)))
    assert tuple(outputs.shape) == (None, 1, 8)
