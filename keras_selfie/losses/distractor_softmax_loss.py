import keras
from keras import ops

from keras_selfie.losses.paired_inputs import check_paired_inputs
from keras_selfie.utils.distribution import gather_across_replicas
from keras_selfie.utils.distribution import replica_row_offset
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_positive_number

DISTRACTORS = ("image", "batch")
SIMILARITIES = ("dot", "cosine")


def check_temperature(temperature):
    """Returns `temperature` as a float if it is a number > 0, else raises.

    The scores are divided by it.
    """
    return float(check_positive_number("temperature", temperature))


def _candidates(targets, distractors):
    """The candidate patches each query is scored against.

    `"image"`: the `M` decoder patches of the query's image, shape
    `(batch_size, M, d)`. `"batch"`: the decoder patches of every image of
    the global batch (gathered from all replicas under `tf.distribute`),
    shape `(B_global * M, d)`.
    """
    if distractors == "image":
        return targets
    return ops.reshape(
        gather_across_replicas(targets), (-1, targets.shape[-1])
    )


def distractor_logits(
    queries, targets, distractors="image", similarity="dot", temperature=1.0
):
    """Scores every query against its candidate patches.

    Args:
        queries: tensor `v` of shape `(batch_size, M, d)`, the query of each
            decoder position.
        targets: tensor `h` of shape `(batch_size, M, d)`; the patch network's
            features of the `M` decoder patches, in the same order as the
            queries.
        distractors: `"image"` (the paper: the candidates of query `j` are
            the `M` decoder patches of its own image) or `"batch"` (the
            decoder patches of every image in the batch, `B * M`
            candidates, InfoNCE-style; under `tf.distribute` the candidates
            of all replicas are gathered, so the scores equal those of one
            device with the global batch).
        similarity: `"dot"` (the paper: `<v_j, h_k>`) or `"cosine"`
            (`<v_j, h_k> / (|v_j| |h_k|)`).
        temperature: float > 0; the similarities are divided by it. The
            paper's scores are raw dot products: `"dot"` with 1.0.

    Returns:
        Logits `s`. With `"image"`, shape `(batch_size, M, M)`,
        `s[b, j, k]` scoring patch `k` of image `b`; row `j`'s right answer
        is column `j`. With `"batch"`, shape `(batch_size, M, B_global * M)`,
        column `c * M + k` scoring patch `k` of image `c` of the global
        batch; the right answer is `distractor_labels`.
    """
    check_choice("distractors", distractors, DISTRACTORS)
    check_choice("similarity", similarity, SIMILARITIES)
    temperature = check_temperature(temperature)
    candidates = _candidates(targets, distractors)
    if similarity == "cosine":
        queries = _l2_normalize(queries)
        candidates = _l2_normalize(candidates)
    if distractors == "image":
        logits = ops.einsum("bjd,bkd->bjk", queries, candidates)
    else:
        logits = ops.einsum("bjd,cd->bjc", queries, candidates)
    if temperature != 1.0:
        logits = logits / ops.cast(temperature, logits.dtype)
    return logits


def _l2_normalize(x):
    # The epsilon keeps the gradient finite for an all-zero vector.
    squared = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared, ops.cast(1e-12, x.dtype)))


def distractor_labels(targets, distractors="image"):
    """The right answer of every query: an int32 tensor `(batch_size, M)`.

    Column `j` for `"image"`; column `(offset + b) * M + j` for `"batch"`,
    `offset` being this replica's first image in the global batch.
    """
    check_choice("distractors", distractors, DISTRACTORS)
    batch_size, num_positions = ops.shape(targets)[0], targets.shape[1]
    labels = ops.broadcast_to(
        ops.arange(num_positions, dtype="int32")[None, :],
        (batch_size, num_positions),
    )
    if distractors == "batch":
        images = ops.arange(batch_size, dtype="int32") + ops.cast(
            replica_row_offset(batch_size), "int32"
        )
        labels = labels + images[:, None] * num_positions
    return labels


def distractor_softmax_crossentropy(
    targets, queries, distractors="image", similarity="dot", temperature=1.0
):
    """Selfie's loss for each decoder position (PAPER.md step 6).

    Args:
        targets: decoder patch features `h`, shape `(batch_size, M, d)`.
        queries: queries `v`, shape `(batch_size, M, d)`.
        distractors: `"image"` or `"batch"`; see `distractor_logits`.
        similarity: `"dot"` or `"cosine"`; see `distractor_logits`.
        temperature: float > 0; see `distractor_logits`.

    Returns:
        Cross-entropy of shape `(batch_size, M)`: for query `j`, a softmax
        over its candidates (by default the `M` decoder patches of its own
        image, whose right answer is patch `j` and whose other `M - 1`
        patches are the distractors).
    """
    logits = distractor_logits(
        queries, targets, distractors, similarity, temperature
    )
    return keras.losses.sparse_categorical_crossentropy(
        distractor_labels(targets, distractors), logits, from_logits=True
    )


@keras.saving.register_keras_serializable(package="keras_selfie")
class DistractorSoftmaxLoss(keras.losses.Loss):
    """Selfie's patch-classification loss with distractors.

    For every decoder position `j` of an image, the logits score the query
    `v_j` against candidate patch features `h_k`; the loss is the softmax
    cross-entropy whose right answer is the patch that really sits at `j`.
    By default (the paper) the logits are the dot products
    `s_jk = <v_j, h_k>` with the `M` decoder patches of the same image.
    With `distractors="batch"` the candidates are the decoder patches of
    every image of the batch; `similarity="cosine"` scores by cosine
    similarity, and every score is divided by `temperature`.

    With the default reduction the result is the mean over all positions
    and images; as a `keras.losses.Loss`, Keras divides it by the number of
    replicas under a `tf.distribute` strategy so that summed gradients
    equal the global mean. The logits are computed in the loss's dtype
    (float32 by default), also under a mixed-precision policy.

    Args:
        distractors: `"image"` (default, the paper) or `"batch"`. With
            `"batch"` under `tf.distribute`, the candidates are gathered
            from all replicas (one all-gather of `B * M` feature vectors per
            step), so training equals one device with the global batch.
        similarity: `"dot"` (default, the paper) or `"cosine"`. Raw dot
            products of unnormalised features start at a loss far above
            `log(M)` (7-10 at 32x32, 83 at 224x224 with `d = 1024`); cosine
            bounds the logits to `[-1/temperature, 1/temperature]`.
        temperature: float > 0, the divisor of every score. Defaults to
            1.0 (the paper's raw scores).
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
     - [van den Oord et al., 2018](https://arxiv.org/abs/1807.03748)
       (InfoNCE, for `distractors="batch"`).
    """

    def __init__(
        self,
        distractors="image",
        similarity="dot",
        temperature=1.0,
        reduction="sum_over_batch_size",
        name="distractor_softmax_loss",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.distractors = check_choice("distractors", distractors, DISTRACTORS)
        self.similarity = check_choice("similarity", similarity, SIMILARITIES)
        self.temperature = check_temperature(temperature)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # One weight per image gets a trailing axis; Keras would align it
        # with the last axis (the M positions) instead.
        sample_weight = check_paired_inputs(
            "DistractorSoftmaxLoss", y_true, y_pred, sample_weight,
            "(batch_size, M, d)", ("decoder features", "queries"),
        )
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return distractor_softmax_crossentropy(
            y_true, y_pred, self.distractors, self.similarity, self.temperature
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "distractors": self.distractors,
                "similarity": self.similarity,
                "temperature": self.temperature,
            }
        )
        return config
