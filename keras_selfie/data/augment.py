"""Seeded per-example augmentations for `tf.data.Dataset.map`.

Every random transform here is stateless: it takes an explicit `seed`, a
shape-`(2,)` integer tensor, so the same image and seed always give the same
output (on any number of parallel map calls, and across runs). The
factories at the bottom (`pretraining_augmentation`,
`finetuning_augmentation`, `evaluation_preprocessing`) return functions
`(image, seed) -> image` that `keras_selfie.data.pipeline.make_dataset`
calls with a fresh seed per example.

Images are single, unbatched `(height, width, channels)` tensors, uint8
(0-255) or floating point. Crops and flips never change the dtype or the
values, which matters for pretraining: `SelfiePretrainer` scales uint8
images to `[0, 1]` itself and uses float images as they are, so the
recommended pretraining input is uint8 crops and flips, with no scaling or
normalisation in the pipeline (the default of `pretraining_augmentation`).
"""

import keras
import tensorflow as tf

from keras_selfie.utils.validation import check_bool
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_image_dtype
from keras_selfie.utils.validation import check_interval
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import to_pair

# Per-channel mean and standard deviation of the CIFAR-10 train split, on
# pixels scaled to [0, 1] (the standard deviation over all pixels, not the
# often quoted mean of per-image deviations, 0.2023/0.1994/0.2010).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
# The ImageNet statistics that `keras.applications` and torchvision use.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

NORMALIZATION_PRESETS = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
}
PAD_MODES = ("constant", "reflect", "symmetric")
VALUE_RANGES = ((0, 1), (-1, 1))
INTERPOLATIONS = ("bilinear", "bicubic", "area", "nearest")


def _check_image(image):
    image = tf.convert_to_tensor(image)
    if image.shape.rank is not None and image.shape.rank != 3:
        raise ValueError(
            "`image` must be a single image of rank 3 (height, width, "
            "channels); map the augmentation over an unbatched dataset. "
            f"Received shape={tuple(image.shape)}"
        )
    check_image_dtype("image", image.dtype)
    return image


def _check_value_range(value_range):
    if value_range is None:
        return None
    if isinstance(value_range, (tuple, list)) and tuple(value_range) in (
        VALUE_RANGES
    ):
        return tuple(float(v) for v in value_range)
    raise ValueError(
        f"Argument `value_range` must be one of {list(VALUE_RANGES)}"
        f" (or None to keep the dtype). Received: value_range={value_range!r}"
    )


def _check_crop_box(scale, aspect_ratio):
    """Returns `random_resized_crop`'s `(scale, aspect_ratio)`, checked."""
    return (
        check_interval("scale", scale, 0.0, 1.0),
        check_interval("aspect_ratio", aspect_ratio, 0.0, float("inf")),
    )


def _cast_like(image, dtype):
    """Casts resized (float) pixels back to `dtype`, rounding for uint8."""
    if dtype == tf.uint8:
        # Bicubic interpolation can overshoot [0, 255]; saturating is the
        # uint8 range, not a change of the pixel values.
        return tf.saturate_cast(tf.round(image), tf.uint8)
    return tf.cast(image, dtype)


def pad_and_crop(image, seed, padding=4, pad_mode="reflect"):
    """Pads an image on each side, then crops a random window of its size.

    The paper's augmentation ("pad 4 pixels and random crop back to 32x32").
    The output is a window of the padded image shifted by up to `padding`
    pixels in each direction; the dtype and the pixel values are kept.

    Args:
        image: tensor of shape `(height, width, channels)`, uint8 or float,
            with static height, width and channels.
        seed: shape-`(2,)` int32/int64 tensor; the same seed gives the same
            window.
        padding: int >= 0. Pixels added on each of the four sides.
        pad_mode: `"reflect"` (default: mirror without repeating the edge,
            so a crop holds only real image content, as the public Selfie
            reimplementations do), `"symmetric"` (mirror repeating the
            edge) or `"constant"` (zeros, black borders). The paper only
            says "pad". `"reflect"` needs `padding < min(height, width)`.

    Returns:
        A tensor with the shape and dtype of `image`.

    Example:

    ```python
    image = tf.zeros((32, 32, 3), "uint8")
    out = pad_and_crop(image, seed=tf.constant([1, 2]), padding=4)
    # out.shape == (32, 32, 3)
    ```
    """
    image = _check_image(image)
    padding = check_non_negative("padding", padding, integer=True)
    pad_mode = check_choice("pad_mode", pad_mode, PAD_MODES)
    if padding == 0:
        return image
    height, width, channels = image.shape
    if None in (height, width, channels):
        raise ValueError(
            "`image` must have a static shape for `pad_and_crop`. "
            f"Received shape={tuple(image.shape)}"
        )
    if pad_mode == "reflect" and padding >= min(height, width):
        raise ValueError(
            "Argument `padding` must be smaller than the image's height and "
            "width with pad_mode='reflect'. "
            f"Received: padding={padding}, image shape={tuple(image.shape)}"
        )
    padded = tf.pad(
        image,
        [[padding, padding], [padding, padding], [0, 0]],
        mode=pad_mode.upper(),
    )
    return tf.image.stateless_random_crop(
        padded, (height, width, channels), seed
    )


def random_flip(image, seed):
    """Flips an image left-right with probability 1/2 (seeded).

    Args:
        image: tensor of shape `(height, width, channels)`.
        seed: shape-`(2,)` int32/int64 tensor.

    Returns:
        `image` or `image[:, ::-1]`, same shape and dtype.
    """
    image = _check_image(image)
    return tf.image.stateless_random_flip_left_right(image, seed)


def random_resized_crop(
    image,
    seed,
    image_size,
    scale=(0.08, 1.0),
    aspect_ratio=(3 / 4, 4 / 3),
    interpolation="bilinear",
    max_attempts=10,
):
    """Crops a random box of random area and shape, resized to `image_size`.

    Inception-style cropping with
    `tf.image.stateless_sample_distorted_bounding_box` over the whole image:
    a box covering a fraction `scale` of the image area, with width/height
    ratio in `aspect_ratio`; if no such box is found in `max_attempts`
    tries, the whole image is used. For large images
    (224x224); on 32x32 images prefer `pad_and_crop`.

    Args:
        image: tensor of shape `(height, width, channels)`, uint8 or float.
        seed: shape-`(2,)` int32/int64 tensor.
        image_size: int or `(height, width)` of the output.
        scale: `(min, max)` fraction of the image area, in (0, 1].
        aspect_ratio: `(min, max)` width/height ratio of the box, > 0.
        interpolation: `"bilinear"`, `"bicubic"`, `"area"` or `"nearest"`.
        max_attempts: positive int, tries before falling back to the whole
            image.

    Returns:
        A tensor of shape `(*image_size, channels)` with the dtype of `image`
        (uint8 pixels are rounded after interpolation).
    """
    image = _check_image(image)
    image_size = to_pair("image_size", image_size)
    scale, aspect_ratio = _check_crop_box(scale, aspect_ratio)
    interpolation = check_choice(
        "interpolation", interpolation, INTERPOLATIONS
    )
    max_attempts = check_positive_int("max_attempts", max_attempts)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=aspect_ratio,
        area_range=scale,
        max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, size)
    resized = tf.image.resize(crop, image_size, method=interpolation)
    return tf.ensure_shape(
        _cast_like(resized, image.dtype), (*image_size, image.shape[-1])
    )


def center_crop(
    image, image_size, crop_fraction=0.875, interpolation="bilinear"
):
    """Crops the central part of an image and resizes it to `image_size`.

    The evaluation counterpart of `random_resized_crop`: the central
    `crop_fraction` of the height and width (0.875 = 224 of 256, the usual
    ImageNet evaluation crop), resized to `image_size`.

    Args:
        image: tensor of shape `(height, width, channels)`, uint8 or float.
        image_size: int or `(height, width)` of the output.
        crop_fraction: float in (0, 1], share of each side kept.
        interpolation: `"bilinear"`, `"bicubic"`, `"area"` or `"nearest"`.

    Returns:
        A tensor of shape `(*image_size, channels)` with the dtype of `image`.
    """
    image = _check_image(image)
    image_size = to_pair("image_size", image_size)
    crop_fraction = check_fraction(
        "crop_fraction", crop_fraction, include_zero=False, include_one=True
    )
    interpolation = check_choice(
        "interpolation", interpolation, INTERPOLATIONS
    )
    crop = image
    if crop_fraction < 1:
        crop = tf.image.central_crop(image, float(crop_fraction))
    if crop_fraction == 1 and tuple(image.shape[:2]) == image_size:
        return image
    resized = tf.image.resize(crop, image_size, method=interpolation)
    return tf.ensure_shape(
        _cast_like(resized, image.dtype), (*image_size, image.shape[-1])
    )


def scale_values(image, value_range=(0, 1)):
    """Converts pixels to float32 in `value_range`.

    uint8 images are read as 0-255; float images are taken to be in
    `[0, 1]` already (the convention of `SelfiePretrainer`).

    Args:
        image: tensor, uint8 or float.
        value_range: `(0, 1)` (default) or `(-1, 1)`.

    Returns:
        A float32 tensor of the same shape with values in `value_range`.
    """
    low, high = _check_value_range(value_range)
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    else:
        image = tf.cast(image, tf.float32)
    if (low, high) != (0.0, 1.0):
        image = image * (high - low) + low
    return image


def normalization_layer(mean, std):
    """A built `keras.layers.Normalization` computing `(x - mean) / std`.

    Args:
        mean: sequence of per-channel means (or a preset name,
            `"cifar10"` or `"imagenet"`, in which case `std` must be None).
        std: sequence of per-channel standard deviations, all > 0.

    Returns:
        A `keras.layers.Normalization` built for `(..., channels)` inputs.
    """
    mean, std = _resolve_normalization(mean if std is None else (mean, std))
    layer = keras.layers.Normalization(
        axis=-1, mean=list(mean), variance=[s * s for s in std]
    )
    # Built eagerly so its constants are eager tensors that any traced
    # `Dataset.map` function can capture.
    layer.build((None, None, len(mean)))
    return layer


def normalize(image, mean, std):
    """Per-channel normalisation `(image - mean) / std` in float32.

    Args:
        image: float tensor `(..., channels)`, usually from `scale_values`
            (mean and std are then in the same units, e.g. `[0, 1]`).
        mean: per-channel means, or a preset name (`"cifar10"`,
            `"imagenet"`) with `std=None`.
        std: per-channel standard deviations, all > 0.

    Returns:
        A float32 tensor of the shape of `image`.
    """
    return normalization_layer(mean, std)(tf.cast(image, tf.float32))


def _resolve_normalization(normalization):
    if normalization is None:
        return None
    if isinstance(normalization, str):
        check_choice("normalization", normalization, NORMALIZATION_PRESETS)
        return NORMALIZATION_PRESETS[normalization]
    valid = (
        isinstance(normalization, (tuple, list))
        and len(normalization) == 2
        and all(isinstance(v, (tuple, list)) for v in normalization)
        and len(normalization[0]) == len(normalization[1]) > 0
        and all(
            isinstance(s, (int, float)) and s > 0 for s in normalization[1]
        )
        and all(isinstance(m, (int, float)) for m in normalization[0])
    )
    if not valid:
        raise ValueError(
            "Argument `normalization` must be None, one of "
            f"{list(NORMALIZATION_PRESETS)}, or a pair `(mean, std)` of "
            "per-channel sequences of the same length with std > 0. "
            f"Received: normalization={normalization!r}"
        )
    mean, std = normalization
    return tuple(map(float, mean)), tuple(map(float, std))


def _output_stage(value_range, normalization):
    """Returns the final `image -> image` step (scaling, normalisation)."""
    value_range = _check_value_range(value_range)
    stats = _resolve_normalization(normalization)
    if stats is not None and value_range != (0.0, 1.0):
        raise ValueError(
            "Argument `normalization` works on pixels scaled to [0, 1]; use "
            "it with value_range=(0, 1). "
            f"Received: value_range={value_range!r}, "
            f"normalization={normalization!r}"
        )
    layer = None if stats is None else normalization_layer(*stats)

    def finish(image):
        if value_range is None:
            return image
        image = scale_values(image, value_range)
        return image if layer is None else layer(image)

    return finish


def pretraining_augmentation(
    padding=4,
    pad_mode="reflect",
    flip=True,
    value_range=None,
    normalization=None,
):
    """The paper's augmentation for Selfie pretraining.

    Pad `padding` pixels, crop back to the input size at a random offset,
    then (if `flip`) flip left-right with probability 1/2. The recommended
    combination for `SelfiePretrainer` is the default: uint8 in, uint8 out,
    no scaling in the pipeline, because the pretrainer scales uint8 images
    to `[0, 1]` itself (float images would be used as they are, so a
    normalised or `[-1, 1]` input changes what the model sees).

    Args:
        padding: int >= 0, pixels added on each side before cropping
            (4 in the paper, for 32x32 and 224x224 alike).
        pad_mode: `"reflect"` (default), `"symmetric"` or `"constant"`
            (zeros); see `pad_and_crop`.
        flip: bool, whether to flip left-right at random.
        value_range: None (default: keep the input dtype and values),
            `(0, 1)` or `(-1, 1)` (float32 output).
        normalization: None, `"cifar10"`, `"imagenet"` or `(mean, std)`,
            applied after scaling to `[0, 1]`; needs `value_range=(0, 1)`.

    Returns:
        A function `(image, seed) -> image` for unbatched images and
        shape-`(2,)` seeds.

    Example:

    ```python
    augment = keras_selfie.data.augment.pretraining_augmentation()
    train = make_dataset(images, batch_size=128, augment=augment, seed=0)
    ```
    """
    padding = check_non_negative("padding", padding, integer=True)
    pad_mode = check_choice("pad_mode", pad_mode, PAD_MODES)
    flip = check_bool("flip", flip)
    finish = _output_stage(value_range, normalization)

    def augment(image, seed):
        crop_seed, flip_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed, 2)
        )
        image = pad_and_crop(image, crop_seed, padding, pad_mode)
        if flip:
            image = random_flip(image, flip_seed)
        return finish(image)

    return augment


def finetuning_augmentation(
    image_size,
    crop="pad_and_crop",
    padding=4,
    pad_mode="reflect",
    scale=(0.08, 1.0),
    aspect_ratio=(3 / 4, 4 / 3),
    interpolation="bilinear",
    flip=True,
    value_range=(0, 1),
    normalization=None,
):
    """Training augmentation for fine-tuning the transferred ResNet.

    Args:
        image_size: int or `(height, width)` of the output images.
        crop: `"pad_and_crop"` (the paper's; the input must already be
            `image_size`, e.g. 32x32 CIFAR-10) or `"random_resized_crop"`
            (Inception-style, for large images of any size, e.g. 224).
        padding: int >= 0, for `"pad_and_crop"`.
        pad_mode: `"reflect"`, `"symmetric"` or `"constant"`, for
            `"pad_and_crop"`.
        scale: `(min, max)` area fraction, for `"random_resized_crop"`.
        aspect_ratio: `(min, max)` width/height, for `"random_resized_crop"`.
        interpolation: resizing method, for `"random_resized_crop"`.
        flip: bool, whether to flip left-right at random.
        value_range: `(0, 1)` (default), `(-1, 1)`, or None to keep the
            input dtype.
        normalization: None, `"cifar10"`, `"imagenet"` or `(mean, std)`,
            applied after scaling to `[0, 1]`.

    Returns:
        A function `(image, seed) -> image`.
    """
    image_size = to_pair("image_size", image_size)
    crop = check_choice("crop", crop, ("pad_and_crop", "random_resized_crop"))
    padding = check_non_negative("padding", padding, integer=True)
    pad_mode = check_choice("pad_mode", pad_mode, PAD_MODES)
    scale, aspect_ratio = _check_crop_box(scale, aspect_ratio)
    interpolation = check_choice(
        "interpolation", interpolation, INTERPOLATIONS
    )
    flip = check_bool("flip", flip)
    finish = _output_stage(value_range, normalization)

    def augment(image, seed):
        crop_seed, flip_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed, 2)
        )
        if crop == "pad_and_crop":
            image = _check_image(image)
            if tuple(image.shape[:2]) != image_size:
                raise ValueError(
                    "crop='pad_and_crop' keeps the input size, so images "
                    f"must be {image_size}; use crop='random_resized_crop' "
                    f"to resize. Received image shape={tuple(image.shape)}"
                )
            image = pad_and_crop(image, crop_seed, padding, pad_mode)
        else:
            image = random_resized_crop(
                image, crop_seed, image_size, scale, aspect_ratio,
                interpolation,
            )
        if flip:
            image = random_flip(image, flip_seed)
        return finish(image)

    return augment


def evaluation_preprocessing(
    image_size=None,
    crop_fraction=1.0,
    interpolation="bilinear",
    value_range=(0, 1),
    normalization=None,
):
    """Deterministic preprocessing for evaluation: resize, center crop, scale.

    Args:
        image_size: None (keep the input size) or int / `(height, width)`.
        crop_fraction: float in (0, 1]; central share of each side kept
            before resizing (1.0 for CIFAR-10, 0.875 for 224 of 256).
        interpolation: resizing method.
        value_range: `(0, 1)` (default), `(-1, 1)`, or None to keep the
            input dtype.
        normalization: None, `"cifar10"`, `"imagenet"` or `(mean, std)`.

    Returns:
        A function `(image, seed=None) -> image`; the seed is accepted (and
        ignored) so that it plugs into `make_dataset(augment=...)`.
    """
    if image_size is not None:
        image_size = to_pair("image_size", image_size)
    crop_fraction = check_fraction(
        "crop_fraction", crop_fraction, include_zero=False, include_one=True
    )
    interpolation = check_choice(
        "interpolation", interpolation, INTERPOLATIONS
    )
    finish = _output_stage(value_range, normalization)

    def preprocess(image, seed=None):
        del seed  # deterministic
        image = _check_image(image)
        size = image_size or tuple(image.shape[:2])
        if crop_fraction != 1 or size != tuple(image.shape[:2]):
            image = center_crop(image, size, crop_fraction, interpolation)
        return finish(image)

    return preprocess

