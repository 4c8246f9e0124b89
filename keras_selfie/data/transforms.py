"""Transformations a pretext task applies inside its training step.

Unlike `augment` (per-image `tf.data` augmentation before batching), these
run on batches with `keras.ops` inside the model, so that XLA compiles them
and every replica of a `tf.distribute` strategy applies them to its rows.
"""

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


def uniform_to_int(values, count):
    """Maps uniform `[0, 1)` values to integers `0 ... count - 1`, each
    with probability `1 / count`, int32."""
    return ops.minimum(
        ops.cast(ops.floor(values * count), "int32"), count - 1
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
    moves = uniform_to_int(uniforms[:, 2:6], 2 * jitter + 1) - jitter
    return centre + moves[:, 0:2], neighbor + moves[:, 2:4]


def crop_at(images, corners, size):
    """Crops one `size` x `size` patch from each image at its own corner.

    A gather on index grids, so that the corners may be tensors (drawn in
    the step) while every shape stays static (XLA).

    Args:
        images: `(n, height, width, channels)`.
        corners: `(n, 2)` int `(row, column)` of each patch's top-left
            pixel; the patch must lie inside the image.
        size: int, the side of the patches.

    Returns:
        `(n, size, size, channels)`, the images' dtype.
    """
    corners = ops.cast(corners, "int32")
    steps = ops.arange(size, dtype="int32")
    rows = corners[:, 0:1] + steps  # (n, size)
    columns = corners[:, 1:2] + steps
    images = ops.take_along_axis(images, rows[:, :, None, None], axis=1)
    return ops.take_along_axis(images, columns[:, None, :, None], axis=2)


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
