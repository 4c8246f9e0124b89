import functools
import itertools
import math

import keras
import numpy as np
from keras import ops

from keras_selfie.data import transforms
from keras_selfie.models.pretrainer import ClassificationPretrainer
from keras_selfie.models.rotation_pretrainer import classification_head
from keras_selfie.utils.distribution import replica_slice_of_global_draw
from keras_selfie.utils.random import seeded_construction
from keras_selfie.utils.random import uniform
from keras_selfie.utils.random import uniform_index
from keras_selfie.utils.validation import check_bool
from keras_selfie.utils.validation import check_int_in_range
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import to_pair

# The paper's permutation set for 3x3 puzzles; fewer tiles may have fewer
# permutations (2x2: 4! = 24).
DEFAULT_NUM_PERMUTATIONS = 100
# The paper's tiles: a 64x64 tile in each 75x75 cell.
PAPER_TILE_TO_CELL = (64, 75)
# Up to 9 tiles (9! = 362,880 permutations) the greedy search scans every
# permutation; beyond, a seeded sample of this many.
MAX_EXHAUSTIVE_TILES = 9
CANDIDATE_SAMPLE = 362_880


@functools.lru_cache(maxsize=8)
def _candidate_permutations(num_tiles, seed):
    dtype = np.min_scalar_type(num_tiles)
    if num_tiles <= MAX_EXHAUSTIVE_TILES:
        # Lexicographic order, so the seed alone decides the search.
        return np.array(
            list(itertools.permutations(range(num_tiles))), dtype=dtype
        )
    noise = np.random.RandomState(seed).random_sample(
        (CANDIDATE_SAMPLE, num_tiles)
    )
    return np.unique(np.argsort(noise, axis=1).astype(dtype), axis=0)


def _hamming_to(columns, permutation):
    # `columns` is `(num_tiles, n)`: one contiguous row per position, much
    # faster to compare than the `(n, num_tiles)` candidates.
    return (columns != permutation[:, None]).sum(axis=0, dtype=np.int32)


@functools.lru_cache(maxsize=8)
def _maximal_hamming_permutations(num_tiles, k, seed):
    candidates = _candidate_permutations(num_tiles, seed)
    # NumPy's legacy `RandomState` stream is frozen (NEP 19): the same seed
    # picks the same first permutation on every NumPy version, so a saved
    # model's set is recomputed identically from its config.
    chosen = [np.random.RandomState(seed).randint(len(candidates))]
    columns = np.ascontiguousarray(candidates.T)
    nearest = _hamming_to(columns, candidates[chosen[0]]).astype(np.int64)
    total = nearest.copy()
    # Largest distance to the nearest chosen permutation first; ties go to
    # the largest total distance to the chosen set (the paper's Algorithm
    # 1 criterion), then to the first in order. A chosen permutation is at
    # distance 0, so it is never picked again.
    tie_scale = num_tiles * k + 1
    min_distance = num_tiles
    for _ in range(k - 1):
        best = int(np.argmax(nearest * tie_scale + total))
        # Its distance to the nearest permutation chosen before it.
        min_distance = min(min_distance, int(nearest[best]))
        chosen.append(best)
        distances = _hamming_to(columns, candidates[best])
        np.minimum(nearest, distances, out=nearest)
        total += distances
    permutations = candidates[chosen].astype(np.int32)
    permutations.setflags(write=False)
    return permutations, min_distance


def check_set_size(name, k, num_tiles, seed=0):
    """Returns `k` if a set of `k` permutations of `num_tiles` tiles can be
    chosen, else raises `ValueError` naming the argument `name`.

    Valid: 2 to `num_tiles!` (to the number of candidate permutations beyond
    9 tiles, `maximal_hamming_permutations`).
    """
    if num_tiles <= MAX_EXHAUSTIVE_TILES:
        limit = math.factorial(num_tiles)
        what = f"the number of permutations of {num_tiles} tiles"
    else:
        limit = len(_candidate_permutations(num_tiles, seed))
        what = f"the number of candidate permutations of {num_tiles} tiles"
    valid = isinstance(k, (int, np.integer)) and not isinstance(k, bool)
    if not valid or not 2 <= k <= limit:
        raise ValueError(
            f"Argument `{name}` must be an integer from 2 to {limit}, {what}. "
            f"Received: {name}={k!r}"
        )
    return k


def maximal_hamming_permutations(num_tiles, k, seed=0):
    """A set of `k` permutations of `num_tiles` tiles far apart.

    A greedy search in the manner of Noroozi and Favaro's (2016) Algorithm
    1: start from a random permutation, then repeatedly add the candidate
    farthest from the set, by the Hamming distance (the number of positions
    at which two permutations differ). Far-apart permutations make puzzles
    that the network can tell apart from a few tiles. The paper's criterion
    is the total (average) distance to the set; here it only breaks ties,
    and the first criterion is the distance to the nearest permutation of
    the set (max-min, a documented choice): the total alone can add a
    permutation close to one already chosen, the max-min search keeps the
    set's smallest distance large (6 for 9 tiles and `k=100`).
    Remaining ties go to the first candidate in lexicographic order, so the
    set is a function of `(num_tiles, k, seed)` alone.

    Up to 9 tiles every permutation is a candidate (9! = 362,880). NumPy
    keeps each candidate's distance to its nearest chosen permutation and
    updates it in one vectorised pass per added permutation (about 0.5 s
    for 9 tiles and `k=100`, most of it listing the permutations; sets are
    cached).
    Beyond 9 tiles the candidates are 362,880 random permutations drawn
    from `seed`.

    Args:
        num_tiles: int >= 2, the number of tiles of a puzzle.
        k: int, the size of the set: at least 2 and at most
            `num_tiles!`.
        seed: int in `[0, 2**32)`, of the first permutation (and of the
            candidates beyond 9 tiles).

    Returns:
        `(permutations, min_distance)`: a read-only int32 array `(k,
        num_tiles)` whose rows are permutations of `0 ... num_tiles - 1`,
        and the smallest Hamming distance between two of them.

    Example:

    ```python
    permutations, min_distance = maximal_hamming_permutations(9, 100)
    # permutations.shape == (100, 9); min_distance == 6
    ```
    """
    num_tiles = check_int_in_range("num_tiles", num_tiles, 2)
    seed = check_int_in_range("seed", seed, 0, 2**32)
    k = check_set_size("k", k, num_tiles, seed)
    return _maximal_hamming_permutations(int(num_tiles), int(k), int(seed))


@keras.saving.register_keras_serializable(package="keras_selfie")
class JigsawPretrainer(ClassificationPretrainer):
    """Jigsaw puzzles (Noroozi and Favaro, 2016).

    Each image is cut into a grid of tiles, the tiles are shuffled by one of
    `K` fixed permutations, and the network says which: to reorder the
    tiles it must recognise object parts and how they fit together.

    The grid (`grid_size` cells of `cell_size` pixels) sits at a random
    position in the image (the paper's random 225x225 crop), and each cell
    holds one smaller tile (`tile_size` pixels) at a random offset (the
    paper's random 64x64 tile in each 75x75 cell): the random gap between
    tiles keeps the network from matching edges and lines across them.
    Every tile is then normalised to zero mean and unit standard deviation
    per channel (`normalize_tiles`), against shortcuts through brightness,
    contrast and colour.

    For each image one of the `K` permutations is drawn at random; its index
    is the label. All `batch_size * num_tiles` shuffled tiles go through
    the backbone `P` in one call (as the paper's siamese network, with
    shared weights), their pooled features are concatenated in the shuffled
    order (`num_tiles * d` per image), and a classifier with one hidden
    layer says which permutation it was. The paper's head is fc6 (1024
    units per tile), fc7 (4096 units on the concatenation) and fc8 (`K`);
    here `P`'s pooled features stand for fc6, the hidden layer is smaller
    (`head_hidden_dim`) and batch-normalised (`head_batch_norm`): the
    concatenated features are all positive and differ little between
    tiles, and without centring the short CIFAR-10 runs stay at chance.

    The permutations (`self.permutations`, `K` rows of `num_tiles` tile
    indices) are chosen by maximal Hamming distance from
    `permutation_seed` (`maximal_hamming_permutations`) and recomputed
    identically from the config when a saved model is loaded.
    `self.permutation_min_distance` is the smallest Hamming distance
    between two of them. Permutation `p` puts tile `p[i]` (grid row-major)
    at position `i`.

    `call` returns `"logits"` `(batch_size, K)`, `"labels"`
    `(batch_size,)` (indices into `self.permutations`) and
    `"tile_offsets"` `(batch_size, num_tiles, 2)`, the top-left `(row,
    col)` of each tile in its image, in grid order. Chance is `1 / K`.

    Args:
        grid_size: int or `(rows, cols)`, the grid of tiles; at least 2x2.
            Defaults to 3, the paper's 3x3.
        cell_size: int or `None`: the side of a grid cell in pixels; `None`
            for the largest cells the image holds (`min(height // rows,
            width // cols)`: 10 for 32x32 images and a 3x3 grid).
        tile_size: int or `None`: the side of a tile, at most `cell_size`;
            `None` for the paper's ratio, 64 pixels in 75
            (`cell_size * 64 // 75`: 8 in 10-pixel cells, so each tile
            moves by 0 to 2 pixels in its cell and neighbouring tiles are 0
            to 4 pixels apart; 64 in 75-pixel cells).
        num_permutations: int or `None`: `K`, the number of permutations
            to tell apart; at most `num_tiles!`. `None` for the paper's
            100 (of its experiments with 100 to 1000), or all permutations
            when a grid has fewer (24 for 2x2).
        permutation_seed: int in `[0, 2**32)`, the seed of the permutation
            set (its first permutation). Defaults to 0.
        normalize_tiles: bool, whether each tile is normalised on its own
            statistics. Defaults to `True`, as in the paper.
        head_hidden_dim: `None` (a linear classifier) or an int, the width
            of the hidden ReLU layer on the concatenated features (the
            paper's fc7). Defaults to 512, a choice: the paper's 4096 units
            classify 1000 permutations from 9 x 1024 features.
        head_batch_norm: bool, whether the hidden layer is a dense layer
            without bias, batch normalisation and ReLU (synchronized over
            replicas with `synchronized_batch_norm`) rather than a dense
            ReLU layer. Defaults to `True`, a choice (the paper's fc7 has
            none): 40 steps on CIFAR-10 reach 0.29 to 0.36 on 2x2 puzzles
            of 10 permutations with it, chance without.
        backbone: `None` or a `keras.Model` from images to `(batch, d)`
            features, used as `P` on the tiles.
        **kwargs: the arguments of `Pretrainer`: `image_size`,
            `num_channels`, `stem`, `width`, `synchronized_batch_norm` and
            `seed` (of the initialisation and the random draws), and
            `keras.Model`'s (`name`, `dtype`).

    Example:

    ```python
    pretrainer = keras_selfie.methods.get("jigsaw")(width=0.25)
    pretrainer.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    pretrainer.fit(unlabeled_images, epochs=10)
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    ```

    Reference:
     - [Noroozi and Favaro, 2016](https://arxiv.org/abs/1603.09246)
    """

    def __init__(
        self,
        grid_size=3,
        cell_size=None,
        tile_size=None,
        num_permutations=None,
        permutation_seed=0,
        normalize_tiles=True,
        head_hidden_dim=512,
        head_batch_norm=True,
        backbone=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.grid_size = to_pair("grid_size", grid_size)
        if min(self.grid_size) < 2:
            raise ValueError(
                "Argument `grid_size` must have at least 2 rows and 2 "
                f"columns (a puzzle of 2x2 tiles or more). Received: "
                f"grid_size={grid_size!r}"
            )
        rows, cols = self.grid_size
        height, width = self.image_size
        if cell_size is None:
            cell_size = min(height // rows, width // cols)
            if cell_size < 1:
                raise ValueError(
                    f"Argument `image_size` must hold a grid of {rows}x"
                    f"{cols} cells of at least 1 pixel. Received: "
                    f"image_size={self.image_size}, grid_size="
                    f"{self.grid_size}"
                )
        self.cell_size = check_positive_int("cell_size", cell_size)
        if tile_size is None:
            ratio, cell = PAPER_TILE_TO_CELL
            tile_size = max(1, self.cell_size * ratio // cell)
        self.tile_size = check_positive_int("tile_size", tile_size)
        if self.tile_size > self.cell_size:
            raise ValueError(
                "Argument `tile_size` must be at most `cell_size` (each "
                f"cell holds one tile). Received: tile_size={tile_size}, "
                f"cell_size={self.cell_size}"
            )
        if rows * self.cell_size > height or cols * self.cell_size > width:
            raise ValueError(
                f"Argument `image_size` must hold the grid of {rows}x{cols} "
                f"cells of {self.cell_size} pixels "
                f"({rows * self.cell_size}x{cols * self.cell_size}). "
                f"Received: image_size={self.image_size}, grid_size="
                f"{self.grid_size}, cell_size={self.cell_size}"
            )
        self.num_tiles = rows * cols
        if num_permutations is None:
            num_permutations = min(
                DEFAULT_NUM_PERMUTATIONS, math.factorial(self.num_tiles)
            )
        self.permutation_seed = check_int_in_range(
            "permutation_seed", permutation_seed, 0, 2**32
        )
        self.num_permutations = check_set_size(
            "num_permutations", num_permutations, self.num_tiles,
            self.permutation_seed,
        )
        self.normalize_tiles = check_bool("normalize_tiles", normalize_tiles)
        if head_hidden_dim is not None:
            head_hidden_dim = check_positive_int(
                "head_hidden_dim", head_hidden_dim
            )
        self.head_hidden_dim = head_hidden_dim
        self.head_batch_norm = check_bool("head_batch_norm", head_batch_norm)
        self.permutations, self.permutation_min_distance = (
            maximal_hamming_permutations(
                self.num_tiles, num_permutations, self.permutation_seed
            )
        )
        self.num_classes = num_permutations
        self.seed_generator = keras.random.SeedGenerator(
            self.seed, name="jigsaw_seed_generator"
        )
        with seeded_construction(self.seed):
            self.patch_network = self.make_backbone(backbone)
            self.head = classification_head(
                self.num_classes,
                head_hidden_dim,
                self.dtype_policy,
                batch_norm=self.head_batch_norm,
                synchronized=self.synchronized_batch_norm,
            )
            self.build((None, *self.image_size, self.num_channels))

    def build(self, input_shape=None):
        self.head.build((None, self.num_tiles * self.feature_dim))
        self.built = True

    def sample_puzzles(self, batch_size):
        """Draws a permutation and a tile layout for each image.

        Args:
            batch_size: number of images (an int or a scalar tensor).

        Returns:
            `(labels, tile_offsets)`: int32 `(batch_size,)` indices into
            `self.permutations`, and int32 `(batch_size, num_tiles, 2)`,
            the top-left `(row, col)` of each tile in grid (row-major)
            order: a random grid position in the image plus a random
            offset of each tile in its cell.
        """
        rows, cols = self.grid_size
        spare = self.cell_size - self.tile_size + 1
        counts = np.array(
            [self.num_classes,
             self.image_size[0] - rows * self.cell_size + 1,
             self.image_size[1] - cols * self.cell_size + 1]
            + [spare] * (2 * self.num_tiles),
            dtype="int32",
        )
        draws = uniform_index(
            replica_slice_of_global_draw(
                lambda size: uniform((size, len(counts)), self.seed_generator),
                batch_size,
            ),
            counts,
        )
        offsets = transforms.jittered_grid_offsets(
            draws[:, 1:3],
            ops.reshape(draws[:, 3:], (-1, self.num_tiles, 2)),
            self.grid_size,
            self.cell_size,
        )
        return draws[:, 0], offsets

    def call(self, images, training=None):
        images = self.preprocess(images)
        labels, offsets = self.sample_puzzles(ops.shape(images)[0])
        tiles = transforms.extract_tiles(images, offsets, self.tile_size)
        if self.normalize_tiles:
            tiles = transforms.normalize_tiles(tiles)
        order = ops.take(
            ops.convert_to_tensor(self.permutations, "int32"), labels, axis=0
        )
        tiles = transforms.permute_tiles(tiles, order)
        features = self.patch_network(
            ops.reshape(tiles, (-1, *tiles.shape[2:])), training=training
        )
        # Each image's tile features side by side, in the shuffled order.
        features = ops.reshape(
            features, (-1, self.num_tiles * features.shape[-1])
        )
        logits = ops.cast(self.head(features), "float32")
        return {"logits": logits, "labels": labels, "tile_offsets": offsets}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "grid_size": self.grid_size,
                "cell_size": self.cell_size,
                "tile_size": self.tile_size,
                "num_permutations": self.num_permutations,
                "permutation_seed": self.permutation_seed,
                "normalize_tiles": self.normalize_tiles,
                "head_hidden_dim": self.head_hidden_dim,
                "head_batch_norm": self.head_batch_norm,
            }
        )
        return config
