import keras
from keras import ops

from keras_selfie.data.augment import CIFAR10_MEAN
from keras_selfie.data.transforms import block_masks
from keras_selfie.data.transforms import fill_masked
from keras_selfie.models.reconstruction_pretrainer import (
    ReconstructionPretrainer,
)
from keras_selfie.utils.distribution import replica_slice_of_global_draw
from keras_selfie.utils.random import seeded_construction
from keras_selfie.utils.random import uniform
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import to_pair

REGIONS = ("center", "random_blocks")
FILLS = ("mean", "zero")


@keras.saving.register_keras_serializable(package="keras_selfie")
class ContextEncoderPretrainer(ReconstructionPretrainer):
    """Context-encoder inpainting (Pathak, Krahenbuhl, Donahue, Darrell,
    Efros, 2016).

    A region of every image is hidden (its pixels replaced by one colour),
    `P` sees the image with the hole, and a light decoder on `P`'s last
    feature map (`models.decoders.pixel_decoder`) paints the hole back;
    the loss is the L2 error of the hidden pixels
    (`losses.MaskedReconstructionLoss`). To fill a hole from its
    surroundings, `P` must understand what the image shows.

    The region is the paper's central square of a quarter of the image's
    area, or the paper's "random block" masks: `num_blocks` squares at
    random positions, possibly overlapping, covering up to a quarter of
    the image. As in the paper, the loss also covers a band of `overlap`
    visible pixels around the hole at `overlap_weight` times the weight of
    a hidden pixel, so that the painted region fits its surroundings.

    The paper's adversarial loss is not implemented. It makes the painted
    pictures sharper, not the features better: the paper's feature
    learning results (Section 5.2, Table 2, "Ours") were trained with the
    reconstruction loss alone ("we did not manage to make the adversarial
    loss converge with AlexNet"), and the features the authors released
    are those of the reconstruction loss. A discriminator would also
    double the cost of a step.

    The decoder's output is added to the fill colour, and its last layer
    starts at zero: the untrained model paints the hole in the fill
    colour, the trivial baseline, and training improves on it from the
    first steps (a documented choice; the paper's decoder starts from
    random weights, which a short run spends its first steps unlearning).

    `call` returns `"reconstruction"` (the painted images, float32),
    `"targets"` (the images), `"inputs"` (the images with the hole that
    `P` sees), `"mask"` (1 on the hidden pixels) and `"pixel_weights"`
    (the loss's weight of each pixel: 1 in the hole, `overlap_weight` in
    the band around it, 0 elsewhere). `reconstruction_error` is the mean
    squared error of the hidden pixels; filling the hole with the fill
    colour (predicting `"inputs"`) is the trivial baseline.

    Args:
        region: `"center"` (default; the paper's central region) or
            `"random_blocks"` (the paper's random blocks, new positions
            for every image at every step).
        mask_size: int or `(height, width)`: the central region's size;
            `None` (default) is half the image's height and width, the
            paper's central square of a quarter of the image's area.
        num_blocks: int, how many blocks `"random_blocks"` hides (default
            4).
        block_size: int or `(height, width)` of each block; `None`
            (default) is a quarter of the image's height and width, so
            that the 4 blocks cover up to a quarter of the image, as the
            paper's random blocks do.
        overlap: int >= 0, the width in pixels of the band of visible
            context around the hole that the loss also covers. Defaults
            to 2: the paper's 7 pixels (Section 4) for 128x128 images,
            scaled to 32x32 (the authors' code, `train.lua`, uses 4). 0
            scores the hidden pixels only.
        overlap_weight: number >= 0, the loss weight of a band pixel
            relative to a hidden one. Defaults to 10, the paper's.
        fill: the colour of the hidden pixels, in the scale of the
            preprocessed images (`[0, 1]` for uint8 input): `"mean"`
            (default; CIFAR-10's mean colour, `data.augment.CIFAR10_MEAN`,
            as the authors' code fills with the mean colour of its
            training data; 3 channels only), `"zero"`, or a sequence of
            `num_channels` numbers, the mean colour of other data.
        decoder_filters: int, filters of the decoder's first stage
            (default 64, `pixel_decoder`'s); each further stage halves
            them.
        backbone: `None` or a `keras.Model` from images to `(batch, d)`
            features with a `patch_pool` layer (its global pooling), used
            as `P`.
        **kwargs: the arguments of `Pretrainer`: `image_size`,
            `num_channels`, `stem`, `width`, `synchronized_batch_norm` and
            `seed` (of the initialisation and of the random blocks), and
            `keras.Model`'s (`name`, `dtype`).

    Example:

    ```python
    pretrainer = keras_selfie.methods.get("context_encoder")(width=0.25)
    pretrainer.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    pretrainer.fit(unlabeled_images, epochs=10)
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    ```

    Reference:
     - [Pathak et al., 2016](https://arxiv.org/abs/1604.07379)
     - [The authors' code](https://github.com/pathak22/context-encoder)
    """

    def __init__(
        self,
        region="center",
        mask_size=None,
        num_blocks=4,
        block_size=None,
        overlap=2,
        overlap_weight=10.0,
        fill="mean",
        decoder_filters=64,
        backbone=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.region = check_choice("region", region, REGIONS)
        height, width = self.image_size
        self.mask_size = self._check_size(
            "mask_size", mask_size, (height // 2, width // 2)
        )
        self.num_blocks = check_positive_int("num_blocks", num_blocks)
        self.block_size = self._check_size(
            "block_size", block_size, (max(height // 4, 1),
                                       max(width // 4, 1))
        )
        self.overlap = check_non_negative("overlap", overlap, integer=True)
        self.overlap_weight = float(
            check_non_negative("overlap_weight", overlap_weight)
        )
        self.fill = self._check_fill(fill)
        self.decoder_filters = check_positive_int(
            "decoder_filters", decoder_filters
        )
        self.seed_generator = keras.random.SeedGenerator(
            self.seed, name="context_encoder_seed_generator"
        )
        with seeded_construction(self.seed):
            self.patch_network = self.make_backbone(backbone)
            self.make_decoder(self.decoder_filters)
            self.build((None, *self.image_size, self.num_channels))

    def _check_size(self, name, value, default):
        if value is None:
            return default
        size = to_pair(name, value)
        if size[0] > self.image_size[0] or size[1] > self.image_size[1]:
            raise ValueError(
                f"Argument `{name}` must fit in the images (`image_size`="
                f"{self.image_size}). Received: {name}={value!r}"
            )
        return size

    def _check_fill(self, fill):
        if isinstance(fill, (tuple, list)):
            if len(fill) != self.num_channels or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool)
                for v in fill
            ):
                raise ValueError(
                    "Argument `fill` must be 'mean', 'zero' or a colour of "
                    f"`num_channels`={self.num_channels} numbers. Received: "
                    f"fill={fill!r}"
                )
            return tuple(float(v) for v in fill)
        check_choice("fill", fill, FILLS)
        if fill == "mean" and self.num_channels != len(CIFAR10_MEAN):
            raise ValueError(
                "Argument `fill`='mean' is CIFAR-10's mean RGB colour, for "
                "3-channel images; pass the mean colour of your data as "
                f"`num_channels`={self.num_channels} numbers. Received: "
                "fill='mean'"
            )
        return fill

    @property
    def fill_value(self):
        """The colour of the hidden pixels, `num_channels` floats."""
        if self.fill == "mean":
            return CIFAR10_MEAN
        if self.fill == "zero":
            return (0.0,) * self.num_channels
        return self.fill

    def task_description(self, batch_size):
        height, width = self.image_size
        if self.region == "center":
            hole = f"the central {self.mask_size[0]}x{self.mask_size[1]}"
        else:
            hole = (f"{self.num_blocks} random {self.block_size[0]}x"
                    f"{self.block_size[1]} blocks")
        return (
            f"inpaint {hole} of {height}x{width} images (L2 on the hole, "
            f"{self.overlap}-pixel context band at x{self.overlap_weight:g};"
            f" the baseline fills it with the {self.fill!r} colour)"
        )

    def sample_masks(self, batch_size):
        """The hidden region and the loss weights of each image.

        Args:
            batch_size: the number of images (this replica's).

        Returns:
            `(mask, pixel_weights)`, float32 `(batch_size, height, width)`:
            `mask` is 1 on the hidden pixels; `pixel_weights` is 1 there,
            `overlap_weight` on the visible pixels within `overlap` pixels
            of a hidden block (each block grown by `overlap` on every
            side) and 0 elsewhere.
        """
        height, width = self.image_size
        if self.region == "center":
            size = self.mask_size
            tops = ops.full((batch_size, 1), (height - size[0]) // 2,
                            dtype="int32")
            lefts = ops.full((batch_size, 1), (width - size[1]) // 2,
                             dtype="int32")
        else:
            size, count = self.block_size, self.num_blocks
            # Uniform top-left corners of blocks inside the image, the same
            # for an image on one device and under any strategy.
            draws = replica_slice_of_global_draw(
                lambda n: uniform((n, 2 * count), self.seed_generator),
                batch_size,
            )
            positions = ops.cast(
                ops.floor(draws * ops.convert_to_tensor(
                    [height - size[0] + 1] * count
                    + [width - size[1] + 1] * count, "float32",
                )),
                "int32",
            )
            tops, lefts = positions[:, :count], positions[:, count:]
        mask = block_masks(self.image_size, tops, lefts, size)
        if not self.overlap:
            return mask, mask
        grown = block_masks(
            self.image_size,
            tops - self.overlap,
            lefts - self.overlap,
            (size[0] + 2 * self.overlap, size[1] + 2 * self.overlap),
        )
        return mask, mask + self.overlap_weight * (grown - mask)

    def call(self, images, training=None):
        images = self.preprocess(images)
        mask, pixel_weights = self.sample_masks(ops.shape(images)[0])
        inputs = fill_masked(images, mask, self.fill_value)
        return {
            "reconstruction": self.reconstruct(
                inputs, self.fill_value, training=training
            ),
            "targets": ops.cast(images, self.output_dtype()),
            "inputs": ops.cast(inputs, self.output_dtype()),
            "mask": mask,
            "pixel_weights": pixel_weights,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "region": self.region,
                "mask_size": self.mask_size,
                "num_blocks": self.num_blocks,
                "block_size": self.block_size,
                "overlap": self.overlap,
                "overlap_weight": self.overlap_weight,
                "fill": self.fill,
                "decoder_filters": self.decoder_filters,
            }
        )
        return config
