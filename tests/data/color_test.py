"""sRGB <-> CIELAB and the quantised ab space, against known values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_selfie.data import color


def _np(x):
    return keras.ops.convert_to_numpy(x)


# Pure colours and their CIELAB (D65) values, as colour calculators give
# them (e.g. Bruce Lindbloom's, with sRGB and D65).
KNOWN = [
    ((1, 0, 0), (53.24, 80.09, 67.20)),
    ((0, 1, 0), (87.73, -86.18, 83.18)),
    ((0, 0, 1), (32.30, 79.19, -107.86)),
    ((1, 1, 0), (97.14, -21.55, 94.48)),
    ((1, 1, 1), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((0.5, 0.5, 0.5), (53.39, 0.0, 0.0)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pure_colours_have_their_known_lab_values(dtype):
    rgb = np.array([c for c, _ in KNOWN], dtype)
    lab = _np(color.rgb_to_lab(rgb))
    assert lab.dtype == dtype
    np.testing.assert_allclose(lab, [v for _, v in KNOWN], atol=0.05)
    np.testing.assert_allclose(
        _np(color.lab_to_rgb(np.array([v for _, v in KNOWN], dtype))), rgb,
        atol=2e-3,  # the known values have 2 decimals
    )


def test_round_trip_eager_and_under_xla():
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3))
    images = images.astype("float32")
    # The darkest values, on the linear part of the gamma curve, too.
    images[0, 0] = [0.0, 0.01, 0.04]

    def round_trip(x):
        return color.lab_to_rgb(color.rgb_to_lab(x))

    np.testing.assert_allclose(_np(round_trip(images)), images, atol=1e-4)
    xla = _np(tf.function(round_trip, jit_compile=True)(images))
    np.testing.assert_allclose(xla, images, atol=1e-4)
    images64 = images.astype("float64")
    np.testing.assert_allclose(_np(round_trip(images64)), images64,
                               atol=1e-6)


def test_the_gamut_bins_are_stable_and_in_gamut():
    bins = color.ab_gamut_bins(10)
    assert bins.shape == (229, 2)
    # Multiples of 10, none twice, sorted by a then b.
    np.testing.assert_array_equal(bins % 10, 0)
    assert len({tuple(b) for b in bins}) == 229
    assert [tuple(b) for b in bins] == sorted(tuple(b) for b in bins)
    # A search of L twice as fine finds the same bins.
    np.testing.assert_array_equal(color._gamut_bins(10.0, 2001)[0], bins)
    # Each centre, at its stated lightness, is an sRGB colour.
    lightness = color.ab_bin_lightness(10)
    rgb = _np(color.lab_to_rgb(np.concatenate(
        [lightness[:, None], bins], axis=-1
    )))
    assert np.all((rgb >= -1e-9) & (rgb <= 1 + 1e-9))
    # Grey and the bins nearest the pure colours are in; far corners are
    # not, nor the centre of red's own cell, (80, 70): red (80.09, 67.20)
    # sits at a corner of the gamut.
    members = {tuple(b) for b in bins}
    assert {(0, 0), (80, 60), (-80, 80), (80, -100)} <= members
    assert not {(100, 100), (-100, -100), (80, 70)} & members
    # A coarser grid has fewer bins.
    assert len(color.ab_gamut_bins(20)) < 229


def test_soft_encoding_at_a_centre_and_between_centres():
    bins = color.ab_gamut_bins(10)
    index = {tuple(b): i for i, b in enumerate(bins)}
    ab = np.array([[0.0, 0.0], [30.0, -40.0], [33.0, -40.0]], "float32")
    targets = _np(color.soft_encode_ab(ab, bins))
    assert targets.shape == (3, 229)
    np.testing.assert_allclose(targets.sum(axis=-1), 1, rtol=1e-6)
    assert np.all((targets > 0).sum(axis=-1) == 5)
    # At a centre: that bin and its 4 neighbours at distance 10, each
    # weighted exp(-100 / 50) relative to it.
    centre = 1 / (1 + 4 * np.exp(-2))
    assert targets[1, index[(30, -40)]] == pytest.approx(centre, rel=1e-5)
    for neighbour in [(20, -40), (40, -40), (30, -50), (30, -30)]:
        assert targets[1, index[neighbour]] == pytest.approx(
            centre * np.exp(-2), rel=1e-5
        )
    assert np.argmax(targets[0]) == index[(0, 0)]
    # Between centres: the 5 nearest, by a Gaussian of their distance.
    distances = np.sum((bins - [33, -40]) ** 2, axis=-1)
    nearest = np.argsort(distances)[:5]
    expected = np.exp(-distances[nearest] / 50)
    np.testing.assert_allclose(targets[2, nearest],
                               expected / expected.sum(), rtol=1e-5)
    assert np.argmax(targets[2]) == index[(30, -40)]
    np.testing.assert_array_equal(
        _np(color.nearest_ab_bins(ab, bins)),
        [index[(0, 0)], index[(30, -40)], index[(30, -40)]],
    )
    with pytest.raises(ValueError, match="`num_neighbors`.*at most"):
        color.soft_encode_ab(ab, bins, num_neighbors=230)


def test_annealed_mean_goes_from_the_mean_to_the_mode():
    bins = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]])
    probabilities = np.array([[0.5, 0.3, 0.2]])
    logits = np.log(probabilities) + 7.0  # shifts change nothing
    mean = _np(color.annealed_mean_ab(logits, bins, temperature=1.0))
    np.testing.assert_allclose(mean, probabilities @ bins, rtol=1e-6)
    annealed = probabilities ** (1 / 0.38)
    annealed /= annealed.sum()
    np.testing.assert_allclose(
        _np(color.annealed_mean_ab(logits, bins)), annealed @ bins,
        rtol=1e-6,
    )
    mode = _np(color.annealed_mean_ab(logits, bins, temperature=0.01))
    np.testing.assert_allclose(mode, [[0.0, 0.0]], atol=1e-6)
    with pytest.raises(ValueError, match="`temperature`"):
        color.annealed_mean_ab(logits, bins, temperature=0)


def test_estimate_ab_prior_counts_pixels_by_nearest_bin():
    bins = color.ab_gamut_bins(10)
    index = {tuple(b): i for i, b in enumerate(bins)}
    # 3 grey pixels and 1 red one per image, batches and pairs alike.
    image = np.full((2, 2, 3), 128, np.uint8)
    image[0, 0] = [255, 0, 0]
    batches = [np.stack([image, image]), (image[None], "label")]
    prior = color.estimate_ab_prior(batches)
    assert prior.shape == (229,)
    assert prior[index[(0, 0)]] == pytest.approx(0.75)
    red = np.argmin(np.sum((bins - [80.09, 67.20]) ** 2, axis=-1))
    assert tuple(bins[red]) == (80, 60)
    assert prior[red] == pytest.approx(0.25)
    assert color.estimate_ab_prior(batches, max_batches=1).sum() == 1
    with pytest.raises(ValueError, match="`dataset`"):
        color.estimate_ab_prior([])


def test_cifar10_prior_is_what_estimate_ab_prior_measures(tfds_data_dir):
    from keras_selfie import data

    assert color.CIFAR10_AB_PRIOR_GRID_SIZE == 10
    prior = np.asarray(color.CIFAR10_AB_PRIOR)
    assert prior.shape == (229,)
    assert prior.sum() == pytest.approx(1, abs=1e-6)
    # The first 256 training images' colours are distributed alike.
    sample = color.estimate_ab_prior(
        data.load_tfds("cifar10", "train[:256]", data_dir=tfds_data_dir)
        .batch(128)
    )
    assert 0.5 * np.abs(sample - prior).sum() < 0.1
