from keras import ops

from keras_selfie.utils.validation import check_image_dtype


def scale_images(images, dtype="float32"):
    """Scales images to the range the patch network was trained on.

    uint8 images are divided by 255 into `[0, 1]`; floating-point images are
    used as they are. `SelfiePretrainer` and the evaluation functions share
    this rule, so P sees the same values in pretraining and evaluation.

    Args:
        images: tensor of images, uint8 (0-255) or floating point.
        dtype: dtype of the result.

    Returns:
        `images` as `dtype`.
    """
    source = check_image_dtype("images", images.dtype)
    images = ops.cast(images, dtype)
    if source == "uint8":
        images = images / 255.0
    return images
