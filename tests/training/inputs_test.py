import numpy as np
import pytest
import tensorflow as tf

from keras_selfie import training


def _images(count):
    return tf.data.Dataset.from_tensor_slices(
        np.zeros((count, 8, 8, 3), np.uint8)
    )


def test_num_batches_counts_whole_batches():
    assert training.num_batches(_images(10), 4) == 2
    assert training.num_batches(_images(8), 8) == 1


def test_pretraining_batches_refuse_a_batch_larger_than_the_data():
    # Repeating 6 images to fill a batch of 8 would make copies of an image
    # each other's distractors; the error says so instead.
    with pytest.raises(ValueError, match=r"batch_size.*\(6\).*batch_size=8"):
        training.pretraining_batches(_images(6), 8, seed=0)


def test_pretraining_batches_with_an_unknown_count_are_not_refused():
    images = _images(6).filter(lambda image: True)
    assert int(images.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    batch = next(iter(training.pretraining_batches(images, 8, seed=0)))
    assert batch.shape == (8, 8, 8, 3)
    with pytest.raises(ValueError, match="unknown"):
        training.num_batches(images, 8)
