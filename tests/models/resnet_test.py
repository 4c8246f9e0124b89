"""Tests of the ResNet-50 builders: `resnet50`, `patch_network`, stages."""

import keras
import numpy as np
import pytest

from keras_selfie.layers import FusedBatchNormalization
from keras_selfie.models import resnet


def _weight_shapes(model):
    # Skips the input layer, whose name Keras makes unique per process.
    return [
        (layer.name, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers[1:]
    ]


@pytest.fixture(scope="module")
def reference():
    return keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))


@pytest.fixture(scope="module")
def imagenet_resnet():
    return resnet.resnet50(input_shape=(64, 64, 3), stem="imagenet", width=1.0)


class TestResNet50ImagenetStem:
    def test_layer_names_in_keras_applications_order(
        self, reference, imagenet_resnet
    ):
        # The input layer's name depends on how many inputs Keras has made
        # in this process; every other name is fixed.
        names = [layer.name for layer in imagenet_resnet.layers[1:]]
        assert names == [layer.name for layer in reference.layers[1:]]
        assert len(names) == 176
        assert names[-2:] == ["avg_pool", "predictions"]

    def test_weight_shapes_per_layer(self, reference, imagenet_resnet):
        assert _weight_shapes(imagenet_resnet) == _weight_shapes(reference)
        assert imagenet_resnet.count_params() == reference.count_params()

    def test_layer_types_and_configs(self, reference, imagenet_resnet):
        # The input layers' names are made unique by Keras; everything after
        # them must be configured exactly as keras.applications does.
        for ours, theirs in zip(imagenet_resnet.layers, reference.layers):
            if type(theirs) is keras.layers.BatchNormalization:
                # Ours runs on TensorFlow's fused kernel; the same layer
                # otherwise (axis -1 is their 3).
                assert type(ours) is FusedBatchNormalization, ours.name
                config = {**ours.get_config(), "axis": 3}
                assert config == theirs.get_config()
            else:
                assert type(ours) is type(theirs), ours.name
        assert imagenet_resnet.input_shape == reference.input_shape
        assert imagenet_resnet.output_shape == reference.output_shape == (
            None,
            1000,
        )
        conv1 = imagenet_resnet.get_layer("conv1_conv")
        assert conv1.kernel_size == (7, 7) and conv1.strides == (2, 2)
        pool1 = imagenet_resnet.get_layer("pool1_pool")
        assert pool1.pool_size == (3, 3) and pool1.strides == (2, 2)
        for layer in imagenet_resnet.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                assert layer.epsilon == pytest.approx(1.001e-5)

    def test_same_weights_give_same_outputs(self, reference, imagenet_resnet):
        # Strides, paddings and the order of the layers all agree if the
        # networks compute the same function from the same weights.
        rng = np.random.default_rng(0)
        weights = [
            rng.uniform(0.5, 1.5, w.shape).astype("float32") * 0.1
            for w in reference.get_weights()
        ]
        reference.set_weights(weights)
        imagenet_resnet.set_weights(weights)
        images = rng.uniform(0, 1, (2, 64, 64, 3)).astype("float32")
        probe = "conv4_block6_out"
        features = [
            keras.Model(m.input, m.get_layer(probe).output)(images)
            for m in (reference, imagenet_resnet)
        ]
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(features[0]),
            keras.ops.convert_to_numpy(features[1]),
        )
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(imagenet_resnet(images)),
            keras.ops.convert_to_numpy(reference(images)),
            atol=1e-6,
        )

    def test_patch_network_is_the_first_three_stages(self, reference):
        network = resnet.patch_network(stem="imagenet", width=1.0)
        names = [layer.name for layer in reference.layers]
        up_to_conv4 = names[: names.index("conv4_block6_out") + 1]
        ours = [layer.name for layer in network.layers]
        assert isinstance(network.layers[0], keras.layers.InputLayer)
        # Only the input layer's name differs ("patches").
        assert ours[1:] == up_to_conv4[1:] + ["patch_pool"]
        assert not any(name.startswith("conv5") for name in ours)
        assert _weight_shapes(network)[:-1] == _weight_shapes(reference)[
            : len(up_to_conv4) - 1
        ]
        assert network.output_shape == (None, 1024)
        assert network.input_shape == (None, None, None, 3)


class TestCifarStem:
    def test_stem_is_3x3_stride_1_without_pooling(self):
        model = resnet.resnet50((32, 32, 3), stem="cifar", width=0.125)
        conv1 = model.get_layer("conv1_conv")
        assert conv1.kernel_size == (3, 3)
        assert conv1.strides == (1, 1)
        assert conv1.filters == 8
        assert tuple(conv1.kernel.shape) == (3, 3, 3, 8)
        names = [layer.name for layer in model.layers]
        assert not any(name.startswith("pool1") for name in names)
        assert model.get_layer("conv1_pad").padding == ((1, 1), (1, 1))
        # Apart from the stem's pooling, the names are those of ResNet-50.
        reference = keras.applications.ResNet50(
            weights=None, input_shape=(32, 32, 3)
        )
        assert names[1:] == [
            layer.name
            for layer in reference.layers[1:]
            if not layer.name.startswith("pool1")
        ]

    def test_conv4_output_of_32x32_input_is_8x8(self):
        model = resnet.resnet50(
            (32, 32, 3), stem="cifar", width=0.125, include_top=False
        )
        probe = keras.Model(
            model.input, model.get_layer("conv4_block6_out").output
        )
        assert probe.output_shape == (None, 8, 8, 128)
        images = np.random.default_rng(1).uniform(size=(2, 32, 32, 3))
        features = keras.ops.convert_to_numpy(probe(images.astype("float32")))
        assert features.shape == (2, 8, 8, 128)
        assert np.all(features >= 0)  # the block ends in a ReLU
        assert model.output_shape == (None, 4, 4, 256)

    def test_imagenet_stem_shrinks_more(self):
        model = resnet.resnet50(
            (32, 32, 3), stem="imagenet", width=0.125, include_top=False
        )
        assert model.get_layer("conv4_block6_out").output.shape == (
            None,
            2,
            2,
            128,
        )

    def test_patch_network_maps_8x8_patch_to_feature_vector(self):
        network = resnet.patch_network(stem="cifar", width=0.125)
        patches = np.random.default_rng(2).uniform(size=(5, 8, 8, 3))
        features = keras.ops.convert_to_numpy(
            network(patches.astype("float32"), training=False)
        )
        assert features.shape == (5, 128)
        map_model = keras.Model(
            network.input, network.get_layer("conv4_block6_out").output
        )
        maps = keras.ops.convert_to_numpy(
            map_model(patches.astype("float32"), training=False)
        )
        assert maps.shape == (5, 2, 2, 128)
        np.testing.assert_allclose(
            features, maps.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6
        )


class TestWidth:
    @pytest.mark.parametrize(
        "width, conv1_filters, dim",
        [(0.25, 16, 256), (0.125, 8, 128), (0.5, 32, 512), (1.0, 64, 1024)],
    )
    def test_feature_dim_and_stem_filters(self, width, conv1_filters, dim):
        assert resnet.feature_dim(width) == dim
        network = resnet.patch_network(stem="cifar", width=width)
        assert network.get_layer("conv1_conv").filters == conv1_filters
        assert network.output_shape == (None, dim)

    def test_every_stage_is_scaled(self):
        model = resnet.resnet50(
            (32, 32, 3), stem="cifar", width=0.25, include_top=False
        )
        for stage, filters in (("conv2", 16), ("conv3", 32), ("conv4", 64)):
            block = f"{stage}_block1"
            assert model.get_layer(f"{block}_1_conv").filters == filters
            assert model.get_layer(f"{block}_2_conv").filters == filters
            assert model.get_layer(f"{block}_3_conv").filters == 4 * filters
            assert model.get_layer(f"{block}_0_conv").filters == 4 * filters
        assert model.get_layer("conv5_block3_out").output.shape[-1] == 512
        assert resnet.feature_dim(0.25, num_stages=4) == 512

    def test_smallest_width_keeps_one_filter(self):
        assert resnet.check_width(1 / 64) == pytest.approx(1 / 64)
        assert resnet.scaled_filters(64, 1 / 64) == 1
        assert resnet.scaled_filters(512, 1 / 64) == 8


class TestErrors:
    @pytest.mark.parametrize("stem", ["resnet", "", None, "ImageNet"])
    def test_bad_stem(self, stem):
        with pytest.raises(ValueError, match="stem"):
            resnet.resnet50((32, 32, 3), stem=stem)
        with pytest.raises(ValueError, match="stem"):
            resnet.patch_network(stem=stem)

    @pytest.mark.parametrize("width", [0, -1, -0.5, 0.005, True, "1", None])
    def test_bad_width(self, width):
        with pytest.raises(ValueError, match="width"):
            resnet.resnet50((32, 32, 3), stem="cifar", width=width)
        with pytest.raises(ValueError, match="width"):
            resnet.patch_network(width=width)

    @pytest.mark.parametrize("num_stages", [0, -1, 5, 2.0, True])
    def test_bad_num_stages(self, num_stages):
        inputs = keras.Input((32, 32, 3))
        with pytest.raises(ValueError, match="num_stages"):
            resnet.resnet50_stages(inputs, num_stages=num_stages)

    @pytest.mark.parametrize("num_stages, channels", [(1, 256), (4, 2048)])
    def test_num_stages(self, num_stages, channels):
        inputs = keras.Input((32, 32, 3))
        outputs = resnet.resnet50_stages(inputs, num_stages=num_stages)
        assert outputs.shape[-1] == channels

    def test_bad_pooling_and_classes(self):
        with pytest.raises(ValueError, match="pooling"):
            resnet.resnet50((32, 32, 3), include_top=False, pooling="sum")
        with pytest.raises(ValueError, match="classes"):
            resnet.resnet50((32, 32, 3), width=0.125, classes=0)
        with pytest.raises(ValueError, match="num_channels"):
            resnet.patch_network(num_channels=0)
