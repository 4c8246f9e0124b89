import keras
from keras import ops

from keras_selfie.utils.initializers import bert_initializer
from keras_selfie.utils.initializers import clone_initializer
from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_positive_int


def valid_num_heads(dim):
    """The head counts that divide the feature size `dim`, in order."""
    return [heads for heads in range(1, dim + 1) if dim % heads == 0]


def check_num_heads(num_heads, dim, name="num_heads"):
    """Returns `num_heads` if it divides the feature size `dim`, else raises.

    Args:
        num_heads: the number of attention heads received.
        dim: the feature size the heads split, `d`.
        name: the argument's name, for the message.

    Returns:
        `num_heads`.
    """
    if dim % num_heads:
        raise ValueError(
            f"Argument `{name}` must divide the feature size of the inputs, "
            f"one of {valid_num_heads(dim)}. "
            f"Received: {name}={num_heads!r} for feature size {dim}"
        )
    return num_heads


@keras.saving.register_keras_serializable(package="keras_selfie")
class TransformerBlock(keras.layers.Layer):
    """One BERT Transformer layer (post-layer-norm), as Selfie uses in `A`.

    `x = LayerNorm(x + Dropout(MultiHeadSelfAttention(x)))`, then
    `x = LayerNorm(x + Dropout(Dense(GELU(Dense(x)))))`. The output has the
    same shape as the input (as the `query`, when one is given).

    Args:
        num_heads: int. Number of attention heads; must divide the feature
            size of the inputs.
        intermediate_dim: int. Width of the hidden feed-forward layer.
        dropout: float in [0, 1). Dropout on attention probabilities and on
            both residual branches. Defaults to `0.1`, as in BERT and Selfie.
        activation: activation of the feed-forward layer. Defaults to
            `"gelu"` (exact, as in BERT).
        layer_norm_epsilon: float. Epsilon of both layer normalisations.
            Defaults to `1e-12`, as in BERT.
        kernel_initializer: initializer of all dense kernels. Defaults to a
            truncated normal with standard deviation 0.02, as in BERT.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: float tensor of shape `(batch_size, sequence_length, dim)`.
        attention_mask: optional boolean tensor of shape
            `(batch_size, query_length, sequence_length)`; `True` where a
            query may attend to a key.
        training: boolean, whether dropout is active.
        query: optional float tensor of shape
            `(batch_size, query_length, dim)`: compute the outputs of these
            tokens only, attending over all of `inputs` (the keys and
            values). With `query=inputs[:, :k]` the result is the first `k`
            outputs of the full layer, at a fraction of its cost when `k` is
            small (the last layer of `AttentionPooling` keeps one token).
            Defaults to `inputs` (`query_length = sequence_length`).

    Reference:
     - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.intermediate_dim = check_positive_int(
            "intermediate_dim", intermediate_dim
        )
        self.dropout = check_fraction("dropout", dropout)
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or bert_initializer()
        )
        self.supports_masking = True

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        check_num_heads(self.num_heads, hidden_dim)
        common = dict(dtype=self.dtype_policy)
        # Multi-head attention from Dense projections, not
        # `keras.layers.MultiHeadAttention`: on the TensorFlow backend its
        # EinsumDense projections become a broadcasting batched matmul whose
        # gradient materialises one (dim x dim) product per example before
        # summing them; the attention step takes twice as long as with
        # Dense (docs/PERFORMANCE.md). Same computation otherwise.
        self._head_dim = hidden_dim // self.num_heads
        self._query_dense, self._key_dense, self._value_dense = (
            self._dense(hidden_dim, name, offset, inputs_shape)
            for offset, name in enumerate(
                ("query_dense", "key_dense", "value_dense")
            )
        )
        self._attention_output_dense = self._dense(
            hidden_dim, "attention_output_dense", 3, inputs_shape
        )
        self._attention_softmax = keras.layers.Softmax(
            axis=-1, name="attention_softmax", **common
        )
        self._attention_probs_dropout = keras.layers.Dropout(
            self.dropout, name="attention_probs_dropout", **common
        )
        self._attention_dropout = keras.layers.Dropout(
            self.dropout, name="attention_dropout", **common
        )
        self._attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="attention_norm", **common
        )
        self._attention_norm.build(inputs_shape)
        self._intermediate_dense = self._dense(
            self.intermediate_dim,
            "intermediate_dense",
            4,
            inputs_shape,
            activation=self.activation,
        )
        self._output_dense = self._dense(
            hidden_dim,
            "output_dense",
            5,
            tuple(inputs_shape[:-1]) + (self.intermediate_dim,),
        )
        self._output_dropout = keras.layers.Dropout(
            self.dropout, name="output_dropout", **common
        )
        self._output_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="output_norm", **common
        )
        self._output_norm.build(inputs_shape)
        self.built = True

    def _dense(self, units, name, seed_offset, inputs_shape, activation=None):
        # Each kernel has its own seed offset: seeded copies of one
        # initializer would otherwise start equal.
        dense = keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=clone_initializer(
                self.kernel_initializer, seed_offset
            ),
            name=name,
            dtype=self.dtype_policy,
        )
        dense.build(inputs_shape)
        return dense

    def call(self, inputs, attention_mask=None, training=None, query=None):
        query = inputs if query is None else query
        attended = self._attention(query, inputs, attention_mask, training)
        x = self._attention_norm(
            query + self._attention_dropout(attended, training=training)
        )
        hidden = self._output_dense(self._intermediate_dense(x))
        return self._output_norm(
            x + self._output_dropout(hidden, training=training)
        )

    def _attention(self, query, inputs, attention_mask, training):
        """Scaled dot-product attention of `query` over `inputs`, by head."""
        batch_size = ops.shape(inputs)[0]

        def heads(x):  # (batch, length, dim) -> (batch, length, heads, k)
            return ops.reshape(
                x, (batch_size, -1, self.num_heads, self._head_dim)
            )

        queries = heads(self._query_dense(query))
        queries = queries * ops.cast(self._head_dim**-0.5, queries.dtype)
        keys = heads(self._key_dense(inputs))
        values = heads(self._value_dense(inputs))
        scores = ops.einsum("bqhk,bshk->bhqs", queries, keys)
        if attention_mask is not None:
            attention_mask = ops.expand_dims(attention_mask, axis=1)
        probabilities = self._attention_probs_dropout(
            self._attention_softmax(scores, mask=attention_mask),
            training=training,
        )
        context = ops.einsum("bhqs,bshk->bqhk", probabilities, values)
        context = ops.reshape(
            context, (batch_size, -1, self.num_heads * self._head_dim)
        )
        return self._attention_output_dense(context)

    def compute_output_shape(
        self, inputs_shape, attention_mask_shape=None, query_shape=None
    ):
        return inputs_shape if query_shape is None else query_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
