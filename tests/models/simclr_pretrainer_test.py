"""SimCLRPretrainer and its transforms, on made inputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfie
from conftest import TINY_BACKBONE
from keras_selfie.data import transforms
from keras_selfie.losses import nt_xent

BACKBONE = TINY_BACKBONE
# Every augmentation off: each view is the image itself.
NO_AUGMENTATION = dict(
    crop_scale=(1.0, 1.0), crop_aspect_ratio=(1.0, 1.0), flip_probability=0,
    color_strength=0, grayscale_probability=0,
)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _images(count=3, seed=1, size=32):
    return np.random.default_rng(seed).uniform(
        size=(count, size, size, 3)
    ).astype("float32")


# --- transforms -----------------------------------------------------------


def test_crop_and_resize_whole_image_and_tf_resize():
    images = _images(2, size=8)
    whole = np.array([[0, 0, 8, 8]] * 2, "float32")
    np.testing.assert_allclose(
        _np(transforms.crop_and_resize(images, whole)), images, atol=1e-6
    )
    # The whole image to another size is tf.image.resize (half-pixel
    # centres, no antialiasing, the border repeated).
    np.testing.assert_allclose(
        _np(transforms.crop_and_resize(images, whole, size=(12, 16))),
        tf.image.resize(images, (12, 16), "bilinear").numpy(), atol=1e-5,
    )
    # A box: where the sampled positions fall inside it, tf.image.resize of
    # the cropped pixels (at its edges ours reads the image's pixels
    # beyond the box, tf's repeats the crop's edge).
    boxes = np.array([[2, 1, 4, 6], [0, 3, 5, 5]], "float32")
    actual = _np(transforms.crop_and_resize(images, boxes))
    for image, (top, left, height, width), out in zip(images, boxes, actual):
        crop = image[int(top):int(top + height), int(left):int(left + width)]
        expected = tf.image.resize(crop, (8, 8), "bilinear").numpy()
        y = (np.arange(8) + 0.5) * height / 8 - 0.5
        x = (np.arange(8) + 0.5) * width / 8 - 0.5
        inside = np.ix_((y >= 0) & (y <= height - 1),
                        (x >= 0) & (x <= width - 1))
        assert inside[0].size * inside[1].size >= 16
        np.testing.assert_allclose(out[inside], expected[inside], atol=1e-5)


def test_resized_crop_boxes_fit_with_the_drawn_area_and_ratio():
    draws = np.random.default_rng(0).uniform(size=(500, 10, 4))
    boxes = _np(transforms.resized_crop_boxes(
        draws.astype("float32"), (32, 32), (0.08, 1.0), (3 / 4, 4 / 3)
    ))
    top, left, height, width = boxes.T
    assert np.all(top >= 0) and np.all(left >= 0)
    assert np.all(top + height <= 32 + 1e-4)
    assert np.all(left + width <= 32 + 1e-4)
    area = height * width / 32**2
    assert area.min() >= 0.08 - 1e-5 and area.max() <= 1 + 1e-5
    ratio = width / height
    assert ratio.min() >= 3 / 4 - 1e-5 and ratio.max() <= 4 / 3 + 1e-5
    # The first attempt that fits: area 1/4 and ratio 1 (u = 0.5 in
    # [log 1/2, log 2]) fits at (0.5 * 16, 0.25 * 16).
    draw = np.array([[[0.99, 0.99, 0, 0], [0.25, 0.5, 0.5, 0.25]]],
                    "float32")
    box = _np(transforms.resized_crop_boxes(draw, (32, 32), (0, 1),
                                            (0.5, 2.0)))
    np.testing.assert_allclose(box, [[8, 4, 16, 16]], rtol=1e-5)
    # None fits (area 1 at ratio 2): the whole image.
    box = _np(transforms.resized_crop_boxes(
        np.full((1, 3, 4), 0.5, "float32"), (32, 32), (1, 1), (2, 2)
    ))
    np.testing.assert_allclose(box, [[0, 0, 32, 32]])


def test_flip_grayscale_and_blur():
    images = _images(2, size=6)
    flipped = _np(transforms.flip_left_right(images, np.array([True, False])))
    np.testing.assert_array_equal(flipped[0], images[0][:, ::-1])
    np.testing.assert_array_equal(flipped[1], images[1])
    grey = _np(transforms.grayscale(images))
    expected = tf.image.rgb_to_grayscale(images).numpy()
    np.testing.assert_allclose(grey, np.repeat(expected, 3, -1), atol=1e-6)
    # Blur: a separable Gaussian with the border mirrored, against NumPy.
    sigma = np.array([0.5, 2.0], "float32")
    blurred = _np(transforms.gaussian_blur(images, sigma, 3))
    for image, s, out in zip(images, sigma, blurred):
        weights = np.exp(-np.arange(-1, 2) ** 2 / (2 * s**2))
        weights /= weights.sum()
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="symmetric")
        rows = sum(w * padded[k:k + 6] for k, w in enumerate(weights))
        expected = sum(w * rows[:, k:k + 6] for k, w in enumerate(weights))
        np.testing.assert_allclose(out, expected, atol=1e-6)
    constant = np.full((1, 6, 6, 3), 0.3, "float32")
    np.testing.assert_allclose(
        _np(transforms.gaussian_blur(constant, [1.0], 5)), constant,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="kernel_size=4"):
        transforms.gaussian_blur(images, sigma, 4)


def test_color_jitter_matches_tf_image():
    images = _images(2, size=5)
    one, zero = np.ones(2, "float32"), np.zeros(2, "float32")
    np.testing.assert_allclose(
        _np(transforms.color_jitter(images, zero, one, one, zero)), images,
        atol=1e-5,
    )
    delta = np.array([0.3, -0.2], "float32")
    factor = np.array([1.4, 0.6], "float32")
    hue = np.array([0.1, -0.15], "float32")
    cases = [
        ((delta, one, one, zero), tf.image.adjust_brightness),
        ((zero, factor, one, zero), tf.image.adjust_contrast),
        ((zero, one, factor, zero), tf.image.adjust_saturation),
        ((zero, one, one, hue), tf.image.adjust_hue),
    ]
    for arguments, reference in cases:
        changed = [a for a in arguments if not (np.all(a == 0) or np.all(
            a == 1))][0]
        actual = _np(transforms.color_jitter(images, *arguments))
        expected = np.stack([
            np.clip(reference(image, value).numpy(), 0, 1)
            for image, value in zip(images, changed)
        ])
        np.testing.assert_allclose(actual, expected, atol=1e-5)


# --- the pretrainer ---------------------------------------------------------


def _seen_by_backbone(model, images):
    """The views the backbone sees in one call."""
    seen = []
    original = model.patch_network
    model.patch_network = lambda x, training=None: (seen.append(_np(x)),
                                                    original(x))[1]
    try:
        outputs = model(images, training=False)
    finally:
        model.patch_network = original
    return seen[0], outputs


def test_views_rows_and_positives():
    """Rows 0..B-1 are the first views, B..2B-1 the second; view i's
    positive is view B + i, and without augmentation both views are the
    image, so every positive is a perfect match (cosine 1)."""
    model = keras_selfie.SimCLRPretrainer(
        **BACKBONE, **NO_AUGMENTATION, seed=0
    )
    images = (_images(3) * 255).astype("uint8")
    views, outputs = _seen_by_backbone(model, images)
    scaled = images.astype("float32") / 255
    np.testing.assert_allclose(views[:3], scaled, atol=1e-6)
    np.testing.assert_allclose(views[3:], scaled, atol=1e-6)
    np.testing.assert_array_equal(_np(outputs["labels"]), [3, 4, 5, 0, 1, 2])
    logits = _np(outputs["logits"])
    assert logits.shape == (6, 6)
    assert outputs["projections"].shape == (6, 128)
    np.testing.assert_allclose(
        logits[np.arange(6), [3, 4, 5, 0, 1, 2]], 1 / 0.5, rtol=1e-4
    )
    # The loss is NT-Xent of the projections' two halves.
    projections = _np(outputs["projections"])
    np.testing.assert_allclose(
        _np(model.compute_loss(y_pred=outputs)),
        np.mean(_np(nt_xent(projections[:3], projections[3:], 0.5))),
        rtol=1e-5,
    )


def test_augmentations_and_their_draws():
    model = keras_selfie.SimCLRPretrainer(**BACKBONE, seed=0)
    parameters = {
        key: _np(value) for key, value in model.sample_views(2000).items()
    }
    # Each view draws its own: the paper's probabilities and strengths
    # (s = 0.5: brightness within 0.4, factors in [0.6, 1.4], hue 0.1).
    assert abs(parameters["jitter"].mean() - 0.8) < 0.03
    assert abs(parameters["grayscale"].mean() - 0.2) < 0.03
    assert abs(parameters["flip"].mean() - 0.5) < 0.03
    assert not parameters["blur"].any()
    assert np.abs(parameters["brightness"]).max() <= 0.4
    for name in ("contrast", "saturation"):
        assert parameters[name].min() >= 0.6
        assert parameters[name].max() <= 1.4
    assert np.abs(parameters["hue"]).max() <= 0.1
    assert not np.allclose(parameters["boxes"][:2000],
                           parameters["boxes"][2000:])
    # Flip, grey and blur always on: the views are grey, mirrored and
    # blurred images (crop off).
    model = keras_selfie.SimCLRPretrainer(
        **BACKBONE, **{**NO_AUGMENTATION, "flip_probability": 1,
                       "grayscale_probability": 1, "blur_probability": 1},
        seed=0,
    )
    images = _images(2)
    views, _ = _seen_by_backbone(model, images)
    assert model.blur_kernel_size == 3
    np.testing.assert_allclose(views[..., 0], views[..., 2], atol=1e-6)
    sharp = _np(transforms.grayscale(images[:, :, ::-1]))
    assert 1e-3 < np.abs(views[:2] - sharp).max() < 0.5


def test_projection_head_depth_width_and_transfer():
    model = keras_selfie.SimCLRPretrainer(
        **BACKBONE, projection_layers=3, projection_hidden_dim=16,
        projection_dim=8, seed=0,
    )
    assert [tuple(w.shape) for w in model.projection_head.weights] == [
        (128, 16), (16,), (16, 16), (16,), (16, 8), (8,)
    ]
    assert model.feature_extractor() is model.patch_network
    assert not any("projection" in name
                   for name in model.transfer_layer_names())
    # The paper's head: hidden width d.
    model = keras_selfie.SimCLRPretrainer(**BACKBONE, seed=0)
    assert [tuple(w.shape) for w in model.projection_head.weights] == [
        (128, 128), (128,), (128, 128), (128,)
    ]
    assert model.metric_directions() == {
        "loss": "min", "contrastive_accuracy": "max"
    }
    assert model.chance_accuracy(4) == 1 / 7
    assert "chance = 0.1429" in model.task_description(4)


def test_fit_reports_contrastive_accuracy_and_config_round_trip():
    model = keras_selfie.SimCLRPretrainer(
        **BACKBONE, projection_layers=0, temperature=0.2, seed=1
    )
    assert model.projection_head.weights == []
    model.compile(optimizer="sgd", run_eagerly=True)
    history = model.fit(_images(4), batch_size=4, epochs=1, verbose=0)
    assert sorted(history.history) == ["contrastive_accuracy", "loss"]
    clone = keras_selfie.SimCLRPretrainer.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.pretext_loss.temperature == 0.2
    assert keras_selfie.methods.get("simclr") is keras_selfie.SimCLRPretrainer


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0}, "temperature=0"),
        ({"projection_layers": -1}, "projection_layers=-1"),
        ({"projection_dim": 0}, "projection_dim=0"),
        ({"crop_scale": (0.0, 1.0)}, "crop_scale"),
        ({"crop_scale": (0.5, 1.5)}, "crop_scale"),
        ({"crop_aspect_ratio": (2.0, 1.0)}, "crop_aspect_ratio"),
        ({"flip_probability": 1.5}, "flip_probability=1.5"),
        ({"color_strength": -1}, "color_strength=-1"),
        ({"blur_sigma": (0, 1)}, "blur_sigma"),
        ({"num_channels": 1}, "color_strength.*num_channels=3"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_selfie.SimCLRPretrainer(**{**BACKBONE, **kwargs})
