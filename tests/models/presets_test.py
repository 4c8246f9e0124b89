"""Named presets and preset folders (`from_preset` / `save_to_preset`).

A saved preset folder is loaded in a fresh process by `saving_test`, whose
fresh process loads every saved model.
"""

import os

import pytest

import keras_selfie
from keras_selfie import presets
from keras_selfie.models.saving import PRESET_CONFIG
from keras_selfie.models.saving import PRESET_WEIGHTS


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
