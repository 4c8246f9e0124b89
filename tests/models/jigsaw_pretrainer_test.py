"""JigsawPretrainer: tiles, permutations and labels, on made inputs."""

import itertools
import math

import keras
import numpy as np
import pytest

import keras_selfie
from conftest import TINY_BACKBONE
from conftest import backbone_inputs
from keras_selfie.data import transforms
from keras_selfie.models.jigsaw_pretrainer import maximal_hamming_permutations
from keras_selfie.utils.random import uniform_index

BACKBONE = TINY_BACKBONE
# Few permutations and a small head: the layout and the draws are those of
# the defaults, the model builds fast.
SMALL = {**BACKBONE, "num_permutations": 10, "head_hidden_dim": 16}


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def model():
    """The default layout on the tiny backbone, tiles not normalised (so
    that the tests can compare them with the image's pixels)."""
    return keras_selfie.JigsawPretrainer(
        **SMALL, normalize_tiles=False, permutation_seed=1, seed=0
    )


def _small_backbone():
    """A backbone that builds fast, for the tests of the arguments."""
    inputs = keras.Input((None, None, 3))
    features = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(4)(features))


def _min_hamming(permutations):
    """The smallest Hamming distance between two rows, pair by pair."""
    return min(
        int(np.sum(a != b))
        for a, b in itertools.combinations(np.asarray(permutations), 2)
    )


def test_uniform_index_stays_below_count():
    values = np.array([[0.0, 0.5, 1 - 2**-24]], "float32")
    np.testing.assert_array_equal(
        _np(uniform_index(values, [3, 3, 3])), [[0, 1, 2]]
    )
    np.testing.assert_array_equal(_np(uniform_index(values, 1)), [[0, 0, 0]])


def test_extract_tiles_copies_the_pixels_at_the_offsets():
    images = np.random.default_rng(0).uniform(size=(2, 12, 10, 3))
    offsets = np.array([[[0, 0], [9, 7], [4, 2]], [[1, 6], [0, 0], [5, 5]]])
    tiles = _np(transforms.extract_tiles(images, offsets, 3))
    assert tiles.shape == (2, 3, 3, 3, 3)
    for b, t in np.ndindex(2, 3):
        r, c = offsets[b, t]
        np.testing.assert_array_equal(
            tiles[b, t], images[b, r:r + 3, c:c + 3]
        )
    with pytest.raises(ValueError, match="tile_size=11"):
        transforms.extract_tiles(images, offsets, 11)


def test_a_permutation_and_its_inverse_give_the_tiles_back():
    tiles = np.random.default_rng(1).uniform(size=(3, 9, 4, 4, 3))
    permutations = np.stack(
        [np.random.default_rng(s).permutation(9) for s in range(3)]
    )
    shuffled = _np(transforms.permute_tiles(tiles, permutations))
    for b in range(3):
        # Position i holds tile permutations[b, i].
        np.testing.assert_array_equal(shuffled[b], tiles[b][permutations[b]])
    restored = _np(
        transforms.permute_tiles(shuffled, np.argsort(permutations, axis=1))
    )
    np.testing.assert_array_equal(restored, tiles)


def test_normalize_tiles_per_tile_and_channel():
    rng = np.random.default_rng(2)
    tiles = rng.uniform(size=(2, 9, 5, 5, 3)) * 3.0 + 7.0
    tiles[0, 4, :, :, 1] = 0.25  # a flat channel: centred only
    normalized = _np(transforms.normalize_tiles(tiles))
    mean = normalized.mean(axis=(2, 3))
    std = normalized.std(axis=(2, 3))
    np.testing.assert_allclose(mean, 0.0, atol=1e-6)
    std[0, 4, 1] = 1.0
    np.testing.assert_allclose(std, 1.0, rtol=1e-5)
    np.testing.assert_array_equal(normalized[0, 4, :, :, 1], 0.0)
    half = _np(transforms.normalize_tiles(tiles.astype("float16")))
    assert half.dtype == np.float16


def test_jittered_grid_offsets():
    origins = np.array([[1, 2]])
    jitter = np.arange(8).reshape(1, 4, 2) % 3
    offsets = _np(transforms.jittered_grid_offsets(origins, jitter, (2, 2), 10))
    expected = [[1, 2], [1, 12], [11, 2], [11, 12]] + jitter[0]
    np.testing.assert_array_equal(offsets[0], expected)


@pytest.mark.parametrize("num_tiles, k", [(4, 24), (6, 30), (9, 100)])
def test_permutation_set_has_the_claimed_minimum_distance(num_tiles, k):
    permutations, min_distance = maximal_hamming_permutations(num_tiles, k)
    assert permutations.shape == (k, num_tiles)
    assert permutations.dtype == np.int32
    # Every row a permutation, no two alike.
    np.testing.assert_array_equal(
        np.sort(permutations, axis=1), np.tile(np.arange(num_tiles), (k, 1))
    )
    assert len({tuple(row) for row in permutations}) == k
    assert min_distance == _min_hamming(permutations)
    # Greedy max-min: far above what random sets reach (9 tiles, 100
    # permutations: 6, where 100 random permutations come within 2 or 3).
    if num_tiles == 9:
        assert min_distance == 6
        rng = np.random.default_rng(0)
        random_set = np.stack([rng.permutation(9) for _ in range(k)])
        assert _min_hamming(random_set) < min_distance


def test_permutation_set_follows_its_seed(model):
    first, _ = maximal_hamming_permutations(9, 20, seed=0)
    again, _ = maximal_hamming_permutations(9, 20, seed=0)
    other, _ = maximal_hamming_permutations(9, 20, seed=1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # The model's set is the function's, from `permutation_seed`.
    np.testing.assert_array_equal(
        model.permutations, maximal_hamming_permutations(9, 10, seed=1)[0]
    )


def test_the_tiles_p_sees_are_the_images_tiles_in_permuted_order(model):
    images = np.random.default_rng(3).integers(
        0, 256, (4, 32, 32, 3), dtype=np.uint8
    )
    tiles, outputs = backbone_inputs(model, images)
    labels = _np(outputs["labels"])
    offsets = _np(outputs["tile_offsets"])
    assert _np(outputs["logits"]).shape == (4, 10)
    assert tiles.shape == (4 * 9, 8, 8, 3)
    tiles = tiles.reshape(4, 9, 8, 8, 3)
    scaled = images.astype("float32") / 255.0
    for b in range(4):
        grid = np.stack(
            [scaled[b, r:r + 8, c:c + 8] for r, c in offsets[b]]
        )
        permutation = model.permutations[labels[b]]
        np.testing.assert_array_equal(tiles[b], grid[permutation])
        # The inverse permutation reassembles the puzzle.
        np.testing.assert_array_equal(
            tiles[b][np.argsort(permutation)], grid
        )


def test_tiles_stay_in_their_cells_with_every_jitter(model):
    labels, offsets = model.sample_puzzles(2000)
    labels, offsets = _np(labels), _np(offsets)
    assert labels.min() == 0 and labels.max() == 9
    cells = np.array([[r, c] for r in range(3) for c in range(3)]) * 10
    # The grid (30x30 of a 32x32 image) starts at 0, 1 or 2 per axis; each
    # tile at 0, 1 or 2 pixels into its 10x10 cell.
    inside = offsets - cells
    assert inside.min() == 0 and inside.max() == 4
    for b in range(len(offsets)):
        # A grid origin that puts every tile within its cell.
        candidates = [
            origin for origin in itertools.product(range(3), repeat=2)
            if np.all((inside[b] >= origin) & (inside[b] <= np.add(origin, 2)))
        ]
        assert candidates, offsets[b]
    # Neighbours in a row are 0 to 4 pixels apart (the random gap), never
    # overlapping, and every value occurs.
    gaps = np.diff(offsets.reshape(-1, 3, 3, 2)[..., 1], axis=2) - 8
    assert sorted(np.unique(gaps)) == [0, 1, 2, 3, 4]
    assert offsets.max() + 8 <= 32


def test_the_draws_follow_the_random_state(model):
    images = np.zeros((6, 32, 32, 3), "uint8")
    state = model.seed_generator.state.numpy()
    first = model(images)
    model.seed_generator.state.assign(state)
    again = model(images)
    for key in ("labels", "tile_offsets"):
        np.testing.assert_array_equal(_np(again[key]), _np(first[key]))
    # The next draw differs.
    assert not np.array_equal(_np(model(images)["labels"]),
                              _np(first["labels"]))
    # Another seed, other draws.
    other = keras_selfie.JigsawPretrainer(
        **SMALL, backbone=_small_backbone(), seed=1
    )
    assert not np.array_equal(_np(other(images)["labels"]),
                              _np(first["labels"]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grid_size": 1}, "at least 2 rows and 2 columns.*grid_size=1"),
        ({"grid_size": (1, 3)}, "grid_size=\\(1, 3\\)"),
        ({"cell_size": 10, "tile_size": 11},
         "tile_size.*at most `cell_size`.*tile_size=11, cell_size=10"),
        ({"cell_size": 11}, "image_size.*hold the grid.*cell_size=11"),
        ({"grid_size": 4, "cell_size": 9}, "image_size.*36x36"),
        ({"image_size": 2, "stem": "cifar"}, "image_size=\\(2, 2\\)"),
        ({"num_permutations": 25, "grid_size": 2},
         "num_permutations.*from 2 to 24.*4 tiles.*num_permutations=25"),
        ({"num_permutations": 1}, "num_permutations=1"),
        ({"num_permutations": 362881}, "to 362880.*num_permutations=362881"),
        ({"permutation_seed": -1}, "permutation_seed=-1"),
        ({"normalize_tiles": "yes"}, "normalize_tiles='yes'"),
        ({"head_hidden_dim": 0}, "head_hidden_dim=0"),
        ({"head_batch_norm": 1}, "head_batch_norm=1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_selfie.JigsawPretrainer(**{**BACKBONE, **kwargs})


def test_bad_arguments_of_the_permutation_set():
    with pytest.raises(ValueError, match="k=7.*|from 2 to 6.*k=7"):
        maximal_hamming_permutations(3, 7)
    with pytest.raises(ValueError, match="num_tiles=1"):
        maximal_hamming_permutations(1, 2)


def test_defaults_fit_32x32_images_and_small_grids():
    model = keras_selfie.JigsawPretrainer(
        **BACKBONE, backbone=_small_backbone(), seed=0
    )
    assert (model.cell_size, model.tile_size) == (10, 8)
    assert model.num_permutations == model.num_classes == 100
    assert model.permutations.shape == (100, 9)
    assert model.permutation_min_distance == 6
    assert model.chance_accuracy() == 0.01
    # The hidden layer: dense without bias, batch normalisation, ReLU.
    assert [w.shape for w in model.head.weights] == [
        (9 * 4, 512), (512,), (512,), (512,), (512,), (512, 100), (100,)
    ]
    # The paper's layout from its 225x225 crop: 75x75 cells, 64x64 tiles.
    paper = keras_selfie.JigsawPretrainer(
        image_size=225, num_permutations=10, backbone=_small_backbone()
    )
    assert (paper.cell_size, paper.tile_size) == (75, 64)
    # A 2x2 puzzle has 4! = 24 permutations: all of them by default.
    small = keras_selfie.JigsawPretrainer(
        **BACKBONE, grid_size=2, backbone=_small_backbone()
    )
    assert (small.cell_size, small.tile_size, small.num_permutations) == (
        16, 13, math.factorial(4)
    )


def test_config_round_trip():
    model = keras_selfie.JigsawPretrainer(
        **BACKBONE, grid_size=(2, 3), num_permutations=12,
        permutation_seed=3, normalize_tiles=False, head_hidden_dim=16,
        head_batch_norm=False, seed=2, backbone=_small_backbone(),
    )
    config = model.get_config()
    clone = keras_selfie.JigsawPretrainer.from_config(config)
    # The backbone's own round trip is the base class's (saving_test).
    config.pop("backbone")
    cloned = clone.get_config()
    assert cloned.pop("backbone")["class_name"] == "Functional"
    assert cloned == config
    assert config["grid_size"] == (2, 3)
    assert (config["cell_size"], config["tile_size"]) == (10, 8)
    np.testing.assert_array_equal(clone.permutations, model.permutations)
    assert [w.shape for w in clone.head.weights] == [
        (6 * 4, 16), (16,), (16, 12), (12,)
    ]
    assert keras_selfie.methods.get("jigsaw") is keras_selfie.JigsawPretrainer


def test_the_random_state_is_saved_with_the_weights(model, tmp_path):
    images = np.zeros((3, 32, 32, 3), "uint8")
    path = str(tmp_path / "jigsaw.weights.h5")
    model.save_weights(path)
    expected = _np(model(images)["labels"])
    model.load_weights(path)
    np.testing.assert_array_equal(_np(model(images)["labels"]), expected)
    # Files without the state (saved before it was kept) still load.
    model.load_own_variables({})
