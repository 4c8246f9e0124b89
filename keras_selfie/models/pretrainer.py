"""`Pretrainer`: the base of every pretext task (keras-hub's Task pattern).

A pretrainer is a backbone `P` (by default ResNet-50 stages 1-3 with one of
our stems and a width multiplier, the network `transfer_to_resnet50` moves
into a ResNet-50) and a pretext task on top of it, trained with
`fit(unlabeled_images)`. The base owns what every task shares: the
backbone, input checks and scaling, the compile guard (the task reports
its own loss and metrics), the metrics' directions for tuners and
monitors, the multi-worker log handling, presets, and what transfers.
"""

import keras
from keras import ops

from keras_selfie.models.resnet import STEMS
from keras_selfie.models.resnet import check_width
from keras_selfie.models.resnet import patch_network
from keras_selfie.optimizers import build_optimizer_variables
from keras_selfie.utils.distribution import logs_for_multi_worker
from keras_selfie.utils.distribution import scale_for_replicas
from keras_selfie.utils.images import scale_images
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_image_shape
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import to_pair

# Where a saved pretrainer keeps its seed generators' states: keys
# `seed_generator_state_0`, `..._1`, ... beside its own variables.
SEED_STATE_KEY = "seed_generator_state_"


@keras.saving.register_keras_serializable(package="keras_selfie")
class Pretrainer(keras.Model):
    """Base class of self-supervised pretext tasks on a backbone `P`.

    Subclasses build their task's layers around the backbone
    (`self.patch_network`, made by `make_backbone`) and define:

    - `METRIC_DIRECTIONS`: every value `fit` reports, `"max"` or `"min"`
      (tuners and monitors read which way is better);
    - `default_loss()`: the pretext loss `compile` uses by default;
    - `call(images, training=...)`: a dict of outputs;
    - `task_loss(outputs, sample_weight)` and `update_task_metrics(outputs,
      sample_weight)`: the loss and metrics of those outputs.

    `fit()` takes batches of images, or `(images, anything)` tuples whose
    second element is ignored. uint8 images are scaled to `[0, 1]`; float
    images are used as they are (`preprocess`).

    Args:
        image_size: int or `(height, width)` of the input images.
        num_channels: int. Channels of the input images.
        stem: `"cifar"` (3x3 stride-1 convolution, no max-pool) or
            `"imagenet"` (the `keras.applications.ResNet50` stem) of the
            default backbone.
        width: float. Width multiplier of the default backbone; 1.0 is
            ResNet-50 (features of size 1024).
        synchronized_batch_norm: bool. Whether the default backbone's batch
            normalisation uses the global batch's statistics under a
            `tf.distribute` strategy.
        seed: int or `None`. Seed of the task's random choices and of the
            initialisation.
        **kwargs: other keyword arguments of `keras.Model` (`name`,
            `dtype`).
    """

    # Every value `fit` reports -> "max" or "min". Subclasses extend it.
    METRIC_DIRECTIONS = {"loss": "min"}
    # The constructor arguments a tuner searches (`tuning.
    # PretrainerHyperModel`): name -> (kind "int"/"float"/"bool", sampling
    # "linear"/"log"/None, default range or choices, check(name, value)).
    HYPERPARAMETERS = {}

    def __init__(
        self,
        image_size=32,
        num_channels=3,
        stem="cifar",
        width=1.0,
        synchronized_batch_norm=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = to_pair("image_size", image_size)
        self.num_channels = check_positive_int("num_channels", num_channels)
        self.stem = check_choice("stem", stem, STEMS)
        self.width = check_width(width)
        self.synchronized_batch_norm = bool(synchronized_batch_norm)
        self.seed = seed
        self.custom_backbone = False
        self.pretext_loss = None

    def make_backbone(self, backbone=None):
        """The backbone `P`: `backbone` if given, else the default.

        Subclasses call it where their initialisation order wants it (the
        initial weights of a seeded model depend on the order in which
        layers are made) and keep the result as `self.patch_network`.

        Args:
            backbone: `None` (ResNet-50 stages 1-3 + global average pooling
                at this pretrainer's stem and width, `models.patch_network`)
                or a `keras.Model` from `(batch, height, width,
                num_channels)` images to `(batch, d)` features.

        Returns:
            A `keras.Model`.
        """
        if backbone is None:
            return patch_network(
                num_channels=self.num_channels,
                stem=self.stem,
                width=self.width,
                synchronized=self.synchronized_batch_norm,
                dtype=self.dtype_policy,
            )
        if not isinstance(backbone, keras.Model) or len(
            backbone.output_shape
        ) != 2:
            raise ValueError(
                "Argument `backbone` must be a `keras.Model` mapping images "
                "(batch, height, width, channels) to features (batch, d). "
                f"Received: backbone={backbone!r}"
            )
        self.custom_backbone = True
        return backbone

    @property
    def feature_dim(self):
        """`d`, the size of the backbone's features."""
        return int(self.patch_network.output_shape[-1])

    def feature_extractor(self):
        """The backbone `P`: images to `(batch, d)` features, the part of
        the pretrainer that evaluation and transfer use."""
        return self.patch_network

    def transfer_layer_names(self):
        """The backbone's layers with weights, by name: what
        `transfer_to_resnet50` copies into the ResNet-50 layers of the same
        name (`conv1_conv` ... `conv4_block6_*`)."""
        return [layer.name for layer in self.patch_network.layers
                if layer.weights]

    def task_description(self, batch_size):
        """One line: what the pretext task asks, against what chance, at a
        global batch of `batch_size` images."""
        return f"the {type(self).__name__} pretext task"

    @classmethod
    def metric_directions(cls):
        """Every value `fit` reports, mapped to `"max"` or `"min"`."""
        return dict(cls.METRIC_DIRECTIONS)

    def preprocess(self, images):
        """Checks the images' shape and scales uint8 images to `[0, 1]` in
        the compute dtype (float images are cast, not scaled)."""
        check_image_shape(
            "images", images.shape, (*self.image_size, self.num_channels)
        )
        return scale_images(images, self.compute_dtype)

    def default_loss(self, dtype=None):
        """The pretext loss `compile` uses when given none.

        Args:
            dtype: dtype of the loss computation; `None` for float32.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define `default_loss()`."
        )

    def task_loss(self, outputs, sample_weight=None):
        """The pretext loss of `call`'s outputs, a scalar."""
        raise NotImplementedError(
            f"{type(self).__name__} must define `task_loss()`."
        )

    def update_task_metrics(self, outputs, sample_weight=None):
        """Updates the task's metric trackers from `call`'s outputs."""
        raise NotImplementedError(
            f"{type(self).__name__} must define `update_task_metrics()`."
        )

    def trivial_baseline(self, outputs):
        """The task's figure for an answer that needs no learning.

        A reconstruction error means something only beside the error of a
        trivial answer (the input handed back, a constant colour); an
        accuracy is compared with chance instead
        (`evaluation.chance_level`), and such tasks keep this default.

        Args:
            outputs: `call`'s outputs for a batch.

        Returns:
            `None`, or `(answer, values)`: a short name of the trivial
            answer (for tables, e.g. `"input back"`) and its values of the
            task's figure (`evaluation.pretext_metric`), one per example,
            `(batch,)`.
        """
        return None

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """Configures the model for pretraining.

        Args:
            optimizer: a `keras.optimizers.Optimizer` or its name.
            loss: the pretext loss; `None` for `default_loss()`.
            **kwargs: other arguments of `keras.Model.compile`, such as
                `jit_compile` or `steps_per_execution`. `metrics`,
                `weighted_metrics` and `loss_weights` are not accepted: the
                model reports its own loss and metrics
                (`metric_directions()`).
        """
        name = type(self).__name__
        if kwargs.get("metrics") or kwargs.get("weighted_metrics"):
            raise ValueError(
                f"{name} reports its own metrics "
                f"({', '.join(f'`{m}`' for m in self.METRIC_DIRECTIONS)}); "
                "`metrics` and `weighted_metrics` must be left unset. "
                f"Received: {kwargs.get('metrics')!r}"
            )
        if kwargs.get("loss_weights") is not None:
            raise ValueError(
                f"{name} has a single loss; `loss_weights` must be left "
                "unset."
            )
        self.pretext_loss = (
            self.default_loss() if loss is None else keras.losses.get(loss)
        )
        super().compile(optimizer=optimizer, **kwargs)
        build_optimizer_variables(self)

    def _own_seed_generators(self):
        return [value for value in vars(self).values()
                if isinstance(value, keras.random.SeedGenerator)]

    def save_own_variables(self, store):
        # Keras saves no `SeedGenerator` state, so a loaded task would draw
        # its pairs, permutations or splits from the start of their
        # sequences again; saving the states of the task's own generators
        # makes a loaded model draw what the saved one would draw next.
        super().save_own_variables(store)
        for index, generator in enumerate(self._own_seed_generators()):
            store[f"{SEED_STATE_KEY}{index}"] = generator.state

    def load_own_variables(self, store):
        names = list(store.keys())
        for index, generator in enumerate(self._own_seed_generators()):
            # Files saved before the states were saved leave them as made.
            if f"{SEED_STATE_KEY}{index}" in names:
                generator.state.assign(store[f"{SEED_STATE_KEY}{index}"])
        super().load_own_variables({
            name: store[name] for name in names
            if not name.startswith(SEED_STATE_KEY)
        })

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            config["loss"] = keras.saving.serialize_keras_object(
                self.pretext_loss
            )
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        # `compile` creates the optimizer's variables, so that its saved
        # state loads.
        self.compile(**config)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        # `y`, if the data has one (e.g. class labels), is not used.
        loss = self.task_loss(y_pred, sample_weight=sample_weight)
        for extra in self.losses:
            loss = loss + scale_for_replicas(ops.cast(extra, loss.dtype))
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.update_task_metrics(y_pred, sample_weight=sample_weight)
        return logs_for_multi_worker(self.get_metrics_result())

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A pretrainer from a named preset or a preset folder.

        Args:
            preset: a name from `keras_selfie.presets.list()` (a fresh,
                untrained model of that configuration), or the path of a
                folder written by `save_to_preset` (its configuration and
                trained weights).
            load_weights: bool. For a folder, whether to load its weights.
            **kwargs: constructor arguments overriding the preset's, e.g.
                `seed` or `dtype`.

        Returns:
            A pretrainer, not compiled.

        Raises:
            ValueError: for an unknown name (the message lists the known
                ones) or a folder without `config.json` or
                `model.weights.h5`.

        Example:

        ```python
        pretrainer = SelfiePretrainer.from_preset("cpu", seed=0)
        pretrainer.save_to_preset("selfie_cpu")
        restored = SelfiePretrainer.from_preset("selfie_cpu")
        ```
        """
        from keras_selfie.models.saving import load_preset

        return load_preset(cls, preset, load_weights=load_weights, **kwargs)

    def save_to_preset(self, preset_dir):
        """Saves the pretrainer as a preset folder for `from_preset`.

        The folder holds `config.json` (the model's Keras config),
        `metadata.json` (keras_selfie, Keras and TensorFlow versions, the
        date, the parameter count) and `model.weights.h5`, as keras-hub
        presets do. Loading it needs no code beyond keras_selfie
        (`safe_mode=True`).

        Args:
            preset_dir: path of the folder; made if missing.
        """
        from keras_selfie.models.saving import save_to_preset

        save_to_preset(self, preset_dir)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.saving.deserialize_keras_object(
                config["backbone"]
            )
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "num_channels": self.num_channels,
                "stem": self.stem,
                "width": self.width,
                "synchronized_batch_norm": self.synchronized_batch_norm,
                "seed": self.seed,
            }
        )
        if self.custom_backbone:
            config["backbone"] = keras.saving.serialize_keras_object(
                self.patch_network
            )
        return config


@keras.saving.register_keras_serializable(package="keras_selfie")
class ClassificationPretrainer(Pretrainer):
    """A pretext task that classifies labels the model makes itself.

    Rotation (which of 4 rotations), jigsaw (which permutation), relative
    patch location (which of 8 neighbours) and exemplar (which seed image)
    all make a label for each example they draw from the images and
    classify it. Subclasses set `self.num_classes` and return from `call` a
    dict with `"logits"` `(n, num_classes)` and `"labels"` `(n,)` int32;
    this class gives them the loss (softmax cross-entropy, a
    `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`, so that
    Keras averages it correctly over replicas) and the metric
    `pretext_accuracy` (the share of examples whose best-scoring class is
    the label; chance is `chance_accuracy()`).
    """

    METRIC_DIRECTIONS = {"loss": "min", "pretext_accuracy": "max"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pretext_accuracy_tracker = keras.metrics.Mean(
            name="pretext_accuracy"
        )
        self.pretext_loss = self.default_loss()

    def default_loss(self, dtype=None):
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, name="pretext_loss", dtype=dtype
        )

    def chance_accuracy(self):
        """Pretext accuracy of a uniform guess: `1 / num_classes`."""
        return 1 / self.num_classes

    def task_description(self, batch_size):
        return (
            f"{self.num_classes}-way classification of labels made from "
            f"the images (chance = {self.chance_accuracy():.4f})"
        )

    def task_loss(self, outputs, sample_weight=None):
        return self.pretext_loss(
            outputs["labels"],
            ops.cast(outputs["logits"], "float32"),
            sample_weight=sample_weight,
        )

    def update_task_metrics(self, outputs, sample_weight=None):
        correct = ops.equal(
            ops.cast(ops.argmax(outputs["logits"], axis=-1), "int32"),
            ops.cast(outputs["labels"], "int32"),
        )
        self.pretext_accuracy_tracker.update_state(
            ops.cast(correct, "float32"), sample_weight=sample_weight
        )


def constructor_arguments(cls):
    """The names of the arguments `cls(...)` takes: those of every
    `__init__` up the class hierarchy to `Pretrainer`, plus `name` and
    `dtype` (`keras.Model`'s)."""
    import inspect

    names = {"name", "dtype"}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= {
                parameter.name
                for parameter in inspect.signature(
                    klass.__init__
                ).parameters.values()
                if parameter.kind is parameter.POSITIONAL_OR_KEYWORD
                and parameter.name != "self"
            }
        if klass is Pretrainer:
            break
    return names


def _subclass_names(cls):
    names = []
    for subclass in cls.__subclasses__():
        names += [subclass.__name__] + _subclass_names(subclass)
    return names


def check_pretrainer(value, name="pretrainer", cls=None, or_network=False):
    """Returns `value` if it is a pretrainer, else raises `ValueError`.

    Args:
        value: what was received.
        name: the argument's name, for the message.
        cls: the class required; `None` for any `Pretrainer`.
        or_network: bool, whether a `keras.Model` (a backbone) is accepted
            too.
    """
    cls = cls or Pretrainer
    if isinstance(value, cls) or (
        or_network and isinstance(value, keras.Model)
        and not isinstance(value, Pretrainer)
    ):
        return value
    kinds = f"`keras_selfie.{cls.__name__}`"
    if cls is Pretrainer:
        kinds += f" (such as {', '.join(_subclass_names(Pretrainer))})"
    if or_network:
        kinds += " or its backbone `patch_network` (a `keras.Model`)"
    raise ValueError(
        f"Argument `{name}` must be a {kinds}. "
        f"Received: {name}={type(value).__name__}"
    )
