"""Moving a pretrained Selfie patch network into networks to fine-tune."""

import keras

from keras_selfie.layers.attention_pooling import AttentionPooling
from keras_selfie.models.resnet import PATCH_NETWORK_STAGES
from keras_selfie.models.resnet import resnet50
from keras_selfie.models.resnet import resnet50_stages
from keras_selfie.models.pretrainer import check_pretrainer
from keras_selfie.models.selfie_pretrainer import SelfiePretrainer
from keras_selfie.utils.validation import check_positive_int


def _input_shape(pretrainer, input_shape):
    if input_shape is None:
        return (*pretrainer.image_size, pretrainer.num_channels)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != pretrainer.num_channels:
        raise ValueError(
            "Argument `input_shape` must be (height, width, "
            f"{pretrainer.num_channels}), with the pretrainer's number of "
            f"channels. Received: input_shape={input_shape}"
        )
    return input_shape


def copy_patch_network_weights(patch_network, model):
    """Copies every weight of `patch_network` into the layer of the same name.

    Args:
        patch_network: Selfie's `P`, from `SelfiePretrainer.patch_network`.
        model: a model holding layers named as in
            `keras.applications.ResNet50` (`conv1_conv` ... `conv4_block6_*`).

    Returns:
        The names of the layers whose weights were copied.

    Raises:
        ValueError: if `model` lacks one of `P`'s layers or a weight's shape
            differs.
    """
    copied = []
    for layer in patch_network.layers:
        if not layer.weights:
            continue
        try:
            target = model.get_layer(layer.name)
        except ValueError:
            raise ValueError(
                f"The target model has no layer named '{layer.name}', which "
                "the patch network has. The target must be a ResNet-50 with "
                "the layer names of `keras.applications.ResNet50`."
            ) from None
        source_shapes = [tuple(w.shape) for w in layer.weights]
        target_shapes = [tuple(w.shape) for w in target.weights]
        if source_shapes != target_shapes:
            raise ValueError(
                f"Layer '{layer.name}' has weights of shapes {target_shapes} "
                f"in the target model but {source_shapes} in the patch "
                "network: the stem, width or channels differ."
            )
        for source, destination in zip(layer.weights, target.weights):
            destination.assign(source)
        copied.append(layer.name)
    return copied


def transfer_to_resnet50(
    pretrainer,
    input_shape=None,
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet50",
):
    """Returns a ResNet-50 whose first three stages are the pretrained `P`.

    As in the paper's fine-tuning: the network runs on the full image, its
    `conv1` to `conv4` layers (weights and batch-norm statistics) start from
    the pretrained patch network, and `conv5` and the classifier start fresh.

    For a pretrainer with the `"imagenet"` stem at width 1 the result is a
    `keras.applications.ResNet50(weights=None, ...)`. For the `"cifar"` stem
    or another width it is the same architecture, with that stem and width,
    and the same layer names.

    Args:
        pretrainer: a `keras_selfie.Pretrainer` of any pretext task (its
            `feature_extractor()`, the default backbone `P`, transfers).
        input_shape: `(height, width, channels)` of the images to classify.
            Defaults to the pretrainer's image size and channels.
        include_top: bool. Whether to end with average pooling and a dense
            classifier `predictions`.
        pooling: `None`, `"avg"` or `"max"` when `include_top=False`, as in
            `keras.applications.ResNet50`.
        classes: int. Number of classes of the classifier.
        classifier_activation: activation of the classifier; `None` returns
            logits.
        name: name of the model.

    Returns:
        A functional `keras.Model`, ready to compile and fit.

    Example:

    ```python
    resnet = keras_selfie.transfer_to_resnet50(
        pretrainer, classes=10, classifier_activation=None
    )
    resnet.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    ```
    """
    check_pretrainer(pretrainer)
    input_shape = _input_shape(pretrainer, input_shape)
    if include_top:
        check_positive_int("classes", classes)
    if pretrainer.stem == "imagenet" and pretrainer.width == 1.0:
        model = keras.applications.ResNet50(
            include_top=include_top,
            weights=None,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
        )
    else:
        model = resnet50(
            input_shape,
            stem=pretrainer.stem,
            width=pretrainer.width,
            include_top=include_top,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
        )
    copy_patch_network_weights(pretrainer.feature_extractor(), model)
    return model


def transfer_to_resnet36_attention_pooling(
    pretrainer,
    input_shape=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet36_attention_pooling",
):
    """The paper's Table 2 variant: ResNet-36 + attention pooling.

    `P`'s three ResNet-50 stages run on the full image; stage 4 is replaced by
    the attention pooling network `A` over the spatial feature vectors of
    `conv4_block6_out`, followed by a dense classifier. The stages and `A`
    start from the pretrained weights; the classifier starts fresh. No
    position embedding is added to the feature vectors (the feature grid of
    a full image differs from the pretraining patch grid).

    Args:
        pretrainer: a `SelfiePretrainer`.
        input_shape: `(height, width, channels)`; defaults to the
            pretrainer's image size and channels.
        classes: int. Number of classes.
        classifier_activation: activation of the classifier; `None` returns
            logits.
        name: name of the model.

    Returns:
        A functional `keras.Model`.
    """
    check_pretrainer(pretrainer, cls=SelfiePretrainer)
    input_shape = _input_shape(pretrainer, input_shape)
    check_positive_int("classes", classes)
    inputs = keras.Input(input_shape, name="input_layer")
    x = resnet50_stages(
        inputs,
        stem=pretrainer.stem,
        width=pretrainer.width,
        num_stages=PATCH_NETWORK_STAGES,
    )
    x = keras.layers.Reshape((-1, pretrainer.feature_dim), name="to_sequence")(
        x
    )
    pooling = AttentionPooling.from_config(
        pretrainer.attention_pooling.get_config()
    )
    x = pooling(x)
    outputs = keras.layers.Dense(
        classes, activation=classifier_activation, name="predictions"
    )(x)
    model = keras.Model(inputs, outputs, name=name)
    copy_patch_network_weights(pretrainer.patch_network, model)
    for source, destination in zip(
        pretrainer.attention_pooling.weights, pooling.weights
    ):
        destination.assign(source)
    return model
