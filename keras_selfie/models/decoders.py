"""Light decoders from `P`'s feature map back to pixels.

The reconstruction pretext tasks (colorization, context-encoder
inpainting, super-resolution) predict a value per pixel from `P`'s last
feature map (`models.feature_map_network`), which is `feature_stride` times
smaller than the image. The decoder is thrown away at transfer, so it is
kept small: every stage doubles the resolution with bilinear upsampling
(`keras.layers.UpSampling2D`), then a 3x3 convolution, batch normalisation
and ReLU; a final 1x1 convolution gives the output channels, linear.
"""

import math

import keras

from keras_selfie.models.resnet import STAGES
from keras_selfie.models.resnet import STEMS
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int

# The stem's own stride: the ImageNet stem's stride-2 convolution and
# stride-2 max pooling; the CIFAR stem keeps the resolution.
STEM_STRIDES = {"imagenet": 4, "cifar": 1}


def feature_stride(stem, num_stages=3):
    """How many times smaller than the image `P`'s feature map is.

    Args:
        stem: `"imagenet"` or `"cifar"`, as in `models.resnet50_stages`.
        num_stages: the stages of ResNet-50 in `P` (3 for `P`).

    Returns:
        int: 4 for the CIFAR stem (8x8 maps from 32x32 images), 16 for the
        ImageNet stem (14x14 maps from 224x224 images).
    """
    check_choice("stem", stem, STEMS)
    stride = STEM_STRIDES[stem]
    for _, _, _, stage_stride in STAGES[:num_stages]:
        stride *= stage_stride
    return stride


def pixel_decoder(
    input_channels,
    output_channels,
    upsampling,
    filters=64,
    synchronized=False,
    dtype=None,
    name="pixel_decoder",
    min_stages=0,
):
    """Builds a decoder from a feature map to a per-pixel prediction.

    Args:
        input_channels: int. Channels of the feature map (`d` of `P`).
        output_channels: int. Values predicted per pixel (3 for RGB, 2 for
            ab, the number of bins for a per-pixel classification).
        upsampling: int, a power of 2. How many times larger the output is
            than the input; `log2(upsampling)` stages of 2x upsampling.
        filters: int. Filters of the first stage; each further stage halves
            them (down to 16 at least).
        synchronized: bool. Whether batch normalisation uses the global
            batch's statistics under a `tf.distribute` strategy (as the
            backbone's `synchronized_batch_norm`).
        dtype: dtype policy of the layers; `None` uses Keras' global policy.
        name: the model's name.
        min_stages: int >= 0, the fewest stages: beyond the
            `log2(upsampling)` that upsample, stages of convolution, batch
            normalisation and ReLU at the same resolution (`conv{i}_*`
            layers), e.g. so that a decoder that does not upsample is not
            a linear map of the unnormalised feature map.

    Returns:
        A functional `keras.Model` from `(batch, h, w, input_channels)` to
        `(batch, upsampling * h, upsampling * w, output_channels)`.

    Example:

    ```python
    decoder = pixel_decoder(128, 3, upsampling=4)
    decoder(np.zeros((1, 8, 8, 128))).shape  # (1, 32, 32, 3)
    ```
    """
    check_positive_int("input_channels", input_channels)
    check_positive_int("output_channels", output_channels)
    check_positive_int("filters", filters)
    check_positive_int("upsampling", upsampling)
    if upsampling & (upsampling - 1):
        raise ValueError(
            "Argument `upsampling` must be a power of 2 (1, 2, 4, 8, ...). "
            f"Received: upsampling={upsampling}"
        )
    check_non_negative("min_stages", min_stages, integer=True)
    inputs = keras.Input((None, None, input_channels), name="feature_map")
    x = inputs
    upsampling_stages = int(math.log2(upsampling))
    for stage in range(max(upsampling_stages, min_stages)):
        prefix = f"up{stage}" if stage < upsampling_stages else f"conv{stage}"
        if stage < upsampling_stages:
            x = keras.layers.UpSampling2D(
                2, interpolation="bilinear", name=prefix, dtype=dtype
            )(x)
        x = keras.layers.Conv2D(
            max(filters >> stage, 16), 3, padding="same", use_bias=False,
            name=f"{prefix}_conv", dtype=dtype,
        )(x)
        x = keras.layers.BatchNormalization(
            synchronized=synchronized, name=f"{prefix}_bn", dtype=dtype
        )(x)
        x = keras.layers.ReLU(name=f"{prefix}_relu", dtype=dtype)(x)
    outputs = keras.layers.Conv2D(
        output_channels, 1, name="pixels", dtype=dtype
    )(x)
    return keras.Model(inputs, outputs, name=name)
