"""Saving a trained `SelfiePretrainer` and loading it in a fresh process.

The fresh process also loads a preset folder (`save_to_preset`,
`from_preset`): each new interpreter's imports cost seconds.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_selfie
from conftest import TINY

KEYS = ("logits", "queries", "targets")

# Runs in a new interpreter: only the registration done by
# `import keras_selfie` makes the custom objects loadable.
LOAD_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import keras
    import numpy as np

    import keras_selfie

    def check(model_path, inputs_path, outputs_path, report_path):
        model = keras.models.load_model(model_path, safe_mode=True)
        inputs = np.load(inputs_path)
        outputs = model(
            inputs["images"],
            decoder_positions=inputs["positions"],
            training=False,
        )
        arrays = {key: keras.ops.convert_to_numpy(outputs[key])
                  for key in ("logits", "queries", "targets")}
        for i, weight in enumerate(model.weights):
            arrays[f"weight_{i}"] = keras.ops.convert_to_numpy(weight)
        for i, variable in enumerate(model.optimizer.variables):
            arrays[f"optimizer_{i}"] = keras.ops.convert_to_numpy(variable)
        report = {
            "type": type(model).__name__,
            "is_pretrainer": isinstance(model, keras_selfie.SelfiePretrainer),
            "config": model.get_config(),
            "loss": type(model.distractor_loss).__name__,
            "optimizer": type(model.optimizer).__name__,
            "learning_rate": float(model.optimizer.learning_rate),
            "iterations": int(model.optimizer.iterations),
            "weight_paths": [w.path for w in model.weights],
            "optimizer_paths": [v.path for v in model.optimizer.variables],
        }
        history = model.fit(inputs["train"][:4], batch_size=4, epochs=1, verbose=0)
        report["history"] = {k: [float(x) for x in v]
                             for k, v in history.history.items()}
        report["iterations_after_fit"] = int(model.optimizer.iterations)
        np.savez(outputs_path, **arrays)
        with open(report_path, "w") as f:
            json.dump(report, f)

    def check_preset(preset_dir, inputs_path, outputs_path):
        model = keras_selfie.SelfiePretrainer.from_preset(preset_dir)
        inputs = np.load(inputs_path)
        outputs = model(
            inputs["images"],
            decoder_positions=inputs["positions"],
            training=False,
        )
        np.savez(outputs_path, **{
            key: keras.ops.convert_to_numpy(outputs[key])
            for key in ("logits", "queries", "targets")
        })

    # One process loads every model: a fresh interpreter's imports cost
    # seconds, and each model's registration must come from the import.
    for job in json.loads(sys.argv[1]):
        check(*job)
    check_preset(*json.loads(sys.argv[2]))
    """
)


def _np(x):
    if isinstance(x, keras.Variable):
        return x.numpy()
    return keras.ops.convert_to_numpy(x)


def _run_fresh_python(jobs, preset_job):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    jobs = json.dumps([[str(path) for path in job] for job in jobs])
    preset_job = json.dumps([str(path) for path in preset_job])
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, jobs, preset_job],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]


# The default formulation (context query, batch distractors, cosine), the
# paper's with the per-patch colour jitter, and both views of P on blanked
# whole images with a projection head.
FORMULATIONS = [
    {},
    {"query": "paper", "patch_color_jitter": True},
    {"context_view": "masked_image", "target_view": "masked_image",
     "projection_head": True},
]


@pytest.fixture(scope="module")
def saved_preset(tmp_path_factory):
    """A tiny pretrainer with trained-like weights, saved as a preset folder,
    and its outputs; `saved_all`'s fresh process loads it."""
    tmp_path = tmp_path_factory.mktemp("preset")
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
    np.savez(tmp_path / "inputs.npz", images=images, positions=positions)
    return dict(
        pretrainer=pretrainer,
        preset_dir=preset_dir,
        expected={key: _np(expected[key]) for key in KEYS},
        job=[preset_dir, tmp_path / "inputs.npz", tmp_path / "outputs.npz"],
    )


@pytest.fixture(scope="module")
def saved_all(tmp_path_factory, saved_preset):
    """Tiny pretrainers of every formulation after one step, saved, and
    loaded in one fresh process (with `saved_preset`)."""
    tmp_path = tmp_path_factory.mktemp("saving")
    runs, jobs = [], []
    for index, formulation in enumerate(FORMULATIONS):
        rng = np.random.default_rng(0)
        pretrainer = keras_selfie.SelfiePretrainer(
            **TINY,
            **formulation,
            seed=21,
        )
        # Eager steps: tracing a ResNet's train step takes ~30 s on 2 CPUs.
        pretrainer.compile(
            optimizer=keras.optimizers.Adam(learning_rate=2e-3),
            run_eagerly=True,
        )
        train = rng.uniform(size=(4, 32, 32, 3)).astype("float32")
        pretrainer.fit(train, batch_size=4, epochs=1, verbose=0)
        model_path = tmp_path / f"selfie_{index}.keras"
        pretrainer.save(model_path)

        images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
        positions = np.array(
            [[0, 5, 10, 15], [12, 1, 7, 2], [3, 4, 8, 14]], dtype="int32"
        )
        outputs = pretrainer(
            images, decoder_positions=positions, training=False
        )
        inputs_path = tmp_path / f"inputs_{index}.npz"
        np.savez(inputs_path, images=images, positions=positions, train=train)
        job = [model_path, inputs_path, tmp_path / f"outputs_{index}.npz",
               tmp_path / f"report_{index}.json"]
        jobs.append(job)
        runs.append((pretrainer, {key: _np(outputs[key]) for key in KEYS}))
    _run_fresh_python(jobs, saved_preset["job"])
    results = []
    for (pretrainer, expected), job in zip(runs, jobs):
        with open(job[3]) as f:
            report = json.load(f)
        results.append(dict(
            pretrainer=pretrainer,
            expected=expected,
            actual=dict(np.load(job[2])),
            report=report,
        ))
    return results


@pytest.fixture(
    params=range(len(FORMULATIONS)), ids=["context", "paper", "masked"]
)
def saved(saved_all, request):
    return saved_all[request.param]


def test_loads_in_a_fresh_process_as_a_pretrainer(saved):
    report = saved["report"]
    assert report["type"] == "SelfiePretrainer"
    assert report["is_pretrainer"]
    assert report["loss"] == "DistractorSoftmaxLoss"
    assert report["optimizer"] == "Adam"
    assert report["learning_rate"] == pytest.approx(2e-3)


@pytest.mark.parametrize("key", KEYS)
def test_same_outputs_after_loading(saved, key):
    expected, actual = saved["expected"][key], saved["actual"][key]
    assert actual.shape == expected.shape
    assert np.abs(expected).max() > 0.0
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def test_same_weights_after_loading(saved):
    pretrainer = saved["pretrainer"]
    assert saved["report"]["weight_paths"] == [
        w.path for w in pretrainer.weights
    ]
    for i, weight in enumerate(pretrainer.weights):
        np.testing.assert_array_equal(
            saved["actual"][f"weight_{i}"], _np(weight), err_msg=weight.path
        )


def test_same_config_after_loading(saved):
    config = saved["pretrainer"].get_config()
    # The report went through JSON, which turns tuples into lists.
    assert saved["report"]["config"] == json.loads(json.dumps(config))
    assert saved["report"]["config"]["seed"] == 21
    assert saved["report"]["config"]["width"] == 0.125


def test_optimizer_state_is_restored(saved):
    pretrainer = saved["pretrainer"]
    assert int(_np(pretrainer.optimizer.iterations)) == 1
    assert saved["report"]["iterations"] == 1
    assert saved["report"]["optimizer_paths"] == [
        v.path for v in pretrainer.optimizer.variables
    ]
    moments = 0
    for i, variable in enumerate(pretrainer.optimizer.variables):
        value = _np(variable)
        np.testing.assert_array_equal(
            saved["actual"][f"optimizer_{i}"], value, err_msg=variable.path
        )
        moments += int(np.any(value != 0))
    # Adam's moments are not zero after a step.
    assert moments > len(pretrainer.trainable_weights)


def test_training_continues_after_loading(saved):
    report = saved["report"]
    assert report["iterations_after_fit"] == 2
    assert sorted(report["history"]) == ["loss", "patch_accuracy"]
    (loss,) = report["history"]["loss"]
    assert np.isfinite(loss) and loss > 0.0


def test_saved_preset_predicts_identically_in_a_fresh_process(
    saved_preset, saved_all
):
    pretrainer = saved_preset["pretrainer"]
    metadata = json.loads(
        (saved_preset["preset_dir"] / "metadata.json").read_text()
    )
    assert metadata["keras_selfie_version"] == keras_selfie.__version__
    assert metadata["parameter_count"] == pretrainer.count_params()
    assert {"keras_version", "tensorflow_version", "date_saved"} <= set(
        metadata
    )
    # `saved_all`'s fresh process wrote what the loaded preset computed.
    loaded = np.load(saved_preset["job"][2])
    for key in KEYS:
        np.testing.assert_array_equal(
            loaded[key], saved_preset["expected"][key]
        )


def test_get_config_from_config_round_trip(tiny_config):
    pretrainer = keras_selfie.SelfiePretrainer(
        **tiny_config, num_decoder_patches=3, seed=8
    )
    config = pretrainer.get_config()
    clone = keras_selfie.SelfiePretrainer.from_config(config)
    assert isinstance(clone, keras_selfie.SelfiePretrainer)
    assert clone.get_config() == config
    assert clone.num_decoder_patches == 3
    assert [w.path for w in clone.weights] == [
        w.path for w in pretrainer.weights
    ]
    for source, destination in zip(pretrainer.weights, clone.weights):
        destination.assign(source)
    images = np.random.default_rng(1).uniform(size=(2, 32, 32, 3))
    images = images.astype("float32")
    positions = np.array([[0, 6, 9], [15, 2, 4]], dtype="int32")
    expected = pretrainer(images, decoder_positions=positions, training=False)
    actual = clone(images, decoder_positions=positions, training=False)
    for key in KEYS:
        np.testing.assert_allclose(
            _np(actual[key]), _np(expected[key]), rtol=1e-6, atol=1e-6
        )
    # Serialised through Keras' own machinery, as a `.keras` file does.
    serialized = keras.saving.serialize_keras_object(pretrainer)
    assert serialized["registered_name"] == "keras_selfie>SelfiePretrainer"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert revived.get_config() == config


def test_uncompiled_pretrainer_loads_uncompiled(tiny_config, tmp_path):
    # Keras gives `{}` as the compile config of an uncompiled model; adding
    # the loss to it made loading compile the model with a default Adam
    # (and warn that the saved optimizer had no variables).
    pretrainer = keras_selfie.SelfiePretrainer(**tiny_config, seed=9)
    assert not pretrainer.compiled
    assert pretrainer.get_compile_config() in (None, {})
    path = tmp_path / "uncompiled.keras"
    pretrainer.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded, keras_selfie.SelfiePretrainer)
    assert not loaded.compiled
    for expected, actual in zip(pretrainer.weights, loaded.weights):
        np.testing.assert_array_equal(_np(actual), _np(expected))
