import keras
import numpy as np
import pytest
from layer_checks import run_layer_test

from keras_selfie.layers import RowColPositionalEmbedding


def _tables(layer):
    return (
        layer.row_embeddings.numpy(),
        layer.column_embeddings.numpy(),
    )


def test_layer_checks():
    # Two trainable tables, a row's and a column's; nothing else.
    positions = np.array([[0, 4, 5, 14], [13, 7, 1, 10]])
    run_layer_test(
        RowColPositionalEmbedding,
        dict(
            grid_size=(3, 5),
            dim=8,
            embeddings_initializer=keras.initializers.RandomNormal(
                stddev=0.5
            ),
        ),
        positions,
        expected_output_shape=(2, 4, 8),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
        expected_num_non_trainable_variables=0,
    )


@pytest.mark.parametrize("grid_size, rows, cols", [(4, 4, 4), ((3, 5), 3, 5)])
def test_weight_count_and_shapes(grid_size, rows, cols):
    layer = RowColPositionalEmbedding(grid_size, dim=6)
    layer.build()
    assert layer.count_params() == (rows + cols) * 6
    assert tuple(layer.row_embeddings.shape) == (rows, 6)
    assert tuple(layer.column_embeddings.shape) == (cols, 6)


@pytest.mark.parametrize("grid_size", [(4, 4), (3, 5), (5, 3), (1, 4)])
def test_output_is_row_plus_column_embedding(grid_size):
    rows, cols = grid_size
    layer = RowColPositionalEmbedding(grid_size, dim=8)
    positions = np.arange(rows * cols).reshape(1, -1)
    outputs = keras.ops.convert_to_numpy(layer(positions))
    row_table, column_table = _tables(layer)

    assert outputs.shape == (1, rows * cols, 8)
    for i in range(rows * cols):
        np.testing.assert_allclose(
            outputs[0, i],
            row_table[i // cols] + column_table[i % cols],
            rtol=1e-6,
            atol=1e-7,
        )


def test_non_square_grid_with_known_tables():
    # Row r holds 100 * r and column c holds c, so position i of a 3x5 grid
    # must give 100 * (i // 5) + (i % 5) in every coordinate.
    layer = RowColPositionalEmbedding((3, 5), dim=2)
    layer.build()
    layer.row_embeddings.assign(np.repeat(100.0 * np.arange(3)[:, None], 2, 1))
    layer.column_embeddings.assign(np.repeat(np.arange(5.0)[:, None], 2, 1))
    positions = np.array([[0, 4, 5, 9, 14], [13, 7, 1, 10, 3]])
    outputs = keras.ops.convert_to_numpy(layer(positions))
    expected = 100.0 * (positions // 5) + positions % 5
    np.testing.assert_array_equal(
        outputs, np.repeat(expected[..., None], 2, -1)
    )


def test_any_position_shape():
    layer = RowColPositionalEmbedding((2, 3), dim=4)
    positions = np.array([[[0, 1], [2, 3]], [[4, 5], [5, 0]]])
    outputs = keras.ops.convert_to_numpy(layer(positions))
    assert outputs.shape == (2, 2, 2, 4)
    row_table, column_table = _tables(layer)
    np.testing.assert_allclose(
        outputs, row_table[positions // 3] + column_table[positions % 3]
    )
    assert layer.compute_output_shape((None, 7)) == (None, 7, 4)
    assert tuple(layer(keras.Input((7,), dtype="int32")).shape) == (None, 7, 4)


def test_all_positions_distinct():
    layer = RowColPositionalEmbedding((3, 4), dim=16)
    outputs = keras.ops.convert_to_numpy(layer(np.arange(12)))
    distances = np.linalg.norm(outputs[:, None] - outputs[None], axis=-1)
    assert np.all(distances + np.eye(12) > 0)


def test_tables_not_initialised_equal():
    layer = RowColPositionalEmbedding(4, dim=16)
    layer.build()
    row_table, column_table = _tables(layer)
    assert not np.allclose(row_table, column_table)
    # The default is BERT's truncated normal with stddev 0.02.
    assert 0.005 < row_table.std() < 0.03
    assert np.abs(row_table).max() <= 0.04 + 1e-6


def test_tables_not_initialised_equal_with_seeded_initializer():
    # A seeded initializer is how users ask for reproducible weights; it must
    # not make position (r, c) and (c, r) start with the same embedding.
    initializer = keras.initializers.TruncatedNormal(stddev=0.02, seed=7)
    layer = RowColPositionalEmbedding(
        4, dim=16, embeddings_initializer=initializer
    )
    layer.build()
    row_table, column_table = _tables(layer)
    assert not np.allclose(row_table, column_table)


def test_config_holds_the_arguments():
    # The round trips are in `test_layer_checks`; these are the values.
    layer = RowColPositionalEmbedding(
        (3, 5),
        dim=8,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=0.5),
    )
    config = layer.get_config()
    assert tuple(config["grid_size"]) == (3, 5)
    assert config["dim"] == 8
    restored = RowColPositionalEmbedding.from_config(config)
    assert restored.grid_size == (3, 5)
    assert isinstance(
        restored.embeddings_initializer, keras.initializers.RandomNormal
    )
    assert restored.embeddings_initializer.stddev == 0.5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(grid_size=0, dim=4), "grid_size"),
        (dict(grid_size=(2, 3, 4), dim=4), "grid_size"),
        (dict(grid_size=(2, 0), dim=4), "grid_size"),
        (dict(grid_size=(2, 3), dim=0), "dim"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RowColPositionalEmbedding(**kwargs)

