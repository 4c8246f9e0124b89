import keras
from keras import ops

from keras_selfie.layers.transformer_block import TransformerBlock
from keras_selfie.utils.initializers import bert_initializer
from keras_selfie.utils.initializers import clone_initializer
from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_selfie")
class AttentionPooling(keras.layers.Layer):
    """Pools a set of feature vectors into one with Transformer layers.

    Selfie's attention pooling network `A`: a learned vector `u0` is put in
    front of the inputs `h_1 ... h_n`, the sequence goes through
    `num_layers` BERT Transformer layers, and only the first output, `u`, is
    kept:

    `u, h'_1, ..., h'_n = TransformerLayers(u0, h_1, ..., h_n)`.

    Without position information the result does not depend on the order of
    the inputs.

    With `queries` (`q_1 ... q_Q`, e.g. position embeddings of the patches
    to predict), `Q` pooling tokens `u0 + q_1, ..., u0 + q_Q` are put in
    front instead of `u0` alone, all go through the layers together (each
    token attends to every input and to the other tokens), and their `Q`
    outputs are returned: one pooled vector per query, as the decoders of
    MAE and BERT compute a prediction per masked position. The inputs'
    outputs are not computed in the last layer.

    Args:
        num_layers: int. Number of Transformer layers.
        num_heads: int. Attention heads per layer; must divide the feature
            size `d` of the inputs.
        intermediate_dim: int. Width of each feed-forward layer.
        dropout: float in [0, 1). Dropout inside the Transformer layers.
            Defaults to `0.1`, the value the paper gives.
        layer_norm_epsilon: float. Defaults to `1e-12`, as in BERT.
        kernel_initializer: initializer of the dense kernels and of `u0`.
            Defaults to a truncated normal with standard deviation 0.02, as
            in BERT.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: float tensor of shape `(batch_size, n, d)`.
        mask: optional boolean tensor of shape `(batch_size, n)`; `False`
            marks inputs to ignore. `u0` is always attended to.
        training: boolean, whether dropout is active.
        queries: optional float tensor of shape `(batch_size, Q, d)`, added
            to `u0` to make `Q` pooling tokens.

    Returns:
        The pooled vectors `u`, of shape `(batch_size, d)`; with `queries`,
        shape `(batch_size, Q, d)`.

    Example:

    ```python
    features = np.random.normal(size=(2, 12, 64)).astype("float32")
    pooling = keras_selfie.layers.AttentionPooling(
        num_layers=2, num_heads=4, intermediate_dim=128
    )
    u = pooling(features)  # shape (2, 64)
    ```

    Reference:
     - [Trinh et al., 2019](https://arxiv.org/abs/1906.02940), Section 2.1.
    """

    def __init__(
        self,
        num_layers,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        layer_norm_epsilon=1e-12,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.intermediate_dim = check_positive_int(
            "intermediate_dim", intermediate_dim
        )
        self.dropout = check_fraction("dropout", dropout)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or bert_initializer()
        )
        self.supports_masking = True

    def build(self, inputs_shape):
        if len(inputs_shape) != 3 or inputs_shape[-1] is None:
            raise ValueError(
                "AttentionPooling expects inputs of shape (batch_size, n, d) "
                f"with a known d. Received shape={tuple(inputs_shape)}"
            )
        dim = inputs_shape[-1]
        self.pooling_token = self.add_weight(
            name="pooling_token",
            shape=(dim,),
            initializer=clone_initializer(self.kernel_initializer),
        )
        sequence_shape = (inputs_shape[0], None, dim)
        self.transformer_layers = []
        for i in range(self.num_layers):
            block = TransformerBlock(
                num_heads=self.num_heads,
                intermediate_dim=self.intermediate_dim,
                dropout=self.dropout,
                layer_norm_epsilon=self.layer_norm_epsilon,
                # Each block takes six kernels' worth of seed offsets.
                kernel_initializer=clone_initializer(
                    self.kernel_initializer, offset=1 + 6 * i
                ),
                dtype=self.dtype_policy,
                name=f"transformer_layer_{i}",
            )
            block.build(sequence_shape)
            self.transformer_layers.append(block)
        self.built = True

    def call(self, inputs, mask=None, training=None, queries=None):
        batch_size = ops.shape(inputs)[0]
        dim = inputs.shape[-1]
        token = ops.reshape(
            ops.cast(self.pooling_token, inputs.dtype), (1, 1, dim)
        )
        if queries is None:
            tokens = ops.broadcast_to(token, (batch_size, 1, dim))
        else:
            tokens = token + ops.cast(queries, inputs.dtype)
        num_tokens = tokens.shape[1]
        x = ops.concatenate([tokens, inputs], axis=1)
        attention_mask = None
        if mask is not None:
            keys = ops.concatenate(
                [
                    ops.ones((batch_size, num_tokens), dtype="bool"),
                    ops.cast(mask, "bool"),
                ],
                axis=1,
            )
            length = ops.shape(keys)[1]
            attention_mask = ops.broadcast_to(
                keys[:, None, :], (batch_size, length, length)
            )
        *layers, last = self.transformer_layers
        for block in layers:
            x = block(x, attention_mask=attention_mask, training=training)
        # Only the pooling tokens are kept: the last layer computes them
        # alone (their attention still reads every token). Same result as
        # the full layer, at a fraction of its cost.
        if attention_mask is not None:
            attention_mask = attention_mask[:, :num_tokens, :]
        pooled = last(
            x,
            attention_mask=attention_mask,
            training=training,
            query=x[:, :num_tokens],
        )
        return pooled[:, 0, :] if queries is None else pooled

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, inputs_shape, queries_shape=None):
        if queries_shape is not None:
            return tuple(queries_shape)
        return (inputs_shape[0], inputs_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
