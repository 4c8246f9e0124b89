import keras

from keras_selfie.utils.initializers import bert_initializer
from keras_selfie.utils.initializers import clone_initializer
from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_selfie")
class TransformerBlock(keras.layers.Layer):
    """One BERT Transformer layer (post-layer-norm), as Selfie uses in `A`.

    `x = LayerNorm(x + Dropout(MultiHeadSelfAttention(x)))`, then
    `x = LayerNorm(x + Dropout(Dense(GELU(Dense(x)))))`. The output has the
    same shape as the input.

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
            `(batch_size, sequence_length, sequence_length)`; `True` where a
            query may attend to a key.
        training: boolean, whether dropout is active.

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
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"`num_heads` must divide the feature size of the inputs. "
                f"Received num_heads={self.num_heads} for feature size "
                f"{hidden_dim}."
            )
        common = dict(dtype=self.dtype_policy)
        self._self_attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            name="self_attention",
            **common,
        )
        self._self_attention.build(inputs_shape, inputs_shape)
        # MultiHeadAttention gives its four kernels copies of one
        # initializer; with a seeded one they would start equal.
        for offset, dense in enumerate(
            (
                self._self_attention.query_dense,
                self._self_attention.key_dense,
                self._self_attention.value_dense,
                self._self_attention.output_dense,
            )
        ):
            initializer = clone_initializer(self.kernel_initializer, offset)
            dense.kernel.assign(
                initializer(dense.kernel.shape, dense.kernel.dtype)
            )
        self._attention_dropout = keras.layers.Dropout(
            self.dropout, name="attention_dropout", **common
        )
        self._attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="attention_norm", **common
        )
        self._attention_norm.build(inputs_shape)
        self._intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            kernel_initializer=clone_initializer(self.kernel_initializer, 4),
            name="intermediate_dense",
            **common,
        )
        self._intermediate_dense.build(inputs_shape)
        self._output_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=clone_initializer(self.kernel_initializer, 5),
            name="output_dense",
            **common,
        )
        self._output_dense.build(
            tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
        )
        self._output_dropout = keras.layers.Dropout(
            self.dropout, name="output_dropout", **common
        )
        self._output_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="output_norm", **common
        )
        self._output_norm.build(inputs_shape)
        self.built = True

    def call(self, inputs, attention_mask=None, training=None):
        attended = self._self_attention(
            inputs,
            inputs,
            attention_mask=attention_mask,
            training=training,
        )
        x = self._attention_norm(
            inputs + self._attention_dropout(attended, training=training)
        )
        hidden = self._output_dense(self._intermediate_dense(x))
        return self._output_norm(
            x + self._output_dropout(hidden, training=training)
        )

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

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
