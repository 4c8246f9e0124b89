import keras
from keras import ops

from keras_selfie.utils.validation import check_image_dtype


def check_finite(images, name="images"):
    """Stops with an error naming `name` when float images hold NaN or Inf.

    A no-op for integer images and on other backends than TensorFlow. Inside
    an XLA-compiled function (`jit_compile=True`) XLA drops the check; use
    `keras.callbacks.TerminateOnNaN` there.

    Raises:
        tf.errors.InvalidArgumentError: when the values are checked (eagerly,
            in a `tf.function` or a `tf.data` map) and one is not finite.
    """
    dtype = keras.backend.standardize_dtype(images.dtype)
    if keras.backend.backend() != "tensorflow" or dtype == "uint8":
        return images
    import tensorflow as tf

    return tf.debugging.check_numerics(
        images,
        f"`{name}` hold NaN or infinite values: the data is corrupt (a "
        "float array with missing values, or a normalisation that divided "
        "by zero); Selfie cannot train or evaluate on it",
    )


def scale_images(images, dtype="float32"):
    """Scales images to the range the patch network was trained on.

    uint8 images are divided by 255 into `[0, 1]`; floating-point images are
    used as they are, after `check_finite`. `SelfiePretrainer` and the
    evaluation functions share this rule, so P sees the same values in
    pretraining and evaluation.

    Args:
        images: tensor of images, uint8 (0-255) or floating point.
        dtype: dtype of the result.

    Returns:
        `images` as `dtype`.
    """
    source = check_image_dtype("images", images.dtype)
    images = ops.cast(check_finite(images), dtype)
    if source == "uint8":
        images = images / 255.0
    return images
