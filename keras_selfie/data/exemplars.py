"""The seed images of Exemplar-CNN, each numbered as its surrogate class.

`ExemplarPretrainer` (parametric and memory-bank classifiers) classifies
every transformed copy of a seed image into the seed's surrogate class,
which must be the same class at every step; `fit` reads it as the second
element of each batch. `exemplar_dataset` picks the seeds and numbers them.
"""

import numpy as np
import tensorflow as tf

from keras_selfie.data.pipeline import _check_dataset
from keras_selfie.data.sources import from_arrays
from keras_selfie.utils.validation import check_int_in_range
from keras_selfie.utils.validation import check_optional_int


def exemplar_dataset(images, num_exemplars, seed=None):
    """Picks `num_exemplars` seed images at random, labelled `0 ... N - 1`.

    The seeds are distinct images chosen uniformly (the same ones for the
    same images and seed), and seed `i` is the `i`-th chosen image in the
    order of `images`, so a seed keeps its surrogate label through every
    shuffle, augmentation and epoch of `make_dataset`. The paper picked
    32x32 patches of larger images where the gradients are strong; the
    images here are the seeds whole.

    Args:
        images: an unbatched `tf.data.Dataset` of images, or of `(image,
            label)` pairs (the labels are dropped), of known size and in
            the same order at every pass (as `load_tfds`, `from_arrays` and
            `load_image_folder` give them); or a NumPy array `(n, height,
            width, channels)` (see `from_arrays`).
        num_exemplars: int, `2 <= num_exemplars <=` the number of images.
        seed: `None` or an int >= 0, of the choice.

    Returns:
        An unbatched `tf.data.Dataset` of `num_exemplars` `(image,
        surrogate_label)` pairs, int32 labels in increasing order. It reads
        `images` once per pass; `make_dataset(..., cache=True)` keeps the
        seeds in memory.

    Example:

    ```python
    seeds = data.exemplar_dataset(data.load_tfds("cifar10", "train"), 8000,
                                  seed=0)
    train = data.make_dataset(seeds, batch_size=64, repeat=True, seed=0)
    pretrainer.fit(train, steps_per_epoch=125, epochs=100)
    ```
    """
    if not isinstance(images, tf.data.Dataset):
        images = from_arrays(images)
    has_labels = _check_dataset(images)
    if has_labels:
        images = images.map(lambda image, label: image)
    count = int(images.cardinality())
    if count < 0:
        size = "infinite" if count == tf.data.INFINITE_CARDINALITY else (
            "unknown"
        )
        raise ValueError(
            "Argument `images` must be a dataset of known, finite size, to "
            "pick seeds from all of it; e.g. `dataset.apply(tf.data."
            "experimental.assert_cardinality(n))`. Received: a dataset of "
            f"{size} size"
        )
    check_int_in_range("num_exemplars", num_exemplars, 2, count + 1)
    seed = check_optional_int("seed", seed, 0)
    chosen = np.sort(
        np.random.default_rng(seed).choice(count, num_exemplars, replace=False)
    )
    label_of = np.full(count, -1, np.int32)
    label_of[chosen] = np.arange(num_exemplars, dtype=np.int32)
    label_of = tf.constant(label_of)
    seeds = (
        images.enumerate()
        .map(lambda index, image: (image, tf.gather(label_of, index)))
        .filter(lambda image, label: label >= 0)
    )
    return seeds.apply(tf.data.experimental.assert_cardinality(num_exemplars))
