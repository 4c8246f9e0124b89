import numpy as np
import pytest
import tensorflow as tf

from keras_selfie.data import augment


def known_image(size=8, channels=3):
    """An asymmetric uint8 image whose pixels are all different."""
    values = np.arange(size * size * channels) % 251
    return values.reshape(size, size, channels).astype("uint8")


def seed(a, b=0):
    return tf.constant([a, b], dtype=tf.int64)


def windows(padded, size):
    """Every size x size window of `padded`, as a list."""
    span = padded.shape[0] - size + 1
    return [
        padded[i : i + size, j : j + size]
        for i in range(span)
        for j in range(span)
    ]


def is_window(out, padded):
    return any(np.array_equal(out, w) for w in windows(padded, out.shape[0]))


class TestPadAndCrop:
    @pytest.mark.parametrize(
        "pad_mode, numpy_mode",
        [("constant", "constant"), ("reflect", "reflect"),
         ("symmetric", "symmetric")],
    )
    def test_is_a_window_of_the_padded_image(self, pad_mode, numpy_mode):
        image = known_image()
        padded = np.pad(image, [(4, 4), (4, 4), (0, 0)], mode=numpy_mode)
        offsets = set()
        for s in range(40):
            out = augment.pad_and_crop(image, seed(s), 4, pad_mode).numpy()
            assert out.shape == image.shape and out.dtype == np.uint8
            assert is_window(out, padded)
            offsets.add(out.tobytes())
        assert len(offsets) > 10  # the offset really is random

    def test_zero_padding_shows_black_borders(self):
        image = np.full((8, 8, 3), 200, "uint8")
        outs = [augment.pad_and_crop(image, seed(s), 4, "constant").numpy()
                for s in range(20)]
        assert any((o == 0).any() for o in outs)
        assert all(set(np.unique(o)) <= {0, 200} for o in outs)

    def test_same_seed_same_output_different_seeds_differ(self):
        image = known_image(32)
        a = augment.pad_and_crop(image, seed(7, 1))
        b = augment.pad_and_crop(image, seed(7, 1))
        c = augment.pad_and_crop(image, seed(8, 1))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)

    def test_zero_padding_is_identity(self):
        image = known_image()
        np.testing.assert_array_equal(
            augment.pad_and_crop(image, seed(1), padding=0), image
        )

    @pytest.mark.parametrize(
        "kwargs, message",
        [({"padding": -1}, "padding"), ({"padding": 8}, "padding"),
         ({"pad_mode": "edge"}, "pad_mode")],
    )
    def test_rejects_bad_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            augment.pad_and_crop(known_image(), seed(0), **kwargs)

    def test_rejects_batched_images(self):
        with pytest.raises(ValueError, match="rank 3"):
            augment.pad_and_crop(np.zeros((2, 8, 8, 3), "uint8"), seed(0))


class TestFlip:
    def test_flips_or_not_and_both_happen(self):
        image = known_image()
        flipped = np.flip(image, axis=1)
        seen = set()
        for s in range(30):
            out = augment.random_flip(image, seed(s)).numpy()
            if np.array_equal(out, flipped):
                seen.add("flipped")
            else:
                np.testing.assert_array_equal(out, image)
                seen.add("kept")
        assert seen == {"flipped", "kept"}

    def test_pretraining_flip_option(self):
        image = known_image()
        flipped = np.flip(image, axis=1)
        no_flip = augment.pretraining_augmentation(padding=0, flip=False)
        with_flip = augment.pretraining_augmentation(padding=0, flip=True)
        outs = [with_flip(image, seed(s)).numpy() for s in range(30)]
        assert any(np.array_equal(o, flipped) for o in outs)
        assert any(np.array_equal(o, image) for o in outs)
        for s in range(30):
            np.testing.assert_array_equal(no_flip(image, seed(s)), image)


class TestPretrainingAugmentation:
    def test_keeps_uint8_and_size_by_default(self):
        image = known_image(32)
        out = augment.pretraining_augmentation()(image, seed(3))
        assert out.dtype == tf.uint8 and out.shape == (32, 32, 3)

    def test_output_is_a_possibly_flipped_window(self):
        image = known_image()
        padded = np.pad(image, [(4, 4), (4, 4), (0, 0)], mode="reflect")
        fn = augment.pretraining_augmentation()
        for s in range(10):
            out = fn(image, seed(s)).numpy()
            assert is_window(out, padded) or is_window(np.flip(out, 1), padded)

    def test_seeded(self):
        fn = augment.pretraining_augmentation()
        image = known_image(32)
        np.testing.assert_array_equal(fn(image, seed(5)), fn(image, seed(5)))
        outs = {fn(image, seed(s)).numpy().tobytes() for s in range(10)}
        assert len(outs) > 5

    @pytest.mark.parametrize("value_range", [(0, 1), (-1, 1)])
    def test_value_range(self, value_range):
        image = np.random.RandomState(0).randint(0, 256, (32, 32, 3), "uint8")
        image[0, 0] = [0, 255, 0]
        fn = augment.pretraining_augmentation(padding=0, flip=False,
                                              value_range=value_range)
        out = fn(image, seed(0)).numpy()
        assert out.dtype == np.float32
        assert out.min() == value_range[0] and out.max() == value_range[1]
        low, high = value_range
        np.testing.assert_allclose(out, image / 255 * (high - low) + low,
                                   atol=1e-6)

    @pytest.mark.parametrize(
        "kwargs, message",
        [({"value_range": (0, 255)}, "value_range"),
         ({"flip": "yes"}, "flip"),
         ({"normalization": "mnist"}, "normalization"),
         ({"normalization": "cifar10", "value_range": (-1, 1)},
          "normalization"),
         ({"normalization": ((0.5,), (0.0,))}, "normalization")],
    )
    def test_rejects_bad_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            augment.pretraining_augmentation(**kwargs)


class TestNormalization:
    def test_constant_image_at_mean_and_one_std(self):
        mean = np.array(augment.CIFAR10_MEAN)
        std = np.array(augment.CIFAR10_STD)
        at_mean = np.broadcast_to(mean, (4, 4, 3)).astype("float32")
        np.testing.assert_allclose(
            augment.normalize(at_mean, "cifar10", None), 0.0, atol=1e-6
        )
        above = np.broadcast_to(mean + std, (4, 4, 3)).astype("float32")
        np.testing.assert_allclose(
            augment.normalize(above, mean.tolist(), std.tolist()), 1.0,
            atol=1e-5,
        )

    def test_in_a_factory(self):
        fn = augment.finetuning_augmentation(
            8, padding=0, flip=False, normalization=((0.5, 0.5, 0.5),
                                                     (0.25, 0.25, 0.25))
        )
        image = np.full((8, 8, 3), 255, "uint8")
        np.testing.assert_allclose(fn(image, seed(0)), 2.0, atol=1e-6)

    def test_cifar10_constants_match_the_data(self, tfds_data_dir):
        import tensorflow_datasets as tfds

        images = tfds.load("cifar10", split="train[:5000]",
                           as_supervised=True, data_dir=tfds_data_dir)
        pixels = np.concatenate(
            [x.numpy().reshape(-1, 3) for x, _ in images.batch(5000)]
        ) / 255.0
        np.testing.assert_allclose(pixels.mean(0), augment.CIFAR10_MEAN,
                                   atol=0.01)
        np.testing.assert_allclose(pixels.std(0), augment.CIFAR10_STD,
                                   atol=0.01)


class TestResizedCrops:
    def test_random_resized_crop_size_dtype_and_seeded(self):
        image = np.random.RandomState(0).randint(0, 256, (64, 48, 3), "uint8")
        a = augment.random_resized_crop(image, seed(1), 24)
        b = augment.random_resized_crop(image, seed(1), 24)
        c = augment.random_resized_crop(image, seed(2), 24)
        assert a.shape == (24, 24, 3) and a.dtype == tf.uint8
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)

    def test_full_scale_keeps_the_whole_image(self):
        image = known_image(16)
        out = augment.random_resized_crop(
            image, seed(0), 16, scale=(1.0, 1.0), aspect_ratio=(1.0, 1.0)
        )
        np.testing.assert_array_equal(out, image)

    def test_finetuning_random_resized_crop_range(self):
        image = np.random.RandomState(0).randint(0, 256, (40, 40, 3), "uint8")
        fn = augment.finetuning_augmentation(32, crop="random_resized_crop",
                                             interpolation="bicubic")
        for s in range(5):
            out = fn(image, seed(s)).numpy()
            assert out.shape == (32, 32, 3) and out.dtype == np.float32
            assert 0.0 <= out.min() and out.max() <= 1.0

    def test_center_crop(self):
        image = known_image(16)
        out = augment.center_crop(image, 8, crop_fraction=0.5,
                                  interpolation="nearest")
        np.testing.assert_array_equal(out, image[4:12, 4:12])

    def test_evaluation_preprocessing(self):
        image = known_image(16)
        out = augment.evaluation_preprocessing(8, crop_fraction=0.5,
                                               interpolation="nearest")(image)
        np.testing.assert_allclose(out, image[4:12, 4:12] / 255.0, atol=1e-6)
        same = augment.evaluation_preprocessing(value_range=None)(image)
        np.testing.assert_array_equal(same, image)

    @pytest.mark.parametrize(
        "kwargs, message",
        [({"scale": (0.5, 0.2)}, "scale"), ({"aspect_ratio": (0, 1)},
                                            "aspect_ratio"),
         ({"crop": "center"}, "crop"), ({"image_size": 0}, "image_size"),
         ({"interpolation": "lanczos9"}, "interpolation")],
    )
    def test_finetuning_rejects_bad_arguments(self, kwargs, message):
        kwargs = {"image_size": 32, **kwargs}
        with pytest.raises(ValueError, match=message):
            augment.finetuning_augmentation(**kwargs)

    def test_pad_and_crop_needs_the_output_size(self):
        fn = augment.finetuning_augmentation(16)
        with pytest.raises(ValueError, match="random_resized_crop"):
            fn(known_image(8), seed(0))

    def test_evaluation_rejects_bad_crop_fraction(self):
        with pytest.raises(ValueError, match="crop_fraction"):
            augment.evaluation_preprocessing(crop_fraction=1.5)


def test_works_inside_dataset_map():
    images = np.stack([known_image(32)] * 4)
    seeds = tf.data.Dataset.random(seed=1).batch(2)
    ds = tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices(images), seeds)
    fn = augment.pretraining_augmentation()
    outs = list(ds.map(fn, num_parallel_calls=2).as_numpy_iterator())
    assert len(outs) == 4 and all(o.shape == (32, 32, 3) for o in outs)
