"""RotationPretrainer: the four copies and their labels, on made inputs."""

import keras
import numpy as np
import pytest

import keras_selfie
from conftest import TINY
from conftest import TINY_BACKBONE
from keras_selfie.data import transforms

BACKBONE = TINY_BACKBONE


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_rotate90_turns_like_numpy():
    images = np.random.default_rng(0).uniform(size=(2, 5, 5, 3))
    for k in range(4):
        expected = np.stack([np.rot90(image, k) for image in images])
        np.testing.assert_array_equal(
            _np(transforms.rotate90(images, k)), expected
        )


def test_four_exact_rotations_in_one_batch_with_their_labels():
    """A rotated copy is labelled with its rotation: rows k*B ... k*B+B-1
    of what P sees are the B images turned k quarter turns, label k."""
    model = keras_selfie.RotationPretrainer(**BACKBONE, seed=0)
    images = np.random.default_rng(1).integers(
        0, 256, (3, 32, 32, 3), dtype=np.uint8
    )
    outputs = model(images, training=False)
    labels = _np(outputs["labels"])
    np.testing.assert_array_equal(labels, np.repeat(np.arange(4), 3))
    assert _np(outputs["logits"]).shape == (12, 4)
    # The copies P sees: rows k*3 ... k*3+2 are the images turned k times.
    seen = []
    original = model.patch_network
    model.patch_network = lambda x, training=None: (seen.append(_np(x)),
                                                    original(x))[1]
    try:
        model(images, training=False)
    finally:
        model.patch_network = original
    (rotated,) = seen
    scaled = images.astype("float32") / 255.0
    for k in range(4):
        expected = np.stack([np.rot90(image, k) for image in scaled])
        np.testing.assert_array_equal(rotated[3 * k:3 * k + 3], expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": (32, 16)}, "square images.*image_size=\\(32, 16\\)"),
        ({"head_hidden_dim": 0}, "head_hidden_dim=0"),
        ({"width": 0}, "width"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_selfie.RotationPretrainer(**{**BACKBONE, **kwargs})


def test_config_round_trip_and_hidden_head():
    model = keras_selfie.RotationPretrainer(
        **BACKBONE, head_hidden_dim=16, seed=2
    )
    clone = keras_selfie.RotationPretrainer.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert [w.shape for w in clone.head.weights] == [
        (128, 16), (16,), (16, 4), (4,)
    ]
    assert model.metric_directions() == {
        "loss": "min", "pretext_accuracy": "max"
    }
    assert model.chance_accuracy() == 0.25


def test_load_pretrainer_and_presets_take_any_method(tmp_path):
    model = keras_selfie.RotationPretrainer.from_preset("tiny", seed=3)
    assert model.width == TINY["width"] and model.stem == TINY["stem"]
    path = tmp_path / "rotation.keras"
    model.save(path)
    loaded = keras_selfie.load_pretrainer(path)
    assert isinstance(loaded, keras_selfie.RotationPretrainer)
    model.save_to_preset(tmp_path / "preset")
    restored = keras_selfie.RotationPretrainer.from_preset(tmp_path / "preset")
    for a, b in zip(restored.weights, model.weights):
        np.testing.assert_array_equal(_np(a), _np(b))
    with pytest.raises(ValueError, match="holds a 'RotationPretrainer'"):
        keras_selfie.SelfiePretrainer.from_preset(tmp_path / "preset")
