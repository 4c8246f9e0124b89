import keras
from keras import ops

from keras_selfie.data.transforms import DOWNSAMPLING
from keras_selfie.data.transforms import UPSAMPLING
from keras_selfie.data.transforms import resize_by_factor
from keras_selfie.models.reconstruction_pretrainer import (
    ReconstructionPretrainer,
)
from keras_selfie.utils.random import seeded_construction
from keras_selfie.utils.validation import check_bool
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_int_in_range
from keras_selfie.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_selfie")
class SuperResolutionPretrainer(ReconstructionPretrainer):
    """Super-resolution as a pretext task.

    Every image is shrunk by `factor` and enlarged back to its size by
    interpolation, which loses its fine detail; `P` sees the blurred
    image and a light decoder on `P`'s last feature map
    (`models.decoders.pixel_decoder`) predicts the full-resolution image,
    with an L2 loss on every pixel (`losses.MaskedReconstructionLoss`
    with a full mask). To restore detail that is not in its input, `P`
    must recognise what the image shows (edges, textures, object parts).

    The setting is SRCNN's (Dong, Loy, He, Tang, 2014): the low-resolution
    image is made by blurring and sub-sampling by the factor, then
    upscaled back by bicubic interpolation, and the network maps that
    image to the original one with a mean squared error. So `P` sees
    images of the size it transfers at, with the same statistics as
    whole images, and transfers exactly as with every other task. Where
    this differs from SRCNN, by documented choice: the blur and
    sub-sampling are one box filter (`"area"`, the mean of each `factor x
    factor` block) instead of a Gaussian blur; the images are RGB (SRCNN's
    main setting is the luminance channel; its journal version also
    trains on the three colour channels); and the prediction is the interpolated image plus the decoder's
    output (`residual=True`), the residual learning of VDSR (Kim, Lee,
    Lee, 2016), with the decoder's last layer starting at zero, so that
    the untrained model predicts the interpolated image, the trivial
    baseline, and training improves on it from the first steps.
    Super-resolution as a pretext task for `P` is the project notes'
    "image superresolution" idea; SRCNN and VDSR are super-resolution
    papers, not feature-learning ones.

    `call` returns `"reconstruction"` (the predicted images, float32),
    `"targets"` (the images), `"low_resolution"` (the shrunk images,
    `(batch, height // factor, width // factor, num_channels)`) and
    `"inputs"` (those enlarged back to the images' size, what `P` sees).
    `reconstruction_error` is the mean squared error of every pixel (the
    loss); predicting `"inputs"` is the trivial baseline.

    Args:
        factor: int >= 2 that divides the image size: how many times
            smaller the low-resolution images are (SRCNN evaluates 2, 3
            and 4). Defaults to 4: CIFAR-10's 32x32 images from 8x8
            copies, the size of `P`'s feature map, so the detail to
            restore is at the scale `P`'s features describe. At 2,
            bicubic upsampling already restores CIFAR-10 to a mean
            squared error of 0.0027 (0.0088 at 4), and in our short
            CIFAR-10 runs the decoder on `P`'s stride-4 feature map did
            not measurably improve on it.
        downsampling: `"area"` (default; the mean of each `factor x factor`
            block, `keras.ops.image.resize`'s "area") or `"bilinear"`
            (`keras.ops.image.resize`'s bilinear sampling, no
            antialiasing).
        upsampling: `"bicubic"` (default, SRCNN's), `"bilinear"` or
            `"nearest"`, as `keras.ops.image.resize` computes them.
        residual: bool. Whether the prediction is the interpolated image
            plus the decoder's output (default, VDSR) or the decoder's
            output alone (SRCNN).
        decoder_filters: int, filters of the decoder's first stage
            (default 64, `pixel_decoder`'s); each further stage halves
            them.
        backbone: `None` or a `keras.Model` from images to `(batch, d)`
            features with a `patch_pool` layer (its global pooling), used
            as `P`.
        **kwargs: the arguments of `Pretrainer`: `image_size`,
            `num_channels`, `stem`, `width`, `synchronized_batch_norm` and
            `seed` (of the initialisation), and `keras.Model`'s (`name`,
            `dtype`).

    Example:

    ```python
    pretrainer = keras_selfie.methods.get("super_resolution")(width=0.25)
    pretrainer.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    pretrainer.fit(unlabeled_images, epochs=10)
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    ```

    Reference:
     - Dong et al., "Learning a Deep Convolutional Network for Image
       Super-Resolution", ECCV 2014 (SRCNN), and its journal version
       [Dong et al., 2016](https://arxiv.org/abs/1501.00092)
     - [Kim et al., 2016](https://arxiv.org/abs/1511.04587) (VDSR,
       residual learning)
    """

    def __init__(
        self,
        factor=4,
        downsampling="area",
        upsampling="bicubic",
        residual=True,
        decoder_filters=64,
        backbone=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.factor = check_int_in_range("factor", factor, 2)
        if self.image_size[0] % factor or self.image_size[1] % factor:
            raise ValueError(
                "Argument `factor` must divide the image size (`image_size`"
                f"={self.image_size}), so that the low-resolution images "
                f"have whole pixels. Received: factor={factor}"
            )
        self.downsampling = check_choice(
            "downsampling", downsampling, DOWNSAMPLING
        )
        self.upsampling = check_choice("upsampling", upsampling, UPSAMPLING)
        self.residual = check_bool("residual", residual)
        self.decoder_filters = check_positive_int(
            "decoder_filters", decoder_filters
        )
        with seeded_construction(self.seed):
            self.patch_network = self.make_backbone(backbone)
            self.make_decoder(self.decoder_filters)
            self.build((None, *self.image_size, self.num_channels))

    def task_description(self, batch_size):
        height, width = self.image_size
        return (
            f"restore {height}x{width} images from their {self.downsampling}"
            f" {height // self.factor}x{width // self.factor} copies "
            f"({self.upsampling}-upsampled for P; L2 on every pixel, the "
            "baseline is the upsampled copy)"
        )

    def degrade(self, images):
        """The low-resolution images and what `P` sees.

        Returns:
            `(low_resolution, inputs)`: the images shrunk by `factor`
            (`downsampling`), and those enlarged back to the images' size
            (`upsampling`).
        """
        low_resolution = resize_by_factor(
            images, self.factor, self.downsampling, upsample=False
        )
        return low_resolution, resize_by_factor(
            low_resolution, self.factor, self.upsampling, upsample=True
        )

    def call(self, images, training=None):
        images = self.preprocess(images)
        low_resolution, inputs = self.degrade(images)
        dtype = self.output_dtype()
        offset = inputs if self.residual else ops.zeros(
            (self.num_channels,), dtype
        )
        return {
            "reconstruction": self.reconstruct(
                inputs, offset, training=training
            ),
            "targets": ops.cast(images, dtype),
            "inputs": ops.cast(inputs, dtype),
            "low_resolution": ops.cast(low_resolution, dtype),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "factor": self.factor,
                "downsampling": self.downsampling,
                "upsampling": self.upsampling,
                "residual": self.residual,
                "decoder_filters": self.decoder_filters,
            }
        )
        return config
