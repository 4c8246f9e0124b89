"""Fine-tuning a ResNet-50, from Selfie's `P` or from scratch."""

import keras
import tensorflow as tf

from keras_selfie.evaluation.batch_norm import recalibrate_batch_norm
from keras_selfie.evaluation.features import scale_images
from keras_selfie.models.resnet import STEMS
from keras_selfie.models.resnet import resnet50
from keras_selfie.models.pretrainer import check_pretrainer
from keras_selfie.models.transfer import transfer_to_resnet50
from keras_selfie.optimizers import OPTIMIZERS
from keras_selfie.optimizers import build_optimizer_variables
from keras_selfie.optimizers import make_optimizer
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int


def _steps_per_epoch(dataset, steps_per_epoch):
    if steps_per_epoch is not None:
        return check_positive_int("steps_per_epoch", steps_per_epoch)
    cardinality = int(dataset.cardinality())
    if cardinality < 1:
        raise ValueError(
            "The number of batches of `train_dataset` is unknown or "
            "infinite, so the learning-rate schedule cannot be sized. Pass "
            "`steps_per_epoch`. Received: steps_per_epoch=None"
        )
    return cardinality


def _check_labeled_batches(name, dataset):
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            f"Argument `{name}` must be a batched `tf.data.Dataset` of "
            f"`(images, labels)`. Received: {name}={dataset!r}"
        )
    spec = dataset.element_spec
    if not (
        isinstance(spec, tuple)
        and len(spec) == 2
        and isinstance(spec[0], tf.TensorSpec)
        and spec[0].shape.rank == 4
    ):
        raise ValueError(
            f"Argument `{name}` must yield batches `(images, labels)` with "
            "images of rank 4 (batch, height, width, channels), e.g. from "
            f"`data.make_dataset`. Received element_spec={spec!r}"
        )
    # The same input scale as pretraining: uint8 to [0, 1], float as is.
    return dataset.map(
        lambda images, labels: (scale_images(images), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def build_finetuning_model(
    pretrainer=None,
    num_classes=10,
    from_scratch=False,
    input_shape=None,
    stem=None,
    width=None,
):
    """The ResNet-50 that `finetune` trains, returning logits.

    Args:
        pretrainer: a `keras_selfie.Pretrainer`, or `None` with
            `from_scratch`.
        num_classes: int. Classes of the classifier.
        from_scratch: bool. `False`: `transfer_to_resnet50(pretrainer)`
            (`conv1`-`conv4` from `P`). `True`: the same architecture with
            fresh weights (the pretrainer's stem and width when given, else
            `stem` and `width`).
        input_shape: `(height, width, channels)`; defaults to the
            pretrainer's image size and channels.
        stem: `"cifar"` or `"imagenet"`, only without a pretrainer
            (defaults to `"cifar"`).
        width: float, only without a pretrainer (defaults to 1.0).

    Returns:
        A functional `keras.Model`.
    """
    check_positive_int("num_classes", num_classes)
    if pretrainer is not None:
        check_pretrainer(pretrainer)
        if stem is not None or width is not None:
            raise ValueError(
                "Arguments `stem` and `width` are taken from the pretrainer "
                "and must be left None when `pretrainer` is given. "
                f"Received: stem={stem!r}, width={width!r}"
            )
        if input_shape is None:
            input_shape = (*pretrainer.image_size, pretrainer.num_channels)
        stem, width = pretrainer.stem, pretrainer.width
    elif not from_scratch:
        raise ValueError(
            "Argument `pretrainer` is required unless `from_scratch=True`. "
            "Received: pretrainer=None, from_scratch=False"
        )
    else:
        stem = check_choice("stem", "cifar" if stem is None else stem, STEMS)
        width = 1.0 if width is None else width
        if input_shape is None:
            raise ValueError(
                "Argument `input_shape` is required without a pretrainer. "
                "Received: input_shape=None"
            )
    if not from_scratch:
        return transfer_to_resnet50(
            pretrainer,
            input_shape=input_shape,
            classes=num_classes,
            classifier_activation=None,
        )
    return resnet50(
        tuple(input_shape),
        stem=stem,
        width=width,
        classes=num_classes,
        classifier_activation=None,
    )


def finetune(
    pretrainer,
    train_dataset,
    test_dataset,
    num_classes,
    epochs,
    from_scratch=False,
    stem=None,
    width=None,
    optimizer=None,
    learning_rate=0.1,
    momentum=0.9,
    nesterov=False,
    weight_decay=5e-4,
    warmup_epochs=0,
    steps_per_epoch=None,
    callbacks=None,
    verbose="auto",
    run_eagerly=False,
    jit_compile="auto",
    seed=None,
    batch_norm_batches=0,
):
    """Fine-tunes a ResNet-50 and evaluates it, as in the paper's Table 1.

    Selfie-pretrained (`from_scratch=False`): the network is
    `transfer_to_resnet50(pretrainer)`, `conv1`-`conv4` starting from `P`,
    `conv5` and the classifier fresh. Supervised baseline
    (`from_scratch=True`): the same architecture with fresh weights. Both
    train end to end with the same optimizer and schedule: linear warm-up
    over `warmup_epochs`, then cosine decay to 0 at the end of `epochs`,
    stepped once per batch.

    Images are scaled as in pretraining: uint8 to `[0, 1]`, float as is
    (`data.finetuning_augmentation` gives float `[0, 1]`).

    Args:
        pretrainer: a `keras_selfie.Pretrainer`; may be `None` with
            `from_scratch=True`.
        train_dataset: batched `tf.data.Dataset` of `(images, labels)`,
            e.g. from `data.make_dataset` (augmented).
        test_dataset: batched `tf.data.Dataset` of `(images, labels)`.
        num_classes: int. Classes of the classifier.
        epochs: int. Training epochs.
        from_scratch: bool. Train the same architecture from fresh weights.
        stem: `"cifar"` or `"imagenet"`, only without a pretrainer.
        width: float, only without a pretrainer.
        optimizer: `None` or `"sgd"` (SGD with `momentum`), `"adamw"`
            (both made by `optimizers.make_optimizer` with the schedule and
            `weight_decay`), or a
            `keras.optimizers.Optimizer` instance, used as is (its own
            learning rate; `learning_rate`, `momentum`, `weight_decay` and
            `warmup_epochs` are then ignored).
        learning_rate: float. Peak learning rate. Defaults to 0.1 (ResNet
            on CIFAR, batch 128).
        momentum: float. Momentum of the default SGD.
        nesterov: bool. Nesterov momentum for the default SGD.
        weight_decay: float >= 0. Keras' optimizer weight decay
            (`w -= learning_rate * weight_decay * w` each step, on every
            weight). Defaults to 5e-4, the usual CIFAR ResNet value.
        warmup_epochs: int >= 0. Epochs of linear warm-up.
        steps_per_epoch: int, or `None` for the batches of `train_dataset`
            (must then be finite and known). Sizes the schedule and is
            passed to `fit`.
        callbacks: list of `keras.callbacks.Callback` for `fit`.
        verbose: verbosity of `fit` and `evaluate`.
        run_eagerly: bool, passed to `compile`.
        jit_compile: passed to `compile`.
        seed: int or `None`. When given, `keras.utils.set_random_seed(seed)`
            runs before the model is made, which fixes the initialisation of
            the fresh layers (all of them from scratch; `conv5` and the
            classifier after transfer). Data order and augmentation follow
            the seed of the datasets (`data.make_dataset(seed=...)`).
        batch_norm_batches: int >= 0. Before the test evaluation, recompute
            the batch-norm statistics as the plain average over this many
            training batches (`recalibrate_batch_norm`); `0` keeps Keras's
            moving averages, which after a few hundred steps still carry
            their initial values and make the test accuracy of a short run
            meaningless.

    Returns:
        A dict with `"accuracy"` (test accuracy, float), `"loss"` (test
        loss), `"history"` (`keras.callbacks.History`) and `"model"` (the
        fine-tuned `keras.Model`, returning logits).

    Example:

    ```python
    pretrained = finetune(pretrainer, few, test, num_classes=10, epochs=100)
    supervised = finetune(
        pretrainer, few, test, num_classes=10, epochs=100, from_scratch=True
    )
    ```
    """
    check_positive_int("epochs", epochs)
    check_non_negative("batch_norm_batches", batch_norm_batches, integer=True)
    check_non_negative("weight_decay", weight_decay)
    check_non_negative("momentum", momentum)
    check_non_negative("warmup_epochs", warmup_epochs, integer=True)
    train = _check_labeled_batches("train_dataset", train_dataset)
    test = _check_labeled_batches("test_dataset", test_dataset)
    steps = _steps_per_epoch(train_dataset, steps_per_epoch)
    input_shape = tuple(train_dataset.element_spec[0].shape[1:])
    if None in input_shape:
        input_shape = None
    if seed is not None:
        check_non_negative("seed", seed, integer=True)
        keras.utils.set_random_seed(seed)
    model = build_finetuning_model(
        pretrainer,
        num_classes=num_classes,
        from_scratch=from_scratch,
        input_shape=input_shape,
        stem=stem,
        width=width,
    )
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer = make_optimizer(
            check_choice("optimizer", optimizer or "sgd", OPTIMIZERS),
            learning_rate,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            total_steps=epochs * steps,
            warmup_steps=warmup_epochs * steps,
        )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        run_eagerly=run_eagerly,
        jit_compile=jit_compile,
    )
    build_optimizer_variables(model)
    history = model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    if batch_norm_batches:
        recalibrate_batch_norm(model, train, batch_norm_batches)
    loss, accuracy = model.evaluate(test, verbose=verbose, return_dict=False)
    return {
        "accuracy": float(accuracy),
        "loss": float(loss),
        "history": history,
        "model": model,
    }
