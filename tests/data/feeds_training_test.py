"""Each of the three sources feeds pretraining and fine-tuning alike."""

import keras
import numpy as np
import pytest
from PIL import Image

import keras_selfie
from conftest import TINY
from keras_selfie import data


def _arrays(count=8, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 32, 32, 3), np.uint8)
    labels = np.arange(count) % 2
    return images, labels


def _folder(tmp_path):
    """One subfolder per class, images of another size than 32x32."""
    images, labels = _arrays()
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = tmp_path / f"class_{label}"
        folder.mkdir(exist_ok=True)
        big = np.kron(image, np.ones((2, 2, 1), np.uint8))  # 64x64
        Image.fromarray(big).save(folder / f"{i}.png")
    return tmp_path


@pytest.fixture(params=["arrays", "folder", "tfds"])
def labeled_source(request, tmp_path):
    if request.param == "arrays":
        return data.from_arrays(*_arrays())
    if request.param == "folder":
        return data.load_image_folder(_folder(tmp_path), 32)
    data_dir = request.getfixturevalue("tfds_data_dir")
    return data.load_tfds(
        "cifar10", split="train[:8]", labeled=True, data_dir=data_dir
    )


def test_source_feeds_pretraining_and_finetuning(labeled_source):
    keras.utils.set_random_seed(0)
    pretrainer = keras_selfie.SelfiePretrainer(**TINY, seed=0)
    # Eager steps: tracing a ResNet's train step takes ~30 s on 2 CPUs.
    pretrainer.compile(optimizer="sgd", run_eagerly=True)
    train = data.make_dataset(
        labeled_source,
        batch_size=4,
        augment=data.pretraining_augmentation(),
        seed=0,
    )
    before = [w.numpy().copy() for w in pretrainer.trainable_weights]
    history = pretrainer.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [
        not np.array_equal(a, b.numpy())
        for a, b in zip(before, pretrainer.trainable_weights)
    ]
    assert sum(changed) > len(changed) // 2

    few, _ = data.labeled_subset(labeled_source, fraction=0.5, seed=0)
    labeled = data.make_dataset(
        few,
        batch_size=2,
        augment=data.finetuning_augmentation(32),
        seed=0,
    )
    resnet = keras_selfie.transfer_to_resnet50(
        pretrainer, classes=10, classifier_activation=None
    )
    resnet.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    history = resnet.fit(labeled, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert len(history.history["loss"]) == 1
