import math

import keras
from keras import ops

from keras_selfie.data.transforms import FILL_MODES
from keras_selfie.data.transforms import adjust_hsv
from keras_selfie.data.transforms import affine_warp
from keras_selfie.data.transforms import pca_contrast
from keras_selfie.models.pretrainer import ClassificationPretrainer
from keras_selfie.models.rotation_pretrainer import classification_head
from keras_selfie.utils.distribution import gather_across_replicas
from keras_selfie.utils.random import draws_per_copy
from keras_selfie.utils.random import seeded_construction
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_int_in_range
from keras_selfie.utils.validation import check_interval
from keras_selfie.utils.validation import check_number_in_range
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import check_positive_number

CLASSIFIERS = ("parametric", "memory_bank", "batch")

# The random numbers of one transformed copy: columns of `uniform`'s draw.
_DRAWS = {
    "translation": slice(0, 2),
    "scale": slice(2, 3),
    "rotation": slice(3, 4),
    "pca_contrast": slice(4, 7),
    "hsv_power": slice(7, 9),
    "hsv_factor": slice(9, 11),
    "hsv_shift": slice(11, 13),
    "hue_shift": slice(13, 14),
}
_DRAWS_PER_COPY = 14
# The parameters that leave an image unchanged, for transformations off.
_IDENTITY = {
    "translation": 0.0,
    "scale": 1.0,
    "rotation": 0.0,
    "pca_contrast": 1.0,
    "hsv_power": 1.0,
    "hsv_factor": 1.0,
    "hsv_shift": 0.0,
    "hue_shift": 0.0,
}
_GEOMETRIC = ("translation", "scale", "rotation")
_HSV = ("hsv_power", "hsv_factor", "hsv_shift", "hue_shift")
_COLOUR = ("pca_contrast",) + _HSV


@keras.saving.register_keras_serializable(package="keras_selfie")
class ExemplarPretrainer(ClassificationPretrainer):
    """Exemplar-CNN (Dosovitskiy, Springenberg, Riedmiller, Brox, 2014).

    Every seed image is a surrogate class of its own: heavily transformed
    copies of it (translated, scaled, rotated, with changed contrast and
    colours) must be told apart from those of the other seeds. To do so
    `P` must keep what identifies an image and ignore what the
    transformations change.

    Each step draws `transformations_per_image` (K) random transformations
    for every image of the batch, `P` computes the features of all copies,
    and a classifier says whose copy each is. The transformations are the
    paper's (`data.transforms`), composed in this order, each with its
    parameters drawn independently per copy:

    - `translation`: down and right by up to `translation` of the image
      size each (paper: "within 0.2 of the patch size"; its patches were
      32x32, as our images);
    - `scale`: the content enlarged by a factor in `scale` (paper: 0.7 to
      1.4), drawn log-uniformly so that shrinking by 1/x and enlarging by x
      are equally likely (the paper does not say);
    - `rotation`: by an angle of up to `rotation` degrees either way
      (paper: 20);
    - `pca_contrast`: "contrast 1", the colours' deviations from the mean
      colour along each principal colour axis multiplied by a factor in
      `pca_contrast` (paper: 0.5 to 2; log-uniform), clipped to `[0, 1]`;
    - `hsv_power`, `hsv_factor`, `hsv_shift`: "contrast 2", saturation and
      value each raised to a power in `hsv_power` (paper: 0.25 to 4;
      log-uniform), multiplied by a factor in `hsv_factor` (0.7 to 1.4;
      log-uniform) and shifted by up to `hsv_shift` (0.1), clipped to
      `[0, 1]`; saturation and value draw their own;
    - `hue_shift`: "color", the hue moved by up to `hue_shift` of a turn
      (paper: 0.1).

    The paper cut its 32x32 seeds out of larger images, so a transformed
    patch showed more of the scene at its borders; a whole 32x32 image has
    nothing there, and `fill_mode` says what is shown instead. The colour
    transformations expect RGB in `[0, 1]` (uint8 inputs are scaled to
    it); `None` turns a transformation off (required for the colour ones
    unless `num_channels=3`).

    A surrogate class must be the same image at every step, but `fit`
    gets batches without labels. `classifier` says where the classes come
    from:

    - `"parametric"` (the paper): `num_exemplars` fixed seed images, an
      N-way classifier (one dense layer, `head_hidden_dim` puts a hidden
      layer before it) on `P`'s pooled features. The classes come with the
      data: fit on `(image, surrogate_label)` pairs, label `i` for seed
      `i`, which `data.exemplar_dataset(images, num_exemplars, seed)`
      picks and numbers. The second element of each batch is read as the
      surrogate label (so a dataset of `(image, class)` pairs would train a
      supervised classifier); a batch without one raises a `ValueError`.
    - `"memory_bank"` (the non-parametric classifier of Wu et al., 2018):
      the same classes, but instead of an N x d weight matrix, a memory
      bank of one unit vector per seed. `P`'s features go through a linear
      projection to `embedding_dim` and are L2-normalised; the logit of
      seed `j` is the dot product with its bank entry divided by
      `temperature`, and every training step (`compute_loss(...,
      training=True)`, as `fit` runs it) moves the entries of its seeds
      towards their copies' mean embedding: `v <- normalise(momentum * v +
      (1 - momentum) * mean)`. The full softmax over all N entries is
      computed (Wu et al. approximate it with NCE for a million classes).
    - `"batch"`: the classes are the images of the batch itself, so plain
      image batches work (and `"labels"` is always returned): every
      `num_exemplars` consecutive images form a set of N surrogate
      classes, and each copy is classified among the seeds of its group
      by the dot product of its normalised embedding with the seeds'
      (their untransformed images through `P` and the projection in the
      same step), divided by `temperature`, as in the instance
      classification of Ye et al. (2019). The (per-replica) batch must be
      a multiple of `num_exemplars`. This is the setting of the
      conformance tests and of the short CIFAR-10 test run: there the
      images are unlabeled and the test images unseen.

    `call` returns `"logits"` `(K * batch_size, num_exemplars)`, with rows
    `k * batch_size ... (k + 1) * batch_size - 1` the k-th copies of the
    batch's images, `"labels"` `(K * batch_size,)` (their seeds' surrogate
    classes: `surrogate_labels` repeated K times, or in `"batch"` mode the
    position within the group; absent for the other classifiers when no
    `surrogate_labels` are given, which `compute_loss` and
    `compute_metrics` then take from `fit`'s `y`), and for the
    non-parametric classifiers `"embeddings"` `(K * batch_size,
    embedding_dim)`. Chance is `1 / num_exemplars`.

    Args:
        num_exemplars: int >= 2, N: the surrogate classes a copy is
            classified among; the seed images of `data.exemplar_dataset`,
            or the group size of `"batch"`. Default 8000, the paper's
            usual number (it used 50 to 32000).
        transformations_per_image: int >= 1, K: copies of every image per
            step. The paper fixed 100 to 300 samples per class before
            training; drawing K new ones each step is our choice, and 4
            makes the step cost what Rotation's four copies cost.
        classifier: `"parametric"` (default, the paper's), `"memory_bank"`
            or `"batch"`, as above.
        translation: `None` or the largest shift, as a fraction of the
            image size in `[0, 0.5]`. Default 0.2 (paper).
        scale: `None` or a pair `(min, max)`, `0 < min <= max`. Default
            `(0.7, 1.4)` (paper).
        rotation: `None` or the largest angle in degrees, `[0, 180]`.
            Default 20 (paper).
        pca_contrast: `None` or a pair of factors `(min, max)`, `0 < min`.
            Default `(0.5, 2.0)` (paper). The principal colour axes are
            CIFAR-10's (`data.transforms.CIFAR10_COLOR_COMPONENTS`; the
            paper's were those of its training pixels).
        hsv_power: `None` or a pair of powers. Default `(0.25, 4.0)`
            (paper).
        hsv_factor: `None` or a pair of factors. Default `(0.7, 1.4)`
            (paper).
        hsv_shift: `None` or the largest shift of saturation and value, in
            `[0, 1]`. Default 0.1 (paper).
        hue_shift: `None` or the largest shift of the hue, in turns, in
            `[0, 0.5]`. Default 0.1 (paper).
        fill_mode: what a transformed copy shows where it has no pixels of
            its image: `"reflect"` (default: the image mirrored at its
            border, our choice, which adds no edge that only copies have),
            `"nearest"` or `"constant"` (black).
        head_hidden_dim: `"parametric"` only: `None` (a linear classifier
            on `P`'s pooled features, default: the paper's softmax layer
            is linear on its last features) or the width of one ReLU
            hidden layer before it.
        embedding_dim: non-parametric classifiers: size of the normalised
            embedding. Default 128 (Wu et al.; Ye et al.).
        temperature: non-parametric classifiers: the logits' divisor.
            Default 0.07 (Wu et al.; Ye et al. use 0.1).
        memory_momentum: `"memory_bank"`: weight of an entry's old value in
            its update, in `[0, 1)`. Default 0.5 (Wu et al.).
        backbone: `None` or a `keras.Model` from images to `(batch, d)`
            features, used as `P`.
        **kwargs: the arguments of `Pretrainer`: `image_size`,
            `num_channels`, `stem`, `width`, `synchronized_batch_norm` and
            `seed` (of the initialisation and the transformations), and
            `keras.Model`'s (`name`, `dtype`).

    Call arguments:
        images: `(batch, height, width, num_channels)` images.
        surrogate_labels: optional `(batch,)` ints in `[0, num_exemplars)`,
            the images' surrogate classes; ignored by `"batch"`.
        training: bool, passed to `P` (batch normalisation).

    Example:

    ```python
    seeds = keras_selfie.data.exemplar_dataset(
        keras_selfie.data.load_tfds("cifar10", "train"), 8000, seed=0
    )
    pretrainer = keras_selfie.methods.get("exemplar")(width=0.25)
    pretrainer.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    pretrainer.fit(
        keras_selfie.data.make_dataset(seeds, 64, repeat=True, seed=0),
        steps_per_epoch=125, epochs=100,
    )
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    ```

    Reference:
     - [Dosovitskiy et al., 2014](https://arxiv.org/abs/1406.6909)
     - [Wu et al., 2018](https://arxiv.org/abs/1805.01978) (memory bank)
     - [Ye et al., 2019](https://arxiv.org/abs/1904.03436) (the batch's
       images as classes)
    """

    def __init__(
        self,
        num_exemplars=8000,
        transformations_per_image=4,
        classifier="parametric",
        translation=0.2,
        scale=(0.7, 1.4),
        rotation=20.0,
        pca_contrast=(0.5, 2.0),
        hsv_power=(0.25, 4.0),
        hsv_factor=(0.7, 1.4),
        hsv_shift=0.1,
        hue_shift=0.1,
        fill_mode="reflect",
        head_hidden_dim=None,
        embedding_dim=128,
        temperature=0.07,
        memory_momentum=0.5,
        backbone=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_exemplars = check_int_in_range(
            "num_exemplars", num_exemplars, 2
        )
        self.transformations_per_image = check_positive_int(
            "transformations_per_image", transformations_per_image
        )
        self.classifier = check_choice("classifier", classifier, CLASSIFIERS)
        self.translation = _optional(
            translation, check_number_in_range, "translation", 0, 0.5
        )
        self.scale = _optional(scale, check_interval, "scale", 0, math.inf)
        self.rotation = _optional(
            rotation, check_number_in_range, "rotation", 0, 180
        )
        self.pca_contrast = _optional(
            pca_contrast, check_interval, "pca_contrast", 0, math.inf
        )
        self.hsv_power = _optional(
            hsv_power, check_interval, "hsv_power", 0, math.inf
        )
        self.hsv_factor = _optional(
            hsv_factor, check_interval, "hsv_factor", 0, math.inf
        )
        self.hsv_shift = _optional(
            hsv_shift, check_number_in_range, "hsv_shift", 0, 1
        )
        self.hue_shift = _optional(
            hue_shift, check_number_in_range, "hue_shift", 0, 0.5
        )
        if self.num_channels != 3:
            for name in _COLOUR:
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"Argument `{name}` changes RGB colours, so it "
                        "needs `num_channels=3`; pass `None` to turn it "
                        f"off. Received: {name}={getattr(self, name)!r}, "
                        f"num_channels={self.num_channels}"
                    )
        self.fill_mode = check_choice("fill_mode", fill_mode, FILL_MODES)
        if head_hidden_dim is not None:
            head_hidden_dim = check_positive_int(
                "head_hidden_dim", head_hidden_dim
            )
        self.head_hidden_dim = head_hidden_dim
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.temperature = check_positive_number("temperature", temperature)
        self.memory_momentum = check_fraction(
            "memory_momentum", memory_momentum
        )
        self.num_classes = self.num_exemplars
        self.seed_generator = keras.random.SeedGenerator(
            self.seed, name="transformation_seed_generator"
        )
        with seeded_construction(self.seed):
            self.patch_network = self.make_backbone(backbone)
            if self.classifier == "parametric":
                self.head = classification_head(
                    self.num_exemplars, head_hidden_dim, self.dtype_policy
                )
            else:
                self.projection = keras.layers.Dense(
                    self.embedding_dim, dtype=self.dtype_policy,
                    name="projection",
                )
            self.build((None, *self.image_size, self.num_channels))

    def build(self, input_shape=None):
        if self.classifier == "parametric":
            self.head.build((None, self.feature_dim))
        else:
            self.projection.build((None, self.feature_dim))
        if self.classifier == "memory_bank":
            # Every replica applies the same update (`update_memory_bank`
            # gathers the global batch), so the first replica's is kept.
            self.memory_bank = self.add_weight(
                shape=(self.num_exemplars, self.embedding_dim),
                initializer=keras.initializers.RandomNormal(),
                trainable=False,
                aggregation="only_first_replica",
                name="memory_bank",
            )
            self.memory_bank.assign(ops.normalize(self.memory_bank, axis=-1))
        self.built = True

    def task_description(self, batch_size):
        classes = (
            f"the {self.num_exemplars} images of its group of the batch"
            if self.classifier == "batch"
            else f"{self.num_exemplars} seed images"
        )
        return (
            f"which of {classes} each of {self.transformations_per_image} "
            "transformed copies of an image comes from (chance = "
            f"{self.chance_accuracy():.4f})"
        )

    @property
    def transform_dtype(self):
        """The dtype of the transformations and of the non-parametric
        scores: float64 for a float64 model, else float32 (HSV in bfloat16
        would lose the colours)."""
        return "float64" if self.compute_dtype == "float64" else "float32"

    def sample_transformations(self, batch_size):
        """Draws the transformations of the K copies of each image.

        Args:
            batch_size: number of images (an int or a scalar tensor).

        Returns:
            A dict of tensors (float64 for a float64 model, else float32)
            with `K * batch_size` rows, row `k *
            batch_size + i` for the k-th copy of image `i`:
            `"translation"` `(n, 2)` in pixels (down, right), `"scale"`
            `(n,)`, `"rotation"` `(n,)` in degrees, `"pca_contrast"` `(n,
            3)`, `"hsv_power"`, `"hsv_factor"`, `"hsv_shift"` `(n, 2)`
            (saturation, value) and `"hue_shift"` `(n,)`. A transformation
            that is off gets the parameters of no change.
        """
        draws = draws_per_copy(
            self.seed_generator, batch_size, self.transformations_per_image,
            _DRAWS_PER_COPY,
        )
        # A float32 `exp` can round its last bit otherwise on 4 values than
        # on 8 (vectorised or not), and the copies would differ between a
        # replica and one device; float64 models compute in float64.
        dtype = self.transform_dtype
        draws = ops.cast(draws, dtype)
        size = ops.convert_to_tensor(self.image_size, dtype)
        parameters = {}
        for name, columns in _DRAWS.items():
            u = draws[:, columns]
            setting = getattr(self, name)
            if setting is None:
                value = ops.full_like(u, _IDENTITY[name])
            elif isinstance(setting, tuple):
                # Factors and powers: log-uniform in [min, max].
                low, high = math.log(setting[0]), math.log(setting[1])
                value = ops.exp(low + u * (high - low))
            else:
                value = (2 * u - 1) * setting
                if name == "translation":
                    value = value * size
            parameters[name] = value if u.shape[1] > 1 else value[:, 0]
        return parameters

    def transform(self, images, parameters):
        """Applies drawn transformations (`sample_transformations`) to
        images, one row each, in this order: the affine warp, "contrast
        1", "contrast 2" and "color"."""
        if any(getattr(self, name) is not None for name in _GEOMETRIC):
            images = affine_warp(
                images,
                parameters["rotation"],
                parameters["scale"],
                parameters["translation"],
                fill_mode=self.fill_mode,
            )
        if self.pca_contrast is not None:
            images = ops.clip(
                pca_contrast(images, parameters["pca_contrast"]), 0, 1
            )
        if any(getattr(self, name) is not None for name in _HSV):
            images = adjust_hsv(
                images,
                parameters["hue_shift"],
                parameters["hsv_power"],
                parameters["hsv_factor"],
                parameters["hsv_shift"],
            )
        return images

    def call(self, images, surrogate_labels=None, training=None):
        images = self.preprocess(images)
        batch_size = ops.shape(images)[0]
        copies = self.transformations_per_image
        exact = self.transform_dtype
        transformed = ops.cast(
            self.transform(
                ops.tile(ops.cast(images, exact), (copies, 1, 1, 1)),
                self.sample_transformations(batch_size),
            ),
            self.compute_dtype,
        )
        outputs = {}
        if self.classifier == "parametric":
            features = self.patch_network(transformed, training=training)
            outputs["logits"] = ops.cast(self.head(features), "float32")
        elif self.classifier == "memory_bank":
            features = self.patch_network(transformed, training=training)
            embeddings = self.embed(features, exact)
            bank = ops.cast(self.memory_bank, exact)
            outputs["embeddings"] = embeddings
            outputs["logits"] = ops.cast(
                ops.matmul(embeddings, ops.transpose(bank))
                / self.temperature,
                "float32",
            )
        else:
            features = self.patch_network(
                ops.concatenate([images, transformed], axis=0),
                training=training,
            )
            embeddings = self.embed(features, exact)
            seeds = embeddings[:batch_size]
            embeddings = embeddings[batch_size:]
            outputs["embeddings"] = embeddings
            outputs["logits"] = ops.cast(
                self.batch_logits(embeddings, seeds), "float32"
            )
            surrogate_labels = ops.mod(
                ops.arange(batch_size, dtype="int32"), self.num_exemplars
            )
        if surrogate_labels is not None:
            outputs["labels"] = self.copy_labels(surrogate_labels)
        return outputs

    def embed(self, features, dtype):
        """The L2-normalised projection of `P`'s features, in `dtype`."""
        return ops.normalize(
            ops.cast(self.projection(features), dtype), axis=-1
        )

    def batch_logits(self, embeddings, seeds):
        """`"batch"` logits: each copy's embedding against the seeds of its
        group of `num_exemplars` images, divided by the temperature.

        Args:
            embeddings: `(K * batch, e)` normalised embeddings of the
                copies, copy-major.
            seeds: `(batch, e)` normalised embeddings of the images.

        Returns:
            `(K * batch, num_exemplars)` logits.
        """
        batch_size = seeds.shape[0]
        if batch_size is not None and batch_size % self.num_exemplars:
            raise ValueError(
                "ExemplarPretrainer(classifier='batch') classifies each "
                "copy among the images of its group of `num_exemplars` "
                "consecutive images of the batch, so the (per-replica) "
                f"batch size must be a multiple of num_exemplars="
                f"{self.num_exemplars}. Received: batch_size={batch_size}"
            )
        group = self.num_exemplars
        dim = seeds.shape[-1]
        seeds = ops.reshape(seeds, (-1, group, dim))
        embeddings = ops.reshape(
            embeddings, (self.transformations_per_image, -1, group, dim)
        )
        logits = ops.einsum("kgid,gjd->kgij", embeddings, seeds)
        return ops.reshape(logits, (-1, group)) / self.temperature

    def copy_labels(self, surrogate_labels):
        """The labels of the copies: `(batch,)` (or `(batch, 1)`) surrogate
        labels repeated K times, copy-major like `call`'s rows."""
        labels = ops.cast(surrogate_labels, "int32")
        if len(labels.shape) == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if len(labels.shape) != 1:
            raise ValueError(
                "The surrogate labels must be one int per image, shape "
                f"(batch,). Received shape={tuple(labels.shape)}"
            )
        return ops.tile(labels, (self.transformations_per_image,))

    def _with_labels(self, outputs, y):
        # `fit` passes the batch's second element as `y`, not to `call`.
        if "labels" in outputs:
            return outputs
        if y is None:
            raise ValueError(
                f"ExemplarPretrainer(classifier='{self.classifier}') "
                "classifies each transformed copy into the surrogate class "
                "of its seed image, so every image needs its surrogate "
                "label, and this batch has none. Fit it on (image, "
                "surrogate_label) pairs, e.g. `data.make_dataset("
                "data.exemplar_dataset(images, num_exemplars, seed=0), "
                "batch_size, repeat=True)`, or call it with "
                "`surrogate_labels=`; `classifier='batch'` takes plain "
                "images."
            )
        return {**outputs, "labels": self.copy_labels(y)}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        y_pred = self._with_labels(y_pred, y)
        loss = super().compute_loss(
            x, y, y_pred, sample_weight=sample_weight, training=training
        )
        if training and self.classifier == "memory_bank":
            copies = self.transformations_per_image
            self.update_memory_bank(
                y_pred["embeddings"], y_pred["labels"][
                    : ops.shape(y_pred["labels"])[0] // copies
                ]
            )
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(
            x, y, self._with_labels(y_pred, y), sample_weight=sample_weight
        )

    def update_memory_bank(self, embeddings, surrogate_labels):
        """Moves the memory bank's entries of the batch's seeds towards
        their copies' embeddings (Wu et al., 2018).

        `v <- normalise(memory_momentum * v + (1 - memory_momentum) *
        mean)`, with `mean` the mean embedding of the seed's copies in the
        global batch (over every replica, and over its every occurrence);
        the other entries stay. No gradient flows into the bank.

        Args:
            embeddings: `(K * batch, embedding_dim)` normalised embeddings
                of the copies, copy-major (`call`'s `"embeddings"`).
            surrogate_labels: `(batch,)` surrogate labels of the images.
        """
        copies = self.transformations_per_image
        embeddings = ops.stop_gradient(embeddings)
        dtype = embeddings.dtype
        per_image = ops.mean(
            ops.reshape(embeddings, (copies, -1, self.embedding_dim)), axis=0
        )
        per_image = gather_across_replicas(per_image)
        labels = gather_across_replicas(ops.cast(surrogate_labels, "int32"))
        sums = ops.segment_sum(per_image, labels, self.num_exemplars)
        counts = ops.segment_sum(
            ops.ones_like(per_image[:, 0]), labels, self.num_exemplars
        )[:, None]
        bank = ops.cast(self.memory_bank, dtype)
        momentum = self.memory_momentum
        moved = ops.normalize(
            momentum * bank
            + (1 - momentum) * sums / ops.maximum(counts, 1),
            axis=-1,
        )
        self.memory_bank.assign(
            ops.cast(
                ops.where(counts > 0, moved, bank), self.memory_bank.dtype
            )
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_exemplars": self.num_exemplars,
                "transformations_per_image": self.transformations_per_image,
                "classifier": self.classifier,
                "translation": self.translation,
                "scale": self.scale,
                "rotation": self.rotation,
                "pca_contrast": self.pca_contrast,
                "hsv_power": self.hsv_power,
                "hsv_factor": self.hsv_factor,
                "hsv_shift": self.hsv_shift,
                "hue_shift": self.hue_shift,
                "fill_mode": self.fill_mode,
                "head_hidden_dim": self.head_hidden_dim,
                "embedding_dim": self.embedding_dim,
                "temperature": self.temperature,
                "memory_momentum": self.memory_momentum,
            }
        )
        return config


def _optional(value, check, name, *bounds):
    # `None` turns a transformation off; anything else is checked.
    return None if value is None else check(name, value, *bounds)
