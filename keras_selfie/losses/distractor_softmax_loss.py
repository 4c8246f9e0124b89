import keras
from keras import ops


def distractor_logits(queries, targets):
    """Scores every query against every candidate patch of the same image.

    Args:
        queries: tensor `v` of shape `(batch_size, M, d)`; `v_j = u + PE(j)`.
        targets: tensor `h` of shape `(batch_size, M, d)`; the patch network's
            features of the `M` decoder patches, in the same order as the
            queries.

    Returns:
        Logits `s` of shape `(batch_size, M, M)` with `s[b, j, k] =
        <v_j, h_k>`. Row `j`'s right answer is column `j`.
    """
    return ops.einsum("bjd,bkd->bjk", queries, targets)


def distractor_softmax_crossentropy(targets, queries):
    """Selfie's loss for each decoder position (PAPER.md step 6).

    Args:
        targets: decoder patch features `h`, shape `(batch_size, M, d)`.
        queries: queries `v`, shape `(batch_size, M, d)`.

    Returns:
        Cross-entropy of shape `(batch_size, M)`: for query `j`, a softmax over
        the `M` decoder patches of its own image, whose right answer is
        patch `j` and whose other `M - 1` patches are the distractors.
    """
    logits = distractor_logits(queries, targets)
    num_candidates = ops.shape(logits)[-1]
    labels = ops.broadcast_to(
        ops.arange(num_candidates, dtype="int32"), ops.shape(logits)[:-1]
    )
    return keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True
    )


@keras.saving.register_keras_serializable(package="keras_selfie")
class DistractorSoftmaxLoss(keras.losses.Loss):
    """Selfie's patch-classification loss with in-image distractors.

    For every decoder position `j` of an image, the logits are the dot
    products `s_jk = <v_j, h_k>` of the query `v_j` with the features `h_k`
    of all `M` decoder patches of that image; the loss is the softmax
    cross-entropy whose right answer is `k = j`. With the default reduction
    the result is the mean over all positions and images; as a
    `keras.losses.Loss`, Keras divides it by the number of replicas under a
    `tf.distribute` strategy so that summed gradients equal the global mean.

    The logits are computed in the loss's dtype (float32 by default), also
    under a mixed-precision policy.

    Args:
        reduction: type of reduction; see `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss instance.
        dtype: dtype of the loss computation. Defaults to float32.

    Call arguments:
        y_true: decoder patch features `h`, of shape `(batch_size, M, d)`.
        y_pred: queries `v`, of shape `(batch_size, M, d)`, in the same
            position order as `y_true`.
        sample_weight: optional weights of shape `(batch_size,)` or
            `(batch_size, M)`.

    Example:

    ```python
    loss = keras_selfie.losses.DistractorSoftmaxLoss()
    h = np.random.normal(size=(2, 4, 16)).astype("float32")
    value = loss(h, 10.0 * h)  # close to 0: each query matches its own patch
    ```

    Reference:
     - [Trinh et al., 2019](https://arxiv.org/abs/1906.02940), Section 2.
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="distractor_softmax_loss",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)

    def __call__(self, y_true, y_pred, sample_weight=None):
        for arg, value in (("y_true", y_true), ("y_pred", y_pred)):
            if len(value.shape) != 3:
                raise ValueError(
                    f"DistractorSoftmaxLoss expects `{arg}` of shape "
                    f"(batch_size, M, d). Received shape={tuple(value.shape)}"
                )
        if any(
            a is not None and b is not None and a != b
            for a, b in zip(y_true.shape, y_pred.shape)
        ):
            raise ValueError(
                "DistractorSoftmaxLoss expects `y_true` (decoder features) "
                "and `y_pred` (queries) of the same shape. Received "
                f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}"
            )
        if sample_weight is not None:
            sample_weight = ops.convert_to_tensor(sample_weight)
            if len(sample_weight.shape) == 1:
                # One weight per image; Keras would align it with the last
                # axis (the M positions) instead.
                sample_weight = sample_weight[:, None]
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return distractor_softmax_crossentropy(y_true, y_pred)
