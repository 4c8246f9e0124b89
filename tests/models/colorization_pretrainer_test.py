"""ColorizationPretrainer on made inputs, against NumPy references."""

import keras
import numpy as np
import pytest

import keras_selfie
from conftest import TINY_BACKBONE
from conftest import backbone_inputs
from conftest import uint8_images
from keras_selfie.data import color

SMALL = {**TINY_BACKBONE, "decoder_filters": 16}


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _lab(images):
    return _np(color.rgb_to_lab(images.astype("float32") / 255.0))


def _soft_encode(ab, bins, k=5, sigma=5.0):
    # The paper's soft encoding, one pixel at a time.
    flat = ab.reshape(-1, 2).astype("float64")
    targets = np.zeros((len(flat), len(bins)))
    for row, value in enumerate(flat):
        distances = np.sum((bins - value) ** 2, axis=-1)
        nearest = np.argsort(distances, kind="stable")[:k]
        kernel = np.exp(-distances[nearest] / (2 * sigma**2))
        targets[row, nearest] = kernel / kernel.sum()
    return targets.reshape(*ab.shape[:-1], len(bins))


def test_p_sees_the_lightness_and_the_untrained_model_predicts_the_prior():
    model = keras_selfie.ColorizationPretrainer(**SMALL, seed=0)
    images = uint8_images()
    seen, outputs = backbone_inputs(model, images, "feature_map")
    outputs = {k: _np(v) for k, v in outputs.items()}
    lab = _lab(images)
    # P sees L / 100, the same in its 3 channels.
    np.testing.assert_allclose(
        seen, np.repeat(lab[..., :1] / 100, 3, axis=-1), atol=1e-6
    )
    np.testing.assert_array_equal(outputs["inputs"], seen)
    np.testing.assert_allclose(outputs["ab"], lab[..., 1:], atol=1e-4)
    # The output grid: 8x8 cells of 4x4 pixels, each the mean colour.
    np.testing.assert_allclose(
        outputs["grid_ab"],
        lab[..., 1:].reshape(3, 8, 4, 8, 4, 2).mean(axis=(2, 4)), atol=1e-4,
    )
    assert outputs["logits"].shape == (3, 8, 8, 229)
    # Untrained: the smoothed prior's logits in every cell, its annealed
    # mean everywhere, and at T = 1 its mean colour.
    prior = model.smoothed_prior
    np.testing.assert_allclose(
        outputs["logits"], np.broadcast_to(np.log(prior), (3, 8, 8, 229)),
        atol=1e-5,
    )
    annealed = prior ** (1 / 0.38)
    annealed = annealed / annealed.sum() @ model.bins
    np.testing.assert_allclose(
        outputs["predicted_ab"], np.broadcast_to(annealed, (3, 32, 32, 2)),
        atol=1e-3,
    )
    np.testing.assert_allclose(
        _np(model.predict_ab(images, temperature=1.0)),
        np.broadcast_to(prior @ model.bins, (3, 32, 32, 2)), atol=1e-3,
    )


def test_loss_and_metrics_equal_numpy_references():
    model = keras_selfie.ColorizationPretrainer(**SMALL, seed=0)
    images = uint8_images(count=2)
    outputs = {k: _np(v) for k, v in model(images).items()}
    grid_ab = outputs["grid_ab"]
    targets = _soft_encode(grid_ab, model.bins)
    np.testing.assert_allclose(outputs["targets"], targets, atol=1e-5)
    # Each cell weighs the rebalancing weight of its colour's nearest bin.
    nearest = np.argmin(
        np.sum((grid_ab[..., None, :] - model.bins) ** 2, axis=-1), axis=-1
    )
    weights = model.class_weights[nearest]
    np.testing.assert_allclose(outputs["pixel_weights"], weights, rtol=1e-6)
    logits = np.random.default_rng(0).normal(
        size=outputs["logits"].shape
    ).astype("float32")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    expected = np.mean(weights * -(targets * log_softmax).sum(-1))
    y_pred = {**outputs, "logits": logits}
    assert float(model.compute_loss(y_pred=y_pred)) == pytest.approx(
        expected, rel=1e-5
    )
    # ab_error: the mean distance of each pixel's predicted ab to its own;
    # bin_accuracy: cells whose best bin is their colour's nearest.
    model.update_task_metrics(y_pred)
    metrics = {k: float(v) for k, v in model.get_metrics_result().items()}
    distance = np.sqrt(np.sum(
        (outputs["predicted_ab"] - outputs["ab"]) ** 2, axis=-1
    ))
    assert metrics["ab_error"] == pytest.approx(distance.mean(), rel=1e-5)
    assert metrics["bin_accuracy"] == pytest.approx(
        np.mean(logits.argmax(-1) == nearest)
    )
    assert set(metrics) | {"loss"} == set(model.metric_directions())


def test_l2_regresses_ab_from_grey():
    model = keras_selfie.ColorizationPretrainer(
        **SMALL, loss_type="l2", seed=0
    )
    images = uint8_images(count=2)
    outputs = {k: _np(v) for k, v in model(images).items()}
    assert "logits" not in outputs
    # Untrained: grey. The loss is the mean squared error of the grid's ab
    # in units of 100.
    np.testing.assert_allclose(outputs["grid_predicted_ab"], 0, atol=1e-6)
    prediction = np.random.default_rng(1).normal(
        0, 30, outputs["grid_ab"].shape
    ).astype("float32")
    loss = model.compute_loss(
        y_pred={**outputs, "grid_predicted_ab": prediction}
    )
    assert float(loss) == pytest.approx(
        np.mean(((prediction - outputs["grid_ab"]) / 100) ** 2), rel=1e-5
    )


def test_colorize_a_grey_picture_red():
    model = keras_selfie.ColorizationPretrainer(**SMALL, seed=0)
    red_bin = int(np.argmin(np.sum((model.bins - [80, 60]) ** 2, axis=-1)))
    # A decoder made to score red's bin far above the others everywhere.
    pixels = model.decoder.get_layer("pixels")
    bias = np.zeros(pixels.bias.shape, "float32")
    bias[red_bin] = 50.0
    pixels.bias.assign(bias)
    # Grey at the lightness of pure red, as 1 channel and as RGB.
    grey_level = _np(color.lab_to_rgb(np.array([53.24, 0.0, 0.0])))[0]
    grey = np.full((2, 32, 32, 1), grey_level, "float32")
    np.testing.assert_allclose(_np(model.predict_ab(grey)), np.broadcast_to(
        [80.0, 60.0], (2, 32, 32, 2)), atol=1e-3)
    pictures = _np(model.colorize(grey))
    assert pictures.shape == (2, 32, 32, 3) and pictures.dtype == "float32"
    expected = np.clip(_np(color.lab_to_rgb(np.array([53.24, 80.0, 60.0]))),
                       0, 1)
    np.testing.assert_allclose(pictures, np.broadcast_to(
        expected, pictures.shape), atol=1e-3)
    # Red: (1, 0, 0) up to the bin's distance from red's own ab.
    assert expected[0] > 0.95 and expected[1] < 0.1 and expected[2] < 0.25
    np.testing.assert_allclose(
        _np(model.colorize(np.repeat(grey, 3, axis=-1))), pictures,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_channels": 1}, "`num_channels` must be 3.*num_channels=1"),
        ({"loss_type": "l1"}, "`loss_type`.*'l1'"),
        ({"rebalancing_lambda": 1.5}, "`rebalancing_lambda`.*1.5"),
        ({"temperature": 0}, "`temperature`"),
        ({"sigma": 0}, "`sigma`"),
        ({"prior_sigma": -1}, "`prior_sigma`"),
        ({"num_neighbors": 230}, "`num_neighbors` must be at most.*229"),
        ({"grid_size": 20}, "`prior`='cifar10'.*grid_size=10"),
        ({"prior": [1.0, 2.0]}, "`prior` must be.*229.*shape \\(2,\\)"),
        ({"prior": "imagenet"}, "`prior`.*'imagenet'"),
        ({"prior": [-1.0] * 229}, "`prior` must be.*non-negative"),
        ({"output_stride": 3}, "`output_stride` must divide the image"),
        ({"output_stride": 8}, "`output_stride` must divide 4"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_selfie.ColorizationPretrainer(**{**SMALL, **kwargs})


def test_config_round_trip_keeps_the_prior():
    prior = np.arange(1, 230) / 1000
    model = keras_selfie.ColorizationPretrainer(
        **SMALL, prior=prior, rebalancing_lambda=0.25, temperature=0.5,
        num_neighbors=10, output_stride=2, seed=2,
    )
    config = model.get_config()
    clone = keras_selfie.ColorizationPretrainer.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_array_equal(clone.class_weights, model.class_weights)
    assert clone(uint8_images(count=1))["logits"].shape == (1, 16, 16, 229)
    assert keras_selfie.methods.get("colorization") is type(model)
    assert "ab colour of 16x16 cells (229-bin classification" in (
        model.task_description(8)
    )
    grid = keras_selfie.ColorizationPretrainer(
        **SMALL, grid_size=20, prior="uniform"
    )
    np.testing.assert_allclose(
        np.sum(grid.smoothed_prior * grid.class_weights), 1, rtol=1e-9
    )
