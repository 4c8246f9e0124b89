import math

import keras
from keras import ops

from keras_selfie.data.transforms import NEIGHBOR_OFFSETS
from keras_selfie.data.transforms import drop_colors
from keras_selfie.data.transforms import extract_tiles
from keras_selfie.data.transforms import neighbor_pair_corners
from keras_selfie.data.transforms import project_out_green_magenta
from keras_selfie.models.pretrainer import ClassificationPretrainer
from keras_selfie.models.rotation_pretrainer import classification_head
from keras_selfie.utils.distribution import replica_slice_of_global_draw
from keras_selfie.utils.random import normal
from keras_selfie.utils.random import seeded_construction
from keras_selfie.utils.random import uniform
from keras_selfie.utils.random import uniform_index
from keras_selfie.utils.validation import check_bool
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int

# What `color_guard` accepts: no guard, colour dropping, colour projection.
COLOR_GUARDS = (None, "drop", "project")


@keras.saving.register_keras_serializable(package="keras_selfie")
class RelativePatchLocationPretrainer(ClassificationPretrainer):
    """Relative patch location, or context prediction (Doersch, Gupta,
    Efros, 2015).

    From each image the task takes a centre patch and one of its 8
    neighbours in a 3x3 layout of patches, separated by a gap and each
    moved by a small random jitter, and asks which of the 8 positions the
    neighbour came from. To tell, `P` must recognise the objects and parts
    the patches show and how they are usually arranged.

    Both patches of every pair go through the backbone `P` in one batched
    call; their pooled features, concatenated in the order centre then
    neighbour, go to a classifier of the 8 positions (the paper's towers
    share their weights and join in fully connected layers, `fc7` and
    `fc8` of 4096 units, before the 8-way `fc9`).

    The layout (the paper: 96-pixel patches, a gap of 48 pixels, a jitter
    of up to 7 pixels, on images of 150,000-450,000 pixels) is scaled to
    32x32 images: 8-pixel patches, 2 pixels apart, moved by up to 1 pixel,
    so that the layout with its jitter margin takes `3 * 8 + 2 * 2 + 2 * 1
    = 30` pixels and may be placed at 3 positions on each axis. The
    paper's ratios (gap = patch / 2) would not fit: `3 * 8 + 2 * 4 = 32`
    leaves no room for jitter. The gap between the two patches of a pair is
    0-4 pixels (2 on average) along the axis they are separated on; the
    paper's gap keeps low-level cues (lines and textures running from one
    patch into the other) from giving the answer away, and `jitter` keeps
    the patches from lining up exactly.

    Where the paper samples the first patch uniformly and then a neighbour
    that fits, the whole 3x3 layout is placed at a uniform position here:
    the centre's position in the image is then the same for every label,
    so it cannot hint at which neighbour was taken (a centre by the top
    edge could only have neighbours below it). The paper's other guard,
    downsampling some patches to as few as 100 pixels and back, is left
    out: 8x8 patches have only 64.

    Chromatic aberration (lenses shift green against magenta towards the
    edges of a photo) lets a network tell where a patch lies in the image
    from its colour fringes alone, which gives away the relative position
    of two patches without learning anything about objects. The paper
    guards against it by colour projection (each pixel loses its
    component along the green-magenta axis `(-1, 2, -1)`) or by colour
    dropping (each patch keeps one random colour channel; the other two are
    replaced with Gaussian noise). It found both to work about equally
    well and reports detection results for both. The guard applies to the
    patches in training and inference alike: it defines the task's input.

    `call` returns `"logits"` `(n, 8)` and `"labels"` `(n,)`: label `k` is
    the neighbour at `NEIGHBOR_OFFSETS[k]` (rows, columns) from the centre,
    row by row: `0 1 2 / 3 . 4 / 5 6 7`. With `all_neighbors=False`, `n`
    is the batch size, and image `i` gives pair `i` with a random
    neighbour; with `all_neighbors=True`, `n = 8 * batch_size`, and rows `k
    * batch_size ... (k + 1) * batch_size - 1` are the images' pairs with
    neighbour `k`. Chance is 1/8.

    Args:
        patch_size: int, default 8. The side of the square patches, in
            pixels (the paper's 96 scaled to 32x32 images).
        gap: int, default 2. The pixels between neighbouring cells of the
            layout before jitter (the paper's 48 scaled to what fits).
        jitter: int, default 1. The most each patch moves from its cell on
            each axis, a uniform integer in `[-jitter, jitter]` (the
            paper's up to 7 pixels, about 7% of the patch). At most `gap /
            2`, so that the two patches never overlap.
        color_guard: `None`, `"drop"` or `"project"` (the default). The
            paper's guard against chromatic aberration: none, colour
            dropping or colour projection. Projection is the default: it
            is deterministic (no draws), keeps two of the three colour
            dimensions, so that `P` learns from the colours the downstream
            images have, and it is the guard of the paper's headline
            detection result; colour dropping trains `P` on one channel
            and noise, which is further from the full-colour images it is
            evaluated on. Projection needs 3 (RGB) channels.
        drop_noise_std: float, default 0.01. With `color_guard="drop"`,
            the standard deviation of the noise in the dropped channels, as
            a fraction of the kept channel's standard deviation over the
            patch (the paper's "~1/100"); the noise is centred on 0.
        all_neighbors: bool, default `False`. Whether every image gives
            all 8 pairs (8 times the patches per step, each pair with its
            own layout position and jitter) instead of one with a random
            neighbour (the paper samples one pair per patch location it
            draws).
        head_hidden_dim: `None` or an int, default 512. The width of the
            classifier's ReLU hidden layer on the concatenated pair of
            features; `None` for a linear classifier. A linear classifier
            scores each patch separately and cannot compare the two, so a
            hidden layer is needed (the paper has two of 4096 after
            towers of 4096 features); 512 keeps the head small beside the
            tiny and quarter-width backbones (`d` = 128 and 256) the CPU
            runs use.
        backbone: `None` or a `keras.Model` from images to `(batch, d)`
            features, used as `P`.
        **kwargs: the arguments of `Pretrainer`: `image_size` (at least
            `3 * patch_size + 2 * gap + 2 * jitter` a side),
            `num_channels`, `stem`, `width`, `synchronized_batch_norm` and
            `seed` (of the initialisation and of the draws: neighbours,
            layout positions, jitter, colour dropping), and `keras.Model`'s
            (`name`, `dtype`).

    Example:

    ```python
    pretrainer = keras_selfie.methods.get("relative_patch_location")(
        width=0.25
    )
    pretrainer.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    pretrainer.fit(unlabeled_images, epochs=10)
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    ```

    Reference:
     - [Doersch et al., 2015](https://arxiv.org/abs/1505.05192)
    """

    def __init__(
        self,
        patch_size=8,
        gap=2,
        jitter=1,
        color_guard="project",
        drop_noise_std=0.01,
        all_neighbors=False,
        head_hidden_dim=512,
        backbone=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.patch_size = check_positive_int("patch_size", patch_size)
        self.gap = check_non_negative("gap", gap, integer=True)
        self.jitter = check_non_negative("jitter", jitter, integer=True)
        if 2 * jitter > gap:
            raise ValueError(
                "Argument `jitter` must be at most `gap / 2` "
                f"({gap / 2:g}), so that the two patches of a pair never "
                f"overlap. Received: jitter={jitter!r} with gap={gap!r}"
            )
        side = self.layout_size()
        if min(self.image_size) < side:
            raise ValueError(
                "Argument `image_size` must be at least the side of the "
                f"3x3 patch layout, 3 * patch_size + 2 * gap + 2 * jitter "
                f"= {side} pixels, on both axes (patch_size={patch_size}, "
                f"gap={gap}, jitter={jitter}). Received: "
                f"image_size={self.image_size}"
            )
        self.color_guard = check_choice(
            "color_guard", color_guard, COLOR_GUARDS
        )
        if color_guard == "project" and self.num_channels != 3:
            raise ValueError(
                "color_guard='project' needs RGB images (num_channels=3); "
                "use color_guard='drop' or None for others. Received: "
                f"num_channels={self.num_channels}"
            )
        self.drop_noise_std = float(
            check_non_negative("drop_noise_std", drop_noise_std)
        )
        self.all_neighbors = check_bool("all_neighbors", all_neighbors)
        if head_hidden_dim is not None:
            head_hidden_dim = check_positive_int(
                "head_hidden_dim", head_hidden_dim
            )
        self.head_hidden_dim = head_hidden_dim
        self.num_classes = len(NEIGHBOR_OFFSETS)
        self.seed_generator = keras.random.SeedGenerator(
            self.seed, name="pair_seed_generator"
        )
        with seeded_construction(self.seed):
            self.patch_network = self.make_backbone(backbone)
            self.head = classification_head(
                self.num_classes, head_hidden_dim, self.dtype_policy
            )
            self.build((None, *self.image_size, self.num_channels))

    def layout_size(self):
        """The side of the 3x3 layout with its jitter margin, in pixels:
        the smallest image side the task can use."""
        return 3 * self.patch_size + 2 * self.gap + 2 * self.jitter

    def build(self, input_shape=None):
        self.head.build((None, 2 * self.feature_dim))
        self.built = True

    def _draw(self, draw, batch_size, columns):
        # Per image, `pairs * columns` values from the global batch's draw;
        # returned as `(pairs * batch_size, columns)`, pair-major like the
        # rows of `call`.
        pairs = self.num_classes if self.all_neighbors else 1
        values = replica_slice_of_global_draw(
            lambda size: draw((size, pairs * columns), self.seed_generator),
            batch_size,
        )
        values = ops.transpose(
            ops.reshape(values, (-1, pairs, columns)), (1, 0, 2)
        )
        return ops.reshape(values, (-1, columns))

    def sample_pairs(self, batch_size):
        """Draws each pair's neighbour and where its patches lie.

        Args:
            batch_size: number of images (an int or a scalar tensor).

        Returns:
            A dict: `"labels"` `(n,)` int32 (which neighbour), `"centre"`
            and `"neighbor"` `(n, 2)` int32 top-left corners `(row,
            column)` of the patches, and `"keep"` `(2 * n,)` int32 (the
            channel each patch, centres then neighbours, keeps under
            colour dropping). `n` is `batch_size`, or `8 * batch_size` with
            `all_neighbors`.
        """
        # Layout row, column; centre jitter (2), neighbour jitter (2);
        # kept channel of the centre, of the neighbour; the neighbour.
        values = self._draw(uniform, batch_size, 9)
        if self.all_neighbors:
            labels = ops.repeat(
                ops.arange(self.num_classes, dtype="int32"), batch_size
            )
        else:
            labels = uniform_index(values[:, 8], self.num_classes)
        centre, neighbor = neighbor_pair_corners(
            values[:, :6], labels, self.image_size, self.patch_size,
            self.gap, self.jitter,
        )
        keep = uniform_index(
            ops.concatenate([values[:, 6], values[:, 7]], axis=0),
            self.num_channels,
        )
        return {
            "labels": labels,
            "centre": centre,
            "neighbor": neighbor,
            "keep": keep,
        }

    def guard_colors(self, patches, keep, batch_size):
        """Applies `color_guard` to `(2 * n, p, p, channels)` patches (the
        centres, then the neighbours; `keep` from `sample_pairs`)."""
        if self.color_guard == "project":
            return project_out_green_magenta(patches)
        if self.color_guard == "drop":
            shape = (self.patch_size, self.patch_size, self.num_channels)
            # The centres' noise, then the neighbours'.
            noise = self._draw(normal, batch_size, 2 * math.prod(shape))
            noise = ops.reshape(noise, (-1, 2, *shape))
            noise = ops.concatenate([noise[:, 0], noise[:, 1]], axis=0)
            return drop_colors(patches, keep, noise, self.drop_noise_std)
        return patches

    def call(self, images, training=None):
        images = self.preprocess(images)
        batch_size = ops.shape(images)[0]
        pairs = self.sample_pairs(batch_size)
        if self.all_neighbors:
            images = ops.concatenate([images] * self.num_classes, axis=0)
        tiles = extract_tiles(
            images,
            ops.stack([pairs["centre"], pairs["neighbor"]], axis=1),
            self.patch_size,
        )
        # The centres, then the neighbours.
        patches = ops.concatenate([tiles[:, 0], tiles[:, 1]], axis=0)
        patches = self.guard_colors(patches, pairs["keep"], batch_size)
        features = self.patch_network(patches, training=training)
        centre, neighbor = ops.split(features, 2, axis=0)
        logits = self.head(ops.concatenate([centre, neighbor], axis=-1))
        return {
            "logits": ops.cast(logits, "float32"),
            "labels": pairs["labels"],
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "gap": self.gap,
                "jitter": self.jitter,
                "color_guard": self.color_guard,
                "drop_noise_std": self.drop_noise_std,
                "all_neighbors": self.all_neighbors,
                "head_hidden_dim": self.head_hidden_dim,
            }
        )
        return config

