import math

import keras
from keras import ops

from keras_selfie.data.transforms import color_jitter
from keras_selfie.data.transforms import crop_and_resize
from keras_selfie.data.transforms import flip_left_right
from keras_selfie.data.transforms import gaussian_blur
from keras_selfie.data.transforms import grayscale
from keras_selfie.data.transforms import resized_crop_boxes
from keras_selfie.losses.nt_xent_loss import NTXentLoss
from keras_selfie.losses.nt_xent_loss import check_temperature
from keras_selfie.losses.nt_xent_loss import nt_xent_logits
from keras_selfie.models.pretrainer import Pretrainer
from keras_selfie.utils.random import draws_per_copy
from keras_selfie.utils.random import seeded_construction
from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_int_in_range
from keras_selfie.utils.validation import check_interval
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import check_positive_number

# Crop proposals per view (torchvision's `RandomResizedCrop` tries 10).
CROP_ATTEMPTS = 10
# The random numbers of one view: columns of `uniform`'s draw.
_DRAWS = {
    "crop": slice(0, 4 * CROP_ATTEMPTS),
    "flip": 4 * CROP_ATTEMPTS,
    "jitter": 4 * CROP_ATTEMPTS + 1,
    "brightness": 4 * CROP_ATTEMPTS + 2,
    "contrast": 4 * CROP_ATTEMPTS + 3,
    "saturation": 4 * CROP_ATTEMPTS + 4,
    "hue": 4 * CROP_ATTEMPTS + 5,
    "grayscale": 4 * CROP_ATTEMPTS + 6,
    "blur": 4 * CROP_ATTEMPTS + 7,
    "sigma": 4 * CROP_ATTEMPTS + 8,
}
_DRAWS_PER_VIEW = 4 * CROP_ATTEMPTS + 9
VIEWS = 2


@keras.saving.register_keras_serializable(package="keras_selfie")
class SimCLRPretrainer(Pretrainer):
    """SimCLR (Chen, Kornblith, Norouzi, Hinton, 2020).

    Two random views of every image, made inside the step by the paper's
    augmentations, go through the backbone `P` and a projection head `g`;
    each view must then pick out the other view of its image among the
    other `2N - 1` views of the global batch of `N` images, by the cosine
    similarity of their projections (the NT-Xent loss,
    `losses.NTXentLoss`). To do so `P` must keep what identifies an image
    and ignore what the augmentations change: crops, flips and colours.

    The views follow the paper's pipeline (Appendix A), each view drawing
    its own parameters, in this order:

    - random resized crop: a box covering a fraction of the area drawn
      uniformly in `crop_scale` (paper: 0.08 to 1), with a width/height
      ratio drawn log-uniformly in `crop_aspect_ratio` (paper: 3/4 to
      4/3), resized bilinearly to the image size (`data.transforms.
      resized_crop_boxes`, `crop_and_resize`); the paper keeps this
      Inception crop on 32x32 CIFAR-10 images (Appendix B.9);
    - horizontal flip with probability `flip_probability` (paper: 1/2);
    - colour jitter with probability `color_jitter_probability` (paper:
      0.8): brightness changed by up to `0.8 s`, contrast and saturation
      multiplied by a factor in `[1 - 0.8 s, 1 + 0.8 s]`, hue moved by up
      to `0.2 s` of a turn, in that order (the paper's listing; its code
      can also shuffle the order), with `s = color_strength` (paper: 1 on
      ImageNet, 0.5 on CIFAR-10, Appendix B.9, the default here);
    - colour drop (grey, `data.transforms.grayscale`) with probability
      `grayscale_probability` (paper: 0.2);
    - Gaussian blur with probability `blur_probability`, sigma drawn
      uniformly in `blur_sigma` (paper: 0.1 to 2.0 pixels), the kernel 10%
      of the image side (made odd). The paper blurs ImageNet views with
      probability 1/2 but leaves blur out on CIFAR-10 (Appendix B.9), so
      the default is 0.

    The colour augmentations expect RGB in `[0, 1]` (uint8 inputs are
    scaled to it). The projection head is an MLP of `projection_layers`
    dense layers, ReLU between them: the hidden ones `projection_hidden_dim`
    wide (default `d`, the size of `P`'s features, the paper's 2048 for
    ResNet-50), the last `projection_dim` (paper: 128). The paper's head
    has 2 layers; 1 is a linear head and 0 none (the paper's Figure 8
    compares the three). The head is dropped at transfer: only `P` is
    `feature_extractor()`.

    Under a `tf.distribute` strategy the projections of all replicas are
    gathered, so every view has the negatives of the global batch (the
    paper's setting) and training equals one device with the global
    batch. The paper also synchronises batch normalisation across devices
    ("global BN"): pass `synchronized_batch_norm=True`. The metric
    `contrastive_accuracy` is the share of views whose most similar other
    view is their positive; chance is `1 / (2N - 1)`
    (`chance_accuracy(N)`).

    The paper trains with LARS (You et al., 2017) at batch 4096. Keras 3
    has no LARS: the maintained implementations (TensorFlow Model Garden's
    `tfm.optimization.LARS`, keras-contrib's) are Keras 2 optimizers, and
    neither keras-hub nor keras-cv has one. This library does not add
    one: SGD with momentum (`optimizers.make_optimizer("sgd")`) is what
    small batches need, and `keras.optimizers.Lamb` (LAMB, layer-wise
    trust ratios on Adam) is Keras 3's large-batch optimizer.

    `call` returns `"projections"` `(2B, projection_dim)` (rows `0 ...
    B-1` the first views of the batch's `B` images, `B ... 2B-1` their
    second views), `"logits"` `(2B, 2N)` (`losses.nt_xent_logits`: every
    view against the views of the global batch, divided by `temperature`,
    its own column lowered) and `"labels"` `(2B,)` (the column of each
    view's positive).

    Args:
        temperature: float > 0 of the default loss and of `"logits"`.
            Default 0.5: the paper's CIFAR-10 setting (Appendix B.9; the
            authors' CIFAR-10 command, github.com/google-research/simclr,
            passes `--temperature=0.5`); its ImageNet setting uses 0.1 at
            batch 4096 (Table 5).
        projection_layers: int >= 0, dense layers of the projection head.
            Default 2 (paper).
        projection_hidden_dim: `None` (`d`, the paper's) or the width of
            the head's hidden layers.
        projection_dim: the size of the projections. Default 128 (paper);
            ignored with `projection_layers=0`.
        crop_scale: pair `(min, max)` in `(0, 1]`, the crop's share of the
            image area. Default `(0.08, 1.0)` (paper).
        crop_aspect_ratio: pair `(min, max)`, the crop's width/height
            ratio. Default `(3/4, 4/3)` (paper).
        flip_probability: in `[0, 1]`. Default 0.5 (paper).
        color_strength: `s >= 0`, the strength of the colour jitter (0
            turns it off). Default 0.5 (paper's CIFAR-10 value).
        color_jitter_probability: in `[0, 1]`. Default 0.8 (paper).
        grayscale_probability: in `[0, 1]`. Default 0.2 (paper).
        blur_probability: in `[0, 1]`. Default 0 (paper's CIFAR-10
            setting; 0.5 on ImageNet).
        blur_sigma: pair `(min, max)` of standard deviations in pixels.
            Default `(0.1, 2.0)` (paper).
        backbone: `None` or a `keras.Model` from images to `(batch, d)`
            features, used as `P`.
        **kwargs: the arguments of `Pretrainer`: `image_size`,
            `num_channels`, `stem`, `width`, `synchronized_batch_norm` and
            `seed` (of the initialisation and the views), and
            `keras.Model`'s (`name`, `dtype`).

    Example:

    ```python
    pretrainer = keras_selfie.methods.get("simclr")(width=0.25)
    pretrainer.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    pretrainer.fit(unlabeled_images, epochs=10)
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    ```

    Reference:
     - [Chen et al., 2020](https://arxiv.org/abs/2002.05709)
    """

    METRIC_DIRECTIONS = {"loss": "min", "contrastive_accuracy": "max"}
    HYPERPARAMETERS = {
        "temperature": ("float", "log", (0.05, 1.0), check_positive_number),
    }

    def __init__(
        self,
        temperature=0.5,
        projection_layers=2,
        projection_hidden_dim=None,
        projection_dim=128,
        crop_scale=(0.08, 1.0),
        crop_aspect_ratio=(3 / 4, 4 / 3),
        flip_probability=0.5,
        color_strength=0.5,
        color_jitter_probability=0.8,
        grayscale_probability=0.2,
        blur_probability=0.0,
        blur_sigma=(0.1, 2.0),
        backbone=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.temperature = check_temperature(temperature)
        self.projection_layers = check_int_in_range(
            "projection_layers", projection_layers, 0
        )
        if projection_hidden_dim is not None:
            projection_hidden_dim = check_positive_int(
                "projection_hidden_dim", projection_hidden_dim
            )
        self.projection_hidden_dim = projection_hidden_dim
        self.projection_dim = check_positive_int(
            "projection_dim", projection_dim
        )
        self.crop_scale = check_interval("crop_scale", crop_scale, 0, 1)
        self.crop_aspect_ratio = check_interval(
            "crop_aspect_ratio", crop_aspect_ratio, 0, math.inf
        )
        self.flip_probability = _probability(
            "flip_probability", flip_probability
        )
        self.color_strength = float(
            check_non_negative("color_strength", color_strength)
        )
        self.color_jitter_probability = _probability(
            "color_jitter_probability", color_jitter_probability
        )
        self.grayscale_probability = _probability(
            "grayscale_probability", grayscale_probability
        )
        self.blur_probability = _probability(
            "blur_probability", blur_probability
        )
        self.blur_sigma = check_interval("blur_sigma", blur_sigma, 0, math.inf)
        if self.num_channels != 3:
            for name in ("color_strength", "grayscale_probability"):
                if getattr(self, name):
                    raise ValueError(
                        f"Argument `{name}` changes RGB colours, so it "
                        "needs `num_channels=3`; pass 0 to turn it off. "
                        f"Received: {name}={getattr(self, name)!r}, "
                        f"num_channels={self.num_channels}"
                    )
        self.contrastive_accuracy_tracker = keras.metrics.Mean(
            name="contrastive_accuracy"
        )
        self.seed_generator = keras.random.SeedGenerator(
            self.seed, name="view_seed_generator"
        )
        with seeded_construction(self.seed):
            self.patch_network = self.make_backbone(backbone)
            self.projection_head = projection_head(
                self.projection_layers,
                self.projection_hidden_dim or self.feature_dim,
                self.projection_dim,
                self.dtype_policy,
            )
            self.build((None, *self.image_size, self.num_channels))
        self.pretext_loss = self.default_loss()

    def build(self, input_shape=None):
        self.projection_head.build((None, self.feature_dim))
        self.built = True

    def default_loss(self, dtype=None):
        return NTXentLoss(temperature=self.temperature, dtype=dtype)

    def chance_accuracy(self, batch_size):
        """Contrastive accuracy of a uniform guess at a global batch of
        `batch_size` images: `1 / (2 * batch_size - 1)`."""
        return 1 / (VIEWS * batch_size - 1)

    def task_description(self, batch_size):
        return (
            "which of the other views of the batch is the second view of "
            f"the same image, among {VIEWS * batch_size - 1} (chance = "
            f"{self.chance_accuracy(batch_size):.4f})"
        )

    @property
    def transform_dtype(self):
        """The dtype of the augmentations: float64 for a float64 model,
        else float32 (HSV in bfloat16 would lose the colours)."""
        return "float64" if self.compute_dtype == "float64" else "float32"

    @property
    def blur_kernel_size(self):
        """The blur's taps: 10% of the image's longer side, made odd (3 at
        32x32, 23 at 224x224, as the authors' code)."""
        return 2 * (max(self.image_size) // 10 // 2) + 1

    def sample_views(self, batch_size):
        """Draws the augmentations of the two views of each image.

        Args:
            batch_size: number of images (an int or a scalar tensor).

        Returns:
            A dict of tensors with `2 * batch_size` rows, row `v *
            batch_size + i` for view `v` of image `i` (float64 for a
            float64 model, else float32): `"boxes"` `(n, 4)` crop boxes
            `(top, left, height, width)` in pixels, `"flip"`, `"jitter"`,
            `"grayscale"`, `"blur"` `(n,)` booleans (whether each is
            applied), `"brightness"`, `"contrast"`, `"saturation"`,
            `"hue"` and `"sigma"` `(n,)`.
        """
        draws = draws_per_copy(
            self.seed_generator, batch_size, VIEWS, _DRAWS_PER_VIEW
        )
        draws = ops.cast(draws, self.transform_dtype)

        def between(u, low, high):
            return low + u * (high - low)

        strength = self.color_strength
        return {
            "boxes": resized_crop_boxes(
                ops.reshape(draws[:, _DRAWS["crop"]], (-1, CROP_ATTEMPTS, 4)),
                self.image_size,
                self.crop_scale,
                self.crop_aspect_ratio,
            ),
            "flip": draws[:, _DRAWS["flip"]] < self.flip_probability,
            "jitter": (
                draws[:, _DRAWS["jitter"]] < self.color_jitter_probability
            ),
            "brightness": between(
                draws[:, _DRAWS["brightness"]], -0.8 * strength,
                0.8 * strength,
            ),
            "contrast": between(
                draws[:, _DRAWS["contrast"]], max(0.0, 1 - 0.8 * strength),
                1 + 0.8 * strength,
            ),
            "saturation": between(
                draws[:, _DRAWS["saturation"]],
                max(0.0, 1 - 0.8 * strength), 1 + 0.8 * strength,
            ),
            "hue": between(
                draws[:, _DRAWS["hue"]], -0.2 * strength, 0.2 * strength
            ),
            "grayscale": (
                draws[:, _DRAWS["grayscale"]] < self.grayscale_probability
            ),
            "blur": draws[:, _DRAWS["blur"]] < self.blur_probability,
            "sigma": between(draws[:, _DRAWS["sigma"]], *self.blur_sigma),
        }

    def augment(self, images, parameters):
        """Makes views of images with drawn augmentations
        (`sample_views`), one row each: crop, flip, colour jitter, colour
        drop, blur."""
        images = crop_and_resize(images, parameters["boxes"])
        if self.flip_probability > 0:
            images = flip_left_right(images, parameters["flip"])
        if self.color_strength > 0 and self.color_jitter_probability > 0:
            images = _where(
                parameters["jitter"],
                color_jitter(
                    images,
                    parameters["brightness"],
                    parameters["contrast"],
                    parameters["saturation"],
                    parameters["hue"],
                ),
                images,
            )
        if self.grayscale_probability > 0:
            images = _where(
                parameters["grayscale"], grayscale(images), images
            )
        if self.blur_probability > 0 and self.blur_kernel_size > 1:
            images = _where(
                parameters["blur"],
                gaussian_blur(
                    images, parameters["sigma"], self.blur_kernel_size
                ),
                images,
            )
        return images

    def call(self, images, training=None):
        images = self.preprocess(images)
        batch_size = ops.shape(images)[0]
        views = ops.cast(
            self.augment(
                ops.tile(
                    ops.cast(images, self.transform_dtype), (VIEWS, 1, 1, 1)
                ),
                self.sample_views(batch_size),
            ),
            self.compute_dtype,
        )
        features = self.patch_network(views, training=training)
        projections = self.projection_head(features)
        # The scores in float32 (float64 for a float64 model), as the loss.
        exact = ops.cast(projections, self.transform_dtype)
        logits, labels = nt_xent_logits(
            exact[:batch_size], exact[batch_size:], self.temperature
        )
        return {
            "projections": projections,
            "logits": logits,
            "labels": labels,
        }

    def task_loss(self, outputs, sample_weight=None):
        projections = outputs["projections"]
        batch_size = ops.shape(projections)[0] // VIEWS
        return self.pretext_loss(
            projections[:batch_size],
            projections[batch_size:],
            sample_weight=sample_weight,
        )

    def update_task_metrics(self, outputs, sample_weight=None):
        correct = ops.equal(
            ops.cast(ops.argmax(outputs["logits"], axis=-1), "int32"),
            ops.cast(outputs["labels"], "int32"),
        )
        if sample_weight is not None:
            sample_weight = ops.tile(
                ops.reshape(ops.convert_to_tensor(sample_weight), (-1,)),
                (VIEWS,),
            )
        self.contrastive_accuracy_tracker.update_state(
            ops.cast(correct, "float32"), sample_weight=sample_weight
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "temperature": self.temperature,
                "projection_layers": self.projection_layers,
                "projection_hidden_dim": self.projection_hidden_dim,
                "projection_dim": self.projection_dim,
                "crop_scale": self.crop_scale,
                "crop_aspect_ratio": self.crop_aspect_ratio,
                "flip_probability": self.flip_probability,
                "color_strength": self.color_strength,
                "color_jitter_probability": self.color_jitter_probability,
                "grayscale_probability": self.grayscale_probability,
                "blur_probability": self.blur_probability,
                "blur_sigma": self.blur_sigma,
            }
        )
        return config


def projection_head(num_layers, hidden_dim, output_dim, dtype=None,
                    name="projection_head"):
    """SimCLR's projection head `g`: `num_layers` dense layers, ReLU
    between them, the hidden ones `hidden_dim` wide, the last
    `output_dim`; 0 layers is the identity."""
    layers = [
        keras.layers.Dense(hidden_dim, activation="relu", dtype=dtype,
                           name=f"{name}_hidden_{index}")
        for index in range(num_layers - 1)
    ]
    if num_layers:
        layers.append(keras.layers.Dense(
            output_dim, dtype=dtype, name=f"{name}_output"
        ))
    else:
        layers.append(
            keras.layers.Identity(dtype=dtype, name=f"{name}_identity")
        )
    return keras.Sequential(layers, name=name)


def _probability(name, value):
    return check_fraction(name, value, include_one=True)


def _where(condition, then, otherwise):
    # Per image: `then` where `condition`, else `otherwise`.
    return ops.where(
        ops.cast(condition, "bool")[:, None, None, None], then, otherwise
    )
