import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_selfie.losses import DistractorSoftmaxLoss
from keras_selfie.losses import distractor_labels
from keras_selfie.losses import distractor_logits
from keras_selfie.losses import distractor_softmax_crossentropy


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _reference_per_position(targets, queries):
    """Cross-entropy of query j against patch j, softmax over patches k."""
    targets = targets.astype("float64")
    queries = queries.astype("float64")
    logits = np.einsum("bjd,bkd->bjk", queries, targets)
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.einsum("bjj->bj", log_probs)


def _data(seed, batch_size=2, num_positions=4, dim=3):
    rng = np.random.default_rng(seed)
    targets = rng.normal(size=(batch_size, num_positions, dim))
    queries = rng.normal(size=(batch_size, num_positions, dim))
    return targets.astype("float32"), queries.astype("float32")


def test_hand_computed_single_image():
    # Two positions, d = 2: s = [[<v0,h0>, <v0,h1>], [<v1,h0>, <v1,h1>]]
    #                          = [[1, 0], [2, 3]].
    targets = np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")
    queries = np.array([[[1.0, 0.0], [2.0, 3.0]]], "float32")
    loss_0 = np.log(1.0 + np.exp(-1.0))  # -log softmax([1, 0])[0]
    loss_1 = np.log(1.0 + np.exp(-1.0))  # -log softmax([2, 3])[1]
    per_position = DistractorSoftmaxLoss(reduction="none")(targets, queries)
    np.testing.assert_allclose(_np(per_position), [[loss_0, loss_1]], rtol=1e-6)

    queries = np.array([[[1.0, 0.0], [4.0, 1.0]]], "float32")  # s_1 = [4, 1]
    expected = (np.log(1.0 + np.exp(-1.0)) + np.log(1.0 + np.exp(3.0))) / 2
    value = DistractorSoftmaxLoss()(targets, queries)
    np.testing.assert_allclose(_np(value), expected, rtol=1e-6)


@pytest.mark.parametrize("shape", [(2, 4, 3), (3, 5, 8), (1, 2, 1)])
def test_matches_numpy_mean_cross_entropy(shape):
    targets, queries = _data(0, *shape)
    expected = _reference_per_position(targets, queries).mean()
    value = DistractorSoftmaxLoss()(targets, queries)
    assert tuple(value.shape) == ()
    np.testing.assert_allclose(_np(value), expected, rtol=1e-5)


def test_argument_order_matters():
    # The softmax is over the targets h_k for each query v_j; swapping the
    # roles (softmax over queries) gives another value, so the reference is
    # specific.
    targets, queries = _data(1, 2, 5, 4)
    loss = DistractorSoftmaxLoss()
    expected = _reference_per_position(targets, queries).mean()
    swapped = _reference_per_position(queries, targets).mean()
    assert abs(expected - swapped) > 1e-3
    np.testing.assert_allclose(_np(loss(targets, queries)), expected, rtol=1e-5)
    np.testing.assert_allclose(_np(loss(queries, targets)), swapped, rtol=1e-5)


def test_reduction_none_gives_per_position_values():
    targets, queries = _data(2, 3, 4, 5)
    values = DistractorSoftmaxLoss(reduction="none")(targets, queries)
    assert tuple(values.shape) == (3, 4)
    np.testing.assert_allclose(
        _np(values), _reference_per_position(targets, queries), rtol=1e-5
    )


def test_reduction_sum():
    targets, queries = _data(3, 2, 4, 3)
    value = DistractorSoftmaxLoss(reduction="sum")(targets, queries)
    np.testing.assert_allclose(
        _np(value), _reference_per_position(targets, queries).sum(), rtol=1e-5
    )


@pytest.mark.parametrize("batch_size, num_positions", [(3, 4), (4, 4)])
def test_sample_weight_per_image(batch_size, num_positions):
    # The docstring allows weights of shape (batch_size,): one per image. With
    # batch_size == M they must still weight images, not positions.
    targets, queries = _data(4, batch_size, num_positions, 3)
    weights = np.array([1.0, 0.0, 2.5, 0.5][:batch_size], "float32")
    per_position = _reference_per_position(targets, queries)
    expected = (per_position * weights[:, None]).sum() / per_position.size
    value = DistractorSoftmaxLoss()(targets, queries, sample_weight=weights)
    np.testing.assert_allclose(_np(value), expected, rtol=1e-5)


def test_sample_weight_per_position():
    targets, queries = _data(5, 2, 4, 3)
    weights = np.random.default_rng(5).uniform(size=(2, 4)).astype("float32")
    per_position = _reference_per_position(targets, queries)
    expected = (per_position * weights).sum() / per_position.size
    value = DistractorSoftmaxLoss()(targets, queries, sample_weight=weights)
    np.testing.assert_allclose(_np(value), expected, rtol=1e-5)

    zero = DistractorSoftmaxLoss()(
        targets, queries, sample_weight=np.zeros((2, 4), "float32")
    )
    assert float(_np(zero)) == 0.0


def test_float16_inputs_computed_in_float32():
    targets, queries = _data(6, 2, 4, 3)
    targets16, queries16 = targets.astype("float16"), queries.astype("float16")
    value = DistractorSoftmaxLoss()(targets16, queries16)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    expected = DistractorSoftmaxLoss()(
        targets16.astype("float32"), queries16.astype("float32")
    )
    np.testing.assert_allclose(_np(value), _np(expected), rtol=1e-6)
    np.testing.assert_allclose(
        _np(value), _reference_per_position(targets, queries).mean(), rtol=1e-2
    )


def test_float16_inputs_with_logits_beyond_float16_range():
    # s_jj = 200 * 400 = 80000 overflows float16 (max 65504); computed in
    # float32 the loss is finite and close to 0.
    targets = (200.0 * np.eye(4)[None]).astype("float16")
    queries = (2.0 * targets.astype("float32")).astype("float16")
    value = _np(DistractorSoftmaxLoss()(targets, queries))
    assert np.isfinite(value)
    assert value < 1e-6


def test_mixed_precision_policy_keeps_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        loss = DistractorSoftmaxLoss()
        targets, queries = _data(7, 2, 4, 3)
        value = loss(targets.astype("float16"), queries.astype("float16"))
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_scaled_orthogonal_targets_give_near_zero_loss():
    # h = one-hot rows, v = 10 h: s_jj = 10 and s_jk = 0 otherwise, so each
    # loss is log(1 + (M - 1) e^-10).
    num_positions = 4
    targets = np.stack([np.eye(num_positions), np.eye(num_positions)[::-1]])
    targets = targets.astype("float32")
    value = _np(DistractorSoftmaxLoss()(targets, 10.0 * targets))
    np.testing.assert_allclose(
        value, np.log1p((num_positions - 1) * np.exp(-10.0)), rtol=0, atol=1e-6
    )
    assert value < 1e-3
    # And a query pointing at the wrong patch gives a large loss.
    wrong = _np(DistractorSoftmaxLoss()(targets, 10.0 * targets[:, ::-1]))
    assert wrong > 9.0


@pytest.mark.parametrize(
    "true_shape, pred_shape, match",
    [
        ((2, 4, 3), (2, 5, 3), "same shape"),
        ((2, 4, 3), (2, 4, 6), "same shape"),
        ((2, 4, 3), (3, 4, 3), "same shape"),
        ((2, 4), (2, 4), "y_true.*batch_size, M, d"),
        ((2, 4, 3), (2, 4, 3, 1), "y_pred.*batch_size, M, d"),
        ((2, 4, 3, 1), (2, 4, 3), "y_true.*batch_size, M, d"),
    ],
)
def test_bad_shapes_raise(true_shape, pred_shape, match):
    with pytest.raises(ValueError, match=match):
        DistractorSoftmaxLoss()(
            np.ones(true_shape, "float32"), np.ones(pred_shape, "float32")
        )


def test_config_round_trip():
    loss = DistractorSoftmaxLoss(reduction="sum", name="selfie_loss")
    config = loss.get_config()
    assert config["reduction"] == "sum"
    assert config["name"] == "selfie_loss"
    restored = DistractorSoftmaxLoss.from_config(config)
    assert restored.get_config() == config

    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(restored, DistractorSoftmaxLoss)
    assert restored.get_config() == config


def test_gradient_flows_to_both_arguments():
    targets, queries = _data(8, 2, 4, 3)
    targets_var = tf.Variable(targets)
    queries_var = tf.Variable(queries)
    with tf.GradientTape() as tape:
        value = DistractorSoftmaxLoss()(targets_var, queries_var)
    grad_targets, grad_queries = tape.gradient(
        value, [targets_var, queries_var]
    )
    assert grad_targets is not None and grad_queries is not None

    # dL/ds = (softmax(s) - onehot) / (B * M);
    # dL/dv_j = sum_k dL/ds_jk h_k and dL/dh_k = sum_j dL/ds_jk v_j.
    logits = np.einsum("bjd,bkd->bjk", queries, targets).astype("float64")
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    d_logits = (probs - np.eye(4)) / (2 * 4)
    expected_queries = np.einsum("bjk,bkd->bjd", d_logits, targets)
    expected_targets = np.einsum("bjk,bjd->bkd", d_logits, queries)
    assert np.abs(grad_targets.numpy()).max() > 1e-3
    assert np.abs(grad_queries.numpy()).max() > 1e-3
    np.testing.assert_allclose(
        grad_queries.numpy(), expected_queries, atol=1e-6
    )
    np.testing.assert_allclose(
        grad_targets.numpy(), expected_targets, atol=1e-6
    )


def test_distractor_logits_are_dot_products():
    targets, queries = _data(9, 2, 3, 4)
    logits = _np(distractor_logits(queries, targets))
    assert logits.shape == (2, 3, 3)
    for b in range(2):
        for j in range(3):
            for k in range(3):
                np.testing.assert_allclose(
                    logits[b, j, k], queries[b, j] @ targets[b, k], rtol=1e-5
                )
    np.testing.assert_allclose(
        logits, np.einsum("bjd,bkd->bjk", queries, targets), rtol=1e-5
    )


def test_distractor_softmax_crossentropy_function():
    targets, queries = _data(10, 2, 5, 3)
    values = _np(distractor_softmax_crossentropy(targets, queries))
    assert values.shape == (2, 5)
    np.testing.assert_allclose(
        values, _reference_per_position(targets, queries), rtol=1e-5
    )


def _reference_batch(targets, queries, temperature):
    """Cosine / temperature against all B * M patches; answer b * M + j."""
    b, m, d = targets.shape
    candidates = targets.reshape(b * m, d).astype("float64")
    candidates /= np.linalg.norm(candidates, axis=-1, keepdims=True)
    unit = queries.astype("float64")
    unit /= np.linalg.norm(unit, axis=-1, keepdims=True)
    logits = np.zeros((b, m, b * m))
    for i in range(b):
        for j in range(m):
            for c in range(b * m):
                logits[i, j, c] = unit[i, j] @ candidates[c] / temperature
    labels = np.arange(b)[:, None] * m + np.arange(m)[None]
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    losses = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    return logits, labels, losses


def test_batch_distractors_score_all_batch_candidates():
    targets, queries = _data(11, batch_size=3, num_positions=4, dim=5)
    logits, labels, losses = _reference_batch(targets, queries, 0.1)
    actual = _np(distractor_logits(queries, targets, "batch", "cosine", 0.1))
    assert actual.shape == (3, 4, 12)
    np.testing.assert_allclose(actual, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        _np(distractor_labels(targets, "batch")), labels
    )
    loss = DistractorSoftmaxLoss(
        distractors="batch", similarity="cosine", temperature=0.1,
        reduction="none",
    )
    np.testing.assert_allclose(
        _np(loss(targets, queries)), losses, rtol=1e-5, atol=1e-6
    )
    # Another image's patch as the best match costs loss: moving query
    # (0, 0) onto patch 1 of image 2 raises its loss above log(12).
    moved = queries.copy()
    moved[0, 0] = targets[2, 1]
    assert _np(loss(targets, moved))[0, 0] > np.log(12)


def test_image_distractors_with_cosine_and_temperature():
    targets, queries = _data(12)
    unit_q = queries / np.linalg.norm(queries, axis=-1, keepdims=True)
    unit_t = targets / np.linalg.norm(targets, axis=-1, keepdims=True)
    expected = np.einsum("bjd,bkd->bjk", unit_q, unit_t) / 0.5
    np.testing.assert_allclose(
        _np(distractor_logits(queries, targets, "image", "cosine", 0.5)),
        expected, rtol=1e-5, atol=1e-6,
    )
    np.testing.assert_allclose(
        _np(distractor_logits(queries, targets, "image", "dot", 2.0)),
        np.einsum("bjd,bkd->bjk", queries, targets) / 2.0, rtol=1e-5,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"distractors": "all"}, r"distractors.*\['image', 'batch'\].*'all'"),
        ({"similarity": "l2"}, r"similarity.*\['dot', 'cosine'\].*'l2'"),
        ({"temperature": 0.0}, "temperature.*> 0.*temperature=0.0"),
        ({"temperature": -1}, "temperature.*temperature=-1"),
        ({"temperature": None}, "temperature.*temperature=None"),
    ],
)
def test_bad_loss_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistractorSoftmaxLoss(**kwargs)


def test_config_round_trip_keeps_the_formulation():
    loss = DistractorSoftmaxLoss(distractors="batch", similarity="cosine",
                                 temperature=0.2)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (restored.distractors, restored.similarity, restored.temperature) \
        == ("batch", "cosine", 0.2)
