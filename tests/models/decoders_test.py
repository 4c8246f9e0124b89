import keras
import numpy as np
import pytest

from keras_selfie.models import decoders
from keras_selfie.models import resnet


@pytest.mark.parametrize("stem,size", [("cifar", 32), ("imagenet", 64)])
def test_feature_stride_is_what_p_does(stem, size):
    p = resnet.feature_map_network(resnet.patch_network(stem=stem,
                                                        width=0.125))
    feature_map = p(np.zeros((1, size, size, 3), "float32"))
    assert feature_map.shape[1] == size // decoders.feature_stride(stem)
    assert decoders.feature_stride("cifar") == 4
    assert decoders.feature_stride("imagenet") == 16


def test_decoder_restores_the_resolution():
    decoder = decoders.pixel_decoder(8, 2, upsampling=4, filters=32)
    assert decoder(np.ones((2, 3, 5, 8), "float32")).shape == (2, 12, 20, 2)
    # Stages halve their filters; the last layer is linear.
    assert decoder.get_layer("up0_conv").filters == 32
    assert decoder.get_layer("up1_conv").filters == 16
    assert decoder.get_layer("pixels").activation is keras.activations.linear
    identity = decoders.pixel_decoder(8, 3, upsampling=1)
    assert identity(np.ones((1, 4, 4, 8), "float32")).shape == (1, 4, 4, 3)
    assert [layer.name for layer in identity.layers[1:]] == ["pixels"]
    # Stages beyond the upsampling ones keep the resolution.
    deeper = decoders.pixel_decoder(8, 3, upsampling=2, filters=32,
                                    min_stages=2)
    assert deeper(np.ones((1, 4, 4, 8), "float32")).shape == (1, 8, 8, 3)
    assert [layer.name for layer in deeper.layers[1:]] == [
        "up0", "up0_conv", "up0_bn", "up0_relu",
        "conv1_conv", "conv1_bn", "conv1_relu", "pixels",
    ]
    assert deeper.get_layer("conv1_conv").filters == 16


def test_decoder_upsamples_bilinearly_before_convolving():
    # A constant feature map stays constant through the upsampling, so a
    # decoder of one stage gives one value everywhere.
    decoder = decoders.pixel_decoder(1, 1, upsampling=2, filters=16)
    out = keras.ops.convert_to_numpy(decoder(np.full((1, 4, 4, 1), 2.0,
                                                     "float32")))
    interior = out[0, 1:-1, 1:-1, 0]
    np.testing.assert_allclose(interior, interior[0, 0], rtol=1e-5)


@pytest.mark.parametrize("argument,value", [
    ("upsampling", 3), ("upsampling", 0), ("output_channels", 0),
    ("filters", -1), ("min_stages", -1),
])
def test_bad_arguments_are_named(argument, value):
    kwargs = dict(input_channels=4, output_channels=3, upsampling=2)
    kwargs[argument] = value
    with pytest.raises(ValueError, match=f"`{argument}`"):
        decoders.pixel_decoder(**kwargs)
