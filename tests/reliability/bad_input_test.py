"""Bad input at every public entry point gets an error that names it.

The checks that already lived next to their modules are tested there
(`tests/models`, `tests/layers`, `tests/data`, `tests/evaluation`);
`docs/RELIABILITY.md` lists them all. This file covers the rest: NaN and
infinite values, empty and too-small datasets, wrong files where a
pretrainer is loaded, a diverging run, and constructor arguments checked
through the pretrainer.
"""

import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfie
from conftest import TINY
from keras_selfie import data
from keras_selfie.evaluation import extract_features
from keras_selfie.evaluation import finetune

NAN_MESSAGE = "`images` hold NaN or infinite values"


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return keras_selfie.SelfiePretrainer(**TINY, seed=0)


def random_images(count, dtype="uint8"):
    images = np.random.RandomState(0).randint(0, 256, (count, 32, 32, 3))
    return images.astype(dtype)


def with_bad_value(value, count=4):
    images = random_images(count, "float32") / 255.0
    images[1, 5, 7, 2] = value
    return images


# Constructor arguments, through the pretrainer.


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patch_size": 0}, "patch_size=0"),
        ({"patch_size": -8}, "patch_size=-8"),
        ({"patch_size": 64}, "multiples of `patch_size`.*patch_size=64"),
        ({"image_size": -32}, r"image_size=\(-32, -32\)"),
        ({"num_channels": 0}, "num_channels=0"),
        ({"num_layers": 0}, "num_layers=0"),
        ({"intermediate_dim": -1}, "intermediate_dim=-1"),
        ({"dropout": 1.5}, "dropout=1.5"),
        ({"num_heads": 3}, "num_heads=3 for feature size 128"),
        ({"num_decoder_patches": 9}, "from 2 to 7.*num_decoder_patches=9"),
        ({"seed": "a"}, "seed"),
        ({"position_embedding_initializer": "nope"}, "initializer"),
        ({"query": "both"}, r"query.*\['context', 'paper'\].*query='both'"),
        ({"distractors": "all"}, r"distractors.*\['image', 'batch'\]"),
        ({"similarity": "l1"}, r"similarity.*\['dot', 'cosine'\]"),
        ({"temperature": 0}, "temperature.*> 0.*temperature=0"),
        ({"temperature": -0.5}, "temperature=-0.5"),
        (
            {"context_view": "image"},
            r"context_view.*\['patches', 'masked_image'\].*"
            "context_view='image'",
        ),
        ({"target_view": None, "context_view": 1}, "context_view=1"),
        ({"target_view": "pixels"}, "target_view='pixels'"),
        # P's map of a 6x6 patch is 2x2, of the 24x24 image 6x6, not 4x4:
        # a patch would straddle cells.
        (
            {"image_size": 24, "patch_size": 6, "target_view": "masked_image"},
            "target_view='masked_image'.*multiple of P's stride",
        ),
    ],
)
def test_pretrainer_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_selfie.SelfiePretrainer(**{**TINY, **kwargs})


def test_batch_distractors_need_two_images_per_batch():
    model = keras_selfie.SelfiePretrainer(**TINY, distractors="batch")
    with pytest.raises(ValueError, match="distractors='batch'.*at least 2"):
        model(random_images(1), training=False)
    # The paper's in-image distractors work with one image.
    keras_selfie.SelfiePretrainer(**TINY, query="paper")(random_images(1))


# NaN and infinite values.


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_pretrainer_stops_on_nan_or_inf_images(tiny, value):
    with pytest.raises(tf.errors.InvalidArgumentError, match=NAN_MESSAGE):
        tiny(with_bad_value(value), training=False)


def test_fit_stops_on_a_nan_batch():
    model = keras_selfie.SelfiePretrainer(**TINY, seed=0)
    # The check is a graph op as well (verified with run_eagerly=False; the
    # trace costs 30 s); XLA drops it, where TerminateOnNaN takes over.
    model.compile(optimizer="sgd", run_eagerly=True)
    before = [w.numpy().copy() for w in model.trainable_weights]
    images = tf.data.Dataset.from_tensor_slices(with_bad_value(np.nan))
    with pytest.raises(tf.errors.InvalidArgumentError, match=NAN_MESSAGE):
        model.fit(images.batch(4), verbose=0)
    # Stopped before the first update.
    for old, new in zip(before, model.trainable_weights):
        np.testing.assert_array_equal(old, new.numpy())


def test_diverging_run_is_stopped_by_terminate_on_nan(capsys):
    keras.utils.set_random_seed(0)
    model = keras_selfie.SelfiePretrainer(**TINY, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(1e12), run_eagerly=True)
    history = model.fit(
        random_images(16),
        batch_size=4,
        epochs=3,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    assert "Invalid loss, terminating training" in capsys.readouterr().out
    assert len(history.history["loss"]) == 1  # not the 3 epochs asked for
    assert np.isnan(history.history["loss"][0])


def test_evaluation_stops_on_nan_images(tiny):
    labels = np.arange(4) % 2
    with pytest.raises(tf.errors.InvalidArgumentError, match=NAN_MESSAGE):
        extract_features(tiny, (with_bad_value(np.nan), labels))


def test_evaluation_rejects_diverged_features():
    network = keras.Sequential(
        [keras.Input((None, None, 3)), keras.layers.GlobalAveragePooling2D(),
         keras.layers.Lambda(lambda x: x / 0.0)]
    )
    images = random_images(4, "float32")
    images[0] = 0.0  # 0 / 0 = NaN; the others give +inf
    with pytest.raises(ValueError, match="NaN or infinite values for 4 of 4"):
        extract_features(network, (images, np.arange(4)))


def test_finetune_stops_on_nan_images(tiny):
    labeled = tf.data.Dataset.from_tensor_slices(
        (with_bad_value(np.nan, 8), np.arange(8) % 2)
    )
    batches = data.make_dataset(labeled, 4, training=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match=NAN_MESSAGE):
        finetune(
            tiny, batches, batches, num_classes=2, epochs=1, verbose=0,
            run_eagerly=True,
        )


# Empty and too-small datasets.


def test_make_dataset_rejects_an_empty_dataset():
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 8, 8, 3), "uint8"))
    with pytest.raises(ValueError, match="empty"):
        data.make_dataset(empty, 4)
    with pytest.raises(ValueError, match="empty"):
        data.make_dataset(data.from_arrays(random_images(4)).take(0), 4)


def test_make_dataset_rejects_fewer_examples_than_a_batch():
    images = data.from_arrays(random_images(3))
    with pytest.raises(ValueError, match="3 example.*batch_size=4"):
        data.make_dataset(images, 4)
    with pytest.raises(ValueError, match="3 example.*batch_size=8"):
        data.make_dataset(images, 8, repeat=2)
    # Valid: evaluation keeps the remainder; repeating fills a batch.
    assert len(list(data.make_dataset(images, 4, training=False))) == 1
    assert len(list(data.make_dataset(images, 4, repeat=2))) == 1


# Files where a pretrainer is loaded.


@pytest.fixture(scope="module")
def saved_files(tmp_path_factory, tiny):
    folder = tmp_path_factory.mktemp("files")
    pretrainer_path = folder / "pretrainer.keras"
    tiny.save(pretrainer_path)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save(folder / "other.keras")
    (folder / "garbage.keras").write_bytes(b"not a zip archive")
    contents = pretrainer_path.read_bytes()
    (folder / "truncated.keras").write_bytes(contents[: len(contents) // 2])
    with zipfile.ZipFile(pretrainer_path) as source, zipfile.ZipFile(
        folder / "no_weights.keras", "w"
    ) as target:
        for item in source.infolist():
            if not item.filename.endswith(".h5"):
                target.writestr(item, source.read(item))
    return folder


def test_load_pretrainer_round_trip(saved_files, tiny):
    loaded = keras_selfie.load_pretrainer(saved_files / "pretrainer.keras")
    assert isinstance(loaded, keras_selfie.SelfiePretrainer)
    for a, b in zip(tiny.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    "name, match",
    [
        ("missing.keras", "no such file"),
        (".", "a folder"),
        ("garbage.keras", "not a zip archive"),
        ("truncated.keras", "not a zip archive"),
        ("other.keras", "class 'Sequential', not a .*SelfiePretrainer"),
        ("no_weights.keras", "cannot be loaded"),
    ],
)
def test_load_pretrainer_names_the_problem(saved_files, name, match):
    with pytest.raises(ValueError, match=match) as info:
        keras_selfie.load_pretrainer(saved_files / name)
    if name != ".":
        assert name in str(info.value)


def test_transfer_needs_a_pretrainer(saved_files):
    other = keras.models.load_model(saved_files / "other.keras")
    with pytest.raises(ValueError, match="Received: pretrainer=Sequential"):
        keras_selfie.transfer_to_resnet50(other)
