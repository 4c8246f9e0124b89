"""Per-pixel cross-entropy with soft targets, and colorization's class
rebalancing (Zhang, Isola, Efros, 2016, Section 2.2)."""

import keras
import numpy as np
from keras import ops

from keras_selfie.losses.pixel_loss import PixelLoss
from keras_selfie.losses.pixel_loss import squeeze_pixel_weights
from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_non_negative


def pixel_crossentropy(y_true, logits, pixel_weights=None):
    """Each image's mean weighted cross-entropy of its pixels.

    `mean_p w_p * (-sum_q y_true[p, q] log softmax(logits[p])_q)` over the
    pixels `p` of each image: the paper's Eq. 2, `-sum_p v(Z_p) sum_q Z_pq
    log Zhat_pq`, divided by the number of pixels.

    Args:
        y_true: target distributions `(batch, height, width, classes)`.
        logits: scores of the same shape.
        pixel_weights: `None` (every pixel weight 1) or non-negative
            weights `(batch, height, width)` (or `(batch, height, width,
            1)`).

    Returns:
        `(batch,)`: one value per image.
    """
    crossentropy = -ops.sum(
        y_true * ops.log_softmax(logits, axis=-1), axis=-1
    )
    if pixel_weights is not None:
        crossentropy = crossentropy * squeeze_pixel_weights(
            pixel_weights, crossentropy.dtype
        )
    return ops.mean(crossentropy, axis=(1, 2))


@keras.saving.register_keras_serializable(package="keras_selfie")
class PixelCrossentropyLoss(PixelLoss):
    """Cross-entropy of a per-pixel classification, weighted per pixel.

    The loss of colorization (its Eq. 2): every pixel's predicted
    distribution over the ab bins against its soft-encoded colour, each
    pixel weighted by the rebalancing weight of its colour
    (`rebalancing_weights`). Each image's value is `pixel_crossentropy`:
    the mean of its pixels' weighted cross-entropies. With the default
    reduction the result is the mean over the images; as a
    `keras.losses.Loss`, Keras divides it by the number of replicas under
    a `tf.distribute` strategy, so that summed gradients equal the global
    mean.

    Args:
        reduction: type of reduction; see `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss instance.
        dtype: dtype of the loss computation. Defaults to float32.

    Call arguments:
        y_true: target distributions `(batch, height, width, classes)`,
            every pixel of weight 1; or a pair `(targets, pixel_weights)`
            with non-negative `pixel_weights` of shape `(batch, height,
            width)`.
        y_pred: logits, the targets' shape.
        sample_weight: optional weights of the images, `(batch,)`.

    Example:

    ```python
    loss = keras_selfie.losses.PixelCrossentropyLoss()
    targets = np.zeros((1, 2, 2, 3), "float32")
    targets[..., 0] = 1
    logits = np.zeros((1, 2, 2, 3), "float32")
    loss(targets, logits)  # log(3) = 1.0986
    loss((targets, np.full((1, 2, 2), 2.0, "float32")), logits)  # 2.1972
    ```

    Reference:
     - [Zhang et al., 2016](https://arxiv.org/abs/1603.08511), Eq. 2.
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="pixel_crossentropy_loss",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)

    def per_image(self, targets, predictions, pixel_weights=None):
        return pixel_crossentropy(targets, predictions, pixel_weights)


def _check_prior(prior, bins):
    prior = np.asarray(prior, dtype="float64")
    if prior.shape != (len(bins),) or not np.all(prior >= 0) or not (
        prior.sum() > 0
    ):
        raise ValueError(
            f"Argument `prior` must be {len(bins)} non-negative numbers, one "
            "per bin, with a positive sum. Received: prior of shape "
            f"{prior.shape}"
        )
    return prior / prior.sum()


def smoothed_prior(prior, bins, sigma=5.0):
    """The prior smoothed by a Gaussian kernel on the ab plane.

    `p~_q ∝ sum_r p_r exp(-|c_q - c_r|^2 / (2 sigma^2))` over the bin
    centres `c`, normalised to sum to 1: the paper's smoothing of the
    empirical prior (Section 2.2), what `scipy.ndimage.gaussian_filter`
    of the prior on the ab grid gives at the bins, up to its truncation.

    Args:
        prior: `(Q,)` non-negative numbers with a positive sum, one per
            bin (normalised here).
        bins: `(Q, 2)` bin centres (`data.ab_gamut_bins`).
        sigma: number >= 0, the kernel's width in ab units (default 5, the
            paper's); 0 leaves the prior as it is.

    Returns:
        A float64 NumPy array `(Q,)` that sums to 1.
    """
    bins = np.asarray(bins, dtype="float64")
    prior = _check_prior(prior, bins)
    check_non_negative("sigma", sigma)
    if sigma == 0:
        return prior
    squared = np.sum((bins[:, None] - bins[None]) ** 2, axis=-1)
    smoothed = np.exp(-squared / (2 * sigma**2)) @ prior
    return smoothed / smoothed.sum()


def rebalancing_weights(prior, bins, rebalancing_lambda=0.5, sigma=5.0):
    """The paper's class-rebalancing weight of every ab bin (Eq. 3, 4).

    `w ∝ ((1 - lambda) p~ + lambda / Q)^-1`, with `p~` the prior smoothed
    by `smoothed_prior`, normalised so that `sum_q p~_q w_q = 1`: under
    the smoothed prior a pixel's expected weight is 1. Rare colours weigh
    more; `lambda = 1` weighs every bin 1 (no rebalancing), `lambda = 0`
    divides by the prior itself.

    Args:
        prior: `(Q,)` non-negative numbers with a positive sum, one per
            bin (normalised here).
        bins: `(Q, 2)` bin centres (`data.ab_gamut_bins`).
        rebalancing_lambda: number in `[0, 1]`, the weight of the uniform
            distribution in the mixture (default 0.5, the paper's).
        sigma: number >= 0, the smoothing of the prior (default 5).

    Returns:
        A float64 NumPy array `(Q,)` of positive weights.
    """
    rebalancing_lambda = check_fraction(
        "rebalancing_lambda", rebalancing_lambda, include_one=True
    )
    smoothed = smoothed_prior(prior, bins, sigma)
    mixture = (1 - rebalancing_lambda) * smoothed + rebalancing_lambda / len(
        smoothed
    )
    if not np.all(mixture > 0):
        raise ValueError(
            "Argument `rebalancing_lambda` must be > 0 when the smoothed "
            "prior is 0 at some bin (its weight would be infinite). "
            f"Received: rebalancing_lambda={rebalancing_lambda}"
        )
    weights = 1 / mixture
    return weights / np.sum(smoothed * weights)
