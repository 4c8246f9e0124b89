"""Transformations a pretext task applies inside its training step.

Unlike `augment` (per-image `tf.data` augmentation before batching), these
run on batches with `keras.ops` inside the model, so that XLA compiles them
and every replica of a `tf.distribute` strategy applies them to its rows.
"""

from keras import ops

from keras_selfie.utils.validation import check_choice

ROTATIONS = (0, 1, 2, 3)


def rotate90(images, k):
    """Rotates a batch of square images by `k` quarter turns.

    Counter-clockwise, as `numpy.rot90(image, k)` turns each image.

    Args:
        images: `(batch, size, size, channels)`.
        k: 0, 1, 2 or 3: 0, 90, 180 or 270 degrees.

    Returns:
        The rotated images, same shape and dtype.
    """
    k = check_choice("k", k, ROTATIONS)
    if images.shape[1] != images.shape[2]:
        raise ValueError(
            "`images` must be square to be rotated by quarter turns. "
            f"Received shape={tuple(images.shape)}"
        )
    return ops.rot90(images, k=k, axes=(1, 2))
