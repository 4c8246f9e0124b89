"""Linear classification of frozen `P` features."""

import keras
import numpy as np

from keras_selfie.evaluation.features import extract_features
from keras_selfie.evaluation.features import get_patch_network
from keras_selfie.utils.validation import check_num_classes
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import check_positive_number


def linear_probe(
    pretrainer,
    train_dataset,
    test_dataset,
    epochs=100,
    learning_rate=1e-3,
    optimizer=None,
    batch_size=256,
    num_classes=None,
    standardize=True,
    seed=None,
    verbose=0,
):
    """Trains a linear classifier on frozen features; returns test accuracy.

    The features of `P` on whole images (`extract_features`, inference
    mode) are computed once for each split; only a `keras.layers.Dense`
    classifier is trained on them, so `P`'s weights and batch-norm
    statistics stay exactly as they were.

    Args:
        pretrainer: a `SelfiePretrainer`, or its `patch_network`.
        train_dataset: labeled data to fit the classifier on, in any form
            `extract_features` takes (no augmentation: the features are
            computed once).
        test_dataset: labeled data to report the accuracy on.
        epochs: int. Epochs of the classifier's training.
        learning_rate: float. Learning rate of the default optimizer,
            `keras.optimizers.Adam`.
        optimizer: optional `keras.optimizers.Optimizer`; replaces the
            default (then `learning_rate` is ignored).
        batch_size: int. Batch size of feature extraction and training.
        num_classes: int or `None` (the largest training label + 1).
        standardize: bool. Whether the classifier starts with a
            `keras.layers.Normalization` adapted to the training features
            (zero mean, unit variance per feature), which makes one
            learning rate suit features of any scale.
        seed: int or `None`. Seed of the classifier's initialisation and
            shuffling.
        verbose: verbosity of the classifier's `fit`.

    Returns:
        A dict with `"accuracy"` (test accuracy, float), `"classifier"` (the
        trained `keras.Model`, from features to logits) and `"history"`
        (the `keras.callbacks.History` of its training).

    Example:

    ```python
    result = linear_probe(pretrainer, train, test, epochs=100)
    print(result["accuracy"])
    ```
    """
    network = get_patch_network(pretrainer)
    # Bad arguments fail before the features are computed.
    _check_training_arguments(epochs, batch_size, learning_rate, optimizer)
    return linear_probe_on_features(
        *extract_features(network, train_dataset, batch_size),
        *extract_features(network, test_dataset, batch_size),
        epochs=epochs,
        learning_rate=learning_rate,
        optimizer=optimizer,
        batch_size=batch_size,
        num_classes=num_classes,
        standardize=standardize,
        seed=seed,
        verbose=verbose,
    )


def linear_probe_on_features(
    train_features,
    train_labels,
    test_features,
    test_labels,
    epochs=100,
    learning_rate=1e-3,
    optimizer=None,
    batch_size=256,
    num_classes=None,
    standardize=True,
    seed=None,
    verbose=0,
):
    """`linear_probe` on features already computed.

    For features of any network or view (e.g. `patch_feature_network`),
    or to reuse the features a kNN evaluation extracted.

    Args:
        train_features, train_labels: arrays `(n, d)` and `(n,)`, as
            `extract_features` returns them.
        test_features, test_labels: the same for the test images.
        Other arguments: those of `linear_probe`.

    Returns:
        What `linear_probe` returns.
    """
    _check_training_arguments(epochs, batch_size, learning_rate, optimizer)
    num_classes = check_num_classes(
        num_classes, max(train_labels.max(), test_labels.max())
    )
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input((train_features.shape[1],), name="features")
    x = inputs
    if standardize:
        normalization = keras.layers.Normalization(name="standardize")
        normalization.adapt(train_features)
        x = normalization(x)
    outputs = keras.layers.Dense(num_classes, name="linear_classifier")(x)
    classifier = keras.Model(inputs, outputs, name="linear_probe")
    classifier.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = classifier.fit(
        train_features,
        train_labels,
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
    )
    logits = classifier.predict(test_features, batch_size=batch_size,
                                verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == test_labels))
    return {"accuracy": accuracy, "classifier": classifier, "history": history}


def _check_training_arguments(epochs, batch_size, learning_rate, optimizer):
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    if optimizer is None:
        check_positive_number("learning_rate", learning_rate)
