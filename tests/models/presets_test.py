"""Named presets and preset folders (`from_preset` / `save_to_preset`)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras_selfie
from keras_selfie import presets
from keras_selfie.models.saving import PRESET_CONFIG
from keras_selfie.models.saving import PRESET_WEIGHTS

FRESH_LOAD = textwrap.dedent(
    """
    import sys

    import keras
    import numpy as np

    import keras_selfie

    preset_dir, inputs_path, outputs_path = sys.argv[1:]
    model = keras_selfie.SelfiePretrainer.from_preset(preset_dir)
    inputs = np.load(inputs_path)
    outputs = model(inputs["images"], decoder_positions=inputs["positions"],
                    training=False)
    np.savez(outputs_path, **{
        key: keras.ops.convert_to_numpy(outputs[key])
        for key in ("logits", "queries", "targets")
    })
    """
)


def test_list_describes_every_preset_in_one_line():
    described = presets.list()
    assert set(described) == set(presets.PRESETS) >= {
        "tiny", "cpu", "cifar10_short", "paper_cifar10", "paper_imagenet224"
    }
    for description in described.values():
        assert description and "\n" not in description


def test_get_fills_in_the_default_run_and_copies():
    preset = presets.get("cpu")
    assert preset["pretraining"] == {
        **presets.DEFAULT_PRETRAINING,
        "epochs": 10,
        "steps_per_epoch": 120,
        "batch_size": 64,
    }
    preset["config"]["width"] = 9.0
    assert presets.get("cpu")["config"]["width"] == 0.25


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="Known presets: .*'paper_cifar10'"):
        keras_selfie.SelfiePretrainer.from_preset("paper_cifar100")


def test_folder_without_weights_names_the_missing_file(tmp_path):
    (tmp_path / PRESET_CONFIG).write_text("{}")
    with pytest.raises(ValueError, match=PRESET_WEIGHTS):
        keras_selfie.SelfiePretrainer.from_preset(str(tmp_path))
    os.remove(tmp_path / PRESET_CONFIG)
    with pytest.raises(ValueError, match=PRESET_CONFIG):
        keras_selfie.SelfiePretrainer.from_preset(tmp_path)


def test_named_presets_build_their_configuration():
    imagenet = keras_selfie.SelfiePretrainer.from_preset("paper_imagenet224")
    assert imagenet.image_size == (224, 224)
    assert imagenet.num_patches == 49 and imagenet.num_decoder_patches == 12
    assert imagenet.stem == "imagenet" and imagenet.feature_dim == 1024
    assert imagenet.formulation == {
        "query": "paper",
        "distractors": "image",
        "similarity": "dot",
        "temperature": 1.0,
        "encoder_position_embedding": False,
        "context_view": "patches",
        "target_view": "patches",
        "projection_head": False,
        "patch_color_jitter": False,
    }
    tiny = keras_selfie.SelfiePretrainer.from_preset("tiny", seed=3, width=0.25)
    assert tiny.width == 0.25 and tiny.seed == 3 and tiny.num_layers == 1


def test_saved_preset_predicts_identically_in_a_fresh_process(tmp_path):
    pretrainer = keras_selfie.SelfiePretrainer.from_preset("tiny", seed=5)
    # Weights that differ from a fresh model of the same seed.
    for weight in pretrainer.trainable_weights[-4:]:
        weight.assign(weight + 0.5)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    positions = np.array([[1, 4, 7, 10], [0, 2, 8, 15], [3, 6, 9, 12]],
                         dtype="int32")
    expected = pretrainer(images, decoder_positions=positions, training=False)
    preset_dir = tmp_path / "preset"
    pretrainer.save_to_preset(preset_dir)
    metadata = json.loads((preset_dir / "metadata.json").read_text())
    assert metadata["keras_selfie_version"] == keras_selfie.__version__
    assert metadata["parameter_count"] == pretrainer.count_params()
    assert {"keras_version", "tensorflow_version", "date_saved"} <= set(
        metadata
    )
    np.savez(tmp_path / "inputs.npz", images=images, positions=positions)
    result = subprocess.run(
        [sys.executable, "-c", FRESH_LOAD, str(preset_dir),
         str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz")],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    loaded = np.load(tmp_path / "outputs.npz")
    for key in ("logits", "queries", "targets"):
        np.testing.assert_array_equal(loaded[key], np.asarray(expected[key]))
