import inspect

import keras
from keras import ops

from keras_selfie.layers.attention_pooling import AttentionPooling
from keras_selfie.layers.patch_extractor import PatchExtractor
from keras_selfie.layers.row_col_positional_embedding import (
    RowColPositionalEmbedding,
)
from keras_selfie.losses.distractor_softmax_loss import DISTRACTORS
from keras_selfie.losses.distractor_softmax_loss import SIMILARITIES
from keras_selfie.losses.distractor_softmax_loss import DistractorSoftmaxLoss
from keras_selfie.losses.distractor_softmax_loss import check_temperature
from keras_selfie.losses.distractor_softmax_loss import distractor_labels
from keras_selfie.losses.distractor_softmax_loss import distractor_logits
from keras_selfie.models.pretrainer import Pretrainer
from keras_selfie.models.resnet import feature_map_network
from keras_selfie.utils.distribution import replica_slice_of_global_draw
from keras_selfie.utils.initializers import clone_initializer
from keras_selfie.utils.random import seeded_construction
from keras_selfie.utils.random import uniform
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_positive_int


QUERIES = ("context", "paper")
# What `P` sees when it computes the features of the visible (context) and
# of the masked (target) patches: each patch alone, or the whole image with
# the other patches blanked out.
VIEWS = ("patches", "masked_image")
# The dtype policies `dtype=` is documented for: float32, or 16-bit P and A
# with float32 weights, scores and loss.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

# What each query mode implies for the settings left at `None`. "paper" is
# PAPER.md exactly; "context" is the configuration measured best in
# docs/RESULTS.md ("Context-conditioned Selfie").
QUERY_DEFAULTS = {
    "paper": dict(
        distractors="image",
        similarity="dot",
        temperature=1.0,
        encoder_position_embedding=False,
        context_view="patches",
        target_view="patches",
    ),
    "context": dict(
        distractors="batch",
        similarity="cosine",
        temperature=0.1,
        encoder_position_embedding=True,
        context_view="patches",
        target_view="patches",
    ),
}


def default_num_decoder_patches(num_patches):
    """`M` where `num_decoder_patches=None`: a quarter of the `N` patches
    (4 of 16, as the public reimplementations), at least 2."""
    return max(2, num_patches // 4)


def decoder_patch_limit(grid_size):
    """The largest `num_decoder_patches` `M` a patch grid allows.

    Selfie needs at least 2 decoder patches (one distractor) and more
    encoder than decoder patches, so `M <= (N - 1) // 2` for `N` patches.

    Args:
        grid_size: `(rows, cols)` of the patch grid.

    Returns:
        `(N - 1) // 2`.

    Raises:
        ValueError: for a grid of fewer than 5 patches, too small for Selfie.
    """
    rows, cols = grid_size
    largest = (rows * cols - 1) // 2
    if largest < 2:
        raise ValueError(
            f"A {rows}x{cols} patch grid ({rows * cols} patches) is too small "
            "for Selfie: it needs at least 2 decoder patches and more "
            "encoder than decoder patches, so at least 5 patches. Use a "
            "smaller `patch_size`."
        )
    return largest


def check_num_decoder_patches(value, grid_size, name="num_decoder_patches"):
    """Returns `value` if it is a valid `num_decoder_patches` for the grid.

    Args:
        value: the number of decoder patches `M` received.
        grid_size: `(rows, cols)` of the patch grid.
        name: the argument's name, for the message.

    Returns:
        `value`, an integer from 2 to `decoder_patch_limit(grid_size)`.
    """
    largest = decoder_patch_limit(grid_size)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 2 <= value <= largest
    ):
        raise ValueError(
            f"Argument `{name}` must be an integer from 2 to {largest} for a "
            f"grid of {grid_size[0] * grid_size[1]} patches (at least one "
            "distractor, and the encoder keeps more than half of the "
            f"patches). Received: {name}={value!r}"
        )
    return value


def argument_defaults(query=None):
    """The value of every `SelfiePretrainer` argument left at its default.

    Args:
        query: the query mode whose `QUERY_DEFAULTS` fill in the arguments
            that default to `None`; `None`: the default query's.

    Returns:
        A dict from argument name to its default value
        (`num_decoder_patches` stays `None`: it depends on the grid, see
        `default_num_decoder_patches`).
    """
    parameters = inspect.signature(SelfiePretrainer.__init__).parameters
    defaults = {
        name: parameter.default
        for name, parameter in parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    if query is not None:
        defaults["query"] = check_choice("query", query, QUERIES)
    for name, value in QUERY_DEFAULTS[defaults["query"]].items():
        if defaults[name] is None:
            defaults[name] = value
    return defaults


def gather_positions(features, positions):
    """Picks each image's patch features at the given grid positions.

    Args:
        features: `(batch_size, N, d)` patch features.
        positions: int32 `(batch_size, n)` grid positions in `[0, N)`.

    Returns:
        `(batch_size, n, d)`, row `i` of image `b` being
        `features[b, positions[b, i]]`.
    """
    # One gather of whole d-vectors from the flattened (B * N, d) features.
    # `take_along_axis` broadcasts the indices to (B, n, d) and gathers (and
    # backwards scatters) element by element: ~5x slower at d = 1024.
    num_patches, dim = features.shape[1], features.shape[2]
    offsets = ops.arange(ops.shape(features)[0], dtype="int32") * num_patches
    rows = ops.take(
        ops.reshape(features, (-1, dim)),
        ops.reshape(positions + offsets[:, None], (-1,)),
        axis=0,
    )
    return ops.reshape(rows, (-1, positions.shape[1], dim))


@keras.saving.register_keras_serializable(package="keras_selfie")
class SelfiePretrainer(Pretrainer):
    """Selfie: self-supervised pretraining by masked patch prediction.

    Each training step, for every image of the batch:

    1. the image is cut into a grid of `N` patches (`PatchExtractor`);
    2. the `N` positions are split at random into `N - M` encoder and `M`
       decoder positions (a fresh split per image and step, drawn with
       `keras.random` from the model's `SeedGenerator`);
    3. all `B * N` patches of the batch go through the patch network `P`
       (ResNet-50 stages 1-3 + global average pooling) in one call (with
       `context_view` or `target_view` `"masked_image"`, `P` runs on the
       whole image with the other patches blanked out instead);
    4. the attention pooling network `A` computes a query `v_j` for every
       decoder position `j` from the encoder patches' features (`query`);
    5. the loss is the softmax cross-entropy of the scores of `v_j`
       against candidate patch features `h_k`, right answer the patch that
       sits at `j` (`DistractorSoftmaxLoss`). All `M` positions are
       predicted at once.

    Two formulations, one argument apart:

    - `query="paper"`: PAPER.md exactly. `A` pools the encoder patches into
      one `u`, `v_j = u + row_emb[r(j)] + col_emb[c(j)]`, the candidates
      are the `M` decoder patches of the image and the scores are raw dot
      products. In that score `<u, h_k>` is the same bias for candidate `k`
      in every row, so `u` cannot decide which patch goes where: measured
      context gain 0.0 (docs/RESULTS.md).
    - `query="context"` (default): one pooling token `u0 + PE(j)` per
      decoder position goes through `A` with the encoder patches, which
      carry their own position embeddings, as the decoders of MAE and BERT
      do; no token holds a decoder patch's content. With it, by default,
      the candidates are the decoder patches of every image of the batch
      (`distractors="batch"`) and the scores are cosine similarities
      divided by `temperature=0.1`. Measured on CIFAR-10 (docs/RESULTS.md):
      the context gain rises from 0.0 to +46 points.

    The model reports `loss` and `patch_accuracy` (the share of decoder
    positions whose best-scoring patch is the right one; chance is one over
    the number of candidates: `1/M`, or `1/(B*M)` with batch distractors).
    `fit()` takes batches of images, or `(images, anything)` tuples whose
    second element is ignored. uint8 images are scaled to `[0, 1]`; float
    images are used as they are.

    After pretraining, `transfer_to_resnet50(pretrainer)` puts `P`'s weights
    into a ResNet-50 for fine-tuning.

    Args:
        image_size: int or `(height, width)`. Size of the input images.
            Defaults to 32 (CIFAR-10).
        patch_size: int. Side of the square patches; must divide both image
            sizes. The paper uses 8 for 32x32 images and 32 for 224x224.
        num_channels: int. Channels of the input images. Defaults to 3.
        num_decoder_patches: int or `None`. `M`, the number of positions
            to predict per image, at least 2 and fewer than half the
            patches (the paper gives the encoder the larger part). `None`
            uses `N // 4` (at least 2), the choice of both public
            reimplementations (4 of 16 patches).
        stem: `"cifar"` (3x3 stride-1 convolution, no max-pool; for 8x8
            patches) or `"imagenet"` (the `keras.applications.ResNet50`
            stem; for 32x32 patches).
        width: float. Width multiplier of `P`; 1.0 is ResNet-50 and gives
            features of size `d = 1024`. Smaller values keep the ResNet-50
            structure at a fraction of the cost.
        num_layers: int. Transformer layers in `A`. Defaults to 3, the
            smaller of the two public reimplementations (the paper leaves
            it open).
        num_heads: int. Attention heads per layer; must divide `d`.
            Defaults to 32, as that reimplementation.
        intermediate_dim: int. Feed-forward width in `A`. Defaults to 640,
            as that reimplementation.
        dropout: float. Dropout in `A`. Defaults to 0.1, as in the paper.
        query: `"context"` (default) or `"paper"`; see above. It also sets
            the defaults of the four arguments below: those of
            `QUERY_DEFAULTS[query]`.
        distractors: `"image"` (the `M` decoder patches of the query's
            image, the paper) or `"batch"` (those of every image of the
            batch, `B * M` candidates, InfoNCE-style). Under `tf.distribute`
            the candidates of all replicas are gathered, so training equals
            one device with the global batch. `None`: the query's default.
        similarity: `"dot"` (the paper) or `"cosine"`. `None`: the query's
            default.
        temperature: float > 0 dividing every score. `None`: 0.1 with the
            query's default similarity where that is cosine, else 1.0.
            Raw dot products at 1.0 start at a loss of 7-10 at 32x32 and 83
            at 224x224; cosine bounds the logits to `[-1/t, 1/t]`.
        encoder_position_embedding: bool or `None`. Whether encoder patches
            also get a (separate, row/column) position embedding before `A`.
            The paper adds position only to the queries (`False`); the
            context query needs to know where the visible patches are
            (`True`). `None`: the query's default.
        context_view: `"patches"` or `"masked_image"`: what `P` sees when
            it computes the features of the visible patches. `"patches"`
            (the paper): each patch alone, as an 8x8 input surrounded by
            `P`'s zero padding. `"masked_image"` (MAE/BEiT-style masking):
            the whole image with the decoder patches blanked out (set to 0,
            the value of `P`'s own padding), each visible patch's feature
            being the mean of `P`'s feature map over the cells that patch
            covers. The blanked pixels carry no content, so no query sees a
            decoder patch; `P` then also learns on whole images with their
            statistics, which is how fine-tuning uses it. `None`: the
            query's default.
        target_view: `"patches"` or `"masked_image"`: the same for the
            decoder (candidate) patches; `"masked_image"` blanks the
            encoder patches instead. `None`: the query's default.
        projection_head: bool. Whether the candidates' features go through
            a trainable two-layer MLP (`Dense(d)`, ReLU, `Dense(d)`) before
            they are scored, as SimCLR's projection head: the pretext loss
            then shapes the head's output, and `P`'s features, which
            transfer, need not be the matching space themselves. The head
            is not transferred. Defaults to `False` (the paper scores
            `P`'s features directly).
        patch_color_jitter: bool. In training, give every patch its own
            random colour distortion (SimCLR's at strength 0.5: brightness,
            contrast, saturation 0.4, hue 0.1, grayscale with probability
            0.2) before `P`: a guard against matching patches by their
            colours, as jigsaw and relative patch location guard against
            low-level shortcuts. Defaults to `False`.
        synchronized_batch_norm: bool. Whether `P`'s batch normalisation
            uses the statistics of the global batch under a `tf.distribute`
            strategy (at a cost of one all-reduce per layer). Defaults to
            `False`: each replica normalises over its own `B * N` patches.
        position_embedding_initializer: initializer of the row and column
            embeddings. Defaults to a normal with standard deviation
            `sqrt(1/2)`, so that `row + column` has unit variance, the scale
            of `u` (a layer-norm output). The queries of different positions
            then differ from the first step; BERT's 0.02 makes them nearly
            equal to `u` and slows learning (the PyTorch reimplementation
            draws N(0, 1) per position).
        backbone: `None` (P: ResNet-50 stages 1-3 at `stem` and `width`,
            the network `transfer_to_resnet50` moves) or a `keras.Model`
            from patches `(batch, p, p, num_channels)` to features
            `(batch, d)`, used as P (then `stem` and `width` say nothing
            about it, and only the 'patches' views work).
        seed: int or `None`. Seed of the encoder/decoder splits and of the
            initialisation (weights and dropout streams of `P` and `A`,
            position embeddings): two pretrainers made with the same seed
            start from the same weights, whatever ran before. `None`: the
            global state decides (`keras.utils.set_random_seed`).
        **kwargs: other keyword arguments passed to `keras.Model`, such as
            `name` or `dtype`. With `dtype="mixed_bfloat16"` or
            `"mixed_float16"` (or that global policy,
            `keras.mixed_precision.set_dtype_policy`), P and A compute in
            16 bits and the scores and loss in float32; `compile` then wraps
            the optimizer in a `LossScaleOptimizer` for float16.

    Call arguments:
        images: `(batch_size, height, width, num_channels)`, uint8 or float.
        decoder_positions: optional int tensor `(batch_size, M)` of distinct
            grid positions to predict. Drawn at random when `None`.
        training: boolean, whether batch normalisation and dropout run in
            training mode.

    Returns:
        A dict with `"logits"` `(batch_size, M, M)` (row `j` scores the `M`
        decoder patches for position `j`; the right answer is column `j`;
        with batch distractors `(batch_size, M, B * M)`, answer
        `distractor_labels`),
        `"decoder_positions"` `(batch_size, M)`, `"queries"` and
        `"targets"` `(batch_size, M, d)` (the `v_j` and `h_j`). Logits,
        queries and targets are float32 also under a mixed-precision
        policy.

    Example:

    ```python
    import tensorflow_datasets as tfds
    import keras_selfie

    images = tfds.load("cifar10", split="train", as_supervised=True)
    images = images.map(lambda x, y: x).shuffle(10_000).batch(64)
    pretrainer = keras_selfie.SelfiePretrainer(image_size=32, patch_size=8)
    pretrainer.compile(optimizer=keras.optimizers.AdamW(1e-3))
    pretrainer.fit(images, epochs=10)
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    ```

    Reference:
     - [Trinh et al., 2019](https://arxiv.org/abs/1906.02940)
     - [He et al., 2022](https://arxiv.org/abs/2111.06377) (MAE: a
       prediction token per masked position)
     - [van den Oord et al., 2018](https://arxiv.org/abs/1807.03748)
       (InfoNCE: candidates from other images)
    """

    METRIC_DIRECTIONS = {"loss": "min", "patch_accuracy": "max"}

    def __init__(
        self,
        image_size=32,
        patch_size=8,
        num_channels=3,
        num_decoder_patches=None,
        stem="cifar",
        width=1.0,
        num_layers=3,
        num_heads=32,
        intermediate_dim=640,
        dropout=0.1,
        query="context",
        distractors=None,
        similarity=None,
        temperature=None,
        encoder_position_embedding=None,
        context_view=None,
        target_view=None,
        projection_head=False,
        patch_color_jitter=False,
        synchronized_batch_norm=False,
        position_embedding_initializer=None,
        backbone=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            image_size=image_size,
            num_channels=num_channels,
            stem=stem,
            width=width,
            synchronized_batch_norm=synchronized_batch_norm,
            seed=seed,
            **kwargs,
        )
        self.query = check_choice("query", query, QUERIES)
        defaults = QUERY_DEFAULTS[self.query]

        def resolve(name, value, choices):
            # `None` takes the query mode's default.
            return check_choice(
                name, defaults[name] if value is None else value, choices
            )

        self.distractors = resolve("distractors", distractors, DISTRACTORS)
        self.similarity = resolve("similarity", similarity, SIMILARITIES)
        if temperature is None:
            temperature = (
                defaults["temperature"]
                if self.similarity == defaults["similarity"]
                else 1.0
            )
        self.temperature = check_temperature(temperature)
        if encoder_position_embedding is None:
            encoder_position_embedding = defaults[
                "encoder_position_embedding"
            ]
        self.context_view = resolve("context_view", context_view, VIEWS)
        self.target_view = resolve("target_view", target_view, VIEWS)
        self.patch_extractor = PatchExtractor(
            patch_size, dtype=self.dtype_policy, name="patch_extractor"
        )
        self.patch_size = self.patch_extractor.patch_size
        self.grid_size = self.patch_extractor.grid_size(
            (None, *self.image_size, self.num_channels)
        )
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        if num_decoder_patches is None:
            num_decoder_patches = default_num_decoder_patches(self.num_patches)
        self.num_decoder_patches = check_num_decoder_patches(
            num_decoder_patches, self.grid_size
        )
        self.num_encoder_patches = self.num_patches - self.num_decoder_patches
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.encoder_position_embedding = bool(encoder_position_embedding)
        self.patch_color_jitter = bool(patch_color_jitter)
        self.projection_head = bool(projection_head)
        self.seed_generator = keras.random.SeedGenerator(
            seed, name="split_seed_generator"
        )
        self.patch_accuracy_tracker = keras.metrics.Mean(name="patch_accuracy")
        self.pretext_loss = self.default_loss()
        # Sublayers (dropout) made in `build` draw their seeds here too.
        with seeded_construction(seed):
            self._make_layers(position_embedding_initializer, backbone)
            self.build((None, *self.image_size, self.num_channels))

    @property
    def formulation(self):
        """The settings that make this Selfie variant, as a dict (resolved:
        no `None`)."""
        return {
            key: getattr(self, key)
            for key in (
                "query",
                "distractors",
                "similarity",
                "temperature",
                "encoder_position_embedding",
                "context_view",
                "target_view",
                "projection_head",
                "patch_color_jitter",
            )
        }

    def chance_patch_accuracy(self, batch_size):
        """Patch accuracy of a uniform guess among one query's candidates.

        Args:
            batch_size: int > 0, the global batch size (batch distractors
                are gathered from every replica).

        Returns:
            `1 / M`, or `1 / (batch_size * M)` with `distractors="batch"`.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        if self.distractors == "batch":
            return 1 / (batch_size * self.num_decoder_patches)
        return 1 / self.num_decoder_patches

    def task_description(self, batch_size):
        return (
            f"{self.num_patches} patches of {self.patch_size}x"
            f"{self.patch_size}, {self.num_decoder_patches} to predict per "
            f"image, {self.query!r} query, candidates from the "
            f"{self.distractors} (chance = "
            f"{self.chance_patch_accuracy(batch_size):.4f} at batch "
            f"{batch_size})"
        )

    def default_loss(self, dtype=None):
        """The pretext loss of this formulation (`compile`'s default).

        Args:
            dtype: dtype of the loss computation; `None` for float32.
        """
        return DistractorSoftmaxLoss(
            distractors=self.distractors,
            similarity=self.similarity,
            temperature=self.temperature,
            dtype=dtype,
        )

    def _make_layers(self, position_embedding_initializer, backbone):
        if position_embedding_initializer is None:
            position_embedding_initializer = keras.initializers.RandomNormal(
                stddev=0.5**0.5
            )
        self.position_embedding_initializer = keras.initializers.get(
            position_embedding_initializer
        )

        self.patch_network = self.make_backbone(backbone)
        self.feature_map_network = None
        if "masked_image" in (self.context_view, self.target_view):
            if self.custom_backbone:
                raise ValueError(
                    "`context_view` and `target_view` 'masked_image' read "
                    "the feature map of the default backbone; with "
                    "`backbone=` use the 'patches' views."
                )
            self.feature_map_network = feature_map_network(self.patch_network)
            self.feature_map_cells = self._check_feature_map_cells()
        self.attention_pooling = AttentionPooling(
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            dtype=self.dtype_policy,
            name="attention_pooling",
        )
        self.query_position_embedding = self._position_embedding(
            "query_position_embedding", seed_offset=0
        )
        self.target_head = None
        if self.projection_head:
            # Seeded from the model's seed, so that adding the head leaves
            # the draws of every other layer (and so P and A) unchanged.
            self.target_head = keras.Sequential(
                [
                    keras.layers.Dense(
                        self.feature_dim,
                        activation=activation,
                        kernel_initializer=keras.initializers.GlorotUniform(
                            None if self.seed is None else self.seed + offset
                        ),
                        dtype=self.dtype_policy,
                        name=f"target_head_{name}",
                    )
                    for name, activation, offset in (
                        ("hidden", "relu", 3),
                        ("output", None, 4),
                    )
                ],
                name="target_head",
            )
        self.color_jitter = None
        if self.patch_color_jitter:
            # SimCLR's colour distortion at strength 0.5 (Chen et al.,
            # 2020, appendix A), drawn for every patch on its own.
            self.color_jitter = keras.Sequential(
                [
                    keras.layers.RandomColorJitter(
                        value_range=(0, 1),
                        brightness_factor=0.4,
                        contrast_factor=0.4,
                        saturation_factor=0.4,
                        hue_factor=0.1,
                        seed=None if self.seed is None else self.seed + 1,
                    ),
                    keras.layers.RandomGrayscale(
                        factor=0.2,
                        seed=None if self.seed is None else self.seed + 2,
                    ),
                ],
                name="patch_color_jitter",
            )
        self.encoder_position_embedding_layer = None
        if self.encoder_position_embedding:
            self.encoder_position_embedding_layer = self._position_embedding(
                "encoder_position_embedding", seed_offset=2
            )

    def _position_embedding(self, name, seed_offset):
        # Each table takes two seed offsets (rows and columns).
        return RowColPositionalEmbedding(
            self.grid_size,
            self.feature_dim,
            embeddings_initializer=clone_initializer(
                self.position_embedding_initializer, seed_offset
            ),
            dtype=self.dtype_policy,
            name=name,
        )

    def _check_feature_map_cells(self):
        # `(rows, cols)` of P's feature map over one patch, when the map of
        # the whole image is the grid of those cells (no cell straddles two
        # patches).
        channels = self.num_channels

        def map_size(size):
            shape = self.feature_map_network.compute_output_shape(
                (None, *size, channels)
            )
            return tuple(shape[1:3])

        cells = map_size((self.patch_size, self.patch_size))
        whole = map_size(self.image_size)
        expected = (self.grid_size[0] * cells[0], self.grid_size[1] * cells[1])
        if min(cells) < 1 or whole != expected:
            argument = (
                "context_view"
                if self.context_view == "masked_image"
                else "target_view"
            )
            raise ValueError(
                f"`{argument}='masked_image'` reads P's feature map of the "
                "whole image patch by patch, so every patch must cover "
                "whole cells of "
                f"it. With stem={self.stem!r}, a {self.patch_size}x"
                f"{self.patch_size} patch gives a {cells} map and the "
                f"{self.image_size} image a {whole} map, not {expected}. Use "
                "a patch size that is a multiple of P's stride (4 for the "
                "cifar stem, 16 for the imagenet stem), or the 'patches' "
                "view."
            )
        return cells

    def build(self, input_shape=None):
        sequence_shape = (None, None, self.feature_dim)
        self.attention_pooling.build(sequence_shape)
        self.query_position_embedding.build()
        if self.target_head is not None:
            self.target_head.build(sequence_shape)
        if self.encoder_position_embedding_layer is not None:
            self.encoder_position_embedding_layer.build()
        self.built = True

    def sample_split(self, batch_size):
        """Draws a random encoder/decoder split for each image.

        Args:
            batch_size: number of images (an int or a scalar tensor).

        Returns:
            `(encoder_positions, decoder_positions)`, int32 tensors of shape
            `(batch_size, N - M)` and `(batch_size, M)`, disjoint and
            together covering all `N` grid positions of each image.
        """
        noise = replica_slice_of_global_draw(
            lambda size: uniform(
                (size, self.num_patches), self.seed_generator
            ),
            batch_size,
        )
        order = ops.cast(ops.argsort(noise, axis=-1), "int32")
        return (
            order[:, : self.num_encoder_patches],
            order[:, self.num_encoder_patches :],
        )

    def _complement(self, decoder_positions):
        is_decoder = ops.sum(
            ops.one_hot(decoder_positions, self.num_patches, dtype="int32"),
            axis=1,
        )
        order = ops.cast(ops.argsort(is_decoder, axis=-1), "int32")
        return order[:, : self.num_encoder_patches]

    def _patches(self, images, training=None):
        # (B, N, p, p, C) patches in the compute dtype, each with its own
        # colour distortion under `patch_color_jitter` in training.
        images = self.preprocess(images)
        patches = self.patch_extractor(images)
        if self.color_jitter is not None and training:
            flat = ops.reshape(
                patches,
                (-1, self.patch_size, self.patch_size, self.num_channels),
            )
            flat = ops.cast(self.color_jitter(flat, training=True), flat.dtype)
            patches = ops.reshape(flat, ops.shape(patches))
        return patches

    def _features_of_patches(self, patches, training=None):
        # P on each patch alone: (B, n, p, p, C) -> (B, n, d).
        count = patches.shape[1]
        features = self.patch_network(
            ops.reshape(
                patches,
                (-1, self.patch_size, self.patch_size, self.num_channels),
            ),
            training=training,
        )
        return ops.reshape(features, (-1, count, self.feature_dim))

    def _features_of_masked_images(self, patches, positions, training=None):
        # P on the whole images with the patches at `positions` (B, n)
        # blanked out (0, P's padding value), its feature map averaged over
        # the cells of each patch: (B, N, d).
        rows, cols = self.grid_size
        p, channels = self.patch_size, self.num_channels
        hidden = ops.sum(
            ops.one_hot(positions, self.num_patches, dtype=patches.dtype),
            axis=1,
        )
        patches = patches * (1 - hidden)[:, :, None, None, None]
        images = ops.reshape(
            ops.transpose(
                ops.reshape(patches, (-1, rows, cols, p, p, channels)),
                (0, 1, 3, 2, 4, 5),
            ),
            (-1, rows * p, cols * p, channels),
        )
        feature_map = self.feature_map_network(images, training=training)
        cell_rows, cell_cols = self.feature_map_cells
        cells = ops.reshape(
            feature_map,
            (-1, rows, cell_rows, cols, cell_cols, self.feature_dim),
        )
        return ops.reshape(
            ops.mean(cells, axis=(2, 4)),
            (-1, self.num_patches, self.feature_dim),
        )

    def patch_features(self, images, training=None):
        """Features of every patch of every image, each patch alone:
        `(batch_size, N, d)`.

        One batched call of `P` over all `B * N` patches (the paper's
        "efficient implementation"): a single large convolution per layer.
        uint8 images are scaled to `[0, 1]`. With `patch_color_jitter`, in
        training, every patch first gets its own random colour distortion.
        """
        return self._features_of_patches(
            self._patches(images, training), training
        )

    def context_features(self, images, decoder_positions, training=None):
        """`P`'s features of the visible patches, as the queries read them.

        Args:
            images: `(batch_size, height, width, num_channels)`.
            decoder_positions: int32 `(batch_size, M)`, the masked
                positions (blanked out with `context_view="masked_image"`).
            training: whether `P` runs in training mode.

        Returns:
            `(batch_size, N, d)`; only the rows at encoder positions are
            read by `predict_queries` (with `context_view="patches"` the
            rows at decoder positions hold those patches' features).
        """
        return self._context_features(
            self._patches(images, training), decoder_positions, training
        )

    def _context_features(self, patches, decoder_positions, training=None):
        if self.context_view == "patches":
            return self._features_of_patches(patches, training)
        return self._features_of_masked_images(
            patches, decoder_positions, training
        )

    def target_features(self, images, decoder_positions, training=None):
        """`P`'s features of the decoder (candidate) patches.

        Args:
            images: `(batch_size, height, width, num_channels)`.
            decoder_positions: int32 `(batch_size, M)`.
            training: whether `P` runs in training mode.

        Returns:
            `(batch_size, M, d)`, row `j` the patch at `decoder_positions[:,
            j]`: `P` on that patch alone (`target_view="patches"`) or on
            the image with the encoder patches blanked out, through the
            `projection_head` if there is one.
        """
        patches = self._patches(images, training)
        return self._target_features(patches, decoder_positions, training)

    def _target_features(self, patches, decoder_positions, training=None):
        return self._project(
            self._target_features_of_p(patches, decoder_positions, training)
        )

    def _project(self, targets):
        # The candidates' features as they are scored (`projection_head`).
        if self.target_head is None:
            return targets
        return self.target_head(targets)

    def _target_features_of_p(self, patches, decoder_positions, training):
        if self.target_view == "patches":
            p, channels = self.patch_size, self.num_channels
            flat = ops.reshape(patches, (-1, self.num_patches, p * p * channels))
            decoder_patches = ops.reshape(
                gather_positions(flat, decoder_positions),
                (-1, self.num_decoder_patches, p, p, channels),
            )
            return self._features_of_patches(decoder_patches, training)
        features = self._features_of_masked_images(
            patches, self._complement(decoder_positions), training
        )
        return gather_positions(features, decoder_positions)

    def predict_queries(
        self, context, encoder_positions, decoder_positions, training=None
    ):
        """The query `v_j` of every decoder position: `(batch_size, M, d)`.

        Reads only the features of the encoder (visible) patches of
        `context`, never those of the decoder patches.

        Args:
            context: `(batch_size, N, d)` patch features
                (`context_features`) whose encoder patches form the
                context. Pass another image's features to measure what the
                context contributes (`evaluation.context_gain`).
            encoder_positions: int32 `(batch_size, N - M)`.
            decoder_positions: int32 `(batch_size, M)`.
            training: whether dropout runs in training mode.
        """
        encoder_features = gather_positions(context, encoder_positions)
        if self.encoder_position_embedding_layer is not None:
            encoder_features = (
                encoder_features
                + self.encoder_position_embedding_layer(encoder_positions)
            )
        positions = self.query_position_embedding(decoder_positions)
        if self.query == "context":
            # One pooling token u0 + PE(j) per decoder position, all M in
            # one call of A, attending to the (position-embedded) encoder
            # patches and to each other: no token holds decoder content.
            return self.attention_pooling(
                encoder_features, training=training, queries=positions
            )
        # The paper: v_j = u + PE(j), one u per image.
        pooled = self.attention_pooling(encoder_features, training=training)
        return pooled[:, None, :] + positions

    def call(self, images, decoder_positions=None, training=None):
        patches = self._patches(images, training)
        if self.distractors == "batch" and images.shape[0] == 1:
            raise ValueError(
                "`distractors='batch'` scores each query against the decoder "
                "patches of the other images of the batch, so it needs at "
                "least 2 images per batch (per replica). Received a batch "
                f"of shape={tuple(images.shape)}. Use a larger batch or "
                "`distractors='image'`."
            )
        if decoder_positions is None:
            encoder_positions, decoder_positions = self.sample_split(
                ops.shape(patches)[0]
            )
        else:
            decoder_positions = self._check_decoder_positions(
                decoder_positions
            )
            encoder_positions = self._complement(decoder_positions)
        if self.context_view == self.target_view == "patches":
            # The paper's view: all B * N patches through P in one call.
            context = self._features_of_patches(patches, training)
            targets = self._project(
                gather_positions(context, decoder_positions)
            )
        else:
            context = self._context_features(
                patches, decoder_positions, training
            )
            targets = self._target_features(
                patches, decoder_positions, training
            )
        queries = self.predict_queries(
            context, encoder_positions, decoder_positions, training=training
        )
        # Under a mixed-precision policy P and A run in the compute dtype;
        # the scores and the loss stay in float32 (cheap: B * M vectors).
        queries = ops.cast(queries, "float32")
        targets = ops.cast(targets, "float32")
        return {
            "logits": self.score(queries, targets),
            "decoder_positions": decoder_positions,
            "queries": queries,
            "targets": targets,
        }

    def score(self, queries, targets, distractors=None):
        """Logits of the queries against the candidate patches.

        Args:
            queries: `(batch_size, M, d)`.
            targets: `(batch_size, M, d)`, the decoder patches' features.
            distractors: `None` (the model's own setting), `"image"` or
                `"batch"`.

        Returns:
            `distractor_logits` with the model's similarity and temperature.
        """
        return distractor_logits(
            queries,
            targets,
            self.distractors if distractors is None else distractors,
            self.similarity,
            self.temperature,
        )

    def _check_decoder_positions(self, decoder_positions):
        decoder_positions = ops.convert_to_tensor(decoder_positions)
        shape = tuple(decoder_positions.shape)
        if len(shape) != 2 or shape[1] != self.num_decoder_patches:
            raise ValueError(
                "`decoder_positions` must have shape (batch_size, "
                f"{self.num_decoder_patches}). Received shape={shape}"
            )
        if not isinstance(decoder_positions, keras.KerasTensor):
            self._check_decoder_position_values(decoder_positions)
        return ops.cast(decoder_positions, "int32")

    def _check_decoder_position_values(self, decoder_positions):
        # Values are known only outside a traced function; inside one
        # (fit, predict) positions come from `sample_split`, valid by
        # construction.
        try:
            values = ops.convert_to_numpy(decoder_positions)
        except NotImplementedError:  # A symbolic tensor in tf.function.
            return
        distinct = all(len(set(row)) == len(row) for row in values.tolist())
        if values.min() < 0 or values.max() >= self.num_patches or not (
            distinct
        ):
            raise ValueError(
                "`decoder_positions` must hold distinct grid positions in "
                f"[0, {self.num_patches}) in each row. Received: "
                f"{values.tolist()}"
            )

    @property
    def distractor_loss(self):
        """The pretext loss (`DistractorSoftmaxLoss` by default)."""
        return self.pretext_loss

    def task_loss(self, outputs, sample_weight=None):
        return self.pretext_loss(
            outputs["targets"], outputs["queries"],
            sample_weight=sample_weight,
        )

    def update_task_metrics(self, outputs, sample_weight=None):
        correct = ops.equal(
            ops.cast(ops.argmax(outputs["logits"], axis=-1), "int32"),
            distractor_labels(outputs["targets"], self.distractors),
        )
        self.patch_accuracy_tracker.update_state(
            ops.cast(correct, "float32"), sample_weight=sample_weight
        )

    @classmethod
    def from_config(cls, config):
        # Files saved before `query` existed hold the paper's formulation;
        # those saved before the views existed saw every patch alone.
        config = {"context_view": "patches", "target_view": "patches",
                  "projection_head": False, **config}
        config.setdefault("query", "paper")
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "num_decoder_patches": self.num_decoder_patches,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "query": self.query,
                "distractors": self.distractors,
                "similarity": self.similarity,
                "temperature": self.temperature,
                "encoder_position_embedding": self.encoder_position_embedding,
                "context_view": self.context_view,
                "target_view": self.target_view,
                "projection_head": self.projection_head,
                "patch_color_jitter": self.patch_color_jitter,
                "position_embedding_initializer": (
                    keras.initializers.serialize(
                        self.position_embedding_initializer
                    )
                ),
            }
        )
        return config
