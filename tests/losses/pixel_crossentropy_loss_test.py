"""PixelCrossentropyLoss and the class rebalancing, against NumPy."""

import keras
import numpy as np
import pytest

from keras_selfie import losses
from keras_selfie.data import color


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_loss_is_the_weighted_mean_crossentropy_of_the_pixels():
    rng = np.random.default_rng(0)
    targets = rng.dirichlet(np.ones(7), size=(3, 4, 5)).astype("float32")
    logits = rng.normal(size=(3, 4, 5, 7)).astype("float32")
    weights = rng.uniform(0, 3, size=(3, 4, 5)).astype("float32")
    sample_weight = np.array([1.0, 0.0, 2.0], "float32")
    per_pixel = -(targets * _log_softmax(logits.astype("float64"))).sum(-1)
    per_image = (weights * per_pixel).mean(axis=(1, 2))
    loss = losses.PixelCrossentropyLoss()
    np.testing.assert_allclose(
        float(loss((targets, weights), logits, sample_weight=sample_weight)),
        (per_image * sample_weight).mean(), rtol=1e-5,
    )
    np.testing.assert_allclose(
        float(loss(targets, logits)), per_pixel.mean(), rtol=1e-5
    )
    # (batch, height, width, 1) weights too.
    np.testing.assert_allclose(
        float(loss((targets, weights[..., None]), logits)),
        per_image.mean(), rtol=1e-5,
    )
    # The docstring's example.
    one_hot = np.zeros((1, 2, 2, 3), "float32")
    one_hot[..., 0] = 1
    assert float(loss(one_hot, np.zeros_like(one_hot))) == pytest.approx(
        np.log(3), rel=1e-6
    )
    with pytest.raises(ValueError, match="PixelCrossentropyLoss.*same shape"):
        loss(targets, logits[..., :6])
    with pytest.raises(ValueError, match="pixel_weights of shape"):
        loss((targets, weights[:, :3]), logits)
    clone = losses.PixelCrossentropyLoss.from_config(loss.get_config())
    assert float(clone(targets, logits)) == float(loss(targets, logits))
    assert keras.saving.get_registered_object(
        "keras_selfie>PixelCrossentropyLoss"
    ) is losses.PixelCrossentropyLoss


def test_smoothing_is_a_gaussian_filter_of_the_prior_on_the_ab_grid():
    ndimage = pytest.importorskip("scipy.ndimage")
    bins = color.ab_gamut_bins(10)
    prior = np.asarray(color.CIFAR10_AB_PRIOR)
    cells = ((bins + 120) // 10).astype(int)
    grid = np.zeros((25, 25))
    grid[cells[:, 0], cells[:, 1]] = prior
    # sigma 5 ab units = half a cell; truncated far beyond its reach.
    filtered = ndimage.gaussian_filter(grid, 0.5, mode="constant",
                                       truncate=10)
    expected = filtered[cells[:, 0], cells[:, 1]]
    np.testing.assert_allclose(
        losses.smoothed_prior(prior, bins, sigma=5.0),
        expected / expected.sum(), rtol=1e-9, atol=1e-15,
    )
    np.testing.assert_allclose(
        losses.smoothed_prior(prior * 3, bins, sigma=0), prior, rtol=1e-12
    )


def test_rebalancing_weights():
    bins = color.ab_gamut_bins(10)
    prior = np.asarray(color.CIFAR10_AB_PRIOR)
    smoothed = losses.smoothed_prior(prior, bins)
    weights = losses.rebalancing_weights(prior, bins)
    # The paper's Eq. 4: an expected weight of 1 under the smoothed prior,
    # inversely proportional to the mixture with the uniform distribution.
    assert np.sum(smoothed * weights) == pytest.approx(1, rel=1e-12)
    mixture = 0.5 * smoothed + 0.5 / len(bins)
    np.testing.assert_allclose(weights * mixture, (weights * mixture)[0],
                               rtol=1e-12)
    # Grey, CIFAR-10's most common bin (27% of its pixels), weighs least
    # (0.14); the rarest colours weigh 6.3.
    grey = int(np.argmax(prior))
    assert tuple(bins[grey]) == (0, 0)
    assert weights.argmin() == grey and weights[grey] < 0.2
    assert weights.max() > 5
    # lambda = 1: no rebalancing, every weight 1.
    np.testing.assert_allclose(
        losses.rebalancing_weights(prior, bins, rebalancing_lambda=1.0), 1,
        rtol=1e-12,
    )
    # lambda = 0: the inverse of the smoothed prior itself.
    inverse = losses.rebalancing_weights(prior, bins, 0.0, sigma=5.0)
    np.testing.assert_allclose(inverse, 1 / smoothed / len(bins),
                               rtol=1e-9)
    sparse = np.zeros(len(bins))
    sparse[grey] = 1
    with pytest.raises(ValueError, match="`rebalancing_lambda` must be > 0"):
        losses.rebalancing_weights(sparse, bins, 0.0, sigma=0)
    with pytest.raises(ValueError, match="`rebalancing_lambda`"):
        losses.rebalancing_weights(prior, bins, 1.5)
    with pytest.raises(ValueError, match="`prior` must be 229 non-negative"):
        losses.rebalancing_weights(prior[:10], bins)
    with pytest.raises(ValueError, match="`sigma`"):
        losses.smoothed_prior(prior, bins, sigma=-1)
