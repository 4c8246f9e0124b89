import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_selfie.data.sources import from_arrays
from keras_selfie.data.subsets import labeled_subset
from keras_selfie.data.subsets import stratified_subset_indices


@pytest.fixture(scope="module")
def toy_labels():
    # Classes of 10, 7, 3 and 20 examples, interleaved.
    labels = np.repeat([2, 0, 5, 1], [10, 7, 3, 20])
    return np.random.default_rng(1).permutation(labels)


@functools.lru_cache(maxsize=1)
def _cifar10_train_labels(data_dir):
    # Only the labels: the images are left encoded.
    builder = tfds.builder("cifar10", data_dir=data_dir)
    dataset = builder.as_dataset(
        split="train", decoders={"image": tfds.decode.SkipDecoding()}
    )
    batches = dataset.map(lambda e: e["label"]).batch(10_000)
    return np.concatenate(list(batches.as_numpy_iterator()))


@pytest.mark.parametrize(
    "fraction, per_class", [(0.05, 250), (0.08, 400), (0.1, 500), (1.0, 5000)]
)
def test_cifar10_per_class_counts(tfds_data_dir, fraction, per_class):
    labels = _cifar10_train_labels(tfds_data_dir)
    indices = stratified_subset_indices(labels, fraction, seed=0)
    assert np.bincount(labels[indices]).tolist() == [per_class] * 10


@pytest.mark.parametrize(
    "fraction, expected",
    [
        # Counts per class 0, 1, 2, 5 (7, 20, 10, 3 examples), rounded half
        # up: 0.5 * 7 = 3.5 -> 4, 0.5 * 3 = 1.5 -> 2.
        (0.5, {0: 4, 1: 10, 2: 5, 5: 2}),
        (0.1, {0: 1, 1: 2, 2: 1, 5: 0}),
        (1.0, {0: 7, 1: 20, 2: 10, 5: 3}),
    ],
)
def test_toy_per_class_counts(toy_labels, fraction, expected):
    with pytest.warns(UserWarning) if 0 in expected.values() else _no_op():
        indices = stratified_subset_indices(toy_labels, fraction, seed=3)
    assert indices.dtype == np.int64
    assert np.all(np.diff(indices) > 0)
    counts = {c: int(np.sum(toy_labels[indices] == c)) for c in expected}
    assert counts == expected


class _no_op:
    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def test_same_seed_same_indices_other_seed_other_indices(toy_labels):
    first = stratified_subset_indices(toy_labels, 0.5, seed=7)
    again = stratified_subset_indices(toy_labels, 0.5, seed=7)
    other = stratified_subset_indices(toy_labels, 0.5, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len(first) == len(other)


def test_full_fraction_is_everything(toy_labels):
    indices = stratified_subset_indices(toy_labels, 1.0)
    np.testing.assert_array_equal(indices, np.arange(len(toy_labels)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(fraction=0.0), "fraction=0.0"),
        (dict(fraction=1.5), "\\(0, 1\\]"),
        (dict(fraction="half"), "number"),
        (dict(fraction=0.5, seed=-1), "seed=-1"),
        (dict(fraction=0.5, labels=np.zeros((3, 1), int)), "1-D"),
        (dict(fraction=0.5, labels=np.array([0.0, 1.0])), "integer"),
        (dict(fraction=0.5, labels=np.array([], int)), "empty"),
    ],
)
def test_indices_errors(toy_labels, kwargs, match):
    kwargs.setdefault("labels", toy_labels)
    with pytest.raises(ValueError, match=match):
        stratified_subset_indices(**kwargs)


def test_labeled_subset_arrays(toy_labels):
    images = np.arange(len(toy_labels), dtype=np.float32).reshape(-1, 1, 1, 1)
    (x, y), (rest_x, rest_y) = labeled_subset((images, toy_labels), 0.5, 2)
    indices = stratified_subset_indices(toy_labels, 0.5, 2)
    np.testing.assert_array_equal(x[:, 0, 0, 0], indices)
    np.testing.assert_array_equal(y, toy_labels[indices])
    # Disjoint, and together everything.
    together = np.concatenate([x[:, 0, 0, 0], rest_x[:, 0, 0, 0]])
    np.testing.assert_array_equal(np.sort(together), np.arange(len(images)))
    assert len(rest_y) == len(toy_labels) - len(y)


def test_labeled_subset_dataset_yields_the_indexed_images(toy_labels):
    # Pixel value = position, so each yielded image tells where it came from.
    n = len(toy_labels)
    images = np.broadcast_to(
        np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 3)
    ).copy()
    dataset = from_arrays(images, toy_labels)
    subset, complement = labeled_subset(dataset, 0.5, seed=4)
    indices = stratified_subset_indices(toy_labels, 0.5, seed=4)

    picked = list(subset.as_numpy_iterator())
    np.testing.assert_array_equal([x[0, 0, 0] for x, _ in picked], indices)
    np.testing.assert_array_equal([y for _, y in picked], toy_labels[indices])
    rest = [x[0, 0, 0] for x, _ in complement.as_numpy_iterator()]
    assert set(rest).isdisjoint(indices)
    assert sorted(rest + indices.tolist()) == list(range(n))
    assert subset.element_spec == dataset.element_spec


def test_labeled_subset_rejects_unlabeled():
    with pytest.raises(ValueError, match="element_spec"):
        labeled_subset(from_arrays(np.zeros((2, 2, 2, 3), np.uint8)), 0.5)
    with pytest.raises(ValueError, match="same length"):
        labeled_subset((np.zeros((3, 2, 2, 3)), np.array([0, 1])), 0.5)
    with pytest.raises(ValueError, match="Received: dataset=str"):
        labeled_subset("cifar10", 0.5)


def test_labeled_subset_on_cifar10_slice(tfds_data_dir):
    from keras_selfie.data.sources import load_tfds

    dataset = load_tfds(
        "cifar10", split="train[:2%]", labeled=True, data_dir=tfds_data_dir
    )
    subset, complement = labeled_subset(dataset, 0.1, seed=0)
    labels = np.array([y for _, y in dataset.as_numpy_iterator()])
    indices = stratified_subset_indices(labels, 0.1, seed=0)
    subset_labels = np.array([y for _, y in subset.as_numpy_iterator()])
    np.testing.assert_array_equal(subset_labels, labels[indices])
    count = complement.reduce(0, lambda n, _: n + 1).numpy()
    assert count + len(subset_labels) == len(labels) == 1000
    # The same images every pass.
    first = np.stack([x for x, _ in subset.take(5).as_numpy_iterator()])
    again = np.stack([x for x, _ in subset.take(5).as_numpy_iterator()])
    np.testing.assert_array_equal(first, again)
    assert isinstance(subset, tf.data.Dataset)
