"""NTXentLoss and nt_xent: SimCLR's loss against a NumPy reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import two_cpu_strategy
from keras_selfie.losses import NTXentLoss
from keras_selfie.losses import nt_xent
from keras_selfie.losses import nt_xent_logits


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _reference(a, b, temperature):
    """The paper's Algorithm 1 in NumPy, float64: the 2N x 2N cosine
    similarity matrix of concatenate([a, b]), every row a softmax over the
    other 2N - 1 columns, the positive of row i at column (i + N) mod 2N.
    Returns the matrix and the 2N losses."""
    z = np.concatenate([a, b]).astype("float64")
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(a)
    similarity = z @ z.T / temperature
    losses = []
    for i in range(2 * n):
        others = [k for k in range(2 * n) if k != i]
        positive = (i + n) % (2 * n)
        log_sum = np.log(np.sum(np.exp(similarity[i, others])))
        losses.append(log_sum - similarity[i, positive])
    return similarity, np.array(losses)


def _data(seed, batch_size=4, dim=8):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(batch_size, dim)).astype("float32"),
            rng.normal(size=(batch_size, dim)).astype("float32"))


@pytest.mark.parametrize("batch_size, temperature", [(4, 0.5), (3, 0.1),
                                                     (1, 1.0)])
def test_matches_numpy_reference(batch_size, temperature):
    a, b = _data(batch_size, batch_size)
    _, expected = _reference(a, b, temperature)
    per_view = _np(nt_xent(a, b, temperature))
    assert per_view.shape == (batch_size, 2)
    # Column 0: the first views (reference rows 0 ... N-1); column 1: the
    # second views (rows N ... 2N-1).
    np.testing.assert_allclose(per_view[:, 0], expected[:batch_size],
                               rtol=1e-5)
    np.testing.assert_allclose(per_view[:, 1], expected[batch_size:],
                               rtol=1e-5)
    value = NTXentLoss(temperature=temperature)(a, b)
    assert tuple(value.shape) == ()
    np.testing.assert_allclose(_np(value), expected.mean(), rtol=1e-5)


def test_positives_positions_in_the_2n_by_2n_matrix():
    a, b = _data(1, 3, 5)
    similarity, _ = _reference(a, b, 0.5)
    logits, labels = nt_xent_logits(a, b, 0.5)
    logits, labels = _np(logits), _np(labels)
    assert logits.shape == (6, 6)
    # View i <-> view N + i.
    np.testing.assert_array_equal(labels, [3, 4, 5, 0, 1, 2])
    off_diagonal = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(logits[off_diagonal], similarity[off_diagonal],
                               rtol=1e-5, atol=1e-6)
    # A view is never its own candidate.
    assert np.all(np.diag(logits) < -1e8)
    # With b = a, each positive is a perfect match (cosine 1 / t = 2) and
    # the best score of its row.
    logits, labels = nt_xent_logits(a, a, 0.5)
    logits = _np(logits)
    np.testing.assert_allclose(logits[np.arange(6), _np(labels)], 2.0,
                               rtol=1e-6)
    np.testing.assert_array_equal(np.argmax(logits, axis=1), _np(labels))


def test_hand_computed_values():
    # One image: each view's only candidate is its positive, loss 0.
    np.testing.assert_allclose(
        _np(nt_xent(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), 0.5)),
        [[0.0, 0.0]], atol=1e-6,
    )
    # Two images, t = 1: a = (e1, e2), b = (e1, -e1). View a0's candidates
    # a1, b0, b1 have cosines 0, 1, -1; positive b0:
    # log(e^0 + e^1 + e^-1) - 1.
    a = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    b = np.array([[1.0, 0.0], [-1.0, 0.0]], "float32")
    losses = _np(nt_xent(a, b, 1.0))
    np.testing.assert_allclose(
        losses[0, 0], np.log(1 + np.e + np.exp(-1)) - 1, rtol=1e-6
    )
    # View b1 = -e1: candidates a0, a1, b0 with cosines -1, 0, -1;
    # positive a1: log(e^-1 + e^0 + e^-1) - 0.
    np.testing.assert_allclose(
        losses[1, 1], np.log(1 + 2 * np.exp(-1)), rtol=1e-6
    )


def test_cosine_similarity_ignores_the_embeddings_length():
    a, b = _data(2)
    np.testing.assert_allclose(
        _np(NTXentLoss()(3.0 * a, 0.1 * b)), _np(NTXentLoss()(a, b)),
        rtol=1e-5,
    )


def test_sample_weight_per_image_weighs_both_views():
    a, b = _data(3)
    _, expected = _reference(a, b, 0.5)
    weights = np.array([1.0, 0.0, 2.0, 1.0], "float32")
    value = NTXentLoss()(a, b, sample_weight=weights)
    per_image = expected[:4] + expected[4:]
    np.testing.assert_allclose(
        _np(value), np.sum(per_image * weights) / 8, rtol=1e-5
    )


def test_replicas_gather_the_global_batch():
    """Under MirroredStrategy over 2 CPUs, each replica's views are scored
    against the 2N views of the global batch: the losses equal one
    device's."""
    a, b = _data(4, 6, 8)
    _, expected = _reference(a, b, 0.5)
    strategy = two_cpu_strategy()
    data = tf.data.Dataset.from_tensor_slices((a, b)).batch(6)
    batch = next(iter(strategy.experimental_distribute_dataset(data)))
    per_replica = strategy.run(
        lambda x, y: nt_xent(x, y, 0.5), args=batch
    )
    losses = np.concatenate(
        [_np(t) for t in strategy.experimental_local_results(per_replica)]
    )
    np.testing.assert_allclose(losses[:, 0], expected[:6], rtol=1e-5)
    np.testing.assert_allclose(losses[:, 1], expected[6:], rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, shapes, match",
    [
        ({"temperature": 0}, None, "temperature=0"),
        ({"temperature": -1.0}, None, "temperature=-1.0"),
        ({}, [(2, 3, 4), (2, 3, 4)], "y_true.*batch_size, embedding_dim"),
        ({}, [(2, 4), (3, 4)], "same shape"),
    ],
)
def test_bad_input(kwargs, shapes, match):
    with pytest.raises(ValueError, match=match):
        loss = NTXentLoss(**kwargs)
        loss(np.zeros(shapes[0], "float32"), np.zeros(shapes[1], "float32"))


def test_config_round_trip_and_gradient():
    loss = NTXentLoss(temperature=0.2, name="contrast")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, NTXentLoss)
    assert restored.get_config() == loss.get_config()
    assert restored.temperature == 0.2
    a, b = (tf.Variable(x) for x in _data(5))
    with tf.GradientTape() as tape:
        value = loss(a, b)
    for gradient in tape.gradient(value, [a, b]):
        assert np.abs(_np(gradient)).max() > 0
