"""SimCLR's NT-Xent loss (normalised temperature-scaled cross-entropy)."""

import keras
from keras import ops

from keras_selfie.losses.distractor_softmax_loss import check_temperature
from keras_selfie.losses.paired_inputs import check_paired_inputs
from keras_selfie.utils.distribution import gather_across_replicas
from keras_selfie.utils.distribution import replica_row_offset

# What an embedding's similarity with itself loses, so that it is never the
# answer (the authors' code subtracts the same number).
SELF_SIMILARITY_PENALTY = 1e9


def nt_xent_logits(embeddings_a, embeddings_b, temperature=0.5):
    """Scores every view against every other view of the global batch.

    The `2N` views of a global batch of `N` images are the rows of
    `concatenate([A, B])`: view `i < N` is the first view of image `i`,
    view `N + i` its second. Each view's candidates are the other `2N - 1`
    views, scored by cosine similarity divided by `temperature`; its
    positive is the other view of its image (view `i` <-> view `N + i`),
    the `2N - 2` views of the other images are its negatives. Under
    `tf.distribute` the embeddings of all replicas are gathered, so a
    replica scores its own views against the same `2N` candidates, in the
    same order, as one device with the global batch does.

    Args:
        embeddings_a: `(B, p)` embeddings of the first views of this
            replica's `B` images (all `N` on one device).
        embeddings_b: `(B, p)` embeddings of their second views, in the
            same image order.
        temperature: float > 0, the divisor of the cosine similarities.

    Returns:
        `(logits, labels)`: logits `(2B, 2N)`, row `k` scoring this
        replica's view `k` (rows `0 ... B-1` its first views, `B ... 2B-1`
        its second views) against the `2N` views of the global batch, its
        own column lowered by `SELF_SIMILARITY_PENALTY`; labels `(2B,)`
        int32, the column of each row's positive.
    """
    temperature = check_temperature(temperature)
    embeddings_a = ops.normalize(embeddings_a, axis=-1)
    embeddings_b = ops.normalize(embeddings_b, axis=-1)
    candidates = ops.concatenate(
        [gather_across_replicas(embeddings_a),
         gather_across_replicas(embeddings_b)],
        axis=0,
    )
    anchors = ops.concatenate([embeddings_a, embeddings_b], axis=0)
    logits = ops.matmul(anchors, ops.transpose(candidates)) / ops.cast(
        temperature, anchors.dtype
    )
    batch_size = ops.shape(embeddings_a)[0]
    global_size = ops.shape(candidates)[0] // 2
    rows = ops.arange(batch_size, dtype="int32") + ops.cast(
        replica_row_offset(batch_size), "int32"
    )
    own = ops.concatenate([rows, rows + global_size], axis=0)
    labels = ops.concatenate([rows + global_size, rows], axis=0)
    is_self = ops.equal(
        ops.arange(2 * global_size, dtype="int32")[None, :], own[:, None]
    )
    logits = logits - ops.cast(is_self, logits.dtype) * (
        SELF_SIMILARITY_PENALTY
    )
    return logits, labels


def nt_xent(embeddings_a, embeddings_b, temperature=0.5):
    """SimCLR's loss of every view (Chen et al., 2020, Eq. 1).

    `l(i, j) = -log(exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k)
    / t))` with `sim` the cosine similarity, `j` the other view of view
    `i`'s image and `k` running over the other `2N - 1` views of the global
    batch (`nt_xent_logits`). The paper's loss is the mean of these `2N`
    values.

    Args:
        embeddings_a: `(B, p)` embeddings of the images' first views.
        embeddings_b: `(B, p)` embeddings of their second views.
        temperature: float > 0; see `NTXentLoss`.

    Returns:
        `(B, 2)`: row `i` holds the loss of image `i`'s first view
        (column 0) and of its second view (column 1).
    """
    logits, labels = nt_xent_logits(embeddings_a, embeddings_b, temperature)
    losses = keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True
    )
    return ops.transpose(ops.reshape(losses, (2, -1)))


@keras.saving.register_keras_serializable(package="keras_selfie")
class NTXentLoss(keras.losses.Loss):
    """SimCLR's contrastive loss, NT-Xent (Chen et al., 2020).

    Two views of each image are embedded; each view must pick out the
    other view of its image among the other `2N - 1` views of the global
    batch by cosine similarity divided by `temperature` (a softmax
    cross-entropy; `nt_xent`). With the default reduction the result is
    the mean over the `2N` views. Under a `tf.distribute` strategy the
    embeddings of all replicas are gathered, as the paper does, so every
    view has the negatives of the global batch and the loss equals one
    device's with the global batch (as a `keras.losses.Loss`, Keras divides
    it by the number of replicas so that summed gradients equal the global
    mean).

    Args:
        temperature: float > 0, the divisor of the cosine similarities.
            Defaults to 0.5, the paper's best on CIFAR-10 (Appendix B.9,
            batches of 256 to 4096); its ImageNet setting uses 0.1 (Table
            5, batch 4096). Lower values weigh hard negatives more and
            suit large batches.
        reduction: type of reduction; see `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss instance.
        dtype: dtype of the loss computation. Defaults to float32.

    Call arguments:
        y_true: `(B, p)` embeddings of the first views (the projection
            head's outputs `z`, not normalised).
        y_pred: `(B, p)` embeddings of the second views, same image order.
        sample_weight: optional `(B,)` weights of the images.

    Example:

    ```python
    loss = keras_selfie.losses.NTXentLoss(temperature=0.5)
    z = np.random.normal(size=(8, 128)).astype("float32")
    loss(z, z)  # low: each view's positive is identical to it
    ```

    Reference:
     - [Chen et al., 2020](https://arxiv.org/abs/2002.05709), Eq. 1 and
       Algorithm 1.
    """

    def __init__(
        self,
        temperature=0.5,
        reduction="sum_over_batch_size",
        name="nt_xent_loss",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.temperature = check_temperature(temperature)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # One weight per image, for both of its views.
        sample_weight = check_paired_inputs(
            "NTXentLoss", y_true, y_pred, sample_weight,
            "(batch_size, embedding_dim)", ("first views", "second views"),
        )
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return nt_xent(y_true, y_pred, self.temperature)

    def get_config(self):
        config = super().get_config()
        config["temperature"] = self.temperature
        return config
