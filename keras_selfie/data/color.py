"""sRGB <-> CIELAB and the quantised ab colour space of colorization.

The conversion is the standard one (IEC 61966-2-1 sRGB, D65 white, CIE
1976 L*a*b*), written with `keras.ops` so that it runs inside a training
step, in a `tf.data` map and under XLA, in float32 or float64. No
maintained TensorFlow or Keras library offers it: `tf.image` has HSV and
YIQ but not Lab, and `tensorflow-io`'s `rgb_to_lab` would be a heavy
dependency (its own binary ops, pinned to TensorFlow versions) for two
functions.

Colorization (Zhang, Isola, Efros, 2016) predicts a distribution over
the in-gamut cells of a grid on the ab plane: `ab_gamut_bins` finds them,
`soft_encode_ab` makes the per-pixel target distributions, and
`annealed_mean_ab` turns a predicted distribution back into one colour.
`estimate_ab_prior` measures how often each cell occurs in a dataset,
the prior of the paper's class rebalancing (`losses.rebalancing_weights`).
"""

import functools

import numpy as np
from keras import ops

from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import check_positive_number

# Linear sRGB to CIE XYZ (IEC 61966-2-1, D65), one row per X, Y, Z.
RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# The white point is XYZ of RGB white under that matrix (its row sums,
# D65 to 4 decimals), so that white is exactly (100, 0, 0).
_WHITE = tuple(float(sum(row)) for row in RGB_TO_XYZ)
XYZ_TO_RGB = tuple(map(tuple, np.linalg.inv(np.array(RGB_TO_XYZ))))
# CIE's break point of the cube root, (6/29)^3, and the slope below it.
_DELTA = 6 / 29
# The break point of sRGB's gamma curve, in encoded and linear values.
_SRGB_KNEE = 0.04045
_LINEAR_KNEE = 0.0031308


def _matrix_apply(matrix, values):
    matrix = ops.cast(ops.convert_to_tensor(matrix), values.dtype)
    return ops.einsum("...c,kc->...k", values, matrix)


def rgb_to_lab(images):
    """sRGB values in `[0, 1]` to CIELAB (D65).

    Args:
        images: `(..., 3)` float sRGB values (gamma-encoded, as stored in
            image files), in `[0, 1]`.

    Returns:
        `(..., 3)` L in `[0, 100]`, a and b (about `[-87, 99]` and
        `[-108, 95]` for sRGB colours), same dtype.

    Example:

    ```python
    rgb_to_lab(np.array([[1.0, 0.0, 0.0]]))  # [[53.24, 80.09, 67.20]]
    ```
    """
    knee = ops.cast(_SRGB_KNEE, images.dtype)
    linear = ops.where(
        images <= knee,
        images / 12.92,
        ops.power((ops.maximum(images, knee) + 0.055) / 1.055, 2.4),
    )
    xyz = _matrix_apply(RGB_TO_XYZ, linear) / ops.cast(
        ops.convert_to_tensor(_WHITE), images.dtype
    )
    cube = ops.cast(_DELTA**3, images.dtype)
    f = ops.where(
        xyz > cube,
        ops.power(ops.maximum(xyz, cube), 1 / 3),
        xyz / (3 * _DELTA**2) + 4 / 29,
    )
    fx, fy, fz = ops.unstack(f, 3, axis=-1)
    return ops.stack(
        [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], axis=-1
    )


def lab_to_rgb(images):
    """CIELAB (D65) to sRGB, the inverse of `rgb_to_lab`.

    Colours outside the sRGB gamut give values outside `[0, 1]`; they are
    not clipped, so that callers can tell (clip them to show them).

    Args:
        images: `(..., 3)` float L, a, b.

    Returns:
        `(..., 3)` float sRGB values, same dtype.
    """
    lightness, a, b = ops.unstack(images, 3, axis=-1)
    fy = (lightness + 16) / 116
    f = ops.stack([fy + a / 500, fy, fy - b / 200], axis=-1)
    delta = ops.cast(_DELTA, images.dtype)
    xyz = ops.where(
        f > delta, ops.power(f, 3), 3 * _DELTA**2 * (f - 4 / 29)
    ) * ops.cast(ops.convert_to_tensor(_WHITE), images.dtype)
    linear = _matrix_apply(XYZ_TO_RGB, xyz)
    knee = ops.cast(_LINEAR_KNEE, images.dtype)
    return ops.where(
        linear <= knee,
        12.92 * linear,
        1.055 * ops.power(ops.maximum(linear, knee), 1 / 2.4) - 0.055,
    )


# How finely `ab_gamut_bins` looks for an L at which a bin centre is an
# sRGB colour: 1,001 lightness values from 0 to 100.
_GAMUT_LIGHTNESS_STEPS = 1001
# The largest |a| and |b| of an sRGB colour is below 110.
_AB_EXTENT = 110


@functools.cache
def _gamut_bins(grid_size, lightness_steps):
    count = int(_AB_EXTENT // grid_size) + 1
    axis = np.arange(-count, count + 1) * float(grid_size)
    a, b = [v.ravel() for v in np.meshgrid(axis, axis, indexing="ij")]
    lightness = np.linspace(0.0, 100.0, lightness_steps)
    lab = np.stack(
        [np.broadcast_to(lightness[:, None], (lightness_steps, a.size)),
         np.broadcast_to(a, (lightness_steps, a.size)),
         np.broadcast_to(b, (lightness_steps, a.size))],
        axis=-1,
    )
    rgb = ops.convert_to_numpy(lab_to_rgb(ops.convert_to_tensor(lab)))
    valid = np.all((rgb >= 0) & (rgb <= 1), axis=-1)
    inside = valid.any(axis=0)
    centres = np.stack([a[inside], b[inside]], axis=-1)
    # For each bin, the middle of the lightness range at which its centre
    # is an sRGB colour: a lightness to show the bin's colour at.
    first = np.argmax(valid[:, inside], axis=0)
    last = lightness_steps - 1 - np.argmax(valid[::-1, inside], axis=0)
    middle = lightness[(first + last) // 2]
    centres.setflags(write=False)
    middle.setflags(write=False)
    return centres, middle


def ab_gamut_bins(grid_size=10):
    """The in-gamut bins of a square grid on the ab plane.

    The grid's centres are the multiples of `grid_size` in a and b (the
    paper's quantisation). A bin is kept if its centre is an sRGB colour
    at some lightness: `lab_to_rgb((L, a, b))` in `[0, 1]` for one of
    1,001 values of L from 0 to 100 (a finer search of L finds the same
    bins). With `grid_size=10` this keeps 229 bins; the paper keeps
    Q = 313 "in gamut" and does not say how it found them (the convex
    hull of the sRGB colours' ab values holds 233 centres, and 261 cells
    hold the ab value of some 8-bit sRGB colour, 32 of them with their
    centre outside the gamut at every L). The bins come in the order of
    increasing a, then b.

    Args:
        grid_size: number > 0, the side of a grid cell in ab units
            (default 10, the paper's).

    Returns:
        A read-only float64 NumPy array `(Q, 2)` of the bins' a and b.
    """
    check_positive_number("grid_size", grid_size)
    return _gamut_bins(float(grid_size), _GAMUT_LIGHTNESS_STEPS)[0]


def ab_bin_lightness(grid_size=10):
    """A lightness at which each `ab_gamut_bins` centre is an sRGB colour.

    The middle of the range of L (searched as in `ab_gamut_bins`) where
    `lab_to_rgb((L, a, b))` lies in `[0, 1]`: with the bins, the colour
    to show for each bin (e.g. a picture of the prior).

    Returns:
        A read-only float64 NumPy array `(Q,)`.
    """
    check_positive_number("grid_size", grid_size)
    return _gamut_bins(float(grid_size), _GAMUT_LIGHTNESS_STEPS)[1]


def _squared_distances(ab, bins):
    # |ab - c|^2 for every bin centre c: (..., 2) against (Q, 2).
    bins = ops.cast(ops.convert_to_tensor(bins), ab.dtype)
    return (
        ops.sum(ops.square(ab), axis=-1, keepdims=True)
        - 2 * ops.einsum("...c,qc->...q", ab, bins)
        + ops.sum(ops.square(bins), axis=-1)
    )


def nearest_ab_bins(ab, bins):
    """The index of the nearest bin centre of each ab value.

    Args:
        ab: `(..., 2)` float a and b.
        bins: `(Q, 2)` bin centres (`ab_gamut_bins`).

    Returns:
        `(...)` int32 indices into `bins`.
    """
    return ops.cast(
        ops.argmin(_squared_distances(ab, bins), axis=-1), "int32"
    )


def soft_encode_ab(ab, bins, num_neighbors=5, sigma=5.0):
    """Soft-encodes ab values as distributions over the bins.

    The paper's soft encoding (Section 2.1): each value is spread over
    its `num_neighbors` nearest bin centres, each weighted by a Gaussian
    kernel of its distance, `exp(-d^2 / (2 sigma^2))`, normalised to sum
    to 1. A value at a bin centre puts the most weight on that bin.

    Args:
        ab: `(..., 2)` float a and b.
        bins: `(Q, 2)` bin centres (`ab_gamut_bins`).
        num_neighbors: int, how many nearest bins share each value
            (default 5, the paper's; its released code uses 10).
        sigma: number > 0, the kernel's width in ab units (default 5).

    Returns:
        `(..., Q)` distributions, the dtype of `ab`.
    """
    num_bins = int(np.shape(bins)[0])
    check_positive_int("num_neighbors", num_neighbors)
    if num_neighbors > num_bins:
        raise ValueError(
            "Argument `num_neighbors` must be at most the number of bins "
            f"({num_bins}). Received: num_neighbors={num_neighbors}"
        )
    check_positive_number("sigma", sigma)
    squared = _squared_distances(ab, bins)
    negative, indices = ops.top_k(-squared, num_neighbors, sorted=True)
    # The nearest bin's kernel is the largest: subtracting it keeps every
    # exponent <= 0 and the sum >= 1.
    kernel = ops.exp((negative - negative[..., :1]) / (2.0 * sigma**2))
    kernel = kernel / ops.sum(kernel, axis=-1, keepdims=True)
    # One neighbour at a time: a (..., k, Q) one-hot would hold k times
    # the targets' memory.
    targets = 0
    for k in range(num_neighbors):
        targets = targets + kernel[..., k, None] * ops.one_hot(
            indices[..., k], num_bins, dtype=ab.dtype
        )
    return targets


def annealed_mean_ab(logits, bins, temperature=0.38):
    """The paper's annealed mean: one ab value from a distribution.

    `sum_q softmax(logits / T)_q c_q` (the paper's Eq. 5 with the
    predicted distribution `softmax(logits)`: re-normalising
    `exp(log z / T)` is the softmax of `logits / T`). `T = 1` gives the
    mean of the distribution, `T -> 0` its mode; the paper's `T = 0.38`
    keeps the mean's spatial consistency and some of the mode's vivid
    colours.

    Args:
        logits: `(..., Q)` scores of the bins.
        bins: `(Q, 2)` bin centres (`ab_gamut_bins`).
        temperature: number > 0.

    Returns:
        `(..., 2)` a and b, the dtype of `logits`.
    """
    check_positive_number("temperature", temperature)
    weights = ops.softmax(logits / temperature, axis=-1)
    return ops.einsum(
        "...q,qc->...c", weights,
        ops.cast(ops.convert_to_tensor(bins), logits.dtype),
    )


def estimate_ab_prior(dataset, grid_size=10, max_batches=None):
    """The empirical distribution of a dataset's colours over the ab bins.

    Every pixel counts once, for the bin nearest its ab value: the
    paper's prior `p` (Section 2.2), which it measures on ImageNet's
    training set. Pass the result as `ColorizationPretrainer(prior=...)`.

    Args:
        dataset: a `tf.data.Dataset` (or any iterable) of uint8 RGB images
            `(height, width, 3)` or batches of them, or of `(images,
            anything)` tuples; float images are taken to be in `[0, 1]`.
        grid_size: the grid of `ab_gamut_bins` (default 10).
        max_batches: `None` (all) or how many elements to read.

    Returns:
        A float64 NumPy array `(Q,)` that sums to 1.

    Example:

    ```python
    images = keras_selfie.data.load_tfds("cifar10", "train")
    prior = keras_selfie.data.estimate_ab_prior(images.batch(256))
    pretrainer = keras_selfie.ColorizationPretrainer(prior=prior)
    ```
    """
    from keras_selfie.utils.images import scale_images

    bins = ab_gamut_bins(grid_size)
    counts = np.zeros(len(bins))
    for index, element in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        images = element[0] if isinstance(element, (tuple, list)) else element
        images = ops.convert_to_tensor(images)
        nearest = nearest_ab_bins(
            rgb_to_lab(scale_images(images, "float32"))[..., 1:], bins
        )
        counts += np.bincount(
            ops.convert_to_numpy(nearest).ravel(), minlength=len(bins)
        )
    if not counts.sum():
        raise ValueError(
            "Argument `dataset` must hold at least one image. Received an "
            "empty dataset."
        )
    return counts / counts.sum()


# How many of CIFAR-10's 51,200,000 training pixels (50,000 images of 32x32)
# are nearest to each bin of `ab_gamut_bins(10)`: `estimate_ab_prior` of the
# "train" split, in the bins' order.
_CIFAR10_AB_COUNTS = (
    3, 77, 1024, 8, 3, 67, 185, 218, 12, 6, 130, 202, 667, 1184, 1042, 174, 5,
    79, 246, 371, 2236, 2585, 4016, 5238, 2119, 348, 28, 595, 2121, 1773,
    3864, 10836, 22568, 25085, 20533, 7694, 1389, 186, 2, 1547, 5113, 11297,
    15139, 30604, 86112, 154676, 141506, 60917, 16964, 2997, 503, 126, 1454,
    18043, 48857, 86185, 125687, 288166, 553573, 562361, 289723, 84699, 19558,
    5367, 2186, 855, 29075, 149016, 454715, 998158, 1959235, 2180284, 1630702,
    845529, 257765, 69597, 20788, 7525, 2749, 541, 20699, 142562, 486625,
    1129322, 3535645, 13758157, 7369055, 2773310, 830286, 205592, 53469,
    19097, 7626, 3216, 7708, 54697, 136246, 209124, 274774, 543028, 1465262,
    2029139, 1498602, 675687, 190800, 49080, 16499, 5681, 1948, 2244, 14519,
    37117, 40194, 28806, 27121, 55835, 167945, 341130, 335245, 246222, 118310,
    36788, 10810, 4231, 906, 4357, 9259, 8908, 6073, 3655, 5149, 12052, 39583,
    104368, 122314, 79782, 44147, 20303, 8397, 3505, 1300, 2945, 3480, 1821,
    624, 916, 1053, 4150, 12174, 36074, 65175, 55483, 24580, 11343, 4790,
    1876, 356, 950, 1532, 837, 235, 390, 386, 739, 1548, 3834, 11766, 26671,
    35229, 25830, 8994, 2719, 728, 548, 898, 184, 92, 107, 227, 235, 297, 718,
    1076, 2514, 7517, 14350, 16134, 10824, 1857, 219, 289, 180, 10, 26, 147,
    73, 19, 42, 51, 132, 223, 405, 1178, 2484, 4068, 4792, 3420, 122, 0, 0,
    11, 87, 21, 37, 40, 88, 130, 73, 30, 78, 113, 369, 448, 1252, 20, 122, 56,
    8, 7
)
# CIFAR-10's colours over the ab bins of grid size 10: the default prior of
# `ColorizationPretrainer`'s class rebalancing.
CIFAR10_AB_PRIOR_GRID_SIZE = 10
CIFAR10_AB_PRIOR = tuple(
    (np.array(_CIFAR10_AB_COUNTS) / sum(_CIFAR10_AB_COUNTS)).tolist()
)
