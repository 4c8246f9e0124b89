"""ResNet-50 (v1) with a choice of stem and width, named as in Keras.

Every layer carries the name `keras.applications.ResNet50` gives it
(`conv1_conv`, `conv2_block1_1_conv`, ..., `conv4_block6_out`, `conv5_...`,
`avg_pool`, `predictions`), so weights move between the patch network `P`,
this builder's networks and `keras.applications.ResNet50` by layer name.
"""

import keras

from keras_selfie.layers.fused_batch_normalization import (
    FusedBatchNormalization,
)
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_positive_int

STEMS = ("imagenet", "cifar")
# (name, bottleneck filters, blocks, stride of the first block), as in
# keras.applications.ResNet50.
STAGES = (
    ("conv2", 64, 3, 1),
    ("conv3", 128, 4, 2),
    ("conv4", 256, 6, 2),
    ("conv5", 512, 3, 2),
)
STEM_FILTERS = 64
BN_EPSILON = 1.001e-5
# Stages 1-3 (`conv1` ... `conv4`) form Selfie's patch network P; `conv5`
# is the stage that fine-tuning adds on top.
PATCH_NETWORK_STAGES = 3


def check_width(width):
    """Returns `width` if the smallest layer keeps at least one filter."""
    if (
        isinstance(width, bool)
        or not isinstance(width, (int, float))
        or width <= 0
        or round(STEM_FILTERS * width) < 1
    ):
        raise ValueError(
            "Argument `width` must be a number > 0 that leaves at least one "
            f"filter in every layer (width >= {1 / STEM_FILTERS:.4f}). "
            f"Received: width={width!r}"
        )
    return float(width)


def scaled_filters(filters, width):
    return max(1, int(round(filters * width)))


def feature_dim(width, num_stages=PATCH_NETWORK_STAGES):
    """Channels of the output of stage `num_stages` (1024 for P at width 1)."""
    _, filters, _, _ = STAGES[num_stages - 1]
    return 4 * scaled_filters(filters, width)


class _Layers:
    """Makes the builders' layers with one batch-norm mode and dtype."""

    def __init__(self, synchronized, dtype):
        self.synchronized = synchronized
        self.dtype = dtype

    def conv(self, filters, kernel_size, name, strides=1, padding="valid"):
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            name=name,
            dtype=self.dtype,
        )

    def batch_norm(self, name):
        return FusedBatchNormalization(
            axis=-1,
            epsilon=BN_EPSILON,
            synchronized=self.synchronized,
            name=name,
            dtype=self.dtype,
        )

    def relu(self, name):
        return keras.layers.Activation("relu", name=name, dtype=self.dtype)

    def pad(self, padding, name):
        return keras.layers.ZeroPadding2D(
            padding=padding, name=name, dtype=self.dtype
        )


def _stem(x, stem, width, make):
    filters = scaled_filters(STEM_FILTERS, width)
    if stem == "imagenet":
        x = make.pad(3, "conv1_pad")(x)
        x = make.conv(filters, 7, "conv1_conv", strides=2)(x)
    else:
        x = make.pad(1, "conv1_pad")(x)
        x = make.conv(filters, 3, "conv1_conv")(x)
    x = make.batch_norm("conv1_bn")(x)
    x = make.relu("conv1_relu")(x)
    if stem == "imagenet":
        x = make.pad(1, "pool1_pad")(x)
        x = keras.layers.MaxPooling2D(
            3, strides=2, name="pool1_pool", dtype=make.dtype
        )(x)
    return x


def _bottleneck_block(x, filters, stride, conv_shortcut, name, make):
    if conv_shortcut:
        shortcut = make.conv(4 * filters, 1, f"{name}_0_conv", strides=stride)(
            x
        )
        shortcut = make.batch_norm(f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = make.conv(filters, 1, f"{name}_1_conv", strides=stride)(x)
    x = make.batch_norm(f"{name}_1_bn")(x)
    x = make.relu(f"{name}_1_relu")(x)
    x = make.conv(filters, 3, f"{name}_2_conv", padding="same")(x)
    x = make.batch_norm(f"{name}_2_bn")(x)
    x = make.relu(f"{name}_2_relu")(x)
    x = make.conv(4 * filters, 1, f"{name}_3_conv")(x)
    x = make.batch_norm(f"{name}_3_bn")(x)
    x = keras.layers.Add(name=f"{name}_add", dtype=make.dtype)([shortcut, x])
    return make.relu(f"{name}_out")(x)


def resnet50_stages(
    inputs,
    stem="imagenet",
    width=1.0,
    num_stages=4,
    synchronized=False,
    dtype=None,
):
    """Applies the stem and the first `num_stages` stages of ResNet-50.

    Args:
        inputs: a Keras tensor of images, `(batch, height, width, channels)`.
        stem: `"imagenet"` (7x7 stride-2 convolution and 3x3 stride-2 max
            pool, as `keras.applications.ResNet50`) or `"cifar"` (3x3
            stride-1 convolution, no pooling, the stem of CIFAR ResNets).
        width: float. Multiplies every layer's number of filters; 1.0 is
            ResNet-50.
        num_stages: int in 1-4. 3 stops at `conv4_block6_out` (Selfie's P).
        synchronized: bool. Whether batch normalisation uses the statistics
            of the global batch under a `tf.distribute` strategy.
        dtype: dtype policy of the layers; `None` uses Keras' global policy.

    Returns:
        The output tensor of the last stage.
    """
    check_choice("stem", stem, STEMS)
    width = check_width(width)
    check_positive_int("num_stages", num_stages)
    if num_stages > len(STAGES):
        raise ValueError(
            f"Argument `num_stages` must be at most {len(STAGES)}. "
            f"Received: num_stages={num_stages}"
        )
    make = _Layers(synchronized, dtype)
    x = _stem(inputs, stem, width, make)
    for name, filters, blocks, stride in STAGES[:num_stages]:
        filters = scaled_filters(filters, width)
        for i in range(1, blocks + 1):
            x = _bottleneck_block(
                x,
                filters,
                stride=stride if i == 1 else 1,
                conv_shortcut=i == 1,
                name=f"{name}_block{i}",
                make=make,
            )
    return x


def patch_network(
    num_channels=3,
    stem="cifar",
    width=1.0,
    synchronized=False,
    dtype=None,
    name=None,
):
    """Builds Selfie's patch network P.

    P is the first three stages of ResNet-50 (`conv1` ... `conv4_block6_out`,
    "ResNet-36") followed by global average pooling, so one patch gives one
    feature vector of size `feature_dim(width)` (1024 at full width). The
    spatial input size is left open: the same network runs on patches
    during pretraining and on whole images when its feature map is
    inspected.

    Args:
        num_channels: int. Channels of the patches.
        stem: `"cifar"` or `"imagenet"`; see `resnet50_stages`.
        width: float. Width multiplier; 1.0 is ResNet-50.
        synchronized: bool. Synchronised batch normalisation across
            replicas.
        dtype: dtype policy of the layers (e.g. `"mixed_float16"`); `None`
            uses Keras' global policy.
        name: name of the model. Defaults to `"patch_network"`.

    Returns:
        A functional `keras.Model` mapping `(batch, p, p, num_channels)` to
        `(batch, d)`.
    """
    check_positive_int("num_channels", num_channels)
    inputs = keras.Input((None, None, num_channels), name="patches")
    x = resnet50_stages(
        inputs,
        stem=stem,
        width=width,
        num_stages=PATCH_NETWORK_STAGES,
        synchronized=synchronized,
        dtype=dtype,
    )
    outputs = keras.layers.GlobalAveragePooling2D(
        name="patch_pool", dtype=dtype
    )(x)
    return keras.Model(inputs, outputs, name=name or "patch_network")


def feature_map_network(patch_network):
    """`P` without its final pooling: the same layers and weights.

    Args:
        patch_network: a patch network from `patch_network`.

    Returns:
        A functional `keras.Model` sharing `patch_network`'s layers, mapping
        `(batch, height, width, channels)` to P's last feature map
        (`conv4_block6_out`), e.g. `(batch, 8, 8, d)` for 32x32 images and
        the cifar stem.
    """
    pooling = patch_network.get_layer("patch_pool")
    return keras.Model(
        patch_network.input,
        pooling.input,
        name=f"{patch_network.name}_feature_map",
    )


def resnet50(
    input_shape,
    stem="imagenet",
    width=1.0,
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet50",
):
    """ResNet-50 (v1) with the given stem and width, named as in Keras.

    With `stem="imagenet"` and `width=1.0` this is the architecture of
    `keras.applications.ResNet50(weights=None)`, layer for layer.

    Args:
        input_shape: `(height, width, channels)` of the images.
        stem: `"imagenet"` or `"cifar"`; see `resnet50_stages`.
        width: float. Width multiplier; 1.0 is ResNet-50.
        include_top: bool. Whether to end with `avg_pool` and the dense
            `predictions` layer.
        pooling: `None`, `"avg"` or `"max"`: pooling of the last feature map
            when `include_top=False`, as in `keras.applications`.
        classes: int. Number of classes when `include_top=True`.
        classifier_activation: activation of `predictions`; `None` gives
            logits.
        name: name of the model.

    Returns:
        A functional `keras.Model`.
    """
    check_choice("pooling", pooling, (None, "avg", "max"))
    inputs = keras.Input(tuple(input_shape), name="input_layer")
    x = resnet50_stages(inputs, stem=stem, width=width, num_stages=4)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(
            check_positive_int("classes", classes),
            activation=classifier_activation,
            name="predictions",
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)
