import keras
from keras import ops

from keras_selfie.utils.initializers import bert_initializer
from keras_selfie.utils.initializers import clone_initializer
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import to_pair


@keras.saving.register_keras_serializable(package="keras_selfie")
class RowColPositionalEmbedding(keras.layers.Layer):
    """Learned position embedding of a patch grid, factored by row and column.

    The embedding of grid position `i` (row-major, `r = i // cols`,
    `c = i % cols`) is `row_embeddings[r] + column_embeddings[c]`, so a
    `rows x cols` grid learns `(rows + cols) * dim` numbers instead of
    `rows * cols * dim` (14 vectors instead of 49 for a 7x7 grid).

    Args:
        grid_size: int or pair of ints. `(rows, cols)` of the patch grid; an
            int means a square grid.
        dim: int. Size of each embedding vector; must equal the patch feature
            size `d` it is added to.
        embeddings_initializer: initializer of both tables. Defaults to a
            truncated normal with standard deviation 0.02, as in BERT.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        positions: int tensor of any shape with values in
            `[0, rows * cols)`.

    Returns:
        A float tensor of shape `positions.shape + (dim,)`.

    Example:

    ```python
    embedding = keras_selfie.layers.RowColPositionalEmbedding((4, 4), dim=64)
    vectors = embedding(np.array([[0, 5, 15]]))  # shape (1, 3, 64)
    ```

    Reference:
     - [Trinh et al., 2019](https://arxiv.org/abs/1906.02940), Section 2.2.
    """

    def __init__(
        self,
        grid_size,
        dim,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.grid_size = to_pair("grid_size", grid_size)
        self.dim = check_positive_int("dim", dim)
        if embeddings_initializer is None:
            embeddings_initializer = bert_initializer()
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )

    def build(self, input_shape=None):
        rows, cols = self.grid_size
        self.row_embeddings = self.add_weight(
            name="row_embeddings",
            shape=(rows, self.dim),
            initializer=clone_initializer(self.embeddings_initializer, offset=1),
        )
        self.column_embeddings = self.add_weight(
            name="column_embeddings",
            shape=(cols, self.dim),
            initializer=clone_initializer(self.embeddings_initializer),
        )
        self.built = True

    def call(self, positions):
        positions = ops.cast(positions, "int32")
        cols = self.grid_size[1]
        rows_embedded = ops.take(self.row_embeddings, positions // cols, axis=0)
        cols_embedded = ops.take(
            self.column_embeddings, positions % cols, axis=0
        )
        return ops.cast(rows_embedded + cols_embedded, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.dim,)

    def compute_output_spec(self, positions):
        return keras.KerasTensor(
            self.compute_output_shape(positions.shape),
            dtype=self.compute_dtype,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "grid_size": self.grid_size,
                "dim": self.dim,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
