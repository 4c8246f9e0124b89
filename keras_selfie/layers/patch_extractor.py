import keras
from keras import ops

from keras_selfie.utils.validation import check_image_dtype
from keras_selfie.utils.validation import check_image_shape
from keras_selfie.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_selfie")
class PatchExtractor(keras.layers.Layer):
    """Cuts a batch of images into a grid of non-overlapping square patches.

    An image of shape `(height, width, channels)` becomes
    `num_patches = (height // patch_size) * (width // patch_size)` patches,
    indexed row-major: patch `i` sits at grid row `i // grid_width` and grid
    column `i % grid_width`. Pixels are only rearranged, never changed: uint8
    images stay uint8, and floating-point images come out in the layer's
    compute dtype (Keras casts float inputs to it, losslessly for float16
    and bfloat16 under the default float32 policy).

    Args:
        patch_size: int. Side length `p` of the square patches. The image height
            and width must both be multiples of it, and the grid must hold at
            least two patches.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        images: tensor of shape `(batch_size, height, width, channels)`, uint8
            or floating point, with static height, width and channels.

    Returns:
        A tensor of shape `(batch_size, num_patches, p, p, channels)`.

    Example:

    ```python
    images = np.random.randint(0, 256, size=(2, 32, 32, 3), dtype="uint8")
    patches = keras_selfie.layers.PatchExtractor(patch_size=8)(images)
    # patches.shape == (2, 16, 8, 8, 3)
    ```

    Reference:
     - [Trinh et al., 2019](https://arxiv.org/abs/1906.02940), Section 2.
    """

    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = check_positive_int("patch_size", patch_size)

    def grid_size(self, image_shape):
        """Returns `(rows, cols)` of the grid for `(..., H, W, C)` images.

        Raises `ValueError` when the sizes do not cut into a grid of at least
        two whole patches.
        """
        height, width = image_shape[-3], image_shape[-2]
        p = self.patch_size
        if height is None or width is None:
            raise ValueError(
                "PatchExtractor needs static image sizes (XLA and TPUs need "
                f"static shapes). Received image shape={tuple(image_shape)}"
            )
        if height % p or width % p:
            raise ValueError(
                f"Image height and width must be multiples of `patch_size`. "
                f"Received height={height}, width={width}, patch_size={p}; "
                f"valid sizes are e.g. {max(height // p, 1) * p}x"
                f"{max(width // p, 1) * p}."
            )
        rows, cols = height // p, width // p
        if rows * cols < 2:
            raise ValueError(
                f"The patch grid must hold at least 2 patches, but "
                f"{height}x{width} images with patch_size={p} give "
                f"{rows}x{cols}={rows * cols}. Use a smaller `patch_size`."
            )
        return rows, cols

    def build(self, input_shape):
        check_image_shape("images", input_shape)
        self.grid_size(input_shape)
        self.built = True

    def call(self, images):
        check_image_dtype("images", images.dtype)
        _, height, width, channels = images.shape
        rows, cols = self.grid_size(images.shape)
        p = self.patch_size
        x = ops.reshape(images, (-1, rows, p, cols, p, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, rows * cols, p, p, channels))

    def compute_output_shape(self, input_shape):
        check_image_shape("images", input_shape)
        rows, cols = self.grid_size(input_shape)
        p = self.patch_size
        return (input_shape[0], rows * cols, p, p, input_shape[-1])

    def compute_output_spec(self, images):
        return keras.KerasTensor(
            self.compute_output_shape(images.shape), dtype=images.dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update({"patch_size": self.patch_size})
        return config
