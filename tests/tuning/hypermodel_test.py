import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY
from conftest import two_cpu_strategy

import keras_selfie
from keras_selfie.tuning import SelfieHyperModel
from keras_selfie.tuning import selfie_objective

# The tuned parts of TINY come from the search space; the rest is fixed.
FIXED = dict(image_size=TINY["image_size"], patch_size=TINY["patch_size"],
             width=TINY["width"])
TUNED = (
    "num_decoder_patches",
    "num_layers",
    "num_heads",
    "intermediate_dim",
    "dropout",
    "encoder_position_embedding",
)
# Small but real ranges, so that a trial takes about a second.
SMALL_SPACE = {
    "num_layers": (1, 2),
    "num_heads": [2, 4],
    "intermediate_dim": (32, 64, 32),
}


def hypermodel(**kwargs):
    kwargs.setdefault("search_space", SMALL_SPACE)
    kwargs.setdefault("seed", 0)
    # Eager steps skip the ~30 s graph tracing of each trial's new model.
    kwargs.setdefault("compile_kwargs", {"run_eagerly": True})
    return SelfieHyperModel(**FIXED, **kwargs)


def images(batch_size=4):
    x = np.random.default_rng(0).integers(
        0, 256, (16, 32, 32, 3), dtype=np.uint8
    )
    return tf.data.Dataset.from_tensor_slices(x).batch(batch_size).repeat()


def random_search(model_hp, objective, tmp_path, **kwargs):
    """The one tuner class of these tests: what is ours (the hypermodel's
    declare_hyperparameters, build and fit) is the same under every
    tuner class; they differ in how their oracles pick the values, which
    is KerasTuner's."""
    return keras_tuner.RandomSearch(
        model_hp, objective=objective, directory=tmp_path, overwrite=True,
        **kwargs,
    )


def search(tuner):
    data = images()
    tuner.search(
        data,
        validation_data=data,
        validation_steps=1,
        epochs=1,
        steps_per_epoch=1,
        verbose=0,
    )


def check_built_from(model, hp):
    """`model` is the pretrainer of `hp`: its tuned arguments and its
    optimizer's."""
    for name in TUNED:
        assert getattr(model, name) == model.get_config()[name] == hp.get(
            name
        ), name
    learning_rate = keras.ops.convert_to_numpy(model.optimizer.learning_rate)
    np.testing.assert_allclose(learning_rate, hp.get("learning_rate"),
                               rtol=1e-6)
    np.testing.assert_allclose(model.optimizer.weight_decay,
                               hp.get("weight_decay"), rtol=1e-6)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.nesterov


def test_search_best_hyperparameters_rebuild_the_best_model(tmp_path):
    model_hp = hypermodel()
    tuner = random_search(
        model_hp, selfie_objective("val_patch_accuracy"), tmp_path,
        max_trials=2, seed=0,
    )
    search(tuner)
    assert len(tuner.oracle.trials) == 2
    best_hp = tuner.get_best_hyperparameters(1)[0]
    check_built_from(model_hp.build(best_hp), best_hp)
    check_built_from(tuner.get_best_models(1)[0], best_hp)


class Probe(keras.callbacks.Callback):
    """Logs the trial model's `num_layers` as `val_probe`."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_probe"] = float(self.model.num_layers)


@pytest.fixture(scope="module")
def mirrored_search(tmp_path_factory):
    """A search under `MirroredStrategy` whose objective is what one of the
    hypermodel's callbacks logs (`Probe`). One trial: comparing trials is
    the test above's; eager steps under MirroredStrategy cost seconds
    each."""
    tuner = random_search(
        hypermodel(callbacks=lambda hp, model: [Probe()]),
        keras_tuner.Objective("val_probe", direction="max"),
        tmp_path_factory.mktemp("mirrored_search"), max_trials=1,
        distribution_strategy=two_cpu_strategy(), seed=1,
    )
    search(tuner)
    return tuner


def test_search_under_mirrored_strategy(mirrored_search):
    tuner = mirrored_search
    assert len(tuner.oracle.trials) == 1
    best_trial = tuner.oracle.get_best_trials(1)[0]
    assert np.isfinite(best_trial.metrics.get_last_value("val_loss"))
    # The best model, built and loaded under the strategy. (Rebuilding it
    # from the hyperparameters is the test above's.)
    check_built_from(
        tuner.get_best_models(1)[0], tuner.get_best_hyperparameters(1)[0]
    )


def test_callbacks_hook_feeds_an_objective(mirrored_search):
    trial = mirrored_search.oracle.get_best_trials(1)[0]
    assert trial.score == trial.hyperparameters.get("num_layers")


def test_adamw_and_fixed_values():
    model_hp = hypermodel(
        optimizer="adamw",
        search_space={"num_heads": 8, "learning_rate": [3e-4],
                      "weight_decay": 0.0, "encoder_position_embedding": True},
    )
    hp = keras_tuner.HyperParameters()
    model = model_hp.build(hp)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert hp.values["num_heads"] == 8 and model.num_heads == 8
    assert model.encoder_position_embedding is True
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.optimizer.learning_rate), 3e-4
    )
    # Defaults are the SelfiePretrainer's where the range holds them.
    assert hp.values["num_decoder_patches"] == 4
    assert hp.values["dropout"] == pytest.approx(0.1)
    assert model.compiled and model.run_eagerly


def test_tuner_hyperparameters_take_precedence(tmp_path):
    fixed = keras_tuner.HyperParameters()
    fixed.Fixed("num_layers", 2)
    tuner = random_search(
        hypermodel(search_space={}), selfie_objective("val_loss"), tmp_path,
        max_trials=1, hyperparameters=fixed, tune_new_entries=False,
    )
    hp = tuner.oracle.get_space()
    assert [p.name for p in hp.space] == ["num_layers"]
    model = tuner.hypermodel.build(hp)
    assert model.num_layers == 2
    assert model.num_heads == 32  # SelfiePretrainer's default


def test_search_space_proposes_only_valid_values():
    # d = 4 * round(256 * 0.15) = 152 = 8 * 19: 16 and 32 do not divide it.
    model_hp = SelfieHyperModel(image_size=40, patch_size=8, width=0.15)
    assert model_hp.feature_dim == 152
    hp = keras_tuner.HyperParameters()
    model_hp.declare_hyperparameters(hp)
    space = {p.name: p for p in hp.space}
    assert set(space["num_heads"].values) == {1, 2, 4, 8, 19}
    # 5x5 grid: N = 25, so 2 <= M <= 12.
    assert (space["num_decoder_patches"].min_value,
            space["num_decoder_patches"].max_value) == (2, 12)
    heads, decoder = set(), set()
    for seed in range(200):
        heads.add(space["num_heads"].random_sample(seed))
        decoder.add(space["num_decoder_patches"].random_sample(seed))
    assert heads == {1, 2, 4, 8, 19}
    assert decoder == set(range(2, 13))
    # A range of heads keeps only the divisors of d.
    narrowed = SelfieHyperModel(image_size=40, patch_size=8, width=0.15,
                                search_space={"num_heads": (3, 20)})
    assert narrowed.search_space["num_heads"] == ("choice", [4, 8, 19])


def test_selfie_objective():
    assert selfie_objective("val_patch_accuracy").direction == "max"
    assert selfie_objective("val_loss").direction == "min"
    with pytest.raises(ValueError, match="val_patch_accuracy"):
        selfie_objective("val_accuracy")


@pytest.mark.parametrize(
    "search_space, message",
    [
        ({"heads": [2, 4]}, r"Unknown .*\['heads'\].*num_heads"),
        (
            {"num_heads": [3, 4]},
            r"num_heads'\]` must divide .*1, 2, 4, 8, 16, 32.*"
            r"num_heads'\]=3 for feature size 128",
        ),
        ({"num_heads": (33, 63)}, "no divisor"),
        ({"num_decoder_patches": (2, 8)}, "from 2 to 7"),
        ({"num_decoder_patches": 1}, "from 2 to 7"),
        ({"num_layers": (1.0, 4)}, r"num_layers'\]` must be a positive "
         r"integer.*num_layers'\]=1.0"),
        ({"num_layers": (4, 1)}, "low <= high"),
        ({"dropout": (0.0, 1.0)}, r"\[0, 1\)"),
        ({"weight_decay": (0.0, 1e-3)}, "log scale"),
        ({"weight_decay": [-1e-4]}, ">= 0"),
        ({"encoder_position_embedding": (False, True)}, "not a range"),
        ({"encoder_position_embedding": [0, 1]}, "True or False"),
        ({"intermediate_dim": []}, "empty"),
        ([("num_layers", 2)], "must be a dict"),
    ],
)
def test_search_space_validation(search_space, message):
    with pytest.raises(ValueError, match=message):
        SelfieHyperModel(**FIXED, search_space=search_space)


@pytest.mark.parametrize(
    "name, value",
    [("num_decoder_patches", 8), ("num_heads", 3), ("dropout", 1.0),
     ("num_layers", 0), ("intermediate_dim", 2.0)],
)
def test_search_space_uses_the_pretrainer_checks(name, value):
    """A value is refused with the words `SelfiePretrainer` would use."""
    with pytest.raises(ValueError) as model_error:
        keras_selfie.SelfiePretrainer(**{**TINY, name: value})
    with pytest.raises(ValueError) as tuner_error:
        SelfieHyperModel(**FIXED, search_space={name: value})
    where = f"search_space[{name!r}]"
    assert str(tuner_error.value) == str(model_error.value).replace(
        f"{name}=", f"{where}="
    ).replace(f"`{name}`", f"`{where}`")


def test_constructor_validation():
    with pytest.raises(ValueError, match=r"\['optimizer'\]"):
        SelfieHyperModel(**FIXED, compile_kwargs={"optimizer": "adam"})
    with pytest.raises(ValueError, match="sgd"):
        SelfieHyperModel(**FIXED, optimizer="adam")
    with pytest.raises(ValueError, match="at least 5 patches"):
        SelfieHyperModel(image_size=16, patch_size=8)


def test_pretrainer_hypermodel_searches_any_method(tmp_path):
    from keras_selfie.tuning import PretrainerHyperModel
    from keras_selfie.tuning import pretrainer_objective

    model_hp = PretrainerHyperModel(
        "rotation",
        config={"image_size": 32, "width": FIXED["width"], "seed": 0},
        search_space={"head_hidden_dim": [16, 32]},
        compile_kwargs={"run_eagerly": True},
    )
    objective = pretrainer_objective("val_pretext_accuracy", "rotation")
    assert objective.direction == "max"
    tuner = random_search(model_hp, objective, tmp_path, max_trials=1)
    search(tuner)
    best_hp = tuner.get_best_hyperparameters(1)[0]
    best = tuner.get_best_models(1)[0]
    assert isinstance(best, keras_selfie.RotationPretrainer)
    assert best.head_hidden_dim == best_hp.get("head_hidden_dim") in (16, 32)
    assert best.width == FIXED["width"]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(best.optimizer.learning_rate),
        best_hp.get("learning_rate"), rtol=1e-6,
    )


def test_pretrainer_hypermodel_bad_input():
    from keras_selfie.tuning import PretrainerHyperModel
    from keras_selfie.tuning import pretrainer_objective

    with pytest.raises(ValueError, match="method.*rotation"):
        PretrainerHyperModel("rotations")
    with pytest.raises(ValueError, match="patch_size"):
        PretrainerHyperModel("rotation", config={"patch_size": 8})
    with pytest.raises(ValueError, match="head_hidden_dim.*=0"):
        PretrainerHyperModel("rotation", search_space={"head_hidden_dim": 0})
    with pytest.raises(ValueError, match="patch_accuracy"):
        pretrainer_objective("patch_accuracy", "rotation")
