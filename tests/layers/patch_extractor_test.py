import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_checks import run_layer_test

from keras_selfie.layers import PatchExtractor


def _arange_images(batch_size, height, width, channels, dtype="float32"):
    size = batch_size * height * width * channels
    images = np.arange(size).reshape(batch_size, height, width, channels)
    return images.astype(dtype)


def _reassemble(patches, rows, cols):
    batch_size, _, p, _, channels = patches.shape
    x = patches.reshape(batch_size, rows, cols, p, p, channels)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(batch_size, rows * p, cols * p, channels)


@pytest.mark.parametrize(
    "height, width, patch_size",
    [(16, 16, 8), (16, 24, 8), (24, 16, 8), (12, 8, 4), (6, 6, 2)],
)
def test_patches_are_row_major_grid_cells(height, width, patch_size):
    images = _arange_images(2, height, width, 3)
    patches = keras.ops.convert_to_numpy(PatchExtractor(patch_size)(images))

    rows, cols, p = height // patch_size, width // patch_size, patch_size
    assert patches.shape == (2, rows * cols, p, p, 3)
    for b in range(2):
        for i in range(rows * cols):
            r, c = i // cols, i % cols
            np.testing.assert_array_equal(
                patches[b, i],
                images[b, r * p : (r + 1) * p, c * p : (c + 1) * p],
            )


@pytest.mark.parametrize("height, width", [(16, 16), (16, 24), (24, 16)])
def test_patches_reassemble_to_image(height, width):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, height, width, 2)).astype("float32")
    patches = keras.ops.convert_to_numpy(PatchExtractor(8)(images))
    np.testing.assert_array_equal(
        _reassemble(patches, height // 8, width // 8), images
    )


def test_non_square_grid_first_row_spans_width():
    # 16x24 with p=8 is a 2x3 grid: patch 2 is the top-right cell, patch 3 the
    # bottom-left one. A column-major layout would put them elsewhere.
    images = _arange_images(1, 16, 24, 1)
    patches = keras.ops.convert_to_numpy(PatchExtractor(8)(images))
    assert patches.shape == (1, 6, 8, 8, 1)
    np.testing.assert_array_equal(patches[0, 2], images[0, 0:8, 16:24])
    np.testing.assert_array_equal(patches[0, 3], images[0, 8:16, 0:8])
    assert PatchExtractor(8).grid_size((1, 16, 24, 1)) == (2, 3)
    assert PatchExtractor(8).grid_size((1, 24, 16, 1)) == (3, 2)


def test_uint8_keeps_dtype_and_values():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(2, 16, 24, 3), dtype=np.uint8)
    patches = PatchExtractor(8)(images)
    assert keras.backend.standardize_dtype(patches.dtype) == "uint8"
    patches = keras.ops.convert_to_numpy(patches)
    assert patches.dtype == np.uint8
    np.testing.assert_array_equal(_reassemble(patches, 2, 3), images)


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_layer_checks(dtype):
    # No weights; float images come out in the compute dtype (float32, or
    # the 16-bit one of a mixed policy), uint8 ones as uint8.
    images = _arange_images(2, 8, 12, 2, dtype=dtype)
    run_layer_test(
        PatchExtractor,
        dict(patch_size=4),
        images,
        expected_output_shape=(2, 6, 4, 4, 2),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        expected_num_non_trainable_variables=0,
    )


def test_symbolic_input_keeps_dtype_and_shape():
    inputs = keras.Input((16, 24, 3), dtype="uint8")
    outputs = PatchExtractor(8)(inputs)
    assert tuple(outputs.shape) == (None, 6, 8, 8, 3)
    assert keras.backend.standardize_dtype(outputs.dtype) == "uint8"


def test_inside_tf_function_matches_eager():
    images = _arange_images(2, 16, 24, 3)
    layer = PatchExtractor(8)
    eager = keras.ops.convert_to_numpy(layer(images))
    graph = tf.function(layer, jit_compile=True)(tf.constant(images)).numpy()
    np.testing.assert_array_equal(graph, eager)


@pytest.mark.parametrize(
    "shape, match",
    [
        ((1, 12, 16, 3), r"height=12, width=16, patch_size=8"),
        ((1, 16, 20, 3), r"height=16, width=20, patch_size=8"),
        ((1, 8, 8, 3), r"at least 2 patches.*8x8.*patch_size=8.*1x1=1"),
        ((1, 4, 4, 3), r"multiples of `patch_size`.*height=4, width=4"),
    ],
)
def test_bad_image_sizes_raise(shape, match):
    with pytest.raises(ValueError, match=match):
        PatchExtractor(8)(np.zeros(shape, "float32"))


@pytest.mark.parametrize(
    "shape", [(16, 16, 3), (1, 16, 16), (1, 1, 16, 16, 3)]
)
def test_rank_not_4_raises(shape):
    match = "rank 4.*" + re.escape(f"Received shape={shape}")
    with pytest.raises(ValueError, match=match):
        PatchExtractor(8)(np.zeros(shape, "float32"))


@pytest.mark.parametrize(
    "images, name",
    [
        (np.zeros((1, 16, 16, 3), bool), "bool"),
        (np.zeros((1, 16, 16, 3), np.int32), "int32"),
        (tf.fill((1, 16, 16, 3), "a"), "string"),
    ],
)
def test_non_image_dtypes_raise(images, name):
    with pytest.raises(ValueError, match=f"uint8.*dtype={name}"):
        PatchExtractor(8)(images)


@pytest.mark.parametrize("patch_size", [0, -2, 2.0, True, None])
def test_bad_patch_size_raises(patch_size):
    with pytest.raises(ValueError, match="patch_size"):
        PatchExtractor(patch_size)


def test_compute_output_shape():
    layer = PatchExtractor(8)
    assert layer.compute_output_shape((None, 16, 24, 3)) == (None, 6, 8, 8, 3)
    assert layer.compute_output_shape((5, 32, 32, 1)) == (5, 16, 8, 8, 1)
    assert PatchExtractor(4).compute_output_shape((2, 8, 12, 3)) == (
        2,
        6,
        4,
        4,
        3,
    )
    with pytest.raises(ValueError, match="height=12"):
        layer.compute_output_shape((None, 12, 16, 3))
    with pytest.raises(ValueError, match="static image sizes"):
        layer.compute_output_shape((None, None, 16, 3))


def test_config_holds_the_patch_size():
    # The round trips are in `test_layer_checks`.
    assert PatchExtractor(4).get_config()["patch_size"] == 4
