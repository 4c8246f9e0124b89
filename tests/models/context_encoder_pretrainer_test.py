"""ContextEncoderPretrainer and its masked loss, on made inputs."""

import keras
import numpy as np
import pytest

import keras_selfie
from conftest import TINY_BACKBONE
from conftest import uint8_images
from keras_selfie.data import transforms
from keras_selfie.losses import MaskedReconstructionLoss
from keras_selfie.losses import masked_squared_error

BACKBONE = TINY_BACKBONE
SMALL = {**BACKBONE, "decoder_filters": 16}


def _np(x):
    return keras.ops.convert_to_numpy(x)


_images = uint8_images


def test_loss_ignores_unmasked_pixels():
    rng = np.random.default_rng(0)
    targets = rng.uniform(size=(2, 6, 5, 3)).astype("float32")
    predicted = rng.uniform(size=(2, 6, 5, 3)).astype("float32")
    mask = np.zeros((2, 6, 5), "float32")
    mask[0, 1:4, 2:4] = 1
    mask[1, 0:2, :] = 1
    loss = MaskedReconstructionLoss()
    value = float(loss((targets, mask), predicted))
    # NumPy: each image's mean squared error over its masked pixels (and
    # channels), averaged over the images.
    expected = np.mean([
        np.mean((predicted[i] - targets[i])[mask[i] == 1] ** 2)
        for i in range(2)
    ])
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    # Anything predicted outside the mask changes nothing ...
    changed = np.where(mask[..., None] == 1, predicted, 1e3).astype("float32")
    assert float(loss((targets, mask), changed)) == pytest.approx(value)
    # ... and gets no gradient.
    import tensorflow as tf

    variable = tf.Variable(predicted)
    with tf.GradientTape() as tape:
        total = loss((targets, mask), variable)
    gradient = tape.gradient(total, variable).numpy()
    assert np.all(gradient[mask == 0] == 0)
    assert np.all(np.abs(gradient[mask == 1]) > 0)
    # Plain targets: every pixel, the mean squared error.
    np.testing.assert_allclose(
        float(loss(targets, predicted)),
        np.mean((predicted - targets) ** 2), rtol=1e-6,
    )


def test_loss_weights_pixels_and_images():
    targets = np.zeros((2, 2, 2, 1), "float32")
    predicted = np.array([1.0, 2.0, 3.0, 4.0], "float32").reshape(
        1, 2, 2, 1
    ).repeat(2, axis=0)
    weights = np.array([[[1, 0], [10, 0]], [[0, 0], [0, 0]]], "float32")
    # Image 0: (1 * 1 + 10 * 9) / 11; image 1 has no pixel to score: 0.
    per_image = _np(masked_squared_error(targets, predicted, weights))
    np.testing.assert_allclose(per_image, [91 / 11, 0.0], rtol=1e-6)
    loss = MaskedReconstructionLoss()
    np.testing.assert_allclose(
        float(loss((targets, weights), predicted, sample_weight=[1.0, 0.0])),
        91 / 11 / 2, rtol=1e-6,
    )
    clone = MaskedReconstructionLoss.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="same shape"):
        loss(targets, predicted[:, :1])
    with pytest.raises(ValueError, match="pixel_weights"):
        loss((targets, weights[:, :1]), predicted)


def test_block_masks_are_where_they_claim():
    tops = np.array([[0, 5], [-2, 3]])
    lefts = np.array([[1, 4], [6, 3]])
    mask = _np(transforms.block_masks((7, 8), tops, lefts, (3, 2)))
    expected = np.zeros((2, 7, 8))
    for image in range(2):
        for top, left in zip(tops[image], lefts[image]):
            # Cut at the border.
            expected[image, max(top, 0):top + 3, max(left, 0):left + 2] = 1
    np.testing.assert_array_equal(mask, expected)
    images = np.full((2, 7, 8, 3), 0.5, "float32")
    filled = _np(transforms.fill_masked(images, mask, (0.1, 0.2, 0.3)))
    np.testing.assert_allclose(filled[mask == 1], [[0.1, 0.2, 0.3]] * int(
        mask.sum()), rtol=1e-6)
    np.testing.assert_array_equal(filled[mask == 0], 0.5)


def _seen_by_p(model, images):
    """The images P's feature map receives in one call."""
    seen = []
    original = model.feature_map
    model.feature_map = lambda x, training=None: (seen.append(_np(x)),
                                                  original(x))[1]
    try:
        outputs = model(images, training=False)
    finally:
        model.feature_map = original
    return seen[0], {key: _np(value) for key, value in outputs.items()}


def test_central_quarter_is_hidden_and_weighted():
    model = keras_selfie.ContextEncoderPretrainer(**SMALL, seed=0)
    images = _images()
    seen, outputs = _seen_by_p(model, images)
    hole = np.zeros((32, 32), bool)
    hole[8:24, 8:24] = True  # the central square of a quarter of the area
    np.testing.assert_array_equal(outputs["mask"], np.broadcast_to(
        hole, (3, 32, 32)).astype("float32"))
    scaled = images.astype("float32") / 255.0
    # P sees CIFAR-10's mean colour in the hole and the image elsewhere.
    np.testing.assert_allclose(
        seen[:, hole], np.broadcast_to(keras_selfie.data.CIFAR10_MEAN,
                                       (3, 256, 3)), rtol=1e-6)
    np.testing.assert_array_equal(seen[:, ~hole], scaled[:, ~hole])
    np.testing.assert_array_equal(outputs["inputs"], seen)
    np.testing.assert_array_equal(outputs["targets"], scaled)
    assert outputs["reconstruction"].shape == (3, 32, 32, 3)
    # Loss weights: 1 in the hole, 10 in the 2-pixel band around it.
    band = np.zeros((32, 32), bool)
    band[6:26, 6:26] = True
    band &= ~hole
    expected = np.where(hole, 1.0, np.where(band, 10.0, 0.0))
    np.testing.assert_array_equal(outputs["pixel_weights"][1], expected)
    # The model's loss and metric are those weights' and the hole's.
    reconstruction, targets = outputs["reconstruction"], outputs["targets"]
    error = np.mean((reconstruction - targets) ** 2, axis=-1)
    loss = float(model.compute_loss(y_pred=model(images, training=False)))
    np.testing.assert_allclose(
        loss, np.mean(np.sum(error * expected, (1, 2)) / expected.sum()),
        rtol=1e-5,
    )
    model.compile(optimizer="sgd")
    model.update_task_metrics(outputs)
    np.testing.assert_allclose(
        float(model.reconstruction_error_tracker.result()),
        np.mean(error[:, hole]), rtol=1e-5,
    )


def test_random_blocks_are_squares_inside_the_image():
    model = keras_selfie.ContextEncoderPretrainer(
        **SMALL, region="random_blocks", overlap=0, fill="zero", seed=0
    )
    images = _images(8)
    seen, outputs = _seen_by_p(model, images)
    masks = outputs["mask"]
    np.testing.assert_array_equal(outputs["pixel_weights"], masks)
    for mask in masks:
        # Four 8x8 blocks: between one block and a quarter of the image.
        assert 64 <= mask.sum() <= 256
        # Every hidden pixel lies in a hidden 8x8 block.
        windows = np.lib.stride_tricks.sliding_window_view(mask, (8, 8))
        full = windows.min(axis=(2, 3)) == 1
        covered = np.zeros_like(mask, bool)
        for top, left in zip(*np.nonzero(full)):
            covered[top:top + 8, left:left + 8] = True
        np.testing.assert_array_equal(covered, mask == 1)
    assert np.all(seen[masks == 1] == 0)
    # Other positions for other images and at the next step; the same
    # for the same seed.
    assert len({mask.tobytes() for mask in masks}) == 8
    _, again = _seen_by_p(model, images)
    assert not np.array_equal(again["mask"], masks)
    twin = keras_selfie.ContextEncoderPretrainer(
        **SMALL, region="random_blocks", overlap=0, fill="zero", seed=0
    )
    np.testing.assert_array_equal(_seen_by_p(twin, images)[1]["mask"], masks)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mask_size": 33}, "`mask_size` must fit.*mask_size=33"),
        ({"block_size": (8, 40)}, "`block_size` must fit"),
        ({"region": "ring"}, "`region`.*region='ring'"),
        ({"overlap": -1}, "`overlap`.*overlap=-1"),
        ({"overlap_weight": -2.0}, "`overlap_weight`"),
        ({"num_blocks": 0}, "`num_blocks`"),
        ({"fill": (0.5, 0.5)}, "`fill`.*3 numbers"),
        ({"fill": "mean", "num_channels": 1}, "`fill`='mean'.*3-channel"),
        ({"image_size": 30}, "`image_size`.*multiple.*image_size=\\(30"),
        ({"decoder_filters": 0}, "`decoder_filters`"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_selfie.ContextEncoderPretrainer(**{**SMALL, **kwargs})


def test_backbone_without_a_feature_map_is_refused():
    backbone = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3),
        keras.layers.GlobalAveragePooling2D(),
    ])
    with pytest.raises(ValueError, match="`patch_pool`"):
        keras_selfie.ContextEncoderPretrainer(**SMALL, backbone=backbone)


def test_config_round_trip():
    model = keras_selfie.ContextEncoderPretrainer(
        **SMALL, region="random_blocks", num_blocks=2, block_size=6,
        fill=(0.1, 0.2, 0.3), overlap=0, seed=2,
    )
    clone = keras_selfie.ContextEncoderPretrainer.from_config(
        model.get_config()
    )
    assert clone.get_config() == model.get_config()
    assert clone.block_size == (6, 6) and clone.fill_value == (0.1, 0.2, 0.3)
    assert model.metric_directions() == {
        "loss": "min", "reconstruction_error": "min"
    }
    assert keras_selfie.methods.get("context_encoder") is type(model)
    assert "2 random 6x6 blocks" in model.task_description(8)
