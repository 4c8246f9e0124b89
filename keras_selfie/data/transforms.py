"""Transformations a pretext task applies inside its training step.

Unlike `augment` (per-image `tf.data` augmentation before batching), these
run on batches with `keras.ops` inside the model, so that XLA compiles them
and every replica of a `tf.distribute` strategy applies them to its rows.
"""

import keras
import numpy as np
from keras import ops

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
