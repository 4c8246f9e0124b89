"""ExemplarPretrainer: its transformations, surrogate labels and
classifiers, on made inputs.

Most tests use a small convolutional backbone instead of the ResNet `P`
(the conformance tests run the real one), so that they take seconds.
"""

import colorsys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfie
from conftest import two_cpu_strategy
from keras_selfie import data
from keras_selfie.data import transforms


def _np(x):
    return keras.ops.convert_to_numpy(x)


def small_backbone(dtype=None, channels=3):
    """Images to 6 features, with fixed initial weights."""
    inputs = keras.Input((32, 32, channels))
    x = keras.layers.Conv2D(
        6, 4, strides=4, dtype=dtype,
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
    )(inputs)
    outputs = keras.layers.GlobalAveragePooling2D(dtype=dtype)(x)
    return keras.Model(inputs, outputs)


def exemplar(backbone=True, **kwargs):
    defaults = dict(num_exemplars=4, transformations_per_image=3, seed=0)
    if backbone:
        defaults["backbone"] = small_backbone(kwargs.get("dtype"))
    return keras_selfie.ExemplarPretrainer(**{**defaults, **kwargs})


def images(count, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, (count, 32, 32, 3), dtype=np.uint8
    )


def normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def seen_by_backbone(model, *args, **kwargs):
    """`model(*args)`'s outputs and the batch its backbone saw."""
    seen = []
    original = model.patch_network
    model.patch_network = lambda x, training=None: (
        seen.append(_np(x)), original(x, training=training)
    )[1]
    try:
        outputs = model(*args, **kwargs)
    finally:
        model.patch_network = original
    (batch,) = seen
    return {key: _np(value) for key, value in outputs.items()}, batch


# The transformations, one by one.


def warp(image, rotation=0.0, scale=1.0, translation=(0, 0), fill_mode=None):
    kwargs = {"fill_mode": fill_mode} if fill_mode else {}
    return _np(transforms.affine_warp(
        image[None].astype("float32"), np.array([rotation]),
        np.array([scale]), np.array([translation], "float32"), **kwargs,
    ))[0]


def dot(size, row, col):
    image = np.zeros((size, size, 3), "float32")
    image[row, col] = 1.0
    return image


@pytest.mark.parametrize("fill_mode", ["reflect", "nearest", "constant"])
def test_a_translation_moves_a_bright_dot_by_its_pixels(fill_mode):
    moved = warp(dot(32, 10, 12), translation=(3, -5), fill_mode=fill_mode)
    np.testing.assert_array_equal(moved, dot(32, 13, 7))


def test_a_scale_moves_a_dot_away_from_the_centre():
    # Centre (8, 8): the dot 2 down and 3 left of it goes 4 down and 6
    # left, and, twice as large, lights its neighbours at half weight.
    expected = np.zeros((17, 17, 3), "float32")
    expected[11:14, 1:4] = np.outer([0.5, 1, 0.5], [0.5, 1, 0.5])[..., None]
    np.testing.assert_array_equal(warp(dot(17, 10, 5), scale=2.0), expected)


def test_rotations_by_quarter_turns_equal_rot90():
    image = np.random.default_rng(0).uniform(size=(32, 32, 3))
    for k, angle in [(1, 90.0), (2, 180.0), (3, -90.0)]:
        np.testing.assert_allclose(
            warp(image, rotation=angle), np.rot90(image, k), atol=1e-5
        )


def test_identity_parameters_return_the_image():
    image = np.random.default_rng(1).uniform(size=(2, 32, 32, 3))
    image = image.astype("float32")
    np.testing.assert_array_equal(
        _np(transforms.affine_warp(image, np.zeros(2), np.ones(2),
                                   np.zeros((2, 2)))), image
    )
    np.testing.assert_allclose(
        _np(transforms.pca_contrast(image, np.ones((2, 3)))), image,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        _np(transforms.adjust_hsv(image, np.zeros(2), np.ones((2, 2)),
                                  np.ones((2, 2)), np.zeros((2, 2)))),
        image, atol=1e-6,
    )


def test_pca_contrast_scales_each_colour_axis_about_the_mean():
    image = np.random.default_rng(2).uniform(size=(1, 8, 8, 3))
    factors = np.array([[2.0, 0.5, 1.0]])
    out = _np(transforms.pca_contrast(image, factors))
    axes = np.array(transforms.CIFAR10_COLOR_COMPONENTS)
    mean = image.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2), keepdims=True), mean,
                               atol=1e-6)
    before = (image - mean) @ axes.T
    after = (out - mean) @ axes.T
    np.testing.assert_allclose(after, before * factors, atol=1e-5)


def test_hsv_follows_colorsys():
    rgb = np.random.default_rng(3).uniform(size=(4, 5, 5, 3))
    rgb[0, 0, 0] = 0.5  # grey: hue 0
    hsv = _np(transforms.rgb_to_hsv(rgb))
    expected = np.array(
        [colorsys.rgb_to_hsv(*pixel) for pixel in rgb.reshape(-1, 3)]
    ).reshape(rgb.shape)
    np.testing.assert_allclose(hsv, expected, atol=1e-6)
    np.testing.assert_allclose(_np(transforms.hsv_to_rgb(hsv)), rgb,
                               atol=1e-6)
    # One set of parameters per image: S ** 2 * 0.5 + 0.1, V * 1.2 - 0.1.
    changed = _np(transforms.adjust_hsv(
        rgb, np.full(4, -0.25), np.tile([[2.0, 1.0]], (4, 1)),
        np.tile([[0.5, 1.2]], (4, 1)), np.tile([[0.1, -0.1]], (4, 1)),
    ))
    h, s, v = np.moveaxis(expected, -1, 0)
    want = np.stack([
        (h - 0.25) % 1.0,
        np.clip(s**2 * 0.5 + 0.1, 0, 1),
        np.clip(v * 1.2 - 0.1, 0, 1),
    ], axis=-1)
    back = np.array(
        [colorsys.hsv_to_rgb(*pixel) for pixel in want.reshape(-1, 3)]
    ).reshape(rgb.shape)
    np.testing.assert_allclose(changed, back, atol=1e-5)


def test_a_third_of_a_turn_of_hue_makes_red_green():
    red = np.zeros((1, 2, 2, 3))
    red[..., 0] = 1.0
    green = _np(transforms.adjust_hsv(
        red, np.array([1 / 3]), np.ones((1, 2)), np.ones((1, 2)),
        np.zeros((1, 2)),
    ))
    np.testing.assert_allclose(green, np.roll(red, 1, axis=-1), atol=1e-6)


# The model's draws and copies.


def test_draws_stay_within_the_stated_ranges():
    model = exemplar(
        translation=0.1, scale=(0.5, 2.0), rotation=30, pca_contrast=None,
        hue_shift=0.05, transformations_per_image=4,
    )
    drawn = {k: _np(v) for k, v in model.sample_transformations(512).items()}
    assert {k: v.shape for k, v in drawn.items()} == {
        "translation": (2048, 2), "scale": (2048,), "rotation": (2048,),
        "pca_contrast": (2048, 3), "hsv_power": (2048, 2),
        "hsv_factor": (2048, 2), "hsv_shift": (2048, 2),
        "hue_shift": (2048,),
    }
    ranges = {
        "translation": (-3.2, 3.2), "scale": (0.5, 2.0),
        "rotation": (-30, 30), "hsv_power": (0.25, 4.0),
        "hsv_factor": (0.7, 1.4), "hsv_shift": (-0.1, 0.1),
        "hue_shift": (-0.05, 0.05),
    }
    for name, (low, high) in ranges.items():
        values = drawn[name]
        assert values.min() >= low - 1e-6 and values.max() <= high + 1e-6
        # ... and cover them (2048 draws: within 1% of either end).
        margin = 0.01 * (high - low)
        assert values.min() < low + margin and values.max() > high - margin
    # Log-uniform factors: as many below 1 as above for (0.5, 2).
    assert abs(np.mean(drawn["scale"] < 1) - 0.5) < 0.05
    np.testing.assert_array_equal(drawn["pca_contrast"], 1.0)  # off


def test_copies_of_a_seed_are_its_transforms_and_share_its_label():
    """Row k * B + b of what P sees is image b under the k-th drawn
    transformation of b, labelled with b's surrogate label."""
    model = exemplar(classifier="parametric", num_exemplars=10)
    batch = images(2)
    state = _np(model.seed_generator.state)
    outputs, seen = seen_by_backbone(
        model, batch, surrogate_labels=np.array([7, 3]), training=False
    )
    np.testing.assert_array_equal(outputs["labels"], [7, 3] * 3)
    assert outputs["logits"].shape == (6, 10)
    model.seed_generator.state.assign(state)
    parameters = model.sample_transformations(2)
    expected = _np(model.transform(
        np.tile(batch.astype("float32") / 255, (3, 1, 1, 1)), parameters
    ))
    np.testing.assert_allclose(seen, expected, atol=1e-6)
    # The copies differ from each other and from the image.
    assert np.abs(seen[0] - seen[2]).mean() > 0.01
    assert np.abs(seen[0] - batch[0] / 255).mean() > 0.01


def test_batch_classifier_labels_each_copy_with_its_place_in_its_group():
    model = exemplar(classifier="batch", num_exemplars=2)
    outputs, seen = seen_by_backbone(model, images(4), training=False)
    np.testing.assert_array_equal(outputs["labels"], [0, 1, 0, 1] * 3)
    # The untransformed images first, then the copies.
    np.testing.assert_array_equal(seen[:4], images(4) / np.float32(255))
    assert seen.shape == (16, 32, 32, 3)


def test_memory_bank_logits_equal_numpy():
    model = exemplar(classifier="memory_bank", num_exemplars=5,
                     temperature=0.1)
    bank = _np(model.memory_bank)
    np.testing.assert_allclose(np.linalg.norm(bank, axis=-1), 1, rtol=1e-6)
    outputs, seen = seen_by_backbone(model, images(2), training=False)
    features = _np(model.patch_network(seen))
    kernel, bias = (_np(w) for w in model.projection.weights)
    embeddings = normalize(features @ kernel + bias)
    np.testing.assert_allclose(outputs["embeddings"], embeddings, atol=1e-6)
    np.testing.assert_allclose(
        outputs["logits"], embeddings @ bank.T / 0.1, rtol=1e-5, atol=1e-5
    )


def test_batch_logits_equal_numpy():
    model = exemplar(classifier="batch", num_exemplars=2,
                     transformations_per_image=2)
    outputs, seen = seen_by_backbone(model, images(4), training=False)
    features = _np(model.patch_network(seen))
    kernel, bias = (_np(w) for w in model.projection.weights)
    embeddings = normalize(features @ kernel + bias)
    seeds, copies = embeddings[:4], embeddings[4:]
    expected = np.zeros((8, 2))
    for row in range(8):
        image = row % 4
        group = image // 2
        expected[row] = copies[row] @ seeds[2 * group:2 * group + 2].T / 0.07
    np.testing.assert_allclose(outputs["logits"], expected, rtol=1e-5,
                               atol=1e-5)


def test_memory_bank_update_equals_numpy():
    """Seeds 1 and 3 move (3 twice in the batch: their mean), the rest
    stay."""
    model = exemplar(classifier="memory_bank", num_exemplars=5,
                     transformations_per_image=2, memory_momentum=0.25)
    bank = _np(model.memory_bank)
    embeddings = normalize(np.random.default_rng(0).normal(size=(6, 128)))
    model.update_memory_bank(embeddings.astype("float32"), np.array([3, 1, 3]))
    per_image = (embeddings[:3] + embeddings[3:]) / 2
    expected = bank.copy()
    expected[1] = normalize(0.25 * bank[1] + 0.75 * per_image[1])
    expected[3] = normalize(
        0.25 * bank[3] + 0.75 * (per_image[0] + per_image[2]) / 2
    )
    np.testing.assert_allclose(_np(model.memory_bank), expected, atol=1e-6)


def test_memory_bank_moves_in_training_steps_only():
    model = exemplar(classifier="memory_bank", num_exemplars=4)
    bank = _np(model.memory_bank)
    outputs = model(images(2), training=False)
    model.compute_loss(y=np.array([0, 2]), y_pred=outputs, training=False)
    np.testing.assert_array_equal(_np(model.memory_bank), bank)
    model.compute_loss(y=np.array([0, 2]), y_pred=outputs, training=True)
    moved = np.abs(_np(model.memory_bank) - bank).max(axis=-1)
    assert moved[0] > 0 and moved[2] > 0 and moved[1] == moved[3] == 0


# Training: surrogate labels from the data, or a clear error.


def seed_batches(count=12, num_exemplars=6, batch_size=3):
    seeds = data.exemplar_dataset(images(count), num_exemplars, seed=0)
    return data.make_dataset(seeds, batch_size, repeat=True, seed=0)


@pytest.mark.parametrize("classifier", ["parametric", "memory_bank"])
def test_fit_reads_the_surrogate_labels_from_exemplar_dataset(classifier):
    model = exemplar(classifier=classifier, num_exemplars=6)
    model.compile(optimizer="adam", run_eagerly=True)
    history = model.fit(seed_batches(), steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert set(history.history) == {"loss", "pretext_accuracy"}
    with pytest.raises(ValueError, match=r"(?s)needs its surrogate label.*"
                       r"exemplar_dataset.*classifier='batch'"):
        model.fit(images(4), batch_size=2, verbose=0)


def test_jit_compile_gives_the_same_memory_bank_step():
    model = exemplar(classifier="memory_bank", num_exemplars=4)
    batch, labels = images(2), np.array([1, 3])
    state = _np(model.seed_generator.state)
    bank = _np(model.memory_bank)

    def step(batch, labels):
        outputs = model(batch, training=True)
        return model.compute_loss(y=labels, y_pred=outputs, training=True)

    eager = float(step(batch, labels))
    eager_bank = _np(model.memory_bank)
    model.seed_generator.state.assign(state)
    model.memory_bank.assign(bank)
    xla = float(tf.function(step, jit_compile=True)(batch, labels))
    np.testing.assert_allclose(xla, eager, rtol=1e-5)
    np.testing.assert_allclose(_np(model.memory_bank), eager_bank, atol=1e-5)


def test_mirrored_memory_bank_equals_one_device():
    """Each replica sees half the batch, but every bank entry of the global
    batch moves, the same on both replicas and as on one device."""
    seeds = data.exemplar_dataset(images(8), 8, seed=0)
    batches = seeds.batch(8)
    runs = []
    for strategy in (tf.distribute.get_strategy(), two_cpu_strategy()):
        with strategy.scope():
            model = exemplar(classifier="memory_bank", num_exemplars=8,
                             dtype="float64", transformations_per_image=2)
            model.compile(optimizer=keras.optimizers.SGD(0.1),
                          run_eagerly=True)
        bank = _np(model.memory_bank)
        model.fit(batches, epochs=2, verbose=0)
        runs.append([_np(model.memory_bank)]
                    + [_np(w) for w in model.weights])
    assert np.abs(runs[0][0] - bank).max(axis=-1).min() > 1e-3  # all moved
    for single, mirrored in zip(*runs):
        np.testing.assert_allclose(mirrored, single, rtol=1e-8, atol=1e-9)


# The seeds.


def test_exemplar_dataset_numbers_distinct_seed_images():
    source = images(30)
    pairs = list(data.exemplar_dataset(source, 8, seed=3).as_numpy_iterator())
    labels = [int(label) for _, label in pairs]
    assert labels == list(range(8))
    rows = [int(np.flatnonzero((source == image).all(axis=(1, 2, 3)))[0])
            for image, _ in pairs]
    assert rows == sorted(set(rows))  # distinct, in the images' order
    again = data.exemplar_dataset(
        data.from_arrays(source, labels=np.zeros(30, int)), 8, seed=3
    )
    assert [int(label) for _, label in again.as_numpy_iterator()] == labels
    np.testing.assert_array_equal(
        np.stack([image for image, _ in again.as_numpy_iterator()]),
        np.stack([image for image, _ in pairs]),
    )
    other = data.exemplar_dataset(source, 8, seed=4)
    assert not np.array_equal(
        np.stack([image for image, _ in other.as_numpy_iterator()]),
        np.stack([image for image, _ in pairs]),
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: data.exemplar_dataset(images(4), 5), "num_exemplars=5"),
        (lambda: data.exemplar_dataset(images(4), 1), "num_exemplars=1"),
        (lambda: data.exemplar_dataset(
            data.from_arrays(images(4)).filter(lambda x: True), 2),
         "known, finite size"),
    ],
)
def test_exemplar_dataset_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_exemplars": 1}, "num_exemplars=1"),
        ({"transformations_per_image": 0}, "transformations_per_image=0"),
        ({"classifier": "nce"}, "classifier='nce'"),
        ({"translation": 0.6}, r"translation.*\[0, 0.5\].*translation=0.6"),
        ({"scale": (0, 1.4)}, r"scale.*0 < min.*scale=\(0, 1.4\)"),
        ({"scale": (1.4, 0.7)}, r"scale=\(1.4, 0.7\)"),
        ({"rotation": 190}, "rotation=190"),
        ({"pca_contrast": (-1, 2)}, "pca_contrast"),
        ({"hsv_power": 2.0}, "hsv_power=2.0"),
        ({"hsv_factor": (0.7,)}, "hsv_factor"),
        ({"hsv_shift": 1.5}, "hsv_shift=1.5"),
        ({"hue_shift": 0.6}, "hue_shift=0.6"),
        ({"fill_mode": "wrap"}, "fill_mode='wrap'"),
        ({"temperature": 0}, "temperature=0"),
        ({"memory_momentum": 1.0}, "memory_momentum=1.0"),
        ({"embedding_dim": 0}, "embedding_dim=0"),
        ({"head_hidden_dim": 0}, "head_hidden_dim=0"),
        ({"num_channels": 1}, r"pca_contrast.*num_channels=3.*None"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        exemplar(backbone=False, width=0.125, **kwargs)


def test_batch_size_must_be_a_multiple_of_the_group():
    model = exemplar(classifier="batch", num_exemplars=4)
    with pytest.raises(ValueError, match="multiple of num_exemplars=4.*"
                       "batch_size=6"):
        model(images(6))


def test_bad_surrogate_labels():
    model = exemplar(num_exemplars=4)
    with pytest.raises(ValueError, match=r"shape \(batch,\).*\(2, 2\)"):
        model(images(2), surrogate_labels=np.zeros((2, 2), int))


def test_grey_images_without_colour_transformations():
    model = keras_selfie.ExemplarPretrainer(
        num_exemplars=2, classifier="batch", num_channels=1,
        backbone=small_backbone(channels=1), pca_contrast=None,
        hsv_power=None, hsv_factor=None, hsv_shift=None, hue_shift=None,
        seed=0,
    )
    outputs = model(images(2)[..., :1], training=False)
    assert outputs["logits"].shape == (8, 2)


@pytest.mark.parametrize("classifier", ["parametric", "memory_bank", "batch"])
def test_config_round_trip(classifier):
    model = exemplar(classifier=classifier, num_exemplars=6, scale=[0.8, 1.2],
                     hue_shift=None, head_hidden_dim=5, seed=2)
    clone = keras_selfie.ExemplarPretrainer.from_config(
        keras.utils.deserialize_keras_object(
            keras.utils.serialize_keras_object(model)
        ).get_config()
    )
    assert clone.get_config() == model.get_config()
    assert model.get_config()["scale"] == (0.8, 1.2)
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    assert model.chance_accuracy() == 1 / 6
    assert keras_selfie.methods.name_of(model) == "exemplar"


def test_memory_bank_is_saved(tmp_path):
    model = exemplar(classifier="memory_bank", num_exemplars=4)
    outputs = model(images(2), training=False)
    model.compute_loss(y=np.array([0, 1]), y_pred=outputs, training=True)
    model.save(tmp_path / "exemplar.keras")
    loaded = keras.models.load_model(tmp_path / "exemplar.keras")
    np.testing.assert_array_equal(_np(loaded.memory_bank),
                                  _np(model.memory_bank))
