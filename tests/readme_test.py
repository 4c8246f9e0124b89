"""Runs the README's Python examples, so they cannot go stale.

Each ```python block of README.md is executed as written, in order, in one
namespace (later blocks use what earlier ones made), with four test-sized
substitutions: `SelfiePretrainer` is built with the tiny sizes of
`conftest.TINY` and every other method's pretrainer with those of
`conftest.TINY_BACKBONE`, `data.load_tfds` reads the first 1,000 examples
of a split (the exemplar example's 1,000 seed images), `data.make_dataset`
makes batches of at most `BATCH_SIZE` images, and `fit` trains one eager
epoch of one step. The blocks that need hardware this machine lacks are
listed in `NEEDS_HARDWARE` and only compiled; `distribution_test.py` covers
what they show.
"""

import functools
import pathlib
import re

import keras
import pytest
from conftest import TINY
from conftest import TINY_BACKBONE

import keras_selfie
from keras_selfie import data

README = pathlib.Path(__file__).parent.parent / "README.md"
NEEDS_HARDWARE = ("MirroredStrategy()", "TPUStrategy(")
# The examples' batches of 64 and 128 made a quarter-width step (and the
# full ResNet-50's) most of this test's minute; the code is the same at any
# batch (8: as many images as the colorization example shows).
BATCH_SIZE = 8


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)


def test_readme_has_the_examples_it_promises():
    blocks = python_blocks()
    assert any("SelfiePretrainer(" in b and "transfer_to_resnet50(" in b
               for b in blocks)
    assert any("plot_predictions(" in b for b in blocks)


@pytest.mark.usefixtures("tfds_data_dir")
def test_readme_examples_run(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    real_pretrainer = keras_selfie.SelfiePretrainer

    def tiny(cls, sizes):
        return lambda **kwargs: cls(**{**kwargs, **sizes})

    for name in keras_selfie.methods.names():
        cls = keras_selfie.methods.get(name)
        sizes = TINY if cls is real_pretrainer else TINY_BACKBONE
        monkeypatch.setattr(keras_selfie, cls.__name__, tiny(cls, sizes))

    real_load = data.load_tfds

    def small_split(name, split="train", **kwargs):
        return real_load(name, f"{split}[:1000]", **kwargs)

    real_make_dataset = data.make_dataset

    def small_batches(dataset, batch_size, *args, **kwargs):
        return real_make_dataset(
            dataset, min(batch_size, BATCH_SIZE), *args, **kwargs
        )

    real_fit = keras.Model.fit

    @functools.wraps(real_fit)
    def short_fit(self, x=None, *args, epochs=1, **kwargs):
        self.run_eagerly = True
        kwargs["steps_per_epoch"] = 1
        return real_fit(self, x, *args, epochs=1, **kwargs)

    monkeypatch.setattr(data, "load_tfds", small_split)
    monkeypatch.setattr(data, "make_dataset", small_batches)
    monkeypatch.setattr(keras.Model, "fit", short_fit)

    namespace = {}
    ran = []
    finetuned = None
    for index, block in enumerate(python_blocks()):
        code = compile(block, f"README.md python block {index}", "exec")
        if any(marker in block for marker in NEEDS_HARDWARE):
            continue
        exec(code, namespace)
        ran.append(index)
        if "resnet.fit(" in block:
            # Later sections (the zoo's) make their own `resnet`.
            finetuned = namespace["resnet"]

    assert len(ran) >= 2
    # What the examples promise, checked on what they made.
    pretrainer = keras.models.load_model("selfie.keras")
    assert isinstance(pretrainer, real_pretrainer)
    assert set(namespace["history"].history) >= {"loss", "patch_accuracy"}
    # The fine-tuning example's model: 10 logits; its training ran a step.
    assert finetuned is not None
    assert finetuned.output_shape == (None, 10)
    assert int(finetuned.optimizer.iterations.numpy()) == 1
    for name in ("predictions.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "logs" / "images").glob("events.out.tfevents*"))


def test_readme_lists_every_registered_method():
    # The block under "The zoo of pretext tasks" is `keras-selfie methods`.
    from keras_selfie.cli import methods

    assert f"```\n{methods.listing()}```\n" in README.read_text()
