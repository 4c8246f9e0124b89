"""Transformations a pretext task applies inside its training step.

Unlike `augment` (per-image `tf.data` augmentation before batching), these
run on batches with `keras.ops` inside the model, so that XLA compiles them
and every replica of a `tf.distribute` strategy applies them to its rows.
"""

import math

from keras import ops

from keras_selfie.utils.validation import check_choice

ROTATIONS = (0, 1, 2, 3)


def rotate90(images, k):
    """Rotates a batch of square images by `k` quarter turns.

    Counter-clockwise, as `numpy.rot90(image, k)` turns each image.

    Args:
        images: `(batch, size, size, channels)`.
        k: 0, 1, 2 or 3: 0, 90, 180 or 270 degrees.

    Returns:
        The rotated images, same shape and dtype.
    """
    k = check_choice("k", k, ROTATIONS)
    if images.shape[1] != images.shape[2]:
        raise ValueError(
            "`images` must be square to be rotated by quarter turns. "
            f"Received shape={tuple(images.shape)}"
        )
    return ops.rot90(images, k=k, axes=(1, 2))


FILL_MODES = ("reflect", "nearest", "constant")


def _fill_index(index, size, fill_mode):
    # Where an integer pixel index outside [0, size) reads from.
    if fill_mode == "reflect":
        # d c b a | a b c d | d c b a, as `keras.layers.RandomRotation`.
        index = ops.mod(index, 2 * size)
        return ops.where(index >= size, 2 * size - 1 - index, index)
    return ops.clip(index, 0, size - 1)


def affine_warp(images, rotation, scale, translation, fill_mode="reflect"):
    """Rotates, scales and translates each image about its centre.

    Each image gets its own transformation. The output pixel at `p` (row,
    column) takes the input at `c + R(-rotation) (p - c - translation) /
    scale`, with `c` the image's centre and `R(a)` the rotation by `a`
    counter-clockwise (as displayed, rows going down), read with bilinear
    interpolation between the four nearest pixels: what sits at `q` in the
    input sits at `c + scale * R(rotation) (q - c) + translation` in the
    output. Parameters 0, 1 and `(0, 0)` return the images unchanged, a
    whole-pixel translation moves them exactly, and a rotation by 90
    degrees turns them as `numpy.rot90` does (up to float32 rounding of
    the sine and cosine).

    Args:
        images: `(n, height, width, channels)` float images.
        rotation: `(n,)` angles in degrees, counter-clockwise.
        scale: `(n,)` factors > 0; above 1 enlarges the content.
        translation: `(n, 2)` shifts in pixels, `(down, right)`.
        fill_mode: what is read outside the image: `"reflect"` (the image
            mirrored at its border, `d c b a | a b c d | d c b a`),
            `"nearest"` (the border pixel repeated) or `"constant"`
            (zeros).

    Returns:
        The warped images, same shape and dtype.
    """
    fill_mode = check_choice("fill_mode", fill_mode, FILL_MODES)
    height, width, channels = images.shape[1:]
    # Coordinates in float64 for float64 images, else float32.
    dtype = "float64" if images.dtype == "float64" else "float32"
    angle = ops.cast(rotation, dtype) * (math.pi / 180)
    cos = ops.cos(angle)[:, None, None]
    sin = ops.sin(angle)[:, None, None]
    scale = ops.cast(scale, dtype)[:, None, None]
    translation = ops.cast(translation, dtype)
    centre_y, centre_x = (height - 1) / 2, (width - 1) / 2
    rows = ops.arange(height, dtype=dtype)[None, :, None] - centre_y
    cols = ops.arange(width, dtype=dtype)[None, None, :] - centre_x
    down = rows - translation[:, 0, None, None]
    right = cols - translation[:, 1, None, None]
    source_y = (cos * down + sin * right) / scale + centre_y
    source_x = (cos * right - sin * down) / scale + centre_x
    top = ops.floor(source_y)
    left = ops.floor(source_x)
    weight_y = ops.cast(source_y - top, images.dtype)[..., None]
    weight_x = ops.cast(source_x - left, images.dtype)[..., None]
    top = ops.cast(top, "int32")
    left = ops.cast(left, "int32")
    # Rows of image i start at i * height * width in the flat pixels.
    flat = ops.reshape(images, (-1, channels))
    offset = ops.arange(ops.shape(images)[0], dtype="int32")[:, None, None]
    offset = offset * (height * width)

    def read(y, x):
        index = _fill_index(y, height, fill_mode) * width + _fill_index(
            x, width, fill_mode
        )
        values = ops.reshape(
            ops.take(flat, ops.reshape(offset + index, (-1,)), axis=0),
            ops.shape(images),
        )
        if fill_mode != "constant":
            return values
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        return values * ops.cast(inside, images.dtype)[..., None]

    upper = (read(top, left) * (1 - weight_x)
             + read(top, left + 1) * weight_x)
    lower = (read(top + 1, left) * (1 - weight_x)
             + read(top + 1, left + 1) * weight_x)
    return upper * (1 - weight_y) + lower * weight_y


# The principal components of CIFAR-10's training pixels (RGB in [0, 1]),
# one per row, by decreasing variance (0.172, 0.0125, 0.0027): brightness,
# red against blue, green against magenta. ImageNet's (Krizhevsky et al.,
# 2012) are the same axes within a few degrees.
CIFAR10_COLOR_COMPONENTS = (
    (0.5576658553, 0.5765563532, 0.5971528828),
    (0.7029104918, 0.0546312824, -0.7091771736),
    (0.4415038327, -0.8152289216, 0.3748015089),
)


def pca_contrast(images, factors, components=CIFAR10_COLOR_COMPONENTS):
    """Scales each image's colours along the principal colour axes.

    Exemplar-CNN's "contrast 1" (Dosovitskiy et al., 2014): the projection
    of every pixel onto each principal component of pixel colours is
    multiplied by a factor, the same for all pixels of an image. The
    projections are taken about the image's mean colour, so the mean
    colour stays and the factors change the contrast along each axis:
    `x + sum_c (factors[c] - 1) <x - mean, u_c> u_c`. Factors of 1 return
    the images unchanged. Values may leave `[0, 1]`.

    Args:
        images: `(n, height, width, 3)` float RGB images.
        factors: `(n, 3)` factors, one per component.
        components: three orthonormal RGB directions, one per row; by
            default CIFAR-10's `CIFAR10_COLOR_COMPONENTS`.

    Returns:
        The images, same shape and dtype.
    """
    components = ops.cast(ops.convert_to_tensor(components), images.dtype)
    deviation = images - ops.mean(images, axis=(1, 2), keepdims=True)
    projection = ops.einsum("nhwc,kc->nhwk", deviation, components)
    change = ops.cast(factors, images.dtype)[:, None, None, :] - 1
    return images + ops.einsum("nhwk,kc->nhwc", projection * change,
                               components)


def rgb_to_hsv(images):
    """RGB to HSV, all channels in `[0, 1]` (`colorsys.rgb_to_hsv`'s
    formulas; hue 0 where the pixel is grey).

    Args:
        images: `(..., 3)` float RGB values in `[0, 1]`.

    Returns:
        `(..., 3)` hue, saturation and value, same dtype.
    """
    red, green, blue = ops.unstack(images, 3, axis=-1)
    value = ops.max(images, axis=-1)
    chroma = value - ops.min(images, axis=-1)
    grey = chroma <= 0
    safe_chroma = ops.where(grey, ops.ones_like(chroma), chroma)
    safe_value = ops.where(value <= 0, ops.ones_like(value), value)
    saturation = chroma / safe_value
    hue = ops.where(
        value == red,
        ops.mod((green - blue) / safe_chroma, 6.0),
        ops.where(
            value == green,
            (blue - red) / safe_chroma + 2,
            (red - green) / safe_chroma + 4,
        ),
    )
    hue = ops.where(grey, ops.zeros_like(hue), hue / 6)
    return ops.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(images):
    """HSV to RGB, the inverse of `rgb_to_hsv` (hue taken modulo 1).

    Args:
        images: `(..., 3)` float hue, saturation and value.

    Returns:
        `(..., 3)` RGB values, same dtype.
    """
    hue, saturation, value = ops.unstack(images, 3, axis=-1)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = ops.mod(n + 6 * hue, 6.0)
        ramp = ops.clip(ops.minimum(k, 4 - k), 0, 1)
        channels.append(value - value * saturation * ramp)
    return ops.stack(channels, axis=-1)


def adjust_hsv(images, hue_shift, powers, factors, shifts):
    """Exemplar-CNN's "contrast 2" and "color" changes of RGB images.

    In HSV, saturation and value each become `clip(x ** power * factor +
    shift, 0, 1)` and the hue moves by `hue_shift` (modulo 1), with one set
    of parameters per image (Dosovitskiy et al., 2014). Shifts 0 and powers
    and factors 1 return the images (up to float rounding).

    Args:
        images: `(n, height, width, 3)` float RGB images in `[0, 1]`.
        hue_shift: `(n,)` shifts of the hue, in turns.
        powers: `(n, 2)` powers of saturation and value.
        factors: `(n, 2)` factors of saturation and value.
        shifts: `(n, 2)` shifts of saturation and value.

    Returns:
        The RGB images, same shape and dtype.
    """
    dtype = images.dtype

    def per_image(x):
        return ops.cast(x, dtype)[:, None, None]

    hsv = rgb_to_hsv(images)
    hue = hsv[..., 0] + per_image(hue_shift)
    saturation_value = ops.clip(
        ops.power(hsv[..., 1:], per_image(powers)) * per_image(factors)
        + per_image(shifts),
        0,
        1,
    )
    return hsv_to_rgb(
        ops.concatenate([hue[..., None], saturation_value], axis=-1)
    )


def block_masks(image_size, tops, lefts, block_size):
    """The union of axis-aligned blocks in each image, as a 0/1 mask.

    Built from comparisons with index grids (no gathers, static shapes), so
    that the blocks' positions may be tensors drawn inside the step. Rows
    and columns outside the image are ignored: a block that sticks out is
    cut at the border.

    Args:
        image_size: `(height, width)` of the images.
        tops: int `(batch, num_blocks)`: each block's first row (may be
            negative or past the image).
        lefts: int `(batch, num_blocks)`: each block's first column.
        block_size: `(block_height, block_width)`, the same for all blocks.

    Returns:
        float32 `(batch, height, width)`: 1 where a pixel is inside at
        least one of its image's blocks, else 0.
    """
    height, width = image_size
    block_height, block_width = block_size

    def inside(starts, length, size):
        # (batch, num_blocks, size): whether each index is in each block.
        index = ops.arange(size, dtype="int32")[None, None, :]
        starts = ops.cast(starts, "int32")[:, :, None]
        return ops.cast(
            ops.logical_and(index >= starts, index < starts + length),
            "float32",
        )

    rows = inside(tops, block_height, height)
    cols = inside(lefts, block_width, width)
    return ops.max(rows[:, :, :, None] * cols[:, :, None, :], axis=1)


def fill_masked(images, mask, fill_value):
    """Replaces the masked pixels of each image with one colour.

    Args:
        images: `(batch, height, width, channels)`.
        mask: `(batch, height, width)`, 1 where a pixel is replaced, 0
            where it is kept.
        fill_value: a number or a `channels`-long sequence: the colour of
            the replaced pixels.

    Returns:
        The images, same shape and dtype.
    """
    mask = ops.cast(mask, images.dtype)[..., None]
    fill = ops.cast(ops.convert_to_tensor(fill_value), images.dtype)
    return images * (1 - mask) + fill * mask


DOWNSAMPLING = ("area", "bilinear")
UPSAMPLING = ("bicubic", "bilinear", "nearest")
# Keys' cubic convolution parameter of `tf.image.resize`'s bicubic (and of
# MATLAB's `imresize`).
_CUBIC_A = -0.5


def _cubic(x):
    x = abs(x)
    if x <= 1:
        return ((_CUBIC_A + 2) * x - (_CUBIC_A + 3)) * x * x + 1
    if x < 2:
        return ((x - 5) * x + 8) * x * _CUBIC_A - 4 * _CUBIC_A
    return 0.0


def resize_matrix(size, factor, method, upsample):
    """The linear map of one image axis resized by an integer factor.

    The kernels and conventions of `keras.ops.image.resize` without
    antialiasing (half-pixel centres, indices clamped at the borders), as
    a matrix, so that resizing is two matrix products: `keras.ops.image.
    resize` compiles with XLA for bilinear only, and not at all for
    "area".

    Args:
        size: int, the axis' length before resizing.
        factor: int >= 1.
        method: `"area"` (downsampling only: the mean of each `factor`
            pixels), `"bilinear"`, `"bicubic"` (upsampling only; Keys'
            kernel, a = -0.5) or `"nearest"` (upsampling only).
        upsample: bool, to `size * factor` (True) or `size // factor`.

    Returns:
        NumPy float64 `(new_size, size)`.
    """
    import numpy as np

    new_size = size * factor if upsample else size // factor
    matrix = np.zeros((new_size, size))
    for out in range(new_size):
        if method == "area":
            matrix[out, out * factor:(out + 1) * factor] = 1 / factor
            continue
        # The input coordinate of the output pixel's centre.
        scale = 1 / factor if upsample else factor
        centre = (out + 0.5) * scale - 0.5
        if method == "nearest":
            matrix[out, min(int(math.floor((out + 0.5) * scale)),
                            size - 1)] = 1
            continue
        low = int(math.floor(centre))
        if method == "bilinear":
            taps = {low: 1 - (centre - low), low + 1: centre - low}
            for j, weight in taps.items():
                matrix[out, min(max(j, 0), size - 1)] += weight
            continue
        # Taps outside the image are dropped and the others renormalised,
        # as TensorFlow's bicubic with half-pixel centres does.
        taps = {j: _cubic(centre - j) for j in range(low - 1, low + 3)
                if 0 <= j < size}
        total = sum(taps.values())
        for j, weight in taps.items():
            matrix[out, j] = weight / total
    return matrix


def resize_by_factor(images, factor, method, upsample):
    """Downsamples or upsamples images by an integer factor.

    The same values as `keras.ops.image.resize(images, new_size,
    interpolation=method, antialias=False)` (up to float rounding), computed
    as `R @ image @ C^T` with `resize_matrix`'s matrices, which XLA
    compiles for every method.

    Args:
        images: `(batch, height, width, channels)`; with `upsample=False`,
            `height` and `width` must be multiples of `factor`.
        factor: int >= 1.
        method: one of `DOWNSAMPLING` (`upsample=False`) or `UPSAMPLING`.
        upsample: bool, whether to enlarge (True) or shrink the images.

    Returns:
        `(batch, height * factor, width * factor, channels)` or `(batch,
        height // factor, width // factor, channels)`, same dtype.
    """
    check_choice("method", method, UPSAMPLING if upsample else DOWNSAMPLING)
    height, width = images.shape[1], images.shape[2]
    if not upsample and (height % factor or width % factor):
        raise ValueError(
            f"Downsampling by `factor`={factor} needs an image size that "
            f"it divides. Received: images of shape {tuple(images.shape)}"
        )
    rows = ops.cast(resize_matrix(height, factor, method, upsample),
                    images.dtype)
    cols = ops.cast(resize_matrix(width, factor, method, upsample),
                    images.dtype)
    return ops.einsum("ih,bhwc,jw->bijc", rows, images, cols)
