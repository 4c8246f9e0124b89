"""The base of the losses of per-pixel predictions, weighted per pixel."""

import keras
from keras import ops


def check_pixel_targets(loss_name, y_true, y_pred):
    """Checks the inputs of a per-pixel loss with optional pixel weights.

    Args:
        loss_name: the loss class's name, for the messages.
        y_true: targets `(batch, height, width, channels)`, or a pair
            `(targets, pixel_weights)` with weights `(batch, height,
            width)` (or `(batch, height, width, 1)`).
        y_pred: predictions of the targets' shape.
    """
    targets = y_true[0] if isinstance(y_true, (tuple, list)) else y_true
    if len(y_pred.shape) != 4 or tuple(targets.shape) != tuple(
        y_pred.shape
    ):
        raise ValueError(
            f"{loss_name} expects targets and predictions of "
            "the same shape (batch, height, width, channels). Received "
            f"{tuple(targets.shape)} and {tuple(y_pred.shape)}"
        )
    if isinstance(y_true, (tuple, list)):
        weights_shape = tuple(y_true[1].shape)
        if len(y_true) != 2 or weights_shape[:3] != tuple(
            y_pred.shape[:3]
        ) or len(weights_shape) not in (3, 4) or (
            len(weights_shape) == 4 and weights_shape[3] != 1
        ):
            raise ValueError(
                f"{loss_name} expects `y_true` as targets or "
                "a pair (targets, pixel_weights) with pixel_weights of "
                f"shape {tuple(y_pred.shape[:3])}. Received pixel "
                f"weights of shape {weights_shape}"
            )


def squeeze_pixel_weights(pixel_weights, dtype):
    """`(batch, height, width)` weights in `dtype`, from that shape or
    `(batch, height, width, 1)`."""
    pixel_weights = ops.cast(pixel_weights, dtype)
    if len(pixel_weights.shape) == 4:
        pixel_weights = ops.squeeze(pixel_weights, axis=-1)
    return pixel_weights


@keras.saving.register_keras_serializable(package="keras_selfie")
class PixelLoss(keras.losses.Loss):
    """A loss of per-pixel predictions with optional pixel weights.

    Subclasses define `per_image(targets, predictions, pixel_weights=None)`,
    one value per image (`(batch,)`); this class checks the inputs and
    reduces those values over the batch (`keras.losses.Loss`'s reduction,
    divided by the number of replicas under a `tf.distribute` strategy).

    Call arguments:
        y_true: the targets `(batch, height, width, channels)`, every
            pixel of weight 1; or a pair `(targets, pixel_weights)` with
            non-negative `pixel_weights` of shape `(batch, height, width)`.
        y_pred: the predictions, the targets' shape.
        sample_weight: optional weights of the images, `(batch,)`.
    """

    def per_image(self, targets, predictions, pixel_weights=None):
        raise NotImplementedError(
            f"{type(self).__name__} must define `per_image()`."
        )

    def __call__(self, y_true, y_pred, sample_weight=None):
        check_pixel_targets(type(self).__name__, y_true, y_pred)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        if isinstance(y_true, (tuple, list)):
            return self.per_image(y_true[0], y_pred, y_true[1])
        return self.per_image(y_true, y_pred)
