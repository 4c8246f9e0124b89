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
