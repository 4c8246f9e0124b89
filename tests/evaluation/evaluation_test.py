import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY

from keras_selfie.evaluation import KNNMonitor
from keras_selfie.evaluation import extract_features
from keras_selfie.evaluation import finetune
from keras_selfie.evaluation import knn_accuracy
from keras_selfie.evaluation import knn_predict
from keras_selfie.evaluation import linear_probe
from keras_selfie.evaluation import linear_probe_on_features
from keras_selfie.models import SelfiePretrainer

COLOURS = np.array([[220, 30, 30], [30, 220, 30], [30, 30, 220]])


def colour_images(n, seed):
    """uint8 32x32 images whose dominant colour is the class, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    noise = rng.integers(-30, 30, size=(n, 32, 32, 3))
    images = np.clip(COLOURS[labels][:, None, None, :] + noise, 0, 255)
    return images.astype("uint8"), labels.astype("int64")


def batches(images, labels, batch_size=6):
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(
        batch_size
    )


@pytest.fixture(scope="module")
def pretrainer():
    keras.utils.set_random_seed(0)
    return SelfiePretrainer(**TINY, seed=0)


class TestKNN:
    def test_separable_clusters_are_all_right(self):
        rng = np.random.default_rng(0)
        centres = np.eye(4, 16) * 10
        train_labels = np.repeat(np.arange(4), 25)
        test_labels = np.repeat(np.arange(4), 10)
        train = centres[train_labels] + rng.normal(size=(100, 16))
        test = centres[test_labels] + rng.normal(size=(40, 16))
        for weighted in (True, False):
            assert knn_accuracy(
                train, train_labels, test, test_labels, k=20,
                weighted=weighted, batch_size=7,
            ) == 1.0

    def test_weighted_vote_differs_from_majority(self):
        # The query equals example 0 (class 0, similarity 1); examples 1 and
        # 2 (class 1) have similarity 0.6. With k=3, majority says class 1;
        # at T=0.1 class 0 weighs e^10 against 2 e^6 and wins; at T=1 it
        # weighs e^1 = 2.72 against 2 e^0.6 = 3.64 and loses.
        train = np.array([[1, 0], [0.6, 0.8], [0.6, -0.8], [-1, 0]])
        labels = np.array([0, 1, 1, 0])
        query = np.array([[2.0, 0.0]])  # Cosine: the scale does not count.
        assert knn_predict(train, labels, query, k=3, weighted=False) == [1]
        assert knn_predict(train, labels, query, k=3, temperature=0.1) == [0]
        assert knn_predict(train, labels, query, k=3, temperature=1.0) == [1]
        assert knn_accuracy(train, labels, query, [0], k=3,
                            temperature=0.1) == 1.0

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(k=0), "`k`"),
            (dict(k=5), "at most the number"),
            (dict(k=2, temperature=0), "`temperature`"),
        ],
    )
    def test_invalid_arguments(self, kwargs, match):
        train = np.eye(4)
        with pytest.raises(ValueError, match=match):
            knn_accuracy(train, np.arange(4), train, np.arange(4), **kwargs)

    def test_labels_must_match_features(self):
        with pytest.raises(ValueError, match="train_labels"):
            knn_accuracy(np.eye(4), np.arange(3), np.eye(4), np.arange(4))


class TestFeatures:
    def test_full_image_features_and_uint8_scaling(self, pretrainer):
        images, labels = colour_images(6, seed=1)
        features, out_labels = extract_features(pretrainer, (images, labels))
        assert features.shape == (6, pretrainer.feature_dim)
        np.testing.assert_array_equal(out_labels, labels)
        expected = pretrainer.patch_network(images / 255.0, training=False)
        np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
        # Float images are used as they are, unbatched datasets batched.
        floats = tf.data.Dataset.from_tensor_slices(
            (images.astype("float32") / 255.0, labels)
        )
        same, _ = extract_features(pretrainer.patch_network, floats,
                                   batch_size=4)
        np.testing.assert_allclose(same, features, rtol=1e-4, atol=1e-5)

    def test_requires_labels(self, pretrainer):
        images = tf.data.Dataset.from_tensor_slices(np.zeros((2, 32, 32, 3)))
        with pytest.raises(ValueError, match="needs labels"):
            extract_features(pretrainer, images)

    def test_rejects_other_objects(self):
        with pytest.raises(ValueError, match="pretrainer_or_patch_network"):
            extract_features("model", None)


def test_linear_probe_keeps_p_and_beats_chance(pretrainer):
    before = [w.numpy().copy() for w in pretrainer.patch_network.weights]
    train = colour_images(30, seed=2)
    test = colour_images(15, seed=3)
    # Each split in one batch: P runs once per extraction (the features of
    # several batches are joined in TestFeatures). After 5 epochs every test
    # image is right, by a logit margin of 5 (1 epoch: 0.87 right).
    result = linear_probe(
        pretrainer, batches(*train, 30), batches(*test, 15), epochs=5,
        learning_rate=0.03, seed=0,
    )
    after = pretrainer.patch_network.weights
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new.numpy())
    assert result["accuracy"] > 0.9  # Chance: 1/3.
    assert result["classifier"].output_shape == (None, 3)
    # On the same features, computed beforehand: the same classifier.
    again = linear_probe_on_features(
        *extract_features(pretrainer, batches(*train, 30)),
        *extract_features(pretrainer, batches(*test, 15)),
        epochs=5, learning_rate=0.03, seed=0,
    )
    assert again["accuracy"] == result["accuracy"]
    for a, b in zip(again["classifier"].get_weights(),
                    result["classifier"].get_weights()):
        np.testing.assert_array_equal(a, b)


class CaptureWeights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = {
            layer.name: [w.numpy().copy() for w in layer.weights]
            for layer in self.model.layers
            if layer.weights
        }


def _finetune(pretrainer, from_scratch, seed=None):
    """`finetune` for one epoch of one batch; returns its result and the
    weights it started from (a `CaptureWeights`)."""
    images, labels = colour_images(4, seed=4)
    capture = CaptureWeights()
    result = finetune(
        pretrainer, batches(images, labels, 4), batches(images, labels, 4),
        num_classes=3, epochs=1, from_scratch=from_scratch,
        warmup_epochs=0, callbacks=[capture], verbose=0, run_eagerly=True,
        seed=seed,
    )
    return result, capture


@pytest.fixture(scope="module")
def finetuned_from_p(pretrainer):
    """Fine-tuning from P at seed 3, which the seed test compares too."""
    return _finetune(pretrainer, False, seed=3)


def test_finetune_starts_from_p_and_scratch_does_not(
    pretrainer, finetuned_from_p
):
    pretrained, pretrained_capture = finetuned_from_p
    scratch, scratch_capture = _finetune(pretrainer, True)
    p_layers = [
        layer for layer in pretrainer.patch_network.layers if layer.weights
    ]
    assert p_layers[0].name == "conv1_conv"
    assert p_layers[-1].name.startswith("conv4_block6")
    for layer in p_layers:
        for source, start in zip(
            layer.weights, pretrained_capture.weights[layer.name]
        ):
            np.testing.assert_array_equal(source.numpy(), start)
    differs = [
        not np.array_equal(source.numpy(), start)
        for layer in p_layers
        if layer.name.endswith("_conv")
        for source, start in zip(
            layer.weights[:1], scratch_capture.weights[layer.name][:1]
        )
    ]
    assert all(differs)
    # Same architecture, same optimizer and schedule either way.
    assert [w.shape for w in pretrained["model"].weights] == [
        w.shape for w in scratch["model"].weights
    ]
    configs = [
        {**result["model"].optimizer.get_config(), "name": None}
        for result in (pretrained, scratch)
    ]
    assert configs[0] == configs[1]
    assert configs[0]["learning_rate"]["class_name"] == "CosineDecay"
    assert configs[0]["weight_decay"] == pytest.approx(5e-4)
    assert 0.0 <= pretrained["accuracy"] <= 1.0
    assert len(pretrained["history"].history["loss"]) == 1


def test_finetune_needs_pretrainer_unless_from_scratch():
    images, labels = colour_images(4, seed=5)
    data = batches(images, labels, 4)
    with pytest.raises(ValueError, match="from_scratch"):
        finetune(None, data, data, num_classes=3, epochs=1)


class RecomputeKNN(keras.callbacks.Callback):
    """After each epoch, `knn_accuracy` on features extracted here."""

    def __init__(self, train, test, **knn_kwargs):
        super().__init__()
        self.train, self.test, self.knn_kwargs = train, test, knn_kwargs
        self.accuracies = []

    def on_epoch_end(self, epoch, logs=None):
        self.accuracies.append(knn_accuracy(
            *extract_features(self.model, batches(*self.train)),
            *extract_features(self.model, batches(*self.test)),
            **self.knn_kwargs,
        ))


def test_knn_monitor_logs_the_knn_accuracy_of_the_model(capsys):
    keras.utils.set_random_seed(0)
    model = SelfiePretrainer(**TINY, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
    images, labels = colour_images(12, seed=6)
    # Test images outside the memory bank, with labels unrelated to them:
    # the accuracy depends on where the features put each image.
    rng = np.random.default_rng(9)
    test = (rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 3, 9))
    monitor = KNNMonitor((images, labels), test, k=3, temperature=0.5)
    recompute = RecomputeKNN((images, labels), test, k=3, temperature=0.5)
    history = model.fit(
        images[:4], epochs=2, batch_size=4, callbacks=[monitor, recompute],
        verbose=2,
    )
    accuracies = history.history["knn_accuracy"]
    # Each epoch's value is the model's own kNN accuracy at that epoch.
    np.testing.assert_allclose(accuracies, recompute.accuracies, atol=1e-6)
    assert monitor.results == dict(enumerate(accuracies))
    assert "knn_accuracy" in capsys.readouterr().out


def test_knn_monitor_validates_arguments():
    images, labels = colour_images(3, seed=7)
    with pytest.raises(ValueError, match="every_n_epochs"):
        KNNMonitor((images, labels), (images, labels), every_n_epochs=0)


def test_finetune_seed_fixes_the_fresh_layers(pretrainer, finetuned_from_p):
    # Seed 3 again, after other runs drew random numbers, and seed 4.
    _, seed_3 = finetuned_from_p
    starts = [seed_3.weights["predictions"][0]]
    for seed in (3, 4):
        _, capture = _finetune(pretrainer, False, seed=seed)
        starts.append(capture.weights["predictions"][0])
    np.testing.assert_array_equal(starts[0], starts[1])
    assert not np.array_equal(starts[0], starts[2])
    images, labels = colour_images(4, seed=6)
    data = batches(images, labels, 4)
    with pytest.raises(ValueError, match="seed"):
        finetune(pretrainer, data, data, num_classes=3, epochs=1, seed="0")


def test_recalibrate_batch_norm_averages_the_batch_statistics():
    from keras_selfie.evaluation import recalibrate_batch_norm

    inputs = keras.Input((3,))
    norm = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Model(inputs, norm(inputs))
    norm.moving_mean.assign([5.0, 5.0, 5.0])
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(12, 3)).astype("float32")
    y = np.zeros(12, "int64")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    assert recalibrate_batch_norm(model, dataset, num_batches=10) == 3
    batches = x.reshape(3, 4, 3)
    np.testing.assert_allclose(
        norm.moving_mean.numpy(), batches.mean(1).mean(0), rtol=1e-5
    )
    np.testing.assert_allclose(
        norm.moving_variance.numpy(), batches.var(1).mean(0), rtol=1e-4
    )
    assert norm.momentum == 0.99
    with pytest.raises(ValueError, match="num_batches"):
        recalibrate_batch_norm(model, dataset, num_batches=0)
    with pytest.raises(ValueError, match="no `BatchNormalization`"):
        recalibrate_batch_norm(keras.Sequential([keras.Input((3,)),
                                                 keras.layers.Dense(2)]),
                               dataset, 1)
