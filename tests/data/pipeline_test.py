import numpy as np
import pytest
import tensorflow as tf

from keras_selfie.data.augment import pretraining_augmentation
from keras_selfie.data.pipeline import distributed_dataset
from keras_selfie.data.pipeline import make_dataset
from conftest import two_cpu_strategy


def labelled(count=20, size=8):
    """Constant images whose pixel value encodes their label (10 * label)."""
    labels = np.arange(count, dtype="int64")
    images = np.broadcast_to(
        (10 * labels).astype("uint8")[:, None, None, None],
        (count, size, size, 3),
    ).copy()
    return tf.data.Dataset.from_tensor_slices((images, labels))


def images_only(count=20, size=8):
    return labelled(count, size).map(lambda image, label: image)


def collect(dataset):
    return list(dataset.as_numpy_iterator())


class TestMakeDataset:
    def test_drop_remainder_gives_a_static_batch_dimension(self):
        ds = make_dataset(images_only(), 6, seed=0)
        assert ds.element_spec.shape == (6, 8, 8, 3)
        assert [b.shape[0] for b in collect(ds)] == [6, 6, 6]

    def test_evaluation_keeps_every_example_in_order(self):
        ds = make_dataset(labelled(), 6, training=False)
        assert ds.element_spec[0].shape.as_list() == [None, 8, 8, 3]
        labels = np.concatenate([y for _, y in collect(ds)])
        np.testing.assert_array_equal(labels, np.arange(20))

    def test_labels_stay_with_their_images_through_augmentation(self):
        ds = make_dataset(
            labelled(), 4, augment=pretraining_augmentation(), seed=3
        )
        seen = []
        for images, labels in collect(ds):
            # Reflect padding of a constant image is the same constant.
            np.testing.assert_array_equal(
                images, np.broadcast_to(10 * labels[:, None, None, None],
                                        images.shape)
            )
            seen.extend(labels)
        assert sorted(seen) == list(range(20))
        assert seen != list(range(20))  # shuffled

    def test_deterministic_with_a_seed(self):
        data = tf.data.Dataset.from_tensor_slices(
            np.random.RandomState(0).randint(0, 256, (16, 16, 16, 3), "uint8")
        )

        def run(seed):
            ds = make_dataset(data, 4, augment=pretraining_augmentation(),
                              seed=seed, shuffle_buffer=16)
            return np.concatenate(collect(ds))

        np.testing.assert_array_equal(run(1), run(1))
        assert not np.array_equal(run(1), run(2))

    def test_epochs_differ(self):
        ds = make_dataset(images_only(), 20, seed=1)
        first, second = collect(ds)[0], collect(ds)[0]
        assert not np.array_equal(first, second)

    def test_cache_in_memory_and_on_disk(self, tmp_path):
        calls = tf.Variable(0)

        def count(image, label):
            calls.assign_add(1)
            return image, label

        source = labelled().map(count)
        for cache in (True, str(tmp_path / "cache")):
            calls.assign(0)
            ds = make_dataset(source, 5, cache=cache, seed=0,
                              augment=pretraining_augmentation())
            first = sorted(np.concatenate([y for _, y in collect(ds)]))
            second = sorted(np.concatenate([y for _, y in collect(ds)]))
            assert first == second == list(range(20))
            assert int(calls.numpy()) == 20  # read once, then from the cache

    def test_repeat(self):
        ds = make_dataset(images_only(), 5, repeat=3, seed=0)
        assert len(collect(ds)) == 12
        endless = make_dataset(images_only(), 5, repeat=True, seed=0)
        assert len(collect(endless.take(30))) == 30

    def test_no_shuffle_buffer(self):
        ds = make_dataset(labelled(), 5, shuffle_buffer=0)
        labels = np.concatenate([y for _, y in collect(ds)])
        np.testing.assert_array_equal(labels, np.arange(20))

    def test_rejects_batched_datasets(self):
        with pytest.raises(ValueError, match="unbatched"):
            make_dataset(images_only().batch(4), 4)
        with pytest.raises(ValueError, match="unbatched"):
            make_dataset(labelled().batch(4), 4)

    @pytest.mark.parametrize(
        "dataset, message",
        [
            (np.zeros((4, 8, 8, 3)), "tf.data.Dataset"),
            (tf.data.Dataset.from_tensor_slices(
                {"image": np.zeros((4, 8, 8, 3), "uint8")}), "element_spec"),
            (tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 3))),
             "rank 3"),
            (tf.data.Dataset.from_tensor_slices(
                np.zeros((4, 8, 8, 3), "int32")), "uint8"),
        ],
    )
    def test_rejects_bad_datasets(self, dataset, message):
        with pytest.raises(ValueError, match=message):
            make_dataset(dataset, 4)

    @pytest.mark.parametrize(
        "kwargs, message",
        [({"batch_size": 0}, "batch_size"), ({"batch_size": 2.0},
                                             "batch_size"),
         ({"shuffle_buffer": -1}, "shuffle_buffer"),
         ({"repeat": 0}, "repeat"), ({"cache": 1}, "cache"),
         ({"augment": "flip"}, "augment"),
         ({"num_parallel_calls": 0}, "num_parallel_calls"),
         ({"drop_remainder": 1}, "drop_remainder"),
         ({"training": None}, "training"), ({"seed": -1}, "seed")],
    )
    def test_rejects_bad_arguments(self, kwargs, message):
        kwargs = {"batch_size": 4, **kwargs}
        with pytest.raises(ValueError, match=message):
            make_dataset(images_only(), **kwargs)


class TestDistributedDataset:
    def test_per_replica_batches_cover_every_example_once(self):
        strategy = two_cpu_strategy()
        dist = distributed_dataset(
            strategy, lambda ctx: labelled(24), global_batch_size=8,
            augment=pretraining_augmentation(), seed=0,
        )
        seen = []
        for images, labels in dist:
            per_replica = strategy.experimental_local_results(labels)
            assert len(per_replica) == 2
            for replica_images, replica_labels in zip(
                strategy.experimental_local_results(images), per_replica
            ):
                assert replica_images.shape == (4, 8, 8, 3)
                assert replica_labels.shape == (4,)
                np.testing.assert_array_equal(
                    replica_images.numpy()[:, 0, 0, 0],
                    10 * replica_labels.numpy(),
                )
                seen.extend(replica_labels.numpy().tolist())
        assert sorted(seen) == list(range(24))

    def test_rejects_indivisible_global_batch(self):
        strategy = two_cpu_strategy()
        with pytest.raises(ValueError, match="global_batch_size"):
            distributed_dataset(strategy, lambda ctx: labelled(), 7)
        with pytest.raises(ValueError, match="strategy"):
            distributed_dataset("mirrored", lambda ctx: labelled(), 8)
