"""`context_gain` and `feature_health` on models and features made to
give known values."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_selfie
from conftest import TINY
from keras_selfie import evaluation
from keras_selfie.models.selfie_pretrainer import gather_positions


def solid_images(count=8, seed=0):
    """Images of one random colour each (all patches of an image equal)."""
    colours = np.random.default_rng(seed).uniform(size=(count, 1, 1, 3))
    return np.broadcast_to(colours, (count, 32, 32, 3)).astype("float32")


def random_images(count=8, seed=0):
    return np.random.default_rng(seed).uniform(
        size=(count, 32, 32, 3)
    ).astype("float32")


class MeanOfContext(keras_selfie.SelfiePretrainer):
    """A hand-made model whose query is the mean of the visible patches'
    features: the context decides everything."""

    def predict_queries(self, context, encoder_positions, decoder_positions,
                        training=None):
        pooled = ops.mean(gather_positions(context, encoder_positions), 1)
        return ops.repeat(pooled[:, None], decoder_positions.shape[1], 1)


def test_context_gain_is_zero_for_a_model_that_ignores_context():
    # The paper's query with u = 0 (A's last layer norm zeroed): v_j = PE(j).
    model = keras_selfie.SelfiePretrainer(**TINY, query="paper", seed=0)
    norm = model.attention_pooling.transformer_layers[-1]._output_norm
    norm.gamma.assign(np.zeros(norm.gamma.shape, "float32"))
    norm.beta.assign(np.zeros(norm.beta.shape, "float32"))
    for distractors in ("image", "batch"):
        result = evaluation.context_gain(
            model, random_images(), distractors=distractors
        )
        assert result["context_gain"] == 0.0
        assert result["patch_accuracy"] == (
            result["shuffled_context_patch_accuracy"]
        )
        assert result["num_predictions"] == 8 * 4


def test_context_gain_when_context_decides():
    model = MeanOfContext(**TINY, query="context", distractors="batch",
                          seed=0)
    result = evaluation.context_gain(model, solid_images(), batch_size=8)
    # Own context: the query equals the image's patches, which tie; the
    # first (position j = 0) wins, so 1 of M = 4 is right. Another image's
    # context points at that image's patches: never right.
    assert result["distractors"] == "batch"
    assert result["patch_accuracy"] == pytest.approx(0.25, abs=1e-9)
    assert result["shuffled_context_patch_accuracy"] == 0.0
    assert result["context_gain"] == pytest.approx(0.25, abs=1e-9)
    # Among the image's own (identical) patches, context cannot help.
    image_only = evaluation.context_gain(
        model, solid_images(), distractors="image", batch_size=8
    )
    assert image_only["context_gain"] == 0.0


def test_context_gain_takes_datasets_with_labels_and_skips_single_images():
    import tensorflow as tf

    model = MeanOfContext(**TINY, query="context", seed=0)
    images = solid_images(9)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(9)))
    # Batches of 4, 4 and 1: the last has no other image and is skipped.
    result = evaluation.context_gain(model, dataset, batch_size=4)
    assert result["num_predictions"] == 8 * 4
    assert result["context_gain"] == pytest.approx(0.25, abs=1e-9)


def test_context_gain_bad_input():
    model = keras_selfie.SelfiePretrainer(**TINY, seed=0)
    with pytest.raises(ValueError, match="distractors.*'nope'"):
        evaluation.context_gain(model, random_images(), distractors="nope")
    with pytest.raises(ValueError, match="no batch of 2 or more images"):
        evaluation.context_gain(model, random_images(1))
    with pytest.raises(ValueError, match="`dataset` must be"):
        evaluation.context_gain(model, [1, 2, 3])


def test_feature_health_by_hand():
    features = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], "float32")
    health = evaluation.feature_health(features)
    # Centred: columns orthogonal with equal norms -> singular values 1, 1.
    assert health["effective_rank"] == pytest.approx(2.0)
    # std 0.5 per dimension, mean |feature| 0.5.
    assert health["relative_std"] == pytest.approx(1.0)
    # F^T F = [[2, 1], [1, 2]]: eigenvalues 3 and 1.
    assert health["top_direction_share"] == pytest.approx(0.75)


def test_feature_health_tells_collapse_from_spread():
    rng = np.random.default_rng(0)
    spread = evaluation.feature_health(rng.normal(size=(4000, 16)))
    assert spread["effective_rank"] > 15.0
    # std 1 over E|x| = sqrt(2 / pi) for a standard normal.
    assert spread["relative_std"] == pytest.approx(
        np.sqrt(np.pi / 2), rel=0.03
    )
    assert spread["top_direction_share"] < 0.1
    shared = 10.0 + 0.1 * rng.normal(size=(4000, 16))
    collapsed = evaluation.feature_health(shared)
    assert collapsed["relative_std"] == pytest.approx(0.01, rel=0.05)
    assert collapsed["top_direction_share"] > 0.999
    line = np.outer(rng.normal(size=500), rng.normal(size=16))
    assert evaluation.feature_health(line)["effective_rank"] == (
        pytest.approx(1.0, abs=1e-6)
    )


@pytest.mark.parametrize(
    "features, match",
    [
        (np.zeros(5), "2-D array"),
        (np.zeros((1, 5)), "at least 2 images"),
        (np.full((3, 2), np.nan), "NaN"),
    ],
)
def test_feature_health_bad_input(features, match):
    with pytest.raises(ValueError, match=match):
        evaluation.feature_health(features)


@pytest.mark.parametrize("pooling", ["mean", "concat"])
def test_patch_feature_network_pools_the_pretext_features(pooling):
    model = keras_selfie.SelfiePretrainer(**TINY, seed=0)
    images = random_images(3)
    view = evaluation.patch_feature_network(model, pooling)
    features, _ = evaluation.extract_features(view, (images, np.arange(3)))
    patch = ops.convert_to_numpy(model.patch_features(images, training=False))
    expected = patch.mean(1) if pooling == "mean" else patch.reshape(3, -1)
    assert features.shape == expected.shape
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def test_patch_feature_network_bad_input():
    model = keras_selfie.SelfiePretrainer(**TINY, seed=0)
    with pytest.raises(ValueError, match=r"pooling.*\['mean', 'concat'\]"):
        evaluation.patch_feature_network(model, "max")
    with pytest.raises(ValueError, match="SelfiePretrainer"):
        evaluation.patch_feature_network(model.patch_network)


def test_batch_norm_settings_leave_the_pretrainer_alone():
    import tensorflow as tf

    model = keras_selfie.SelfiePretrainer(**TINY, seed=0)
    before = [w.numpy().copy() for w in model.patch_network.weights]
    dataset = tf.data.Dataset.from_tensor_slices(
        (random_images(128), np.zeros(128, "int64"))
    )
    settings = evaluation.batch_norm_settings(model, dataset, num_batches=2)
    assert settings["moving"] is model.patch_network
    copy = settings["recalibrated"]
    for weight, value in zip(model.patch_network.weights, before):
        np.testing.assert_array_equal(weight.numpy(), value)
    moved = 0
    for original, new in zip(model.patch_network.weights, copy.weights):
        if "moving" in original.path:
            moved += not np.allclose(original.numpy(), new.numpy())
        else:
            np.testing.assert_array_equal(original.numpy(), new.numpy())
    assert moved > 0
    # Whole images through the copy in training mode: the batch statistics
    # of the first layer are those of the scaled images.
    first = next(layer for layer in copy.layers
                 if isinstance(layer, keras.layers.BatchNormalization))
    assert np.all(first.moving_variance.numpy() != 1.0)
