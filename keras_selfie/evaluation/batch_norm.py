"""Batch-norm statistics recomputed after training ("precise BN")."""

import keras

from keras_selfie.utils.validation import check_positive_int


def _batch_norm_layers(model):
    """The `BatchNormalization` layers of `model` and of its sub-models."""
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        else:
            yield from _batch_norm_layers(layer)


def recalibrate_batch_norm(model, dataset, num_batches):
    """Replaces the moving statistics of every `BatchNormalization` layer.

    Keras's batch normalisation keeps exponential moving averages (momentum
    0.99 in `keras.applications.ResNet50`), which need several hundred
    steps to forget their initial values (mean 0, variance 1) and lag
    behind fast-changing weights. After a short training run, inference
    with them can be close to chance although the weights are good. This
    function runs the model in training mode over `num_batches` batches of
    `dataset` and sets each layer's moving mean and variance to the plain
    average of the batch statistics (Wu & Johnson, "Rethinking 'Batch' in
    BatchNorm", 2021). Only those statistics change: no gradient is taken,
    and the layers' `momentum` is restored afterwards.

    Args:
        model: a `keras.Model`.
        dataset: batched `tf.data.Dataset` of `(images, labels)` (labels
            are ignored) or of images, as the model takes them; usually the
            training data.
        num_batches: int > 0, the batches to average over.

    Returns:
        The number of batches used (fewer if `dataset` ends first).

    Example:

    ```python
    model.fit(train, epochs=5)
    recalibrate_batch_norm(model, train, num_batches=50)
    model.evaluate(test)
    ```
    """
    check_positive_int("num_batches", num_batches)
    layers = list(_batch_norm_layers(model))
    if not layers:
        raise ValueError(
            f"Argument `model` has no `BatchNormalization` layer to "
            f"recalibrate. Received: model={model.name!r}"
        )
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(keras.ops.zeros_like(layer.moving_mean))
        layer.moving_variance.assign(
            keras.ops.ones_like(layer.moving_variance)
        )
    used = 0
    try:
        for batch in dataset.take(num_batches):
            images = batch[0] if isinstance(batch, tuple) else batch
            # new = old * momentum + batch * (1 - momentum): with momentum
            # t / (t + 1) at batch t, the running value is the plain mean.
            for layer in layers:
                layer.momentum = used / (used + 1)
            model(images, training=True)
            used += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if not used:
        raise ValueError("Argument `dataset` is empty: it yielded no batch.")
    return used


def recalibrated_patch_network(pretrainer, dataset, num_batches=50):
    """A copy of `P` with batch-norm statistics of whole images.

    `P` is pretrained on patches, so its moving statistics are those of
    patches (for a random `P`, the initial mean 0 and variance 1), while
    frozen-feature evaluation runs it on whole images. This returns a copy
    of the patch network whose statistics are recomputed on whole images
    (`recalibrate_batch_norm`); the pretrainer is left as it was. Which
    setting suits a given `P` is an empirical question: evaluate both and
    report each `P` at its better one.

    Args:
        pretrainer: a `SelfiePretrainer`, or its `patch_network`.
        dataset: `tf.data.Dataset` of unbatched images or `(image, label)`
            pairs (uint8 or float, scaled as `extract_features` does).
        num_batches: int > 0, batches of 64 images to average over.

    Returns:
        The recalibrated copy, a `keras.Model` that `extract_features` and
        `linear_probe` take.
    """
    from keras_selfie.evaluation.features import get_patch_network
    from keras_selfie.utils.images import scale_images

    network = get_patch_network(pretrainer)
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    if isinstance(dataset.element_spec, tuple):
        dataset = dataset.map(lambda images, *_: images)
    scaled = dataset.batch(64).map(
        lambda images: scale_images(images, copy.compute_dtype)
    )
    recalibrate_batch_norm(copy, scaled, num_batches)
    return copy


def batch_norm_settings(pretrainer, dataset, num_batches=50):
    """`P` at both batch-norm settings of frozen-feature evaluation.

    Args:
        pretrainer: a `SelfiePretrainer`, or its `patch_network`.
        dataset: whole images to recompute the statistics on; see
            `recalibrated_patch_network`.
        num_batches: int > 0, batches of 64 images to average over.

    Returns:
        `{"moving": P, "recalibrated": copy}`: `P` with the statistics it
        was trained with, and the copy with those of whole images.
    """
    from keras_selfie.evaluation.features import get_patch_network

    return {
        "moving": get_patch_network(pretrainer),
        "recalibrated": recalibrated_patch_network(
            pretrainer, dataset, num_batches
        ),
    }
