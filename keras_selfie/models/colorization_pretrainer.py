import keras
import numpy as np
from keras import ops

from keras_selfie.data.color import CIFAR10_AB_PRIOR
from keras_selfie.data.color import CIFAR10_AB_PRIOR_GRID_SIZE
from keras_selfie.data.color import ab_gamut_bins
from keras_selfie.data.color import annealed_mean_ab
from keras_selfie.data.color import lab_to_rgb
from keras_selfie.data.color import nearest_ab_bins
from keras_selfie.data.color import rgb_to_lab
from keras_selfie.data.color import soft_encode_ab
from keras_selfie.data.transforms import resize_by_factor
from keras_selfie.losses.masked_reconstruction_loss import (
    MaskedReconstructionLoss,
)
from keras_selfie.losses.pixel_crossentropy_loss import PixelCrossentropyLoss
from keras_selfie.losses.pixel_crossentropy_loss import rebalancing_weights
from keras_selfie.losses.pixel_crossentropy_loss import smoothed_prior
from keras_selfie.models.reconstruction_pretrainer import (
    PixelDecoderPretrainer,
)
from keras_selfie.utils.images import scale_images
from keras_selfie.utils.random import seeded_construction
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_fraction
from keras_selfie.utils.validation import check_image_shape
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import check_positive_number

LOSS_TYPES = ("classification", "l2")
PRIORS = ("cifar10", "uniform")
# The regression predicts ab / AB_SCALE, and its L2 loss compares ab in
# that unit: the scale of L / 100 that P sees, so that the loss is of the
# order of the other reconstruction tasks' (errors of 0.1 to 0.3).
AB_SCALE = 100.0
# The floor of the smoothed prior whose log the untrained model predicts
# (a bin no colour of the prior comes near would otherwise score -inf).
_PRIOR_FLOOR = 1e-12


@keras.saving.register_keras_serializable(package="keras_selfie")
class ColorizationPretrainer(PixelDecoderPretrainer):
    """Colorization as a pretext task (Zhang, Isola, Efros, 2016).

    Every image is converted to CIELAB (`data.rgb_to_lab`); `P` sees its
    lightness alone, `L / 100` in `[0, 1]` (the scale of the other
    tasks' images) repeated to 3 channels, so that `P`'s first
    convolution transfers to RGB images unchanged; a light decoder on
    `P`'s last feature map (`models.decoders.pixel_decoder`) predicts
    the colour, a and b, of every cell of a grid `output_stride` times
    smaller than the image (the paper predicts at a quarter of the
    image's size, the default; the target of a cell is the mean ab of
    its pixels). To colour a grey picture, `P` must recognise what it
    shows (skies are blue, grass green, stop signs red).

    With `loss_type="classification"` (default, the paper's), the
    decoder predicts a distribution over the in-gamut bins of a grid of
    side `grid_size` on the ab plane (`data.ab_gamut_bins`: 229 bins at
    grid size 10; the paper counts 313, see there). The target of a
    cell is its colour soft-encoded over its `num_neighbors` nearest
    bins with a Gaussian kernel of width `sigma`
    (`data.soft_encode_ab`), and the loss is the cross-entropy of every
    cell, weighted by the class-rebalancing weight of its colour's
    nearest bin (`losses.PixelCrossentropyLoss`,
    `losses.rebalancing_weights`): `((1 - lambda) p~ + lambda / Q)^-1`,
    with `p~` the `prior` smoothed by a Gaussian of width `prior_sigma`,
    normalised to an expected weight of 1 under `p~`, so that the
    common dull colours do not drown the rare saturated ones. A
    predicted colour is the distribution's annealed mean at
    `temperature` (`data.annealed_mean_ab`), enlarged to the image's
    size bilinearly (`predict_ab`, `colorize`). With `loss_type="l2"`,
    the decoder regresses a and b with an L2 loss
    (`losses.MaskedReconstructionLoss` on ab / 100), the paper's "Ours
    (L2)" baseline, which it finds gives desaturated colours.

    The paper measures the prior on ImageNet; this class defaults to
    CIFAR-10's (`data.CIFAR10_AB_PRIOR`, measured by
    `data.estimate_ab_prior` on its 50,000 training images), the data
    the project's defaults are made for, as `ContextEncoderPretrainer`
    fills with CIFAR-10's mean colour. For other data, pass the data's
    own: `prior=data.estimate_ab_prior(images)` is the paper's method.
    The prior is saved in the config, so a `.keras` file keeps it.

    The decoder's output layer starts at zero and is added to the log of
    the smoothed prior (regression: to zero, grey), so that the untrained
    model predicts the prior everywhere, the trivial baseline, and
    training improves on it from the first steps (the paper's decoder
    starts from random weights). Not implemented: the authors' code also
    leaves grey images out of the loss, and soft-encodes over 10 bins.

    `call` returns `"inputs"` (what `P` sees, `(batch, height, width,
    3)`), `"ab"` and `"predicted_ab"` (the images' a and b and the
    predicted ones, `(batch, height, width, 2)`), `"grid_ab"` and
    `"grid_predicted_ab"` (the same on the output grid, `(batch,
    height / output_stride, width / output_stride, 2)`), and with
    `"classification"` also `"logits"` and `"targets"` (the soft-encoded
    colours), `(batch, grid height, grid width, Q)`, and
    `"pixel_weights"` (each cell's rebalancing weight, `(batch, grid
    height, grid width)`); all float32 (float64 for a float64 model).
    Besides the loss, `fit` reports `ab_error`, the mean distance in ab
    units of the predicted colour of a pixel to its true one, and
    `bin_accuracy`, the share of grid cells whose predicted bin (the
    most likely one, or the nearest to the regression) is the nearest
    to their colour.

    Args:
        loss_type: `"classification"` (default; the paper's class-
            rebalanced classification over ab bins) or `"l2"` (regression
            of ab). Not named `loss`, which `compile` sets on the model.
        grid_size: number > 0, the side of the ab grid's cells in ab
            units (default 10, the paper's).
        num_neighbors: int, the nearest bins a colour is soft-encoded
            over (default 5, the paper's text; its released code uses
            10).
        sigma: number > 0, the width of the soft encoding's Gaussian
            kernel in ab units (default 5, the paper's).
        prior: how common each bin's colours are, the prior of the
            rebalancing: `"cifar10"` (default; `data.CIFAR10_AB_PRIOR`,
            for `grid_size=10` only), `"uniform"` (every bin alike:
            almost no rebalancing), or a sequence of `Q` non-negative
            numbers with a positive sum, one per `data.ab_gamut_bins(
            grid_size)` bin (`data.estimate_ab_prior`).
        prior_sigma: number >= 0, the width in ab units of the Gaussian
            that smooths the prior (default 5, the paper's; 0 for none).
        rebalancing_lambda: number in `[0, 1]`, the weight of the uniform
            distribution mixed into the smoothed prior (default 0.5, the
            paper's); 1 weighs every pixel alike (the paper's "Ours
            (class)" without rebalancing).
        temperature: number > 0, the annealed mean's temperature `T`
            (default 0.38, the paper's): 1 is the distribution's mean, near
            0 its mode.
        output_stride: int, how many times smaller than the images the
            predicted grid is; it must divide the image size and `P`'s
            stride (4 for the CIFAR stem, 16 for the ImageNet stem).
            Defaults to 4, the paper's quarter size: for the CIFAR stem
            `P`'s own 8x8 map of 32x32 images.
        decoder_filters: int, filters of the decoder's first stage
            (default 64, `pixel_decoder`'s); each further stage halves
            them. The decoder has one stage (3x3 convolution, batch
            normalisation, ReLU) even where it does not upsample: a 1x1
            convolution alone on `P`'s unnormalised feature map makes the
            L2 regression diverge under SGD.
        backbone: `None` or a `keras.Model` from images to `(batch, d)`
            features with a `patch_pool` layer (its global pooling), used
            as `P`.
        **kwargs: the arguments of `Pretrainer`: `image_size`,
            `num_channels` (must be 3: the images are RGB), `stem`,
            `width`, `synchronized_batch_norm` and `seed` (of the
            initialisation), and `keras.Model`'s (`name`, `dtype`).

    Example:

    ```python
    pretrainer = keras_selfie.methods.get("colorization")(width=0.25)
    pretrainer.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    pretrainer.fit(unlabeled_images, epochs=10)
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    colours = pretrainer.colorize(grey_images)  # RGB in [0, 1]
    ```

    Reference:
     - [Zhang et al., 2016](https://arxiv.org/abs/1603.08511)
     - [The authors' code](https://github.com/richzhang/colorization)
    """

    METRIC_DIRECTIONS = {
        "loss": "min", "ab_error": "min", "bin_accuracy": "max",
    }

    def __init__(
        self,
        loss_type="classification",
        grid_size=10,
        num_neighbors=5,
        sigma=5.0,
        prior="cifar10",
        prior_sigma=5.0,
        rebalancing_lambda=0.5,
        temperature=0.38,
        output_stride=4,
        decoder_filters=64,
        backbone=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.loss_type = check_choice("loss_type", loss_type, LOSS_TYPES)
        if self.num_channels != 3:
            raise ValueError(
                "ColorizationPretrainer converts RGB images to CIELAB, so "
                "`num_channels` must be 3 (repeat grey images to 3 "
                f"channels). Received: num_channels={self.num_channels}"
            )
        self.grid_size = check_positive_number("grid_size", grid_size)
        self.bins = ab_gamut_bins(grid_size)
        self.num_neighbors = check_positive_int("num_neighbors",
                                                num_neighbors)
        if num_neighbors > len(self.bins):
            raise ValueError(
                "Argument `num_neighbors` must be at most the number of "
                f"in-gamut bins ({len(self.bins)} at grid_size={grid_size})."
                f" Received: num_neighbors={num_neighbors}"
            )
        self.sigma = check_positive_number("sigma", sigma)
        self.prior = self._check_prior(prior)
        self.prior_sigma = check_non_negative("prior_sigma", prior_sigma)
        self.rebalancing_lambda = check_fraction(
            "rebalancing_lambda", rebalancing_lambda, include_one=True
        )
        self.temperature = check_positive_number("temperature", temperature)
        self.output_stride = check_positive_int("output_stride",
                                                output_stride)
        if self.image_size[0] % output_stride or (
            self.image_size[1] % output_stride
        ):
            raise ValueError(
                "Argument `output_stride` must divide the image size "
                f"(`image_size`={self.image_size}), so that every output "
                f"cell covers whole pixels. Received: output_stride="
                f"{output_stride}"
            )
        self.decoder_filters = check_positive_int(
            "decoder_filters", decoder_filters
        )
        probabilities = self.prior_probabilities()
        self.smoothed_prior = smoothed_prior(
            probabilities, self.bins, self.prior_sigma
        )
        self.class_weights = rebalancing_weights(
            probabilities, self.bins, self.rebalancing_lambda,
            self.prior_sigma,
        )
        self.ab_error_tracker = keras.metrics.Mean(name="ab_error")
        self.bin_accuracy_tracker = keras.metrics.Mean(name="bin_accuracy")
        self.pretext_loss = self.default_loss()
        with seeded_construction(self.seed):
            self.patch_network = self.make_backbone(backbone)
            self.make_decoder(
                self.decoder_filters,
                len(self.bins) if self.loss_type == "classification" else 2,
                self.output_stride,
                min_stages=1,
            )
            self.build((None, *self.image_size, self.num_channels))

    def _check_prior(self, prior):
        if isinstance(prior, str):
            check_choice("prior", prior, PRIORS)
            if prior == "cifar10" and (
                self.grid_size != CIFAR10_AB_PRIOR_GRID_SIZE
            ):
                raise ValueError(
                    "Argument `prior`='cifar10' is measured on the bins of "
                    f"grid_size={CIFAR10_AB_PRIOR_GRID_SIZE}; for "
                    f"grid_size={self.grid_size}, pass 'uniform' or "
                    "`data.estimate_ab_prior(images, grid_size="
                    f"{self.grid_size})`. Received: prior='cifar10'"
                )
            return prior
        values = np.asarray(prior, dtype="float64") if isinstance(
            prior, (tuple, list, np.ndarray)
        ) else None
        if values is None or values.shape != (len(self.bins),) or not (
            np.all(values >= 0) and values.sum() > 0
        ):
            raise ValueError(
                f"Argument `prior` must be one of {list(PRIORS)} or "
                f"{len(self.bins)} non-negative numbers with a positive sum, "
                f"one per bin of `data.ab_gamut_bins({self.grid_size})`. "
                "Received: prior="
                f"{prior if values is None else f'shape {values.shape}'!r}"
            )
        return tuple(float(value) for value in values)

    def prior_probabilities(self):
        """The prior as a distribution over the bins, `(Q,)` float64."""
        if self.prior == "cifar10":
            prior = np.asarray(CIFAR10_AB_PRIOR, dtype="float64")
        elif self.prior == "uniform":
            prior = np.ones(len(self.bins))
        else:
            prior = np.asarray(self.prior)
        return prior / prior.sum()

    @property
    def num_bins(self):
        """`Q`, the number of in-gamut ab bins."""
        return len(self.bins)

    def task_description(self, batch_size):
        height, width = self.image_size
        if self.loss_type == "l2":
            task = "L2 regression of ab; the baseline predicts grey"
        else:
            task = (
                f"{self.num_bins}-bin classification, soft targets, "
                f"rebalanced with lambda={self.rebalancing_lambda:g} on the "
                f"{'given' if isinstance(self.prior, tuple) else self.prior}"
                " prior; the baseline predicts the prior"
            )
        stride = self.output_stride
        return (
            f"colour {height}x{width} images from their lightness: predict "
            f"the ab colour of {height // stride}x{width // stride} cells "
            f"({task})"
        )

    def lightness_and_ab(self, images):
        """What `P` sees, and the images' colours.

        Args:
            images: `(batch, height, width, 3)` RGB images, uint8 or float
                in `[0, 1]`.

        Returns:
            `(inputs, ab)`: `L / 100` repeated to 3 channels in the compute
            dtype, and a and b `(batch, height, width, 2)` in
            `output_dtype()`.
        """
        # Scaled in float32 or float64 even under mixed precision: CIELAB
        # from float16 values would be off by several ab units.
        check_image_shape(
            "images", images.shape, (*self.image_size, self.num_channels)
        )
        lab = rgb_to_lab(scale_images(images, self.output_dtype()))
        inputs = ops.repeat(lab[..., :1] / 100.0, 3, axis=-1)
        return ops.cast(inputs, self.compute_dtype), lab[..., 1:]

    def _predict(self, inputs, training=None):
        # On the output grid: the logits of the bins, or the regressed a
        # and b.
        if self.loss_type == "classification":
            return self.reconstruct(
                inputs, self._prior_logits(), training=training
            )
        return AB_SCALE * self.reconstruct(
            inputs, np.zeros(2), training=training
        )

    def _prior_logits(self):
        # The untrained classifier's logits: the smoothed prior's log.
        return np.log(np.maximum(self.smoothed_prior, _PRIOR_FLOOR))

    def _ab_of(self, prediction, temperature=None):
        if self.loss_type == "l2":
            return prediction
        return annealed_mean_ab(
            prediction, self.bins, temperature or self.temperature
        )

    def _to_images(self, grid_ab):
        # The output grid's colours at the images' size, bilinearly.
        return resize_by_factor(grid_ab, self.output_stride, "bilinear",
                                upsample=True)

    def call(self, images, training=None):
        inputs, ab = self.lightness_and_ab(images)
        grid_ab = resize_by_factor(ab, self.output_stride, "area",
                                   upsample=False)
        prediction = self._predict(inputs, training=training)
        grid_predicted_ab = self._ab_of(prediction)
        outputs = {
            "inputs": ops.cast(inputs, ab.dtype),
            "ab": ab,
            "predicted_ab": self._to_images(grid_predicted_ab),
            "grid_ab": grid_ab,
            "grid_predicted_ab": grid_predicted_ab,
        }
        if self.loss_type == "classification":
            targets = soft_encode_ab(
                grid_ab, self.bins, self.num_neighbors, self.sigma
            )
            outputs.update(
                logits=prediction,
                targets=targets,
                pixel_weights=ops.take(
                    ops.cast(self.class_weights, ab.dtype),
                    ops.argmax(targets, axis=-1),
                ),
            )
        return outputs

    def _grey_as_rgb(self, images):
        images = ops.convert_to_tensor(images)
        if len(images.shape) == 4 and images.shape[-1] == 1:
            return ops.repeat(images, 3, axis=-1)
        return images

    def predict_ab(self, images, temperature=None):
        """The predicted a and b of every pixel, in inference mode.

        The prediction on the output grid (the annealed mean of each
        cell's distribution, or the regression), enlarged to the images'
        size bilinearly, as the paper does.

        Args:
            images: `(batch, height, width, 3)` RGB images (colour or
                grey) or `(batch, height, width, 1)` grey ones, uint8 or
                float in `[0, 1]`; only their lightness is used.
            temperature: `None` for the model's `temperature`, or a
                number > 0 for the annealed mean (classification only).

        Returns:
            `(batch, height, width, 2)` float32 (float64 for a float64
            model) a and b.
        """
        if temperature is not None:
            check_positive_number("temperature", temperature)
        inputs, _ = self.lightness_and_ab(self._grey_as_rgb(images))
        return self._to_images(self._ab_of(
            self._predict(inputs, training=False), temperature
        ))

    def colorize(self, images, temperature=None):
        """Colours images from their lightness: RGB pictures.

        The images' own L with the predicted a and b (`predict_ab`),
        converted to sRGB (`data.lab_to_rgb`) and clipped to `[0, 1]`.

        Args:
            images: as `predict_ab`.
            temperature: as `predict_ab`.

        Returns:
            `(batch, height, width, 3)` float32 RGB values in `[0, 1]`.
        """
        images = self._grey_as_rgb(images)
        ab = self.predict_ab(images, temperature)
        lightness = rgb_to_lab(scale_images(images, ab.dtype))[..., :1]
        rgb = lab_to_rgb(ops.concatenate([lightness, ab], axis=-1))
        return ops.cast(ops.clip(rgb, 0.0, 1.0), "float32")

    def default_loss(self, dtype=None):
        if self.loss_type == "l2":
            return MaskedReconstructionLoss(name="pretext_loss", dtype=dtype)
        return PixelCrossentropyLoss(name="pretext_loss", dtype=dtype)

    def task_loss(self, outputs, sample_weight=None):
        if self.loss_type == "l2":
            return self.pretext_loss(
                outputs["grid_ab"] / AB_SCALE,
                outputs["grid_predicted_ab"] / AB_SCALE,
                sample_weight=sample_weight,
            )
        return self.pretext_loss(
            (outputs["targets"], outputs["pixel_weights"]),
            outputs["logits"],
            sample_weight=sample_weight,
        )

    def update_task_metrics(self, outputs, sample_weight=None):
        self.ab_error_tracker.update_state(
            _ab_error(outputs["ab"], outputs["predicted_ab"]),
            sample_weight=sample_weight,
        )
        if self.loss_type == "classification":
            true_bins = ops.argmax(outputs["targets"], axis=-1)
            predicted_bins = ops.argmax(outputs["logits"], axis=-1)
        else:
            true_bins = nearest_ab_bins(outputs["grid_ab"], self.bins)
            predicted_bins = nearest_ab_bins(
                outputs["grid_predicted_ab"], self.bins
            )
        correct = ops.cast(ops.equal(
            ops.cast(true_bins, "int32"), ops.cast(predicted_bins, "int32")
        ), "float32")
        self.bin_accuracy_tracker.update_state(
            ops.mean(correct, axis=(1, 2)), sample_weight=sample_weight
        )

    def trivial_baseline(self, outputs):
        # What the untrained model predicts (its output layer starts at
        # zero): one colour everywhere, the prior's annealed mean, or grey
        # for L2.
        ab = outputs["ab"]
        if self.loss_type == "l2":
            answer, colour = "grey", ops.zeros((2,), ab.dtype)
        else:
            answer = "prior colour"
            colour = self._ab_of(
                ops.convert_to_tensor(self._prior_logits(), ab.dtype)
            )
        return answer, _ab_error(ab, ops.zeros_like(ab) + colour)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "loss_type": self.loss_type,
                "grid_size": self.grid_size,
                "num_neighbors": self.num_neighbors,
                "sigma": self.sigma,
                "prior": self.prior if isinstance(self.prior, str)
                else list(self.prior),
                "prior_sigma": self.prior_sigma,
                "rebalancing_lambda": self.rebalancing_lambda,
                "temperature": self.temperature,
                "output_stride": self.output_stride,
                "decoder_filters": self.decoder_filters,
            }
        )
        return config


def _ab_error(ab, predicted_ab):
    """The mean distance in the ab plane per image, `(batch,)`."""
    distance = ops.sqrt(ops.sum(ops.square(predicted_ab - ab), axis=-1))
    return ops.mean(distance, axis=(1, 2))
