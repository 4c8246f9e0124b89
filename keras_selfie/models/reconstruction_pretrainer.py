"""The bases of the tasks that predict every pixel from `P`'s feature map.

`PixelDecoderPretrainer` gives them a light decoder
(`models.decoders.pixel_decoder`) on `P`'s last feature map; colorization
predicts each pixel's colour with it. `ReconstructionPretrainer` adds the
loss of the pixel-reconstruction tasks: context-encoder inpainting and
super-resolution corrupt the images, let `P` see the corrupted copy, and
predict the original pixels, with an L2 reconstruction loss over chosen
pixels (`losses.MaskedReconstructionLoss`). The decoder is not part of
`feature_extractor()`, so `P` transfers as with every other task.
"""

import keras
from keras import ops

from keras_selfie.losses.masked_reconstruction_loss import (
    MaskedReconstructionLoss,
)
from keras_selfie.losses.masked_reconstruction_loss import (
    masked_squared_error,
)
from keras_selfie.models.decoders import feature_stride
from keras_selfie.models.decoders import pixel_decoder
from keras_selfie.models.pretrainer import Pretrainer
from keras_selfie.models.resnet import feature_map_network


@keras.saving.register_keras_serializable(package="keras_selfie")
class PixelDecoderPretrainer(Pretrainer):
    """A pretext task that predicts values for every pixel of the images.

    Subclasses make `self.patch_network` (`make_backbone`), then
    `make_decoder()`, and predict with `reconstruct`; they define the loss
    and metrics (`ReconstructionPretrainer`'s L2 reconstruction,
    `ColorizationPretrainer`'s classification of colours).
    """

    def make_decoder(
        self, filters, output_channels=None, output_stride=1, min_stages=0
    ):
        """`P`'s feature map network and the pixel decoder on it.

        Sets `self.feature_map` (`P` without its pooling,
        `models.feature_map_network`) and `self.decoder` (a
        `pixel_decoder` from that map back to `output_channels` values per
        pixel at the images' size, or `output_stride` times smaller).

        Args:
            filters: int, filters of the decoder's first stage.
            output_channels: int, the values predicted per pixel; `None`
                for `num_channels` (the images' channels).
            output_stride: int, how many times smaller than the images
                the prediction is; it must divide `P`'s stride (1, the
                images' size, by default).
            min_stages: int, the fewest stages of the decoder
                (`pixel_decoder`'s `min_stages`).

        Raises:
            ValueError: for a backbone without a `patch_pool` layer (its
                feature map cannot be reached), an `image_size` that
                `P`'s stride does not divide, or an `output_stride` that
                does not divide `P`'s stride.
        """
        try:
            self.feature_map = feature_map_network(self.patch_network)
        except ValueError as error:
            raise ValueError(
                f"{type(self).__name__} decodes pixels from the backbone's "
                "last feature map, which it finds as the input of a layer "
                "named `patch_pool` (the global pooling of "
                "`models.patch_network`). Received: a backbone "
                f"{self.patch_network.name!r} without one."
            ) from error
        height, width = self.image_size
        if self.custom_backbone:
            map_shape = self.feature_map.compute_output_shape(
                (None, height, width, self.num_channels)
            )
            stride = height // map_shape[1] if map_shape[1] else 0
        else:
            stride = feature_stride(self.stem)
        if not stride or height % stride or width % stride:
            raise ValueError(
                f"{type(self).__name__} decodes pixels from P's feature "
                f"map, {stride or 'an unknown number of'} times smaller "
                "than the images, so `image_size` must be a multiple of "
                f"that. Received: image_size={self.image_size}"
            )
        if stride % output_stride:
            raise ValueError(
                f"{type(self).__name__} upsamples P's feature map, {stride} "
                "times smaller than the images, so `output_stride` must "
                f"divide {stride}. Received: output_stride={output_stride}"
            )
        self.decoder = pixel_decoder(
            self.feature_dim,
            output_channels or self.num_channels,
            upsampling=stride // output_stride,
            filters=filters,
            synchronized=self.synchronized_batch_norm,
            dtype=self.dtype_policy,
            name="decoder",
            min_stages=min_stages,
        )
        # The output layer starts at zero, so that the untrained model
        # predicts `reconstruct`'s `offset`: the trivial baseline, which
        # training improves from the first steps (with random output
        # weights, a short run spends them unlearning random colours).
        pixels = self.decoder.get_layer("pixels")
        pixels.kernel.assign(ops.zeros_like(pixels.kernel))

    def output_dtype(self):
        """float32, or float64 for a float64 model (whose outputs keep
        their precision: its tests compare float64 steps to 1e-8)."""
        return "float64" if self.compute_dtype == "float64" else "float32"

    def reconstruct(self, inputs, offset, training=None):
        """The per-pixel values predicted from `P`'s feature map of `inputs`.

        Args:
            inputs: what `P` sees, `(batch, height, width, num_channels)`.
            offset: what the untrained model predicts (the decoder's output
                layer starts at zero): one value per output channel (a
                colour), or values of the output's shape (images).
            training: passed to `P` and the decoder.

        Returns:
            `offset` plus the decoder's output, in `output_dtype()`.
        """
        features = self.feature_map(inputs, training=training)
        dtype = self.output_dtype()
        return ops.cast(offset, dtype) + ops.cast(
            self.decoder(features, training=training), dtype
        )

    def build(self, input_shape=None):
        self.built = True


@keras.saving.register_keras_serializable(package="keras_selfie")
class ReconstructionPretrainer(PixelDecoderPretrainer):
    """A pretext task that reconstructs the images' pixels.

    Subclasses make `self.patch_network` (`make_backbone`), then
    `make_decoder()` (`PixelDecoderPretrainer`), and return from `call` a
    dict with:

    - `"reconstruction"`: the predicted images (`reconstruct`), `(batch,
      height, width, num_channels)` in `output_dtype()` (float32, or
      float64 for a float64 model);
    - `"targets"`: the images to reconstruct, the same shape and dtype;
    - `"inputs"`: what `P` saw (the corrupted images, at the images' size):
      predicting them back is the trivial baseline the task must beat;
    - optionally `"pixel_weights"` `(batch, height, width)`: each pixel's
      weight in the loss (every pixel weight 1 without it), and `"mask"`
      `(batch, height, width)`: 1 on the pixels whose error
      `reconstruction_error` reports (every pixel without it).

    This class gives them the loss (`losses.MaskedReconstructionLoss`) and
    the metric `reconstruction_error`: the mean squared error per pixel
    and channel on the `"mask"`ed pixels (for images in `[0, 1]`).
    """

    METRIC_DIRECTIONS = {"loss": "min", "reconstruction_error": "min"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.reconstruction_error_tracker = keras.metrics.Mean(
            name="reconstruction_error"
        )
        self.pretext_loss = self.default_loss()

    def default_loss(self, dtype=None):
        return MaskedReconstructionLoss(name="pretext_loss", dtype=dtype)

    def task_loss(self, outputs, sample_weight=None):
        targets = outputs["targets"]
        if "pixel_weights" in outputs:
            targets = (targets, outputs["pixel_weights"])
        return self.pretext_loss(
            targets, outputs["reconstruction"], sample_weight=sample_weight
        )

    def update_task_metrics(self, outputs, sample_weight=None):
        self.reconstruction_error_tracker.update_state(
            masked_squared_error(
                outputs["targets"],
                outputs["reconstruction"],
                outputs.get("mask"),
            ),
            sample_weight=sample_weight,
        )

    def trivial_baseline(self, outputs):
        # Handing back what P saw, measured on the same pixels.
        return "input back", masked_squared_error(
            outputs["targets"], outputs["inputs"], outputs.get("mask")
        )
