"""Class-stratified labeled subsets, the same for every run that asks.

The paper fine-tunes on 5%, 8%, 10%, 20% and 100% of the labels. Pretrained
and from-scratch models must see exactly the same labeled images, so the
subset depends only on the labels, the fraction and the seed.
"""

import warnings

import numpy as np
import tensorflow as tf

from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_int_in_range


def stratified_subset_indices(labels, fraction, seed=0):
    """Picks `fraction` of the examples of every class, deterministically.

    For each class `c` with `n_c` examples, `floor(fraction * n_c + 0.5)`
    of them are taken (rounded half up, so 8% of 5,000 is 400 and 10% of
    5 is 1 rather than Python's round-half-to-even 0), chosen at random by
    `np.random.default_rng(seed)`. Classes are visited in increasing label
    order. A class whose share rounds to 0 gets no example, with a warning.

    Args:
        labels: 1-D integer array-like of shape `(N,)`.
        fraction: float in (0, 1]; 1.0 selects everything.
        seed: non-negative int; the same labels, fraction and seed always
            give the same indices.

    Returns:
        Sorted int64 NumPy array of the selected indices into `labels`.

    Example:

    >>> labels = np.repeat(np.arange(3), 10)
    >>> indices = stratified_subset_indices(labels, 0.2, seed=0)
    >>> np.bincount(labels[indices]).tolist()
    [2, 2, 2]
    """
    labels = _check_labels(labels)
    fraction = check_fraction(
        "fraction", fraction, include_zero=False, include_one=True
    )
    check_int_in_range("seed", seed, 0)
    rng = np.random.default_rng(seed)
    chosen, empty = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(np.floor(fraction * len(members) + 0.5))
        if count == 0:
            empty.append(label.item())
        chosen.append(rng.permutation(members)[:count])
    if empty:
        warnings.warn(
            f"stratified_subset_indices: fraction={fraction} selects no "
            f"example of the classes {empty} (too few examples).",
            stacklevel=2,
        )
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def labeled_subset(dataset, fraction, seed=0):
    """Splits labeled data into a stratified subset and its complement.

    Args:
        dataset: an unbatched `tf.data.Dataset` of `(image, label)` with
            scalar integer labels, in a fixed order (e.g. from
            `keras_selfie.data.sources`; do not shuffle before this call),
            or a tuple `(images, labels)` of NumPy arrays.
        fraction: float in (0, 1], share of each class to keep (see
            `stratified_subset_indices` for the rounding).
        seed: non-negative int selecting which examples are kept.

    Returns:
        `(subset, complement)`, of the same kind as `dataset`: two datasets
        of `(image, label)` (the labels are read once, then each dataset
        keeps its elements by position with `enumerate()` and a boolean
        mask), or two `(images, labels)` tuples of arrays. Together they
        hold every example exactly once, in the original order. With
        `fraction=1.0` the complement is empty.

    Example:

    >>> images = np.zeros((20, 8, 8, 3), dtype="uint8")
    >>> labels = np.repeat([0, 1], 10)
    >>> (x, y), (rest_x, rest_y) = labeled_subset((images, labels), 0.1)
    >>> y.tolist(), len(rest_y)
    ([0, 1], 18)
    """
    if isinstance(dataset, tf.data.Dataset):
        return _subset_dataset(dataset, fraction, seed)
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        images, labels = np.asarray(dataset[0]), dataset[1]
        labels = _check_labels(labels)
        if len(images) != len(labels):
            raise ValueError(
                "`images` and `labels` must have the same length. "
                f"Received: len(images)={len(images)}, "
                f"len(labels)={len(labels)}"
            )
        mask = _subset_mask(labels, fraction, seed)
        return (images[mask], labels[mask]), (images[~mask], labels[~mask])
    raise ValueError(
        "Argument `dataset` must be an unbatched tf.data.Dataset of "
        "(image, label) or a tuple (images, labels) of arrays. "
        f"Received: dataset={type(dataset).__name__}"
    )


def _subset_dataset(dataset, fraction, seed):
    spec = dataset.element_spec
    if (
        not isinstance(spec, tuple)
        or len(spec) != 2
        or not isinstance(spec[1], tf.TensorSpec)
        or spec[1].shape.rank != 0
        or not spec[1].dtype.is_integer
    ):
        raise ValueError(
            "Argument `dataset` must yield unbatched (image, label) pairs "
            "with scalar integer labels. "
            f"Received: dataset.element_spec={spec}"
        )
    label_batches = dataset.map(
        lambda image, label: label, num_parallel_calls=tf.data.AUTOTUNE
    ).batch(8192)
    labels = np.concatenate(
        [np.zeros((0,), np.int64)] + list(label_batches.as_numpy_iterator())
    )
    if len(labels) == 0:
        raise ValueError("Argument `dataset` must not be empty.")
    mask = tf.constant(_subset_mask(labels, fraction, seed))

    def keep(wanted):
        def predicate(index, element):
            return tf.equal(tf.gather(mask, index), wanted)

        return (
            dataset.enumerate()
            .filter(predicate)
            .map(lambda index, element: element)
        )

    return keep(True), keep(False)


def _subset_mask(labels, fraction, seed):
    """Boolean mask over `labels`, True at the stratified subset."""
    mask = np.zeros(len(labels), dtype=bool)
    mask[stratified_subset_indices(labels, fraction, seed)] = True
    return mask


def _check_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "Argument `labels` must be a 1-D integer array of shape (N,). "
            f"Received: labels with dtype={labels.dtype}, "
            f"shape={labels.shape}"
        )
    if len(labels) == 0:
        raise ValueError(
            "Argument `labels` must not be empty. Received: labels=[]"
        )
    return labels
