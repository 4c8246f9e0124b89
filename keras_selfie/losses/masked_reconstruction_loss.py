import keras
from keras import ops

from keras_selfie.losses.pixel_loss import PixelLoss
from keras_selfie.losses.pixel_loss import squeeze_pixel_weights

# Below this total weight an image counts as having no pixel to score (its
# loss is 0, not NaN).
_EPSILON = 1e-12


def masked_squared_error(y_true, y_pred, pixel_weights=None):
    """The weighted mean squared error of each image's pixels.

    `sum_p w_p * mean_c (y_pred - y_true)^2 / sum_p w_p` over the pixels
    `p` of each image, the squared error averaged over its channels `c`:
    with 0/1 weights, the mean squared error over the pixels whose weight
    is 1, and the pixels of weight 0 count for nothing, whatever is
    predicted there. An image whose weights are all 0 gets 0.

    Args:
        y_true: the target images, `(batch, height, width, channels)`.
        y_pred: the predicted images, same shape.
        pixel_weights: `None` (every pixel weight 1: the plain mean squared
            error) or non-negative weights `(batch, height, width)` (or
            `(batch, height, width, 1)`).

    Returns:
        `(batch,)`: one value per image.
    """
    squared = ops.mean(ops.square(y_pred - y_true), axis=-1)
    if pixel_weights is None:
        return ops.mean(squared, axis=(1, 2))
    pixel_weights = squeeze_pixel_weights(pixel_weights, squared.dtype)
    total = ops.sum(pixel_weights * squared, axis=(1, 2))
    weight = ops.sum(pixel_weights, axis=(1, 2))
    return total / ops.maximum(weight, ops.cast(_EPSILON, weight.dtype))


@keras.saving.register_keras_serializable(package="keras_selfie")
class MaskedReconstructionLoss(PixelLoss):
    """L2 reconstruction loss over chosen pixels, weighted per pixel.

    The loss of the reconstruction pretext tasks: context-encoder
    inpainting scores the pixels it hid (and, at a larger weight, a thin
    band of context around them), super-resolution every pixel. Each
    image's value is `masked_squared_error`: the weighted mean of its
    pixels' squared errors (averaged over channels), so pixels of weight 0
    have no effect on the loss or its gradient. With the default reduction
    the result is the mean over the images; as a `keras.losses.Loss`,
    Keras divides it by the number of replicas under a `tf.distribute`
    strategy, so that summed gradients equal the global mean.

    Args:
        reduction: type of reduction; see `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss instance.
        dtype: dtype of the loss computation. Defaults to float32.

    Call arguments:
        y_true: the target images `(batch, height, width, channels)`, every
            pixel of weight 1; or a pair `(targets, pixel_weights)` with
            non-negative `pixel_weights` of shape `(batch, height, width)`.
        y_pred: the reconstructed images, the targets' shape.
        sample_weight: optional weights of the images, `(batch,)`.

    Example:

    ```python
    loss = keras_selfie.losses.MaskedReconstructionLoss()
    targets = np.zeros((1, 4, 4, 3), "float32")
    predicted = np.ones((1, 4, 4, 3), "float32")
    mask = np.zeros((1, 4, 4), "float32")
    mask[:, 1:3, 1:3] = 1
    predicted[:, 1:3, 1:3] = 0.5  # the masked pixels: error 0.25
    loss((targets, mask), predicted)  # 0.25; the other pixels are ignored
    loss(targets, predicted)  # 0.8125, every pixel
    ```

    Reference:
     - [Pathak et al., 2016](https://arxiv.org/abs/1604.07379), Eq. 1
       (the masked L2 reconstruction loss).
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="masked_reconstruction_loss",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)

    def per_image(self, targets, predictions, pixel_weights=None):
        return masked_squared_error(targets, predictions, pixel_weights)
