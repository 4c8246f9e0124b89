"""SuperResolutionPretrainer and its resizing, on made inputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfie
from conftest import TINY_BACKBONE
from conftest import uint8_images
from keras_selfie.data import transforms

BACKBONE = TINY_BACKBONE
SMALL = {**BACKBONE, "decoder_filters": 16}


def _np(x):
    return keras.ops.convert_to_numpy(x)


_images = uint8_images


@pytest.mark.parametrize("factor", [2, 4])
def test_resizing_is_keras_resize_and_compiles(factor):
    images = np.random.default_rng(0).uniform(size=(2, 16, 8, 3))
    images = images.astype("float32")
    small = _np(transforms.resize_by_factor(images, factor, "area", False))
    # "area": the mean of each factor x factor block.
    blocks = images.reshape(2, 16 // factor, factor, 8 // factor, factor, 3)
    np.testing.assert_allclose(small, blocks.mean(axis=(2, 4)), atol=1e-6)
    for method, upsample, size in [
        ("area", False, (16 // factor, 8 // factor)),
        ("bilinear", False, (16 // factor, 8 // factor)),
        ("bicubic", True, (16 * factor, 8 * factor)),
        ("bilinear", True, (16 * factor, 8 * factor)),
        ("nearest", True, (16 * factor, 8 * factor)),
    ]:
        def resize(x):
            return transforms.resize_by_factor(x, factor, method, upsample)

        expected = _np(keras.ops.image.resize(images, size,
                                              interpolation=method))
        np.testing.assert_allclose(_np(resize(images)), expected, atol=1e-6)
        # XLA compiles keras.ops.image.resize for bilinear only.
        np.testing.assert_allclose(
            _np(tf.function(resize, jit_compile=True)(images)), expected,
            atol=1e-6,
        )
    with pytest.raises(ValueError, match="`method`"):
        transforms.resize_by_factor(images, 2, "bicubic", upsample=False)
    with pytest.raises(ValueError, match="divides"):
        transforms.resize_by_factor(images, 3, "area", upsample=False)


@pytest.mark.parametrize("factor", [2, 4])
def test_p_sees_the_upsampled_small_image(factor):
    model = keras_selfie.SuperResolutionPretrainer(
        **SMALL, factor=factor, seed=0
    )
    images = _images()
    seen = []
    original = model.feature_map
    model.feature_map = lambda x, training=None: (seen.append(_np(x)),
                                                  original(x))[1]
    try:
        outputs = {k: _np(v) for k, v in model(images).items()}
    finally:
        model.feature_map = original
    scaled = images.astype("float32") / 255.0
    small = outputs["low_resolution"]
    # The stated size, and the block means of the images.
    assert small.shape == (3, 32 // factor, 32 // factor, 3)
    np.testing.assert_allclose(small, scaled.reshape(
        3, 32 // factor, factor, 32 // factor, factor, 3
    ).mean(axis=(2, 4)), atol=1e-6)
    # P sees it bicubic-upsampled to the images' size.
    np.testing.assert_allclose(seen[0], _np(keras.ops.image.resize(
        small, (32, 32), interpolation="bicubic")), atol=1e-6)
    np.testing.assert_array_equal(outputs["inputs"], seen[0])
    np.testing.assert_array_equal(outputs["targets"], scaled)
    # The untrained decoder predicts no change: the baseline itself.
    np.testing.assert_allclose(outputs["reconstruction"], outputs["inputs"],
                               atol=1e-6)
    # The loss is the mean squared error of every pixel.
    prediction = np.random.default_rng(2).uniform(size=scaled.shape)
    loss = model.compute_loss(y_pred={**outputs, "reconstruction":
                                      prediction.astype("float32")})
    np.testing.assert_allclose(float(loss),
                               np.mean((prediction - scaled) ** 2),
                               rtol=1e-5)


def test_without_residual_the_decoder_predicts_the_image():
    model = keras_selfie.SuperResolutionPretrainer(
        **SMALL, residual=False, upsampling="nearest", seed=0
    )
    outputs = model(_images())
    np.testing.assert_allclose(_np(outputs["reconstruction"]), 0, atol=1e-6)
    small = _np(outputs["low_resolution"])
    np.testing.assert_array_equal(
        _np(outputs["inputs"]), small.repeat(4, axis=1).repeat(4, axis=2)
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"factor": 3}, "`factor` must divide.*factor=3"),
        ({"factor": 1}, "`factor`.*factor=1"),
        ({"downsampling": "bicubic"}, "`downsampling`"),
        ({"upsampling": "area"}, "`upsampling`"),
        ({"residual": "yes"}, "`residual`"),
        ({"image_size": 34, "factor": 2}, "`image_size`.*multiple"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_selfie.SuperResolutionPretrainer(**{**SMALL, **kwargs})


def test_config_round_trip():
    model = keras_selfie.SuperResolutionPretrainer(
        **SMALL, factor=4, downsampling="bilinear", upsampling="bilinear",
        residual=False, seed=2,
    )
    clone = keras_selfie.SuperResolutionPretrainer.from_config(
        model.get_config()
    )
    assert clone.get_config() == model.get_config()
    assert keras_selfie.methods.get("super_resolution") is type(model)
    assert "from their bilinear 8x8 copies" in model.task_description(8)
