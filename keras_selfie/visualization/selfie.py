"""Selfie's picture, after the paper's Figure 3.

`predict_patches` runs a pretrainer on a few images and returns, as NumPy
arrays, which patch it picks for each masked position;
`plot_selfie_predictions` (what `plot_predictions` draws for a
`SelfiePretrainer`) draws that: every image with its decoder positions
outlined (right predictions in one colour, wrong ones in another), and for
one position the candidate patches ranked by score. `draw_predictions`
does the drawing from given scores, without a model.
"""

import math

import keras
import numpy as np

from keras_selfie.utils.validation import check_int_in_range
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.visualization.figures import CELL
from keras_selfie.visualization.figures import CORRECT_COLOR
from keras_selfie.visualization.figures import SECTION_TITLE_HEIGHT
from keras_selfie.visualization.figures import TITLE_HEIGHT
from keras_selfie.visualization.figures import WRONG_COLOR
from keras_selfie.visualization.figures import cells
from keras_selfie.visualization.figures import displayable
from keras_selfie.visualization.figures import frame
from keras_selfie.visualization.figures import new_figure
from keras_selfie.visualization.figures import outline
from keras_selfie.visualization.figures import right_wrong_colors
from keras_selfie.visualization.figures import save_figure
from keras_selfie.visualization.figures import show
from keras_selfie.visualization.figures import to_image_array
from keras_selfie.visualization.predictions import register_picture

_MAX_COLUMNS = 8


def predict_patches(pretrainer, images, decoder_positions=None):
    """Runs `pretrainer` on `images` and returns its patch predictions.

    The model runs in inference mode (batch normalisation's moving
    statistics, no dropout), as `pretrainer(images,
    decoder_positions=decoder_positions, training=False)`.

    Args:
        pretrainer: a `SelfiePretrainer`.
        images: `(batch, height, width, channels)` uint8 or float images
            (NumPy array or tensor) of the pretrainer's `image_size` and
            `num_channels`.
        decoder_positions: optional int array `(batch, M)` of distinct grid
            positions (row-major) to predict per image, with `M` the
            pretrainer's `num_decoder_patches`. `None` draws a random split
            per image from the pretrainer's seed generator (which advances
            it, as a training step would).

    Returns:
        A dict of NumPy arrays:
        - `"images"`: the images as given.
        - `"decoder_positions"`: `(batch, M)` int32, the positions predicted.
        - `"scores"`: `(batch, M, M)` float32 logits among the image's own
          `M` decoder patches (whatever `distractors` the model trains
          with); row `j` is the query of position `decoder_positions[:, j]`,
          column `k` the candidate patch taken from position
          `decoder_positions[:, k]`. The right answer for row `j` is column
          `j`.
        - `"predicted"`: `(batch, M)` int, the column of the best-scoring
          candidate of each row.
        - `"correct"`: `(batch, M)` bool, `predicted == j`.

    Example:

    ```python
    result = predict_patches(pretrainer, test_images[:8])
    print(result["correct"].mean())  # the patch accuracy on these images
    ```
    """
    images = _check_images(pretrainer, images)
    if decoder_positions is not None:
        decoder_positions = keras.ops.convert_to_numpy(decoder_positions)
        if decoder_positions.ndim != 2 or len(decoder_positions) != len(
            images
        ):
            raise ValueError(
                "`decoder_positions` must have one row per image, shape "
                f"({len(images)}, {pretrainer.num_decoder_patches}). "
                f"Received shape={decoder_positions.shape}"
            )
    outputs = pretrainer(
        images, decoder_positions=decoder_positions, training=False
    )
    # The image's own M patches as candidates, also for a model trained with
    # batch distractors: the picture shows which patch goes where.
    scores = pretrainer.score(
        outputs["queries"], outputs["targets"], distractors="image"
    )
    scores = keras.ops.convert_to_numpy(scores).astype("float32")
    return _prediction_dict(
        images,
        keras.ops.convert_to_numpy(outputs["decoder_positions"]),
        scores,
    )


def _prediction_dict(images, decoder_positions, scores):
    predicted = np.argmax(scores, axis=-1)
    return {
        "images": images,
        "decoder_positions": decoder_positions.astype("int32"),
        "scores": scores,
        "predicted": predicted,
        "correct": predicted == np.arange(scores.shape[-1]),
    }


def _check_images(pretrainer, images):
    return to_image_array(
        images, (*pretrainer.image_size, pretrainer.num_channels)
    )


def rank_candidates(scores):
    """Returns candidate indices from the highest score to the lowest.

    Ties keep the candidates' order (a stable sort).

    Args:
        scores: 1-D array of the `M` candidates' scores for one query.

    Returns:
        An int array, a permutation of `range(M)`.
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(
            "`scores` must be one query's scores, of rank 1. "
            f"Received shape={scores.shape}"
        )
    return np.argsort(-scores, kind="stable")


@register_picture(
    "selfie",
    "the paper's Figure 3: each image's masked positions outlined (green: "
    "the model picks the right patch, red: it does not), and one "
    "position's candidate patches ranked by score",
)
def plot_selfie_predictions(
    pretrainer,
    images,
    decoder_positions=None,
    image_index=0,
    position_index=0,
    num_candidates=None,
    correct_color=CORRECT_COLOR,
    wrong_color=WRONG_COLOR,
    columns=None,
):
    """Draws what a Selfie pretrainer predicts on `images` (paper, Fig. 3).

    What `plot_predictions` draws for a `SelfiePretrainer`.

    The top of the figure shows every image with its `M` decoder (masked)
    positions outlined: in `correct_color` where the model picks the right
    patch among the image's `M` decoder patches, in `wrong_color` where it
    does not; the title counts the right ones. The bottom shows, for the
    decoder position `position_index` of image `image_index`, first the
    image as the encoder sees it (decoder patches greyed out, the position
    outlined), then the candidate patches from the highest score to the
    lowest, each titled with its rank and score. The right patch is framed
    in `correct_color` and titled "true"; if the model ranks another patch
    first, that one is framed in `wrong_color`.

    The model runs in inference mode (`predict_patches`).

    Args:
        pretrainer: a `SelfiePretrainer`.
        images: `(batch, height, width, channels)` uint8 or float images of
            the pretrainer's size. All are drawn; 8 fit one row. Float
            images within `[0, 1]` are shown as they are, others scaled
            per image from their minimum to their maximum.
        decoder_positions: optional int array `(batch, M)`; `None` draws
            a random split from the pretrainer's seed generator (which
            `plot_predictions` sets to its `seed`).
        image_index: int. The image whose candidates are ranked.
        position_index: int in `[0, M)`. Which of its decoder positions.
        num_candidates: int in `[1, M]` or `None` (all `M`). How many of
            the best-ranked candidates to show. The true patch is drawn
            only if it ranks among them; the title above says its rank.
        correct_color: matplotlib colour of right predictions.
        wrong_color: matplotlib colour of wrong predictions.
        columns: int or `None`. Cells per row, for the images and for the
            query and its candidates. Defaults to the larger of `batch` and
            `num_candidates + 1`, at most 8.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    ```python
    figure = plot_predictions(
        pretrainer, test_images[:8], image_index=2, position_index=1
    )
    ```
    """
    # Argument errors come before running the model.
    images = _check_images(pretrainer, images)
    check_int_in_range("image_index", image_index, 0, len(images))
    check_int_in_range(
        "position_index", position_index, 0, pretrainer.num_decoder_patches
    )
    prediction = predict_patches(pretrainer, images, decoder_positions)
    return draw_predictions(
        prediction["images"],
        prediction["decoder_positions"],
        prediction["scores"],
        pretrainer.patch_size,
        image_index=image_index,
        position_index=position_index,
        num_candidates=num_candidates,
        correct_color=correct_color,
        wrong_color=wrong_color,
        columns=columns,
    )


def draw_predictions(
    images,
    decoder_positions,
    scores,
    patch_size,
    path=None,
    image_index=0,
    position_index=0,
    num_candidates=None,
    correct_color=CORRECT_COLOR,
    wrong_color=WRONG_COLOR,
    columns=None,
):
    """Draws given patch predictions; Selfie's picture without a model.

    Args:
        images: `(batch, height, width, channels)` uint8 or float images
            with 1, 3 or 4 channels.
        decoder_positions: int array `(batch, M)` of row-major grid
            positions.
        scores: float array `(batch, M, M)`; row `j` scores the candidates
            for position `j`, whose right answer is column `j`.
        patch_size: int. Side of the square patches, in pixels.
        path: optional file path; the figure is written there as a PNG.
        image_index, position_index, num_candidates, correct_color,
        wrong_color, columns: as in `plot_selfie_predictions`.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    images = to_image_array(images)
    grid = _check_predictions(images, decoder_positions, scores, patch_size)
    decoder_positions = np.asarray(decoder_positions)
    scores = np.asarray(scores)
    batch, m = decoder_positions.shape
    check_int_in_range("image_index", image_index, 0, batch)
    check_int_in_range("position_index", position_index, 0, m)
    if num_candidates is None:
        num_candidates = m
    if check_positive_int("num_candidates", num_candidates) > m:
        raise ValueError(
            f"Argument `num_candidates` must be at most M = {m}, the number "
            f"of candidate patches. Received: num_candidates={num_candidates}"
        )
    colors = right_wrong_colors(correct_color, wrong_color)
    if columns is None:
        columns = min(max(batch, num_candidates + 1), _MAX_COLUMNS)
    columns = check_positive_int("columns", columns)

    display = displayable(images)
    correct = _prediction_dict(images, decoder_positions, scores)["correct"]
    image_rows = math.ceil(batch / columns)
    candidate_rows = math.ceil((num_candidates + 1) / columns)
    row_height = CELL + TITLE_HEIGHT
    figure = new_figure(
        columns * CELL,
        (image_rows + candidate_rows) * row_height
        + 2 * SECTION_TITLE_HEIGHT,
    )
    top, bottom = figure.subfigures(
        2,
        1,
        height_ratios=[
            image_rows * row_height + SECTION_TITLE_HEIGHT,
            candidate_rows * row_height + SECTION_TITLE_HEIGHT,
        ],
    )
    top.suptitle(
        f"Masked positions: right in {correct_color}, wrong in "
        f"{wrong_color} ({int(correct.sum())}/{correct.size} right)"
    )
    image_axes = cells(top, batch, columns)
    for i, axes in enumerate(image_axes):
        show(axes, display[i])
        axes.set_title(f"{int(correct[i].sum())}/{m} right", fontsize=9)
        for j in range(m):
            grid.outline(
                axes,
                decoder_positions[i, j],
                colors[bool(correct[i, j])],
                # The position ranked below stands out.
                linewidth=3.5 if (i, j) == (image_index, position_index)
                else 2.0,
            )
    _draw_candidates(
        bottom,
        display[image_index],
        decoder_positions[image_index],
        scores[image_index, position_index],
        position_index,
        grid,
        colors,
        num_candidates,
        columns,
        title=f"Image {image_index}, position {position_index}",
    )
    return save_figure(figure, path)


def _check_predictions(images, decoder_positions, scores, patch_size):
    """Checks `draw_predictions`' arrays; returns the images' `_PatchGrid`."""
    batch, height, width, channels = images.shape
    if channels not in (1, 3, 4):
        raise ValueError(
            "`images` must have 1, 3 or 4 channels to be drawn. "
            f"Received shape={images.shape}"
        )
    patch_size = check_positive_int("patch_size", patch_size)
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"Argument `patch_size` must divide the image height and width "
            f"({height}x{width}). Received: patch_size={patch_size}"
        )
    num_patches = (height // patch_size) * (width // patch_size)
    decoder_positions = np.asarray(decoder_positions)
    if (
        decoder_positions.ndim != 2
        or len(decoder_positions) != batch
        or decoder_positions.shape[1] < 1
        or not np.issubdtype(decoder_positions.dtype, np.integer)
        or decoder_positions.min() < 0
        or decoder_positions.max() >= num_patches
    ):
        raise ValueError(
            f"`decoder_positions` must be integers in [0, {num_patches}) "
            f"of shape (batch={batch}, M). Received: {decoder_positions!r}"
        )
    m = decoder_positions.shape[1]
    if np.shape(scores) != (batch, m, m):
        raise ValueError(
            f"`scores` must have shape (batch, M, M) = ({batch}, {m}, {m}) "
            f"to match `images` and `decoder_positions`. Received shape="
            f"{np.shape(scores)}"
        )
    return _PatchGrid(patch_size, width // patch_size)


def _draw_candidates(subfigure, image, positions, scores, position_index,
                     grid, colors, num_candidates, columns, title):
    """Draws one query (the image as the encoder sees it) and its ranking."""
    ranking = rank_candidates(scores)
    true_rank = int(np.flatnonzero(ranking == position_index)[0]) + 1
    row, col = divmod(int(positions[position_index]), grid.width)
    subfigure.suptitle(
        f"{title} (grid row {row}, column {col}): candidates by score, "
        f"the true patch ranked {true_rank} of {len(scores)}"
    )
    axes = cells(subfigure, num_candidates + 1, columns)
    masked = image.copy()
    for position in positions:
        masked[grid.slices(position)] = 0.5
    show(axes[0], masked)
    axes[0].set_title("query (encoder's view)", fontsize=9)
    grid.outline(
        axes[0], positions[position_index], colors[true_rank == 1], 3.5
    )
    for rank, k in enumerate(ranking[:num_candidates], start=1):
        show(axes[rank], image[grid.slices(positions[k])])
        is_true = k == position_index
        axes[rank].set_title(
            f"{rank}. {scores[k]:.2f}" + (" true" if is_true else ""),
            fontsize=9,
        )
        if is_true or rank == 1:
            frame(axes[rank], colors[bool(is_true)])


class _PatchGrid:
    """Where the row-major patch positions of an image are, in pixels."""

    def __init__(self, patch_size, width):
        self.patch_size = patch_size
        self.width = width

    def slices(self, position):
        row, col = divmod(int(position), self.width)
        p = self.patch_size
        return (
            slice(row * p, (row + 1) * p),
            slice(col * p, (col + 1) * p),
        )

    def outline(self, axes, position, color, linewidth):
        rows, cols = self.slices(position)
        outline(
            axes, rows.start, cols.start, self.patch_size, self.patch_size,
            color, linewidth,
        )
