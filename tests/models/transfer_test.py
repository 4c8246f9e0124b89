"""Tests of moving a pretrained patch network into networks to fine-tune."""

import keras
import numpy as np
import pytest

import keras_selfie
from keras_selfie.models import resnet
from keras_selfie.models.transfer import copy_patch_network_weights
from conftest import TINY

PROBE = "conv4_block6_out"


def _np(x):
    if isinstance(x, keras.Variable):
        return x.numpy()
    return keras.ops.convert_to_numpy(x)


def _perturb(variables, seed):
    """Moves every variable away from its fresh value, deterministically.

    Constant initial values (zeros: biases, beta, moving means; ones: gamma,
    moving variances) get noise of their own; everything else is scaled
    elementwise, so the scale of the activations stays about the same and
    moving variances stay positive.
    """
    rng = np.random.default_rng(seed)
    for variable in variables:
        value = _np(variable)
        if not np.issubdtype(value.dtype, np.floating):
            continue
        if np.all(value == 0):
            new = rng.normal(0.0, 0.05, value.shape)
        elif np.all(value == 1):
            new = rng.uniform(0.5, 1.5, value.shape)
        else:
            new = value * rng.uniform(0.5, 1.5, value.shape)
        variable.assign(new.astype(value.dtype))


def _feature_map_model(pretrainer):
    network = pretrainer.patch_network
    return keras.Model(network.input, network.get_layer(PROBE).output)


def _copied_layers(pretrainer):
    return [layer for layer in pretrainer.patch_network.layers if layer.weights]


@pytest.fixture(scope="module")
def cifar_pretrainer():
    """A tiny CIFAR-stem pretrainer after one training step."""
    pretrainer = keras_selfie.SelfiePretrainer(
        **TINY,
        seed=1,
    )
    # Eager steps: tracing a ResNet's train step takes ~30 s on 2 CPUs.
    pretrainer.compile(
        optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True
    )
    images = np.random.default_rng(0).uniform(size=(4, 32, 32, 3))
    history = pretrainer.fit(
        images.astype("float32"), batch_size=4, epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    # One step moves the moving statistics only by 1%; push them further.
    _perturb(pretrainer.patch_network.non_trainable_weights, seed=1)
    return pretrainer


@pytest.fixture(scope="module")
def imagenet_pretrainer():
    """A full-width ImageNet-stem pretrainer on a 3x3 grid of 32x32 patches.

    The weights are perturbed instead of trained, which keeps the test fast.
    """
    pretrainer = keras_selfie.SelfiePretrainer(
        image_size=96,
        patch_size=32,
        stem="imagenet",
        width=1.0,
        num_layers=1,
        num_heads=4,
        intermediate_dim=32,
        seed=2,
    )
    _perturb(pretrainer.patch_network.weights, seed=2)
    _perturb(pretrainer.attention_pooling.weights, seed=3)
    return pretrainer


@pytest.fixture(scope="module", params=["cifar", "imagenet"])
def pretrainer(request, cifar_pretrainer, imagenet_pretrainer):
    if request.param == "cifar":
        return cifar_pretrainer
    return imagenet_pretrainer


def _images(pretrainer, shape=None, seed=0):
    shape = shape or (*pretrainer.image_size, pretrainer.num_channels)
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(2, *shape)).astype("float32")


class TestTransferToResNet50:
    def test_conv4_output_equals_patch_network_feature_map(self, pretrainer):
        model = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
        images = _images(pretrainer)
        ours = keras.Model(model.input, model.get_layer(PROBE).output)
        expected = _np(_feature_map_model(pretrainer)(images, training=False))
        actual = _np(ours(images, training=False))
        assert actual.shape == expected.shape
        assert np.abs(expected).max() > 0.1  # not a trivial all-zero map
        assert np.abs(actual - expected).max() < 1e-5

    def test_conv4_output_on_another_input_size(self, pretrainer):
        height = 2 * pretrainer.image_size[0]
        shape = (height, pretrainer.image_size[1], 3)
        model = keras_selfie.transfer_to_resnet50(
            pretrainer, input_shape=shape, include_top=False
        )
        assert model.input_shape == (None, *shape)
        images = _images(pretrainer, shape=shape, seed=1)
        ours = keras.Model(model.input, model.get_layer(PROBE).output)
        expected = _np(_feature_map_model(pretrainer)(images, training=False))
        actual = _np(ours(images, training=False))
        assert np.abs(actual - expected).max() < 1e-5

    def test_every_patch_network_variable_is_copied_exactly(self, pretrainer):
        fresh = resnet.resnet50(
            (*pretrainer.image_size, 3),
            stem=pretrainer.stem,
            width=pretrainer.width,
            classes=10,
        )
        model = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
        layers = _copied_layers(pretrainer)
        # Every layer of stages 1-3 of the ResNet has its P counterpart.
        staged = [
            layer.name
            for layer in model.layers
            if layer.weights and not layer.name.startswith(("conv5", "pred"))
        ]
        assert staged == [layer.name for layer in layers]
        num_batch_norms = 0
        for layer in layers:
            target = model.get_layer(layer.name)
            assert len(target.weights) == len(layer.weights)
            if isinstance(layer, keras.layers.BatchNormalization):
                num_batch_norms += 1
                assert len(layer.weights) == 4  # moving statistics too
            for source, destination, init in zip(
                layer.weights,
                target.weights,
                fresh.get_layer(layer.name).weights,
            ):
                np.testing.assert_array_equal(_np(destination), _np(source))
                # The copy is not a coincidence with a fresh network.
                assert not np.array_equal(_np(init), _np(source)), (
                    source.path
                )
        assert num_batch_norms == 1 + 3 * 13 + 3  # stem, 13 blocks, shortcuts

    def test_copy_returns_the_layer_names(self, pretrainer):
        model = resnet.resnet50(
            (*pretrainer.image_size, 3),
            stem=pretrainer.stem,
            width=pretrainer.width,
        )
        names = copy_patch_network_weights(pretrainer.patch_network, model)
        assert names == [layer.name for layer in _copied_layers(pretrainer)]
        assert names[0] == "conv1_conv"
        assert names[-1] == "conv4_block6_3_bn"

    def test_conv5_and_classifier_start_fresh(self, pretrainer):
        model = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
        sources = [_np(w) for w in pretrainer.patch_network.weights]
        fresh_layers = [
            layer
            for layer in model.layers
            if layer.weights and layer.name.startswith(("conv5", "pred"))
        ]
        assert len(fresh_layers) == 3 * 6 + 2 + 1  # 3 blocks, shortcut, top
        for layer in fresh_layers:
            for weight in layer.weights:
                value = _np(weight)
                for source in sources:
                    assert not (
                        source.shape == value.shape
                        and np.array_equal(source, value)
                    ), weight.path
            if isinstance(layer, keras.layers.BatchNormalization):
                np.testing.assert_array_equal(_np(layer.gamma), 1.0)
                np.testing.assert_array_equal(_np(layer.beta), 0.0)
                np.testing.assert_array_equal(_np(layer.moving_mean), 0.0)
                np.testing.assert_array_equal(_np(layer.moving_variance), 1.0)
            elif isinstance(layer, keras.layers.Conv2D):
                np.testing.assert_array_equal(_np(layer.bias), 0.0)
        predictions = model.get_layer("predictions")
        assert tuple(predictions.kernel.shape) == (
            resnet.feature_dim(pretrainer.width, num_stages=4),
            10,
        )
        np.testing.assert_array_equal(_np(predictions.bias), 0.0)

    def test_copies_do_not_share_storage(self, pretrainer):
        before = [_np(w) for w in pretrainer.patch_network.weights]
        model = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
        for weight in model.get_layer("conv1_conv").weights:
            weight.assign(np.zeros(weight.shape, "float32"))
        for value, weight in zip(before, pretrainer.patch_network.weights):
            np.testing.assert_array_equal(_np(weight), value)

    def test_transferred_model_trains(self, cifar_pretrainer):
        model = keras_selfie.transfer_to_resnet50(
            cifar_pretrainer, classes=3, classifier_activation=None
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            run_eagerly=True,
        )
        rng = np.random.default_rng(3)
        images = rng.uniform(size=(4, 32, 32, 3)).astype("float32")
        labels = np.array([0, 1, 2, 0])
        history = model.fit(images, labels, batch_size=4, verbose=0)
        assert np.isfinite(history.history["loss"][0])


class TestImagenetStemIsKerasApplications:
    def _assert_same_model(self, model, reference):
        assert model.name == reference.name
        assert model.input_shape == reference.input_shape
        assert model.output_shape == reference.output_shape
        # The input layers' names are made unique by Keras; all other layers
        # must be named and configured exactly alike.
        assert [layer.name for layer in model.layers[1:]] == [
            layer.name for layer in reference.layers[1:]
        ]
        for ours, theirs in zip(model.layers[1:], reference.layers[1:]):
            assert type(ours) is type(theirs)
            assert ours.get_config() == theirs.get_config(), ours.name

    @pytest.mark.parametrize(
        "kwargs",
        [
            dict(classes=7, classifier_activation=None),
            dict(include_top=False, pooling="avg", input_shape=(64, 64, 3)),
            dict(include_top=False, pooling="max"),
            dict(include_top=False, input_shape=(64, 96, 3), name="backbone"),
        ],
    )
    def test_same_as_keras_applications(self, imagenet_pretrainer, kwargs):
        model = keras_selfie.transfer_to_resnet50(imagenet_pretrainer, **kwargs)
        reference_kwargs = dict(kwargs)
        reference_kwargs.setdefault("input_shape", (96, 96, 3))
        reference = keras.applications.ResNet50(
            weights=None, **reference_kwargs
        )
        self._assert_same_model(model, reference)

    def test_arguments_are_passed_through(self, imagenet_pretrainer):
        model = keras_selfie.transfer_to_resnet50(
            imagenet_pretrainer, classes=7, classifier_activation=None
        )
        assert model.output_shape == (None, 7)
        assert model.get_layer("predictions").get_config()["activation"] in (
            "linear",
            None,
        )
        pooled = keras_selfie.transfer_to_resnet50(
            imagenet_pretrainer,
            include_top=False,
            pooling="max",
            input_shape=(64, 64, 3),
        )
        assert pooled.input_shape == (None, 64, 64, 3)
        assert pooled.output_shape == (None, 2048)
        assert pooled.layers[-1].name == "max_pool"
        softmax = keras_selfie.transfer_to_resnet50(imagenet_pretrainer)
        assert softmax.output_shape == (None, 1000)
        probabilities = _np(softmax(_images(imagenet_pretrainer)))
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


class TestCifarStemArguments:
    @pytest.mark.parametrize(
        "kwargs, output_shape, last",
        [
            (dict(classes=10), (None, 10), "predictions"),
            (dict(include_top=False, pooling="avg"), (None, 256), "avg_pool"),
            (dict(include_top=False, pooling="max"), (None, 256), "max_pool"),
            (dict(include_top=False), (None, 4, 4, 256), "conv5_block3_out"),
        ],
    )
    def test_arguments_are_passed_through(
        self, cifar_pretrainer, kwargs, output_shape, last
    ):
        model = keras_selfie.transfer_to_resnet50(
            cifar_pretrainer, name="fine_tune", **kwargs
        )
        assert model.name == "fine_tune"
        assert model.input_shape == (None, 32, 32, 3)
        assert model.output_shape == output_shape
        assert model.layers[-1].name == last
        assert model.get_layer("conv1_conv").kernel_size == (3, 3)

    def test_classifier_activation(self, cifar_pretrainer):
        images = _images(cifar_pretrainer)
        logits_model = keras_selfie.transfer_to_resnet50(
            cifar_pretrainer, classes=4, classifier_activation=None
        )
        logits = _np(logits_model(images, training=False))
        # No activation: the output is the dense layer's affine map of the
        # pooled features, whatever signs its fresh weights give.
        pooled = keras.Model(
            logits_model.input, logits_model.get_layer("avg_pool").output
        )
        kernel, bias = logits_model.get_layer("predictions").get_weights()
        features = _np(pooled(images, training=False))
        np.testing.assert_allclose(
            logits, features @ kernel + bias, rtol=1e-4, atol=1e-5
        )
        softmax_model = keras_selfie.transfer_to_resnet50(
            cifar_pretrainer, classes=4
        )
        softmax_model.get_layer("predictions").set_weights(
            logits_model.get_layer("predictions").get_weights()
        )
        # conv5 is fresh in both: give them the same weights to compare.
        softmax_model.set_weights(logits_model.get_weights())
        probabilities = _np(softmax_model(images, training=False))
        expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        np.testing.assert_allclose(probabilities, expected, rtol=1e-5)


class TestResNet36AttentionPooling:
    def test_copies_patch_network_and_attention_pooling(self, pretrainer):
        model = keras_selfie.transfer_to_resnet36_attention_pooling(
            pretrainer, classes=7, classifier_activation=None
        )
        assert model.output_shape == (None, 7)
        assert not any(layer.name.startswith("conv5") for layer in model.layers)
        for layer in _copied_layers(pretrainer):
            for source, destination in zip(
                layer.weights, model.get_layer(layer.name).weights
            ):
                np.testing.assert_array_equal(_np(destination), _np(source))
        pooling = model.get_layer("attention_pooling")
        source_weights = pretrainer.attention_pooling.weights
        assert len(pooling.weights) == len(source_weights) > 0
        for source, destination in zip(source_weights, pooling.weights):
            assert destination.path.split("/")[-2:] == (
                source.path.split("/")[-2:]
            )
            np.testing.assert_array_equal(_np(destination), _np(source))
        predictions = model.get_layer("predictions")
        assert tuple(predictions.kernel.shape) == (pretrainer.feature_dim, 7)
        np.testing.assert_array_equal(_np(predictions.bias), 0.0)

    def test_forward_pass_is_attention_pooling_of_the_feature_map(
        self, pretrainer
    ):
        model = keras_selfie.transfer_to_resnet36_attention_pooling(
            pretrainer, classes=5, classifier_activation=None
        )
        images = _images(pretrainer, seed=4)
        feature_map = _np(
            _feature_map_model(pretrainer)(images, training=False)
        )
        sequence = feature_map.reshape(2, -1, pretrainer.feature_dim)
        pooled = _np(pretrainer.attention_pooling(sequence, training=False))
        predictions = model.get_layer("predictions")
        expected = pooled @ _np(predictions.kernel) + _np(predictions.bias)
        actual = _np(model(images, training=False))
        assert actual.shape == (2, 5)
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)

    def test_softmax_output_and_input_shape(self, cifar_pretrainer):
        model = keras_selfie.transfer_to_resnet36_attention_pooling(
            cifar_pretrainer, input_shape=(48, 32, 3), classes=3
        )
        assert model.input_shape == (None, 48, 32, 3)
        images = _images(cifar_pretrainer, shape=(48, 32, 3))
        probabilities = _np(model(images, training=False))
        assert probabilities.shape == (2, 3)
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


class TestErrors:
    @pytest.mark.parametrize(
        "function",
        [
            keras_selfie.transfer_to_resnet50,
            keras_selfie.transfer_to_resnet36_attention_pooling,
        ],
    )
    def test_not_a_pretrainer(self, function, cifar_pretrainer):
        with pytest.raises(ValueError, match="SelfiePretrainer"):
            function(cifar_pretrainer.patch_network)
        with pytest.raises(ValueError, match="SelfiePretrainer"):
            function("pretrainer")

    @pytest.mark.parametrize(
        "function",
        [
            keras_selfie.transfer_to_resnet50,
            keras_selfie.transfer_to_resnet36_attention_pooling,
        ],
    )
    @pytest.mark.parametrize(
        "input_shape", [(32, 32, 1), (32, 32, 4), (32, 32), (1, 32, 32, 3)]
    )
    def test_bad_input_shape(self, function, input_shape, cifar_pretrainer):
        with pytest.raises(ValueError, match="input_shape"):
            function(cifar_pretrainer, input_shape=input_shape)

    def test_bad_classes(self, cifar_pretrainer):
        with pytest.raises(ValueError, match="classes"):
            keras_selfie.transfer_to_resnet50(cifar_pretrainer, classes=0)
        with pytest.raises(ValueError, match="classes"):
            keras_selfie.transfer_to_resnet36_attention_pooling(
                cifar_pretrainer, classes=-1
            )

    def test_copy_into_a_different_width(self, cifar_pretrainer):
        model = resnet.resnet50((32, 32, 3), stem="cifar", width=0.25)
        with pytest.raises(ValueError, match="shapes"):
            copy_patch_network_weights(cifar_pretrainer.patch_network, model)

    def test_copy_into_a_different_stem(self, cifar_pretrainer):
        model = resnet.resnet50((32, 32, 3), stem="imagenet", width=0.125)
        with pytest.raises(ValueError, match="conv1_conv"):
            copy_patch_network_weights(cifar_pretrainer.patch_network, model)

    def test_copy_into_a_model_without_the_layers(self, cifar_pretrainer):
        model = keras.Sequential(
            [keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3)]
        )
        with pytest.raises(ValueError, match="no layer named 'conv1_conv'"):
            copy_patch_network_weights(cifar_pretrainer.patch_network, model)
