"""k-nearest-neighbour classification of frozen features."""

import numpy as np

from keras_selfie.utils.validation import check_num_classes
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import check_positive_number


def _check_features(name, features, labels_name, labels):
    features = np.asarray(features, dtype="float32")
    labels = np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(
            f"Argument `{name}` must be a 2-D array (num_examples, "
            f"feature_dim). Received shape={features.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(features):
        raise ValueError(
            f"Argument `{labels_name}` must be a 1-D array with one label "
            f"per row of `{name}` ({len(features)}). "
            f"Received shape={labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (
        labels.size and labels.min() < 0
    ):
        raise ValueError(
            f"Argument `{labels_name}` must hold non-negative integer class "
            f"ids. Received dtype={labels.dtype}"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError(f"Argument `{name}` holds NaN or infinite values.")
    return features, labels


def _l2_normalize(features):
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def knn_predict(
    train_features,
    train_labels,
    test_features,
    k=20,
    temperature=0.07,
    weighted=True,
    num_classes=None,
    batch_size=1024,
):
    """Predicts classes by a cosine-similarity kNN vote.

    Features are L2-normalised; each test example's `k` most similar
    training examples vote for their class with weight
    `exp(similarity / temperature)` (`weighted=True`, as in InstDisc and
    DINO) or with weight 1 (`weighted=False`, plain majority). Ties go to
    the smallest class id. Test examples are processed `batch_size` at a
    time, so memory stays at `batch_size * num_train` similarities.

    Args:
        train_features: array `(num_train, d)`, the memory bank.
        train_labels: int array `(num_train,)`.
        test_features: array `(num_test, d)`.
        k: int, neighbours per vote, from 1 to `num_train`.
        temperature: float > 0. Smaller values give the nearest neighbours
            more say. Ignored when `weighted=False`.
        weighted: bool. Temperature-weighted vote, or majority vote.
        num_classes: int or `None` (the largest training label + 1).
        batch_size: int, test examples per similarity matrix.

    Returns:
        int64 array `(num_test,)` of predicted classes.
    """
    train_features, train_labels = _check_features(
        "train_features", train_features, "train_labels", train_labels
    )
    test_features = np.asarray(test_features, dtype="float32")
    if test_features.ndim != 2 or (
        test_features.shape[1] != train_features.shape[1]
    ):
        raise ValueError(
            "Argument `test_features` must be a 2-D array with the "
            f"{train_features.shape[1]} columns of `train_features`. "
            f"Received shape={test_features.shape}"
        )
    check_positive_int("k", k)
    if k > len(train_features):
        raise ValueError(
            f"Argument `k` must be at most the number of training examples "
            f"({len(train_features)}). Received: k={k}"
        )
    if weighted:
        check_positive_number("temperature", temperature)
    check_positive_int("batch_size", batch_size)
    num_classes = check_num_classes(num_classes, train_labels.max())

    bank = _l2_normalize(train_features)
    queries = _l2_normalize(test_features)
    predictions = []
    for start in range(0, len(queries), batch_size):
        similarity = queries[start : start + batch_size] @ bank.T
        neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(similarity, neighbours, axis=1)
        if weighted:
            # Shifting by the row maximum keeps exp() finite for small
            # temperatures and leaves the vote unchanged.
            votes_weight = np.exp(
                (top - top.max(axis=1, keepdims=True)) / temperature
            )
        else:
            votes_weight = np.ones_like(top)
        votes = np.zeros((len(top), num_classes), dtype="float64")
        rows = np.repeat(np.arange(len(top)), k)
        np.add.at(
            votes,
            (rows, train_labels[neighbours].reshape(-1)),
            votes_weight.reshape(-1),
        )
        predictions.append(np.argmax(votes, axis=1))
    return np.concatenate(predictions).astype("int64")


def knn_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    k=20,
    temperature=0.07,
    weighted=True,
    batch_size=1024,
):
    """Accuracy of a cosine kNN classifier on frozen features.

    The standard frozen-feature check of self-supervised pretraining
    (Wu et al., 2018; Caron et al., 2021): no training, so it measures the
    features alone. See `knn_predict` for the vote.

    Args:
        train_features: array `(num_train, d)`.
        train_labels: int array `(num_train,)`.
        test_features: array `(num_test, d)`.
        test_labels: int array `(num_test,)`.
        k: int, neighbours per vote. Defaults to 20, as DINO.
        temperature: float > 0. Defaults to 0.07, as InstDisc and DINO.
        weighted: bool. `False` gives a plain majority vote.
        batch_size: int, test examples per similarity matrix.

    Returns:
        The share of test examples classified right, a float in `[0, 1]`.

    Example:

    ```python
    train = extract_features(pretrainer, train_dataset)
    test = extract_features(pretrainer, test_dataset)
    accuracy = knn_accuracy(*train, *test, k=20, temperature=0.07)
    ```

    Reference:
     - [Wu et al., 2018](https://arxiv.org/abs/1805.01978)
     - [Caron et al., 2021](https://arxiv.org/abs/2104.14294)
    """
    test_features, test_labels = _check_features(
        "test_features", test_features, "test_labels", test_labels
    )
    if len(test_labels) == 0:
        raise ValueError("Argument `test_features` holds no example.")
    predictions = knn_predict(
        train_features,
        train_labels,
        test_features,
        k=k,
        temperature=temperature,
        weighted=weighted,
        batch_size=batch_size,
    )
    return float(np.mean(predictions == test_labels))
