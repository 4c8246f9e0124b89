"""The guarantees every pretext task gives, checked on each registered method.

Selfie has its own, older tests of the same guarantees; the other methods
are checked here, one parametrized test per guarantee:

- `transfer_to_resnet50` is exact: the ResNet-50's `conv4_block6_out` equals
  the backbone's feature map (max abs diff < 1e-5);
- a `.keras` file loads in a fresh process with `safe_mode=True` and
  predicts identically;
- `jit_compile=True` gives the forward pass and loss of `jit_compile=False`
  (the float64 whole-step comparison is Selfie's, in distribution_test);
- `MirroredStrategy` over 2 logical CPUs trains exactly as one device with
  the global batch (float64, one eager step, after which the weights, the
  random states and the optimizer's variables, all a next step starts
  from, must agree on every replica).

The XLA and Mirrored checks are of the method's own step (its loss, random
draws and gathers), which holds for any backbone: they run on
`seeded_run.shallow_patch_network`, P with one block per stage, for a
third of the full P's cost. The full P's step is checked the same ways in
`distribution_test`; transfer and saving use the full P.

`conftest.TINY_ARGS` gives each method's smallest arguments beside the
`tiny` preset's backbone; a method added to the registry adds its entry.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfie
from keras_selfie import methods
from keras_selfie.models.resnet import feature_map_network
from keras_selfie.training.callbacks import random_state_variables
from conftest import TINY_ARGS
from conftest import TINY_BACKBONE
from conftest import two_cpu_strategy
from seeded_run import assert_same_state
from seeded_run import fit_one_step
from seeded_run import random_images
from seeded_run import seeded_pretrainer
from seeded_run import shallow_patch_network

METHODS = [name for name in methods.names() if name != "selfie"]


def tiny_config(method):
    return {**TINY_BACKBONE, **TINY_ARGS.get(method, {})}


def build(method, seed=0, **kwargs):
    return methods.get(method)(**tiny_config(method), seed=seed, **kwargs)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _outputs(model, images):
    outputs = model(images, training=False)
    return {key: _np(value) for key, value in outputs.items()}


def test_every_method_but_selfie_has_tiny_arguments():
    assert sorted(TINY_ARGS) == sorted(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_transfer_to_resnet50_is_exact(method):
    pretrainer = build(method)
    # Weights away from their initial values, batch-norm statistics not 0/1.
    rng = np.random.default_rng(0)
    for variable in pretrainer.feature_extractor().variables:
        variable.assign(
            variable.numpy() + rng.normal(0, 0.05, variable.shape)
        )
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    images = random_images(4).astype("float32") / 255.0
    ours = keras.Model(
        resnet.input, resnet.get_layer("conv4_block6_out").output
    )
    expected = _np(
        feature_map_network(pretrainer.feature_extractor())(
            images, training=False
        )
    )
    actual = _np(ours(images, training=False))
    assert np.abs(expected).max() > 0.1
    assert np.abs(actual - expected).max() < 1e-5


LOAD_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import keras
    import numpy as np

    import keras_selfie

    for model_path, inputs_path, outputs_path in json.loads(sys.argv[1]):
        model = keras.models.load_model(model_path, safe_mode=True)
        assert isinstance(model, keras_selfie.Pretrainer), type(model)
        images = np.load(inputs_path)["images"]
        outputs = model(images, training=False)
        np.savez(
            outputs_path,
            **{key: keras.ops.convert_to_numpy(value)
               for key, value in outputs.items()},
        )
    """
)


@pytest.fixture(scope="module")
def loaded_elsewhere(tmp_path_factory):
    """Every method saved after a step and called in one fresh process."""
    folder = tmp_path_factory.mktemp("methods_saving")
    images = random_images(4)
    jobs, expected = [], {}
    for method in METHODS:
        model = build(method, seed=4)
        model.compile(optimizer="adam", run_eagerly=True)
        model.fit(images, batch_size=4, epochs=1, verbose=0)
        path = folder / f"{method}.keras"
        model.save(path)
        # The saved random state draws what this process draws next.
        expected[method] = _outputs(model, images)
        inputs = folder / f"{method}_inputs.npz"
        np.savez(inputs, images=images)
        jobs.append([str(path), str(inputs), str(folder / f"{method}.npz")])
    if jobs:
        result = subprocess.run(
            [sys.executable, "-c", LOAD_SCRIPT, json.dumps(jobs)],
            capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        assert result.returncode == 0, result.stderr[-4000:]
    return {
        method: (expected[method], dict(np.load(folder / f"{method}.npz")))
        for method in METHODS
    }


@pytest.mark.parametrize("method", METHODS)
def test_keras_file_predicts_identically_in_a_fresh_process(
    method, loaded_elsewhere
):
    expected, actual = loaded_elsewhere[method]
    assert sorted(actual) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], key)


@pytest.mark.parametrize("method", METHODS)
def test_jit_compile_gives_the_same_forward_pass_and_loss(method):
    model = build(
        method, seed=5, backbone=shallow_patch_network(
            TINY_BACKBONE["stem"], TINY_BACKBONE["width"]
        ),
    )
    images = random_images(4)
    states = random_state_variables(model)
    initial = [state.numpy().copy() for state in states]

    def forward(images):
        outputs = model(images, training=True)
        return outputs, model.compute_loss(y_pred=outputs)

    eager, eager_loss = forward(images)
    for state, value in zip(states, initial):
        state.assign(value)
    xla, xla_loss = tf.function(forward, jit_compile=True)(images)
    if "labels" in eager:
        # The same random draws (labels, transformations) under XLA.
        np.testing.assert_array_equal(
            _np(xla["labels"]), _np(eager["labels"])
        )
        np.testing.assert_allclose(
            _np(xla["logits"]), _np(eager["logits"]), rtol=1e-4, atol=1e-4
        )
    else:
        # Not a classification: every output (masks, inputs, predictions),
        # to 1e-3 of its scale: in training mode P's feature map differs
        # by ~1e-4 of its scale between XLA and TensorFlow's kernels, which
        # per-pixel outputs do not average out as pooled logits do (a
        # different random draw would differ by far more).
        for key in eager:
            expected = _np(eager[key])
            np.testing.assert_allclose(
                _np(xla[key]), expected, rtol=1e-4,
                atol=1e-3 * np.abs(expected).max(), err_msg=key,
            )
    np.testing.assert_allclose(float(xla_loss), float(eager_loss), rtol=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_mirrored_equals_one_device(method):
    runs = []
    for strategy in (tf.distribute.get_strategy(), two_cpu_strategy()):
        model = seeded_pretrainer(
            tiny_config(method), strategy, run_eagerly=True, method=method,
            shallow=True,
        )
        if not runs:
            initial = [np.array(v.numpy()) for v in model.weights]
        runs.append(fit_one_step(model, random_images(8)))
    (single_loss, single_state), (mirrored_loss, mirrored_state) = runs
    # Keras reports the loss through a float32 metric.
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-6)
    # The weights, random states and optimizer variables after the step:
    # the next step starts alike.
    assert_same_state(mirrored_state, single_state)
    # The state lists the weights first.
    moved = max(
        np.abs(copies[0] - start).max()
        for copies, start in zip(single_state, initial)
    )
    assert moved > 1e-4  # training moved the weights
