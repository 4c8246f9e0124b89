"""The registry of pretext tasks and the `keras-selfie methods` command."""

import pytest

import keras_selfie
from keras_selfie import cli
from keras_selfie import methods


def test_every_method_is_a_registered_pretrainer():
    assert "selfie" in methods.list()
    for name in methods.names():
        cls = methods.get(name)
        assert issubclass(cls, keras_selfie.Pretrainer)
        assert methods.name_of(cls) == name
        assert methods.list()[name]  # a description
    assert methods.get("selfie") is keras_selfie.SelfiePretrainer


@pytest.mark.parametrize("name", ["nope", None, ""])
def test_unknown_method_lists_the_known_ones(name):
    with pytest.raises(ValueError, match=r"method.*\['selfie'.*method="):
        methods.get(name)


def test_methods_command_lists_every_method(capsys):
    assert cli.main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == methods.names()


def test_named_presets_give_each_method_the_arguments_it_has():
    # A preset's Selfie-only entries (patch_size, num_layers, ...) are left
    # to Selfie; an argument the class lacks, given explicitly, is refused.
    tiny = keras_selfie.presets.get("tiny")["config"]
    pretrainer = keras_selfie.SelfiePretrainer.from_preset("tiny", seed=1)
    assert pretrainer.width == tiny["width"]
    with pytest.raises(ValueError, match="no argument 'patch_count'"):
        keras_selfie.SelfiePretrainer.from_preset("tiny", patch_count=3)
