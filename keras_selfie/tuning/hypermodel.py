import keras_tuner

from keras_selfie.layers.patch_extractor import PatchExtractor
from keras_selfie.layers.transformer_block import check_num_heads
from keras_selfie.layers.transformer_block import valid_num_heads
from keras_selfie.models.resnet import STEMS
from keras_selfie.models.resnet import check_width
from keras_selfie.models.resnet import feature_dim
from keras_selfie.models.selfie_pretrainer import SelfiePretrainer
from keras_selfie.models.selfie_pretrainer import argument_defaults
from keras_selfie.models.selfie_pretrainer import check_num_decoder_patches
from keras_selfie.models.selfie_pretrainer import decoder_patch_limit
from keras_selfie.models.selfie_pretrainer import (
    default_num_decoder_patches,
)
from keras_selfie.optimizers import DEFAULT_LEARNING_RATES
from keras_selfie.optimizers import OPTIMIZERS
from keras_selfie.optimizers import make_optimizer
from keras_selfie.presets import DEFAULT_PRETRAINING
from keras_selfie.utils.validation import check_bool
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import check_positive_number
from keras_selfie.utils.validation import to_pair

# What `SelfiePretrainer` reports during `fit()`, and which way is better
# (its `metric_directions()`, with the `val_` twins), and the downstream
# `knn_accuracy` logged by `keras_selfie.evaluation.KNNMonitor`, which must
# then be among the hypermodel's `callbacks`.
OBJECTIVE_DIRECTIONS = {
    "knn_accuracy": "max",
    **{
        prefix + name: direction
        for name, direction in SelfiePretrainer.METRIC_DIRECTIONS.items()
        for prefix in ("", "val_")
    },
}


# Hyperparameter name -> (kind, sampling of a range). The names are those of
# the `SelfiePretrainer` arguments and of the optimizer's.
_KINDS = {
    "num_decoder_patches": ("int", "linear"),
    "num_layers": ("int", "linear"),
    "num_heads": ("int", "linear"),
    "intermediate_dim": ("int", "linear"),
    "dropout": ("float", "linear"),
    "learning_rate": ("float", "log"),
    "weight_decay": ("float", "log"),
    "encoder_position_embedding": ("bool", None),
}


def _as_float(check):
    """`check(name, value)`, returning the value as a float."""
    return lambda name, value: float(check(name, value))


# Hyperparameter name -> the check `SelfiePretrainer` (or `make_optimizer`)
# applies to that argument; `num_decoder_patches` also needs the grid.
_CHECKS = {
    "num_layers": check_positive_int,
    "num_heads": check_positive_int,
    "intermediate_dim": check_positive_int,
    "dropout": check_fraction,
    "learning_rate": _as_float(check_positive_number),
    "weight_decay": _as_float(check_non_negative),
    "encoder_position_embedding": check_bool,
}

# Keys of `compile()` that the hypermodel sets itself.
_RESERVED_COMPILE_KWARGS = (
    "optimizer",
    "loss",
    "metrics",
    "weighted_metrics",
    "loss_weights",
)


def pretrainer_objective(name, method="selfie"):
    """The `keras_tuner.Objective` for a metric a method reports.

    Args:
        name: a value of `fit`'s logs: one of the method's
            `metric_directions()` (e.g. `"loss"`, `"pretext_accuracy"`), its
            `val_` twin, or `"knn_accuracy"` (logged by
            `keras_selfie.evaluation.KNNMonitor`, which must then be among
            the hypermodel's `callbacks`).
        method: a name from `keras_selfie.methods.list()`.

    Returns:
        A `keras_tuner.Objective` with the metric's direction.
    """
    from keras_selfie import methods

    directions = {"knn_accuracy": "max"}
    for metric, direction in methods.get(method).metric_directions().items():
        directions[metric] = directions[f"val_{metric}"] = direction
    if name not in directions:
        raise ValueError(
            f"Argument `name` must be a metric that the {method!r} method "
            "reports (or `knn_accuracy`, logged by evaluation.KNNMonitor), "
            f"one of {sorted(directions)}. Received: name={name!r}"
        )
    return keras_tuner.Objective(name, direction=directions[name])


def selfie_objective(name):
    """Returns the `keras_tuner.Objective` for a metric of `SelfiePretrainer`.

    Args:
        name: one of `"val_patch_accuracy"` (maximised), `"val_loss"`
            (minimised), `"patch_accuracy"` or `"loss"` (the training
            figures; prefer the validation ones).

    Returns:
        A `keras_tuner.Objective` with the metric's direction.

    Patch accuracy and the loss depend on `num_decoder_patches` `M` (the
    chance accuracy is `1/M`, the chance loss `log M`), so they compare
    trials fairly only when `M` is fixed (`search_space=
    {"num_decoder_patches": 4}`); searching `M` by them favours small `M`.

    `"knn_accuracy"` (maximised) is the downstream objective: the kNN
    accuracy of the frozen patch network on labeled data, written into the
    logs by `keras_selfie.evaluation.KNNMonitor`, which must be passed in
    `SelfieHyperModel(callbacks=...)`. For another metric a callback logs,
    give the tuner a `keras_tuner.Objective(name, direction)`.
    """
    return pretrainer_objective(name, "selfie")


class _SearchSpaceHyperModel(keras_tuner.HyperModel):
    """What every hypermodel of pretrainers shares: a search space of
    named hyperparameters (a range tuple, a list of choices or a fixed
    value each, checked as the model would check them), the optimizer made
    from the sampled learning rate and weight decay, the compile arguments
    and the trial callbacks.

    Subclasses set `self.kinds` (name -> `(kind, sampling)`) and
    `self.checks` (name -> `check(where, value)`) before calling
    `_setup`, and define `_defaults()` (the ranges searched where
    `search_space` says nothing), `_model_defaults()` (each
    hyperparameter's default value) and `build(hp)`.
    """

    def _setup(self, optimizer, search_space, compile_kwargs, callbacks):
        self.optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
        self.compile_kwargs = self._check_compile_kwargs(compile_kwargs)
        if callbacks is not None and not callable(callbacks):
            callbacks = list(callbacks)
        self.callbacks = callbacks
        self.search_space = self._resolve_search_space(search_space)

    def _optimizer_defaults(self):
        """The default ranges of the optimizer's hyperparameters."""
        if self.optimizer == "sgd":
            learning_rate = (1e-2, 0.3)
        else:
            learning_rate = (1e-4, 3e-3)
        return {"learning_rate": learning_rate, "weight_decay": (1e-6, 1e-3)}

    def _optimizer_model_defaults(self):
        """What `make_optimizer` and the presets would use."""
        return {
            "learning_rate": DEFAULT_LEARNING_RATES[self.optimizer],
            "weight_decay": DEFAULT_PRETRAINING["weight_decay"],
        }

    def _range_choices(self, name, low, high, spec):
        """The values a range stands for when only some are valid (e.g.
        divisors); `None` for a plain range."""
        return None

    def _check_space(self, space):
        """Checks that need the whole resolved space."""

    def _compile(self, pretrainer, values):
        pretrainer.compile(
            optimizer=make_optimizer(
                self.optimizer,
                values["learning_rate"],
                weight_decay=values["weight_decay"],
            ),
            **self.compile_kwargs,
        )
        return pretrainer

    def _resolve_search_space(self, search_space):
        if search_space is None:
            search_space = {}
        if not isinstance(search_space, dict):
            raise ValueError(
                "Argument `search_space` must be a dict from hyperparameter "
                f"names ({list(self.kinds)}) to a range tuple, a list of values "
                f"or a fixed value. Received: search_space={search_space!r}"
            )
        unknown = [name for name in search_space if name not in self.kinds]
        if unknown:
            raise ValueError(
                f"Unknown hyperparameter names in `search_space`: {unknown}. "
                f"Valid names: {list(self.kinds)}"
            )
        space = self._defaults()
        space.update(search_space)
        space = {name: self._check_entry(name, spec) for name, spec in space.items()}
        self._check_space(space)
        return space

    def _check_entry(self, name, spec):
        """Returns `("range", low, high, step)`, `("choice", values)` or
        `("fixed", value)`, after checking every value."""
        kind, _ = self.kinds[name]
        where = f"search_space[{name!r}]"
        if isinstance(spec, tuple):
            if kind == "bool":
                raise ValueError(
                    f"`{where}` must be a bool or a list of bools, not a "
                    f"range. Received: {spec!r}"
                )
            sizes = (2, 3) if kind == "int" else (2,)
            if len(spec) not in sizes:
                form = "(low, high) or (low, high, step)" if kind == "int" else (
                    "(low, high)"
                )
                raise ValueError(
                    f"A range in `{where}` must be a tuple {form}. "
                    f"Received: {spec!r}"
                )
            low, high = (self._check_value(name, v) for v in spec[:2])
            step = None
            if len(spec) == 3:
                step = check_positive_int(f"{where} step", spec[2])
            if low > high:
                raise ValueError(
                    f"A range in `{where}` must have low <= high. "
                    f"Received: {spec!r}"
                )
            if self.kinds[name][1] == "log" and low <= 0:
                raise ValueError(
                    f"`{where}` is sampled on a log scale, so its range must "
                    "be positive; use a list such as [0.0, 1e-4] to include "
                    f"0. Received: {spec!r}"
                )
            choices = self._range_choices(name, low, high, spec)
            if choices is not None:
                return ("choice", choices)
            if low == high:
                return ("fixed", low)
            return ("range", low, high, step)
        if isinstance(spec, list):
            if not spec:
                raise ValueError(f"`{where}` must not be an empty list.")
            values = []
            for value in spec:
                value = self._check_value(name, value)
                if value not in values:
                    values.append(value)
            if len(values) == 1:
                return ("fixed", values[0])
            return ("choice", values)
        return ("fixed", self._check_value(name, spec))

    def _check_value(self, name, value):
        """Checks one value of `search_space[name]` as the model would."""
        return self.checks[name](f"search_space[{name!r}]", value)

    # --- KerasTuner ------------------------------------------------------

    def sample(self, hp):
        """Registers the search space in `hp`; returns the chosen values.

        Args:
            hp: a `keras_tuner.HyperParameters`.

        Returns:
            A dict from hyperparameter name to its value in this trial.
        """
        defaults = self._model_defaults()
        values = {}
        for name, entry in self.search_space.items():
            kind, sampling = self.kinds[name]
            default = defaults[name]
            if entry[0] == "fixed":
                values[name] = hp.Fixed(name, entry[1])
            elif entry[0] == "choice":
                choices = entry[1]
                if kind == "bool" and sorted(choices) == [False, True]:
                    values[name] = hp.Boolean(name, default=default)
                else:
                    values[name] = hp.Choice(
                        name,
                        choices,
                        default=default if default in choices else None,
                    )
            else:
                _, low, high, step = entry
                in_range = low <= default <= high and (
                    step is None or (default - low) % step == 0
                )
                if kind == "int":
                    values[name] = hp.Int(
                        name,
                        low,
                        high,
                        step=step or 1,
                        default=default if in_range else None,
                    )
                else:
                    values[name] = hp.Float(
                        name,
                        low,
                        high,
                        sampling=sampling,
                        default=default if in_range else None,
                    )
        return values

    def declare_hyperparameters(self, hp):
        self.sample(hp)

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        """Trains `model`, with the hypermodel's `callbacks` added.

        The hook for objectives the model does not report: the hypermodel's
        callbacks run first, so what they write into the epoch's `logs` is
        seen by the tuner's callbacks (checkpointing, reporting).
        """
        extra = self.callbacks
        if extra is None:
            extra = []
        elif callable(extra):
            extra = list(extra(hp, model))
        return model.fit(
            *args, callbacks=[*extra, *(callbacks or [])], **kwargs
        )

    @staticmethod
    def _check_compile_kwargs(compile_kwargs):
        if compile_kwargs is None:
            return {}
        if not isinstance(compile_kwargs, dict):
            raise ValueError(
                "Argument `compile_kwargs` must be a dict of `compile()` "
                f"arguments. Received: compile_kwargs={compile_kwargs!r}"
            )
        reserved = [k for k in compile_kwargs if k in _RESERVED_COMPILE_KWARGS]
        if reserved:
            raise ValueError(
                f"`compile_kwargs` must not set {reserved}: the hypermodel "
                "makes the optimizer from `optimizer` and the sampled "
                "learning rate and weight decay, and the pretrainer has its "
                "own loss and metrics. Received: "
                f"compile_kwargs={compile_kwargs!r}"
            )
        return dict(compile_kwargs)


class SelfieHyperModel(_SearchSpaceHyperModel):
    """A KerasTuner hypermodel of compiled `SelfiePretrainer`s.

    The image geometry, the patch network `P` (stem and width), the seed and
    the optimizer family are fixed; the tuner searches over:

    | name | default range |
    |---|---|
    | `num_decoder_patches` | int, 2 to `(N - 1) // 2` (`N` patches) |
    | `num_layers` | int, 1 to 4 (attention pooling) |
    | `num_heads` | the divisors of `d = feature_dim(width)` up to 32 |
    | `intermediate_dim` | int, 128 to 1024, step 128 |
    | `dropout` | float, 0.0 to 0.3 |
    | `learning_rate` | float, log, 1e-2 to 0.3 (SGD) or 1e-4 to 3e-3 (AdamW) |
    | `weight_decay` | float, log, 1e-6 to 1e-3 |
    | `encoder_position_embedding` | bool |

    Each range can be replaced through `search_space`, a dict from these
    names to:

    - a tuple `(low, high)`: a range (int or float as in the table; log
      sampling for `learning_rate` and `weight_decay`). Int ranges take an
      optional step, `(low, high, step)`. For `num_heads` the tuner picks
      among the divisors of `d` in `[low, high]`.
    - a list: the tuner picks one of these values.
    - a single value: fixed to that value, not searched.

    When `num_decoder_patches` is searched, a pretext objective
    (`selfie_objective`) favours small values (chance accuracy is `1/M`);
    fix it, or score trials downstream through `callbacks`.

    Every value is checked against what `SelfiePretrainer` accepts (e.g.
    `num_heads` must divide `d`) before any trial runs. The default value
    of each hyperparameter (used, for example, by a tuner given
    `tune_new_entries=False`) is the `SelfiePretrainer` default when the
    range holds it.

    KerasTuner's own mechanism works as well: entries of a
    `keras_tuner.HyperParameters` passed to the tuner as `hyperparameters=`
    take precedence over the ranges here, under the same names.

    `build(hp)` returns the pretrainer compiled with SGD with Nesterov
    momentum 0.9 or AdamW, at a constant learning rate, with the sampled
    learning rate and weight decay.

    Args:
        image_size: int or `(height, width)`. Size of the input images.
        patch_size: int, side of the square patches.
        num_channels: int, channels of the images.
        stem: `"cifar"` or `"imagenet"`, the stem of the patch network.
        width: float, width multiplier of the patch network; sets the feature
            dimension `d` that `num_heads` must divide.
        synchronized_batch_norm: bool, passed to `SelfiePretrainer`.
        seed: int or `None`, seed of the encoder/decoder splits.
        optimizer: `"sgd"` (Nesterov momentum 0.9) or `"adamw"`.
        search_space: optional dict of overrides, as above.
        compile_kwargs: optional dict of other `compile()` arguments, such as
            `jit_compile`, `run_eagerly` or `steps_per_execution`.
        callbacks: optional list of `keras.callbacks.Callback`, or a function
            `(hp, model) -> list of callbacks`, added to every trial's
            `fit()`. They run before the tuner's own callbacks, so a metric
            that one of them writes into the epoch's `logs` (e.g. a
            downstream kNN accuracy on the pretrained features) can be the
            tuner's objective.
        name: optional name of the hypermodel.
        tunable: bool, whether the hyperparameters are tuned (KerasTuner).

    Example:

    ```python
    hypermodel = SelfieHyperModel(
        image_size=32, patch_size=8, width=0.25, optimizer="adamw",
        search_space={"num_layers": (1, 4), "dropout": [0.0, 0.1]},
        compile_kwargs={"jit_compile": True},
    )
    tuner = keras_tuner.BayesianOptimization(
        hypermodel,
        objective=selfie_objective("val_patch_accuracy"),
        max_trials=20,
        distribution_strategy=tf.distribute.MirroredStrategy(),
    )
    tuner.search(train, validation_data=val, epochs=5, steps_per_epoch=100)
    best = tuner.get_best_models(1)[0]
    ```
    """

    def __init__(
        self,
        image_size=32,
        patch_size=8,
        num_channels=3,
        stem="cifar",
        width=1.0,
        synchronized_batch_norm=False,
        seed=None,
        optimizer="sgd",
        search_space=None,
        compile_kwargs=None,
        callbacks=None,
        name=None,
        tunable=True,
    ):
        super().__init__(name=name, tunable=tunable)
        self.image_size = to_pair("image_size", image_size)
        self.num_channels = check_positive_int("num_channels", num_channels)
        patch_extractor = PatchExtractor(patch_size)
        self.patch_size = patch_extractor.patch_size
        self.grid_size = patch_extractor.grid_size(
            (None, *self.image_size, self.num_channels)
        )
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.stem = check_choice("stem", stem, STEMS)
        self.width = check_width(width)
        self.feature_dim = feature_dim(width)
        self.synchronized_batch_norm = bool(synchronized_batch_norm)
        self.seed = seed
        decoder_patch_limit(self.grid_size)  # Raises for a grid too small.
        self.kinds = _KINDS
        self.checks = {
            **_CHECKS,
            "num_decoder_patches": lambda where, value: (
                check_num_decoder_patches(value, self.grid_size, where)
            ),
        }
        self._setup(optimizer, search_space, compile_kwargs, callbacks)

    # --- The search space ------------------------------------------------

    @property
    def max_decoder_patches(self):
        """Largest `num_decoder_patches` the grid allows, `(N - 1) // 2`."""
        return decoder_patch_limit(self.grid_size)

    @property
    def valid_num_heads(self):
        """The head counts that divide the feature dimension `d`."""
        return valid_num_heads(self.feature_dim)

    def _defaults(self):
        """The search space used where `search_space` says nothing."""
        return {
            "num_decoder_patches": (2, self.max_decoder_patches),
            "num_layers": (1, 4),
            "num_heads": (1, 32),
            "intermediate_dim": (128, 1024, 128),
            "dropout": (0.0, 0.3),
            **self._optimizer_defaults(),
            "encoder_position_embedding": [False, True],
        }

    def _model_defaults(self):
        """The values `SelfiePretrainer` and `make_optimizer` would use."""
        defaults = argument_defaults()
        return {
            **{name: defaults[name] for name in _KINDS if name in defaults},
            "num_decoder_patches": default_num_decoder_patches(
                self.num_patches
            ),
            **self._optimizer_model_defaults(),
        }

    def _range_choices(self, name, low, high, spec):
        if name != "num_heads":
            return None
        values = [h for h in self.valid_num_heads if low <= h <= high]
        if not values:
            raise ValueError(
                f"`search_space['num_heads']`={spec!r} holds no divisor of "
                f"the feature dimension d={self.feature_dim}; valid "
                f"num_heads: {self.valid_num_heads}"
            )
        return values

    def _check_space(self, space):
        self._check_num_heads_choices(space["num_heads"])

    def _check_num_heads_choices(self, entry):
        # A single value or list must divide d; ranges were filtered above.
        values = [entry[1]] if entry[0] == "fixed" else list(entry[1])
        for heads in values:
            check_num_heads(
                heads, self.feature_dim, "search_space['num_heads']"
            )

    def build(self, hp):
        """Returns a `SelfiePretrainer` built and compiled from `hp`."""
        values = self.sample(hp)
        # Only reachable through a tuner's own `hyperparameters=`.
        check_num_heads(values["num_heads"], self.feature_dim)
        pretrainer = SelfiePretrainer(
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.num_channels,
            num_decoder_patches=values["num_decoder_patches"],
            stem=self.stem,
            width=self.width,
            num_layers=values["num_layers"],
            num_heads=values["num_heads"],
            intermediate_dim=values["intermediate_dim"],
            dropout=values["dropout"],
            encoder_position_embedding=values["encoder_position_embedding"],
            synchronized_batch_norm=self.synchronized_batch_norm,
            seed=self.seed,
        )
        return self._compile(pretrainer, values)


# The optimizer's hyperparameters, searched for every method.
_OPTIMIZER_KINDS = {
    "learning_rate": ("float", "log"),
    "weight_decay": ("float", "log"),
}


class PretrainerHyperModel(_SearchSpaceHyperModel):
    """A KerasTuner hypermodel of compiled pretrainers of any method.

    The method, its backbone and any other constructor argument given in
    `config` are fixed; the tuner searches the optimizer's `learning_rate`
    (log; 1e-2 to 0.3 for SGD, 1e-4 to 3e-3 for AdamW) and `weight_decay`
    (log, 1e-6 to 1e-3), and the method's own hyperparameters: those its
    class declares in `HYPERPARAMETERS` (name -> `(kind, sampling, default
    range, check)`, e.g. `RotationPretrainer`'s `head_hidden_dim`). Ranges
    are replaced through `search_space` as in `SelfieHyperModel` (a tuple
    for a range, a list of choices, a single value to fix it). For Selfie,
    `SelfieHyperModel` knows its geometry-dependent ranges.

    Args:
        method: a name from `keras_selfie.methods.list()`.
        config: dict of the method's constructor arguments that stay fixed
            (`image_size`, `stem`, `width`, `seed`, ...).
        optimizer: `"sgd"` (Nesterov momentum 0.9) or `"adamw"`.
        search_space: optional dict of overrides of the ranges.
        compile_kwargs: optional dict of other `compile()` arguments.
        callbacks: optional callbacks added to every trial's `fit`, or a
            function `(hp, model) -> callbacks`; see `SelfieHyperModel`.
        name: optional name of the hypermodel.
        tunable: bool, whether the hyperparameters are tuned.

    Example:

    ```python
    hypermodel = PretrainerHyperModel(
        "rotation", config={"width": 0.25}, search_space={"weight_decay": 0.0}
    )
    tuner = keras_tuner.RandomSearch(
        hypermodel, objective=pretrainer_objective("val_loss", "rotation"),
        max_trials=5,
    )
    ```
    """

    def __init__(
        self,
        method,
        config=None,
        optimizer="sgd",
        search_space=None,
        compile_kwargs=None,
        callbacks=None,
        name=None,
        tunable=True,
    ):
        from keras_selfie import methods
        from keras_selfie.models.pretrainer import constructor_arguments

        super().__init__(name=name, tunable=tunable)
        self.method = method
        self.pretrainer_class = methods.get(method)
        config = dict(config or {})
        unknown = sorted(set(config) - constructor_arguments(
            self.pretrainer_class
        ))
        if unknown:
            raise ValueError(
                f"Argument `config` holds {unknown}, which "
                f"{self.pretrainer_class.__name__} does not take. "
                f"Received: config={config!r}"
            )
        self.config = config
        declared = self.pretrainer_class.HYPERPARAMETERS
        self.kinds = {
            **_OPTIMIZER_KINDS,
            **{name: spec[:2] for name, spec in declared.items()},
        }
        self.checks = {
            "learning_rate": _CHECKS["learning_rate"],
            "weight_decay": _CHECKS["weight_decay"],
            **{name: spec[3] for name, spec in declared.items()},
        }
        self._setup(optimizer, search_space, compile_kwargs, callbacks)

    def _defaults(self):
        return {
            **self._optimizer_defaults(),
            **{
                name: spec[2]
                for name, spec in self.pretrainer_class.HYPERPARAMETERS.items()
            },
        }

    def _model_defaults(self):
        import inspect

        parameters = inspect.signature(
            self.pretrainer_class.__init__
        ).parameters
        return {
            **self._optimizer_model_defaults(),
            **{
                name: parameters[name].default
                for name in self.pretrainer_class.HYPERPARAMETERS
            },
        }

    def build(self, hp):
        """Returns the method's pretrainer built and compiled from `hp`."""
        values = self.sample(hp)
        pretrainer = self.pretrainer_class(
            **self.config,
            **{
                name: values[name]
                for name in self.pretrainer_class.HYPERPARAMETERS
            },
        )
        return self._compile(pretrainer, values)
