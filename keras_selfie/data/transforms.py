"""Transformations a pretext task applies inside its training step.

Unlike `augment` (per-image `tf.data` augmentation before batching), these
run on batches with `keras.ops` inside the model, so that XLA compiles them
and every replica of a `tf.distribute` strategy applies them to its rows.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_selfie.utils.random import uniform_index
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_positive_int

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
    height, width = images.shape[1:3]
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
    return bilinear_sample(images, source_y, source_x, fill_mode)


def bilinear_sample(images, source_y, source_x, fill_mode="reflect"):
    """Reads each image at real-valued pixel positions, bilinearly.

    Output pixel `(i, j)` of image `n` interpolates between the four input
    pixels nearest to `(source_y[n, i, j], source_x[n, i, j])` (row and
    column, pixel centres at whole numbers); an integer position reads its
    pixel exactly. The shared reader of `affine_warp` and
    `crop_and_resize`.

    Args:
        images: `(n, height, width, channels)` float images.
        source_y: `(n, out_height, out_width)` rows to read.
        source_x: `(n, out_height, out_width)` columns to read.
        fill_mode: what is read outside the image: `"reflect"`,
            `"nearest"` or `"constant"` (zeros); see `affine_warp`.

    Returns:
        `(n, out_height, out_width, channels)` images, dtype of `images`.
    """
    fill_mode = check_choice("fill_mode", fill_mode, FILL_MODES)
    height, width, channels = images.shape[1:]
    out_shape = (-1, *source_y.shape[1:], channels)
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
            out_shape,
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


def resized_crop_boxes(draws, image_size, scale=(0.08, 1.0),
                       aspect_ratio=(3 / 4, 4 / 3)):
    """Inception-style random crop boxes from uniform draws.

    Each attempt proposes a box covering a fraction of the image's area
    drawn uniformly in `scale`, with a width/height ratio drawn
    log-uniformly in `aspect_ratio`, at a uniformly drawn position; the
    first attempt that fits inside the image is kept, and the whole image
    if none does (as `tf.image.sample_distorted_bounding_box` and
    torchvision's `RandomResizedCrop` do; the box is not rounded to whole
    pixels).

    Args:
        draws: `(n, attempts, 4)` uniform values in `[0, 1)`: area,
            ratio, vertical and horizontal position of each attempt.
        image_size: `(height, width)` of the images.
        scale: `(min, max)` fraction of the image area.
        aspect_ratio: `(min, max)` width/height ratio of the box.

    Returns:
        `(n, 4)` boxes `(top, left, height, width)` in pixels, dtype of
        `draws`.
    """
    height, width = image_size
    dtype = draws.dtype
    area = (scale[0] + draws[..., 0] * (scale[1] - scale[0])) * (
        height * width
    )
    low, high = math.log(aspect_ratio[0]), math.log(aspect_ratio[1])
    ratio = ops.exp(low + draws[..., 1] * (high - low))
    box_height = ops.sqrt(area / ratio)
    box_width = ops.sqrt(area * ratio)
    fits = (box_height <= height) & (box_width <= width)
    # The first attempt that fits, or none (the whole image).
    first = ops.argmax(ops.cast(fits, "int32"), axis=1)
    chosen = ops.one_hot(first, draws.shape[1], dtype=dtype) * ops.cast(
        ops.any(fits, axis=1), dtype
    )[:, None]

    def pick(values, whole):
        return ops.sum(values * chosen, axis=1) + whole * (
            1 - ops.sum(chosen, axis=1)
        )

    box_height = pick(box_height, height)
    box_width = pick(box_width, width)
    top = pick(draws[..., 2], 0.0) * (height - box_height)
    left = pick(draws[..., 3], 0.0) * (width - box_width)
    return ops.stack([top, left, box_height, box_width], axis=-1)


def crop_and_resize(images, boxes, size=None):
    """Crops a box of each image and resizes it, bilinearly.

    Output pixel `(i, j)` reads the input at row `top + (i + 0.5) *
    box_height / out_height - 0.5` and column `left + (j + 0.5) * box_width
    / out_width - 0.5` (pixel centres, as `tf.image.resize` without
    antialiasing), the image's border pixel repeated where that falls
    outside. The box `(0, 0, height, width)` at the image's own size
    returns the images unchanged.

    Args:
        images: `(n, height, width, channels)` float images.
        boxes: `(n, 4)` boxes `(top, left, height, width)` in pixels (real
            numbers; see `resized_crop_boxes`).
        size: `(out_height, out_width)`; `None` for the images' size.

    Returns:
        `(n, out_height, out_width, channels)` images, dtype of `images`.
    """
    out_height, out_width = size or tuple(images.shape[1:3])
    dtype = "float64" if images.dtype == "float64" else "float32"
    boxes = ops.cast(boxes, dtype)
    top, left, box_height, box_width = (
        ops.reshape(boxes[:, k], (-1, 1, 1)) for k in range(4)
    )
    rows = ops.arange(out_height, dtype=dtype)[None, :, None] + 0.5
    cols = ops.arange(out_width, dtype=dtype)[None, None, :] + 0.5
    source_y = top + rows * (box_height / out_height) - 0.5
    source_x = left + cols * (box_width / out_width) - 0.5
    shape = (ops.shape(images)[0], out_height, out_width)
    return bilinear_sample(
        images,
        ops.broadcast_to(source_y, shape),
        ops.broadcast_to(source_x, shape),
        fill_mode="nearest",
    )


def flip_left_right(images, flip):
    """Mirrors the images whose `flip` is true, left to right.

    Args:
        images: `(n, height, width, channels)`.
        flip: `(n,)` booleans.

    Returns:
        The images, same shape and dtype.
    """
    return ops.where(
        ops.cast(flip, "bool")[:, None, None, None],
        ops.flip(images, axis=2),
        images,
    )


# The luma weights of `tf.image.rgb_to_grayscale` (ITU-R BT.601).
GRAYSCALE_WEIGHTS = (0.2989, 0.5870, 0.1140)


def grayscale(images):
    """RGB images to grey, kept as 3 equal channels.

    The grey value is `0.2989 R + 0.5870 G + 0.1140 B`, as
    `tf.image.rgb_to_grayscale`; the channels are repeated so that the
    image keeps its shape (SimCLR's colour drop).

    Args:
        images: `(..., 3)` float RGB values.

    Returns:
        `(..., 3)` values, same dtype.
    """
    weights = ops.cast(ops.convert_to_tensor(GRAYSCALE_WEIGHTS), images.dtype)
    grey = ops.sum(images * weights, axis=-1, keepdims=True)
    return ops.repeat(grey, 3, axis=-1)


def color_jitter(images, brightness, contrast, saturation, hue):
    """SimCLR's colour jitter of RGB images, one set of changes per image.

    In this order (the paper's listing, Chen et al., 2020, Appendix A),
    each result clipped to `[0, 1]` (as the authors' code does after every
    step):

    - brightness: `x + brightness` (`tf.image.adjust_brightness`);
    - contrast: `(x - mean) * contrast + mean`, the mean of each channel
      over the image (`tf.image.adjust_contrast`);
    - saturation and hue: in HSV (`adjust_hsv`), the saturation multiplied
      by `saturation` (clipped to `[0, 1]`) and the hue moved by `hue`
      turns (`tf.image.adjust_saturation`, `tf.image.adjust_hue`).

    `0, 1, 1, 0` leaves images in `[0, 1]` unchanged (up to float
    rounding).

    Args:
        images: `(n, height, width, 3)` float RGB images in `[0, 1]`.
        brightness: `(n,)` additive changes.
        contrast: `(n,)` contrast factors.
        saturation: `(n,)` saturation factors.
        hue: `(n,)` hue shifts, in turns.

    Returns:
        The RGB images, in `[0, 1]`, same shape and dtype.
    """
    dtype = images.dtype

    def per_image(x):
        return ops.cast(x, dtype)[:, None, None, None]

    images = ops.clip(images + per_image(brightness), 0, 1)
    mean = ops.mean(images, axis=(1, 2), keepdims=True)
    images = ops.clip((images - mean) * per_image(contrast) + mean, 0, 1)
    saturation = ops.cast(saturation, dtype)
    ones = ops.ones_like(saturation)
    return adjust_hsv(
        images,
        hue,
        powers=ops.stack([ones, ones], axis=-1),
        factors=ops.stack([saturation, ones], axis=-1),
        shifts=ops.zeros((ops.shape(saturation)[0], 2), dtype),
    )


def gaussian_blur(images, sigma, kernel_size):
    """Blurs each image with a Gaussian of its own standard deviation.

    A separable blur of `kernel_size` taps (odd), the weights
    `exp(-k^2 / (2 sigma^2))` for `k = -r ... r` normalised to sum 1, the
    image mirrored at its border (`d c b a | a b c d | d c b a`).

    Args:
        images: `(n, height, width, channels)` float images.
        sigma: `(n,)` standard deviations in pixels, > 0.
        kernel_size: odd int >= 1; 1 returns the images.

    Returns:
        The blurred images, same shape and dtype.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            "Argument `kernel_size` must be an odd int >= 1. Received: "
            f"kernel_size={kernel_size}"
        )
    radius = kernel_size // 2
    if radius == 0:
        return images
    height, width = images.shape[1:3]
    taps = ops.arange(-radius, radius + 1, dtype=images.dtype)
    sigma = ops.cast(sigma, images.dtype)[:, None]
    weights = ops.exp(-ops.square(taps)[None, :] / (2 * ops.square(sigma)))
    weights = weights / ops.sum(weights, axis=1, keepdims=True)

    def blur(x, axis, size):
        index = ops.arange(size, dtype="int32")
        out = 0
        for k in range(-radius, radius + 1):
            shifted = ops.take(x, _fill_index(index + k, size, "reflect"),
                               axis=axis)
            out = out + shifted * weights[:, k + radius, None, None, None]
        return out

    return blur(blur(images, 1, height), 2, width)


def jittered_grid_offsets(origins, jitter, grid_size, cell_size):
    """Top-left corners of one tile in each cell of a grid.

    The grid of `grid_size` square cells of side `cell_size` starts at
    `origins` in each image; tile `i` (row-major: grid row `i // cols`,
    column `i % cols`) sits `jitter[:, i]` pixels into its cell. With
    `jitter` in `[0, cell_size - tile_size]` every tile stays inside its
    cell, so neighbouring tiles are `0` to `2 * (cell_size - tile_size)`
    pixels apart (the random gap of Noroozi and Favaro's jigsaw puzzles).

    Args:
        origins: int `(batch, 2)`: the `(row, col)` of each grid's top-left
            pixel in its image.
        jitter: int `(batch, rows * cols, 2)`: each tile's `(row, col)`
            offset inside its cell.
        grid_size: `(rows, cols)` of the grid.
        cell_size: int, the side of a cell in pixels.

    Returns:
        int32 `(batch, rows * cols, 2)`: each tile's top-left `(row, col)`
        in its image, for `extract_tiles`.
    """
    rows, cols = grid_size
    cells = np.stack(
        np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), -1
    ).reshape(rows * cols, 2)
    return (
        ops.cast(origins, "int32")[:, None, :]
        + ops.convert_to_tensor(cells * cell_size, "int32")[None]
        + ops.cast(jitter, "int32")
    )


def extract_tiles(images, offsets, tile_size):
    """Cuts square tiles at given positions out of a batch of images.

    A gather on pixel indices: static shapes, any positions per image, and
    exact copies of the pixels (no resampling).

    Args:
        images: `(batch, height, width, channels)` with static height, width
            and channels.
        offsets: int `(batch, num_tiles, 2)`: the top-left `(row, col)` of
            each tile; every tile must lie inside its image (what lies
            outside is not checked in the graph: TensorFlow raises on the
            CPU and reads zeros on accelerators).
        tile_size: int, the side of the tiles.

    Returns:
        `(batch, num_tiles, tile_size, tile_size, channels)`, the dtype of
        `images`: `tiles[b, t, i, j] = images[b, offsets[b, t, 0] + i,
        offsets[b, t, 1] + j]`.
    """
    height, width, channels = images.shape[1:]
    tile_size = check_positive_int("tile_size", tile_size)
    if tile_size > min(height, width):
        raise ValueError(
            f"Argument `tile_size` must be at most the image's height and "
            f"width ({height}x{width}). Received: tile_size={tile_size}"
        )
    num_tiles = offsets.shape[1]
    offsets = ops.cast(offsets, "int32")
    steps = ops.arange(tile_size, dtype="int32")
    rows = offsets[:, :, 0, None, None] + steps[:, None]
    cols = offsets[:, :, 1, None, None] + steps[None, :]
    first = ops.arange(ops.shape(images)[0], dtype="int32") * (
        height * width
    )
    index = first[:, None, None, None] + rows * width + cols
    pixels = ops.take(
        ops.reshape(images, (-1, channels)), ops.reshape(index, (-1,)), axis=0
    )
    return ops.reshape(
        pixels, (-1, num_tiles, tile_size, tile_size, channels)
    )


def permute_tiles(tiles, permutations):
    """Reorders each example's tiles: `out[b, i] = tiles[b, perm[b, i]]`.

    Position `i` of the result holds tile `permutations[b, i]`, as NumPy's
    `tiles[b][permutations[b]]`; permuting by `numpy.argsort(permutation)`
    puts the tiles back.

    Args:
        tiles: `(batch, num_tiles, ...)`.
        permutations: int `(batch, num_tiles)`, a permutation of
            `0 ... num_tiles - 1` per example.

    Returns:
        The tiles in the new order, shape and dtype of `tiles`.
    """
    num_tiles = tiles.shape[1]
    first = ops.arange(ops.shape(tiles)[0], dtype="int32") * num_tiles
    index = first[:, None] + ops.cast(permutations, "int32")
    flat = ops.reshape(tiles, (-1, *tiles.shape[2:]))
    picked = ops.take(flat, ops.reshape(index, (-1,)), axis=0)
    return ops.reshape(picked, (-1, num_tiles, *tiles.shape[2:]))


def normalize_tiles(tiles, epsilon=1e-5):
    """Gives each tile zero mean and unit standard deviation per channel.

    Each tile is normalised with its own statistics, over its pixels and
    separately for each channel, so that a tile's brightness, contrast and
    colour cast say nothing about where it came from (Noroozi and Favaro's
    defence against low-level shortcuts). A channel of a tile that is
    flat (standard deviation below `epsilon`) is only centred. Statistics
    are computed in float32 at least (float16 and bfloat16 tiles are
    upcast); the result has the dtype of `tiles`.

    Args:
        tiles: `(..., height, width, channels)` float tiles.
        epsilon: float, the standard deviation below which a channel is
            treated as flat.

    Returns:
        The normalised tiles, same shape and dtype.
    """
    dtype = tiles.dtype
    x = tiles
    if keras.backend.standardize_dtype(dtype) in ("float16", "bfloat16"):
        x = ops.cast(x, "float32")
    mean = ops.mean(x, axis=(-3, -2), keepdims=True)
    centred = x - mean
    std = ops.sqrt(ops.mean(ops.square(centred), axis=(-3, -2), keepdims=True))
    std = ops.where(std < epsilon, ops.ones_like(std), std)
    return ops.cast(centred / std, dtype)


# The 8 neighbours of a centre cell in a 3x3 layout, as `(row, column)`
# offsets in cells; label `k` is `NEIGHBOR_OFFSETS[k]`, row by row:
#   0 1 2
#   3 . 4
#   5 6 7
# (Doersch et al.'s labels 1-8, from 0).
NEIGHBOR_OFFSETS = (
    (-1, -1), (-1, 0), (-1, 1),
    (0, -1), (0, 1),
    (1, -1), (1, 0), (1, 1),
)


def neighbor_pair_corners(
    uniforms, labels, image_size, patch_size, gap, jitter
):
    """Top-left corners of a centre patch and one of its 8 neighbours.

    The 3x3 layout of `patch_size` patches, `gap` pixels apart, with a
    margin of `jitter` around it (`3 * patch_size + 2 * gap + 2 * jitter`
    pixels a side), is placed at a uniformly drawn position inside the
    image. The centre patch sits in the middle cell, the neighbour in the
    cell `NEIGHBOR_OFFSETS[label]` from it, and each patch is then moved
    by its own integer jitter in `[-jitter, jitter]` on each axis, so the
    two patches are `gap - 2 * jitter ... gap + 2 * jitter` pixels apart
    along the axes they are separated on, and every patch lies inside the
    image.

    Args:
        uniforms: `(n, 6)` uniform `[0, 1)` values: the layout's row and
            column, the centre's row and column jitter, the neighbour's
            row and column jitter.
        labels: `(n,)` int, which neighbour (`0 ... 7`).
        image_size: `(height, width)`, each at least the layout's side.
        patch_size: int, the side of the square patches.
        gap: int, the pixels between neighbouring cells.
        jitter: int, the most a patch moves on each axis.

    Returns:
        `(centre, neighbor)`, int32 `(n, 2)` `(row, column)` corners.
    """
    side = 3 * patch_size + 2 * gap + 2 * jitter
    slack = ops.convert_to_tensor(
        [image_size[0] - side, image_size[1] - side], "float32"
    )
    uniforms = ops.convert_to_tensor(uniforms, "float32")
    start = ops.minimum(
        ops.cast(ops.floor(uniforms[:, 0:2] * (slack + 1)), "int32"),
        ops.cast(slack, "int32"),
    )
    centre = start + jitter + patch_size + gap
    offsets = ops.take(
        ops.convert_to_tensor(NEIGHBOR_OFFSETS, "int32"),
        ops.cast(labels, "int32"),
        axis=0,
    )
    neighbor = centre + offsets * (patch_size + gap)
    moves = uniform_index(uniforms[:, 2:6], 2 * jitter + 1) - jitter
    return centre + moves[:, 0:2], neighbor + moves[:, 2:4]


# The green-magenta colour axis in RGB (Doersch et al., 2015), along which
# chromatic aberration shifts colours most.
GREEN_MAGENTA = (-1.0, 2.0, -1.0)


def project_out_green_magenta(images):
    """Removes each RGB pixel's component along the green-magenta axis.

    Multiplies every pixel by `B = I - a a^T / (a^T a)`, `a = (-1, 2,
    -1)` (Doersch et al.'s "projection"), so that chromatic aberration,
    which separates green from magenta towards the edges of a photo, no
    longer tells where a patch was taken. The other two colour directions
    are kept unchanged.

    Args:
        images: `(..., 3)` RGB values.

    Returns:
        The projected values, same shape and dtype.
    """
    if images.shape[-1] != 3:
        raise ValueError(
            "Projecting out the green-magenta axis needs RGB images (3 "
            f"channels). Received shape={tuple(images.shape)}"
        )
    axis = ops.convert_to_tensor(GREEN_MAGENTA, images.dtype)
    along = ops.sum(images * axis, axis=-1, keepdims=True)
    return images - along * axis / ops.sum(axis * axis)


def drop_colors(images, keep, noise, noise_std=0.01):
    """Keeps one colour channel of each image and replaces the others with
    noise (Doersch et al.'s "colour dropping").

    Args:
        images: `(n, height, width, channels)`.
        keep: `(n,)` int, the channel each image keeps unchanged.
        noise: `(n, height, width, channels)` standard normal values; the
            dropped channels get them scaled by `noise_std` times the
            standard deviation of the kept channel over the image (the
            paper's "standard deviation ~1/100 the standard deviation of
            the remaining channel"), around 0.
        noise_std: float >= 0.

    Returns:
        The images with all but one channel dropped, same shape and dtype.
    """
    mask = ops.one_hot(
        ops.cast(keep, "int32"), images.shape[-1], dtype=images.dtype
    )[:, None, None, :]
    kept = ops.sum(images * mask, axis=-1, keepdims=True)
    scale = noise_std * ops.std(kept, axis=(1, 2, 3), keepdims=True)
    noise = ops.cast(noise, images.dtype) * scale
    return images * mask + noise * (1 - mask)


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
