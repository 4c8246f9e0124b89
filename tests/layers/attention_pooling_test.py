import keras
import numpy as np
import pytest
from layer_checks import randomise_weights
from layer_checks import run_layer_test
from layer_checks import to_numpy as _np

from keras_selfie.layers import AttentionPooling
from keras_selfie.layers import TransformerBlock


def _pooling(seed=0, dim=8, num_layers=2, dropout=0.0, **kwargs):
    layer = AttentionPooling(
        num_layers=num_layers,
        num_heads=kwargs.pop("num_heads", 2),
        intermediate_dim=kwargs.pop("intermediate_dim", 16),
        dropout=dropout,
        **kwargs,
    )
    layer.build((None, None, dim))
    # Large random weights, so that every part of the computation moves the
    # output by a visible amount.
    randomise_weights(layer, seed)
    return layer


def _inputs(seed, shape=(3, 6, 8)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _block_params(dim, intermediate_dim):
    return (
        4 * dim * dim
        + 4 * dim
        + 4 * dim
        + 2 * dim * intermediate_dim
        + intermediate_dim
        + dim
    )


# The pooling token, then per Transformer layer 16 weights: kernel and bias
# of the query, key, value, attention output and both feed-forward Dense
# layers (12), gamma and beta of both layer norms (4). Nothing is
# non-trainable; each layer's three Dropout layers hold a seed state.
LAYER_KWARGS = dict(
    num_heads=4,
    intermediate_dim=24,
    dropout=0.25,
    layer_norm_epsilon=1e-6,
    kernel_initializer=keras.initializers.RandomNormal(stddev=0.1),
)


@pytest.mark.parametrize(
    "num_layers, queries", [(1, False), (2, True)], ids=["token", "queries"]
)
def test_layer_checks(num_layers, queries):
    x = _inputs(0)
    inputs, shape = x, (3, 8)
    if queries:
        inputs, shape = dict(inputs=x, queries=_inputs(1, (3, 2, 8))), (3, 2, 8)
    run_layer_test(
        AttentionPooling,
        dict(num_layers=num_layers, **LAYER_KWARGS),
        inputs,
        expected_output_shape=shape,
        expected_num_trainable_weights=1 + 16 * num_layers,
        expected_num_non_trainable_weights=0,
        expected_num_non_trainable_variables=3 * num_layers,
    )


def test_output_shape():
    layer = _pooling()
    assert layer.compute_output_shape((3, 6, 8)) == (3, 8)
    assert tuple(layer(keras.Input((None, 8))).shape) == (None, 8)


def test_equals_first_token_of_own_transformer_layers():
    layer = _pooling(seed=1)
    x = _inputs(1)
    token = np.broadcast_to(_np(layer.pooling_token), (3, 1, 8))
    sequence = np.concatenate([token, x], axis=1)
    for block in layer.transformer_layers:
        assert isinstance(block, TransformerBlock)
        sequence = block(sequence)
    np.testing.assert_allclose(
        _np(layer(x)), _np(sequence)[:, 0], rtol=1e-5, atol=1e-5
    )


def test_queries_equal_the_first_tokens_of_own_transformer_layers():
    layer = _pooling(seed=1)
    x = _inputs(1)
    queries = _inputs(7, shape=(3, 2, 8))
    tokens = _np(layer.pooling_token)[None, None] + queries
    sequence = np.concatenate([tokens, x], axis=1)
    for block in layer.transformer_layers:
        sequence = block(sequence)
    pooled = _np(layer(x, queries=queries))
    assert pooled.shape == (3, 2, 8)
    assert layer.compute_output_shape((3, 6, 8), (3, 2, 8)) == (3, 2, 8)
    np.testing.assert_allclose(pooled, _np(sequence)[:, :2], rtol=1e-5,
                               atol=1e-5)
    # Each query's output depends on its own query: swapping the two
    # queries swaps the outputs.
    swapped = _np(layer(x, queries=queries[:, ::-1]))
    np.testing.assert_allclose(swapped, pooled[:, ::-1], rtol=1e-5,
                               atol=1e-5)
    assert np.abs(pooled[:, 0] - pooled[:, 1]).max() > 1e-2


def test_pooling_token_matters():
    layer = _pooling(seed=2)
    x = _inputs(2)
    before = _np(layer(x))
    layer.pooling_token.assign(_np(layer.pooling_token) + 1.0)
    assert not np.allclose(_np(layer(x)), before, atol=1e-3)


def test_permutation_invariant():
    layer = _pooling(seed=3)
    x = _inputs(3)
    permutation = np.array([4, 0, 5, 2, 1, 3])
    np.testing.assert_allclose(
        _np(layer(x[:, permutation])), _np(layer(x)), rtol=1e-5, atol=1e-5
    )
    # Different inputs give different outputs, so the check above is not
    # trivially true.
    assert not np.allclose(_np(layer(x[::-1])), _np(layer(x)), atol=1e-3)


def test_permutation_invariant_with_mask():
    layer = _pooling(seed=4)
    x = _inputs(4)
    mask = np.array([[1, 1, 0, 1, 0, 1]] * 3, bool)
    permutation = np.array([5, 3, 1, 4, 0, 2])
    np.testing.assert_allclose(
        _np(layer(x[:, permutation], mask=mask[:, permutation])),
        _np(layer(x, mask=mask)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_mask_ignores_masked_inputs():
    layer = _pooling(seed=5)
    x = _inputs(5)
    mask = np.ones((3, 6), bool)
    mask[0, [1, 4]] = False
    mask[2, 5] = False
    changed = x.copy()
    changed[~mask] += 10.0

    np.testing.assert_allclose(
        _np(layer(changed, mask=mask)),
        _np(layer(x, mask=mask)),
        rtol=1e-5,
        atol=1e-5,
    )
    # Without the mask the same change does move the output.
    unmasked = _np(layer(changed)) - _np(layer(x))
    assert np.abs(unmasked[[0, 2]]).max() > 1e-3


def test_mask_equals_dropping_masked_inputs():
    layer = _pooling(seed=6)
    x = _inputs(6)
    mask = np.array(
        [[1, 0, 1, 1, 0, 1], [0, 0, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1]], bool
    )
    masked = _np(layer(x, mask=mask))
    for b in range(3):
        kept = x[b : b + 1, mask[b]]
        np.testing.assert_allclose(
            masked[b], _np(layer(kept))[0], rtol=1e-5, atol=1e-5
        )


def test_all_masked_depends_on_token_only():
    layer = _pooling(seed=7)
    mask = np.zeros((3, 6), bool)
    first = _np(layer(_inputs(7), mask=mask))
    second = _np(layer(_inputs(8), mask=mask))
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        first[0], _np(layer(np.zeros((1, 0, 8), "float32")))[0], atol=1e-5
    )


def test_keras_mask_is_used():
    layer = _pooling(seed=8)
    x = _inputs(9)
    x[0, 2:] = 0.0
    x[1, 4] = 0.0
    inputs = keras.Input((6, 8))
    outputs = layer(keras.layers.Masking(mask_value=0.0)(inputs))
    model = keras.Model(inputs, outputs)
    mask = np.any(x != 0.0, axis=-1)
    np.testing.assert_allclose(
        _np(model(x)), _np(layer(x, mask=mask)), rtol=1e-5, atol=1e-5
    )
    assert not np.allclose(_np(model(x)), _np(layer(x)), atol=1e-3)
    assert layer.compute_mask(x, mask) is None


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_weight_count(num_layers):
    layer = AttentionPooling(
        num_layers=num_layers, num_heads=2, intermediate_dim=12
    )
    layer.build((None, None, 8))
    assert len(layer.transformer_layers) == num_layers
    assert layer.count_params() == 8 + num_layers * _block_params(8, 12)
    assert tuple(layer.pooling_token.shape) == (8,)


def test_blocks_not_initialised_equal():
    layer = AttentionPooling(num_layers=2, num_heads=2, intermediate_dim=12)
    layer.build((None, None, 8))
    first, second = layer.transformer_layers
    assert not np.allclose(
        _np(first._intermediate_dense.kernel),
        _np(second._intermediate_dense.kernel),
    )
    assert 0.005 < _np(layer.pooling_token).std() < 0.04


def test_dropout_active_only_in_training():
    layer = _pooling(seed=9, dropout=0.5)
    x = _inputs(10)
    first = _np(layer(x, training=True))
    second = _np(layer(x, training=True))
    assert not np.allclose(first, second, atol=1e-3)
    inference = _np(layer(x, training=False))
    np.testing.assert_allclose(_np(layer(x)), inference, atol=1e-6)


def test_num_heads_must_divide_width():
    layer = AttentionPooling(num_layers=1, num_heads=3, intermediate_dim=8)
    with pytest.raises(ValueError, match="num_heads=3 for feature size 8"):
        layer(np.zeros((1, 4, 8), "float32"))


def test_rank_must_be_3():
    layer = AttentionPooling(num_layers=1, num_heads=2, intermediate_dim=8)
    with pytest.raises(ValueError, match=r"\(batch_size, n, d\).*\(2, 8\)"):
        layer(np.zeros((2, 8), "float32"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_layers=0, num_heads=2, intermediate_dim=8), "num_layers"),
        (dict(num_layers=1, num_heads=0, intermediate_dim=8), "num_heads"),
        (
            dict(num_layers=1, num_heads=2, intermediate_dim=0),
            "intermediate_dim",
        ),
        (
            dict(num_layers=1, num_heads=2, intermediate_dim=8, dropout=1.5),
            "dropout",
        ),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttentionPooling(**kwargs)


def test_config_holds_the_arguments():
    # The round trips are in `test_layer_checks`; these are the values.
    config = AttentionPooling(num_layers=3, **LAYER_KWARGS).get_config()
    for key, value in LAYER_KWARGS.items():
        if key != "kernel_initializer":
            assert config[key] == value, key
    assert config["num_layers"] == 3
    restored = AttentionPooling.from_config(config)
    assert restored.kernel_initializer.stddev == 0.1
