"""Pictures of the pretext tasks whose predictions are right or wrong.

Rotation, jigsaw, relative patch location, Exemplar and SimCLR each pick
one answer among a few (an angle, a permutation, a position, a seed image,
a view); their pictures show each image's examples with the answer the
model picks, its title and frame in `correct_color` where it is right and
in `wrong_color` where it is not. `plot_predictions` draws them; each
function here is one method's picture (`register_picture`).

The examples these tasks draw at random (puzzles, pairs, copies, views)
are not all in the model's outputs; the pictures draw them again with the
method's own sampling functions from the state the call drew them from
(`model_outputs(..., replay=...)`), so they are what the model saw.
"""

import numpy as np
from keras import ops

from keras_selfie.data.transforms import NEIGHBOR_OFFSETS
from keras_selfie.visualization.figures import CORRECT_COLOR
from keras_selfie.visualization.figures import WRONG_COLOR
from keras_selfie.visualization.figures import Panel
from keras_selfie.visualization.figures import displayable
from keras_selfie.visualization.figures import draw_panels
from keras_selfie.visualization.figures import right_wrong_colors
from keras_selfie.visualization.predictions import model_outputs
from keras_selfie.visualization.predictions import register_picture

# The grey of the pixels that no tile or patch covers.
BACKGROUND = 0.5
# Outlines of the patches of relative patch location in their image.
CENTRE_COLOR = "deepskyblue"
NEIGHBOR_COLOR = "orange"
TILE_COLOR = "white"


def _summary(correct, correct_color, wrong_color):
    return (
        f"right in {correct_color}, wrong in {wrong_color} "
        f"({int(np.sum(correct))}/{np.size(correct)} right)"
    )


def _predicted(outputs):
    return np.argmax(outputs["logits"], axis=-1)


@register_picture(
    "rotation",
    "each image in its 4 rotations, titled with the angle the model "
    "predicts",
)
def plot_rotation_predictions(
    pretrainer, images, correct_color=CORRECT_COLOR, wrong_color=WRONG_COLOR
):
    """Draws each image in its 4 rotations with the predicted angles.

    One row per image: the image turned by 0, 90, 180 and 270 degrees
    counter-clockwise (as the model turns it), each titled with the angle
    the model predicts for it, in `correct_color` where that is the angle
    it was turned by and in `wrong_color` where it is not.

    Args:
        pretrainer: a `RotationPretrainer`.
        images: `(batch, size, size, channels)` images, checked.
        correct_color, wrong_color: matplotlib colours of the right and
            the wrong predictions.

    Returns:
        A `matplotlib.figure.Figure`, one row of 4 panels per image.

    Example:

    ```python
    plot_predictions(rotation_pretrainer, test_images[:4], path="rot.png")
    ```
    """
    colors = right_wrong_colors(correct_color, wrong_color)
    outputs = model_outputs(pretrainer, images)
    batch = len(images)
    # Row k * batch + i is image i turned by k quarter turns.
    predicted = _predicted(outputs).reshape(-1, batch)
    correct = predicted == outputs["labels"].reshape(-1, batch)
    shown = displayable(images)
    rows = [
        [
            Panel(
                np.rot90(shown[i], turns),
                f"predicted {90 * predicted[turns, i]}°",
                colors[bool(correct[turns, i])],
            )
            for turns in range(len(predicted))
        ]
        for i in range(batch)
    ]
    return draw_panels(
        rows,
        "Each image turned by 0°, 90°, 180° and 270° counter-clockwise, "
        "titled with the angle the model predicts: "
        + _summary(correct, correct_color, wrong_color),
    )


def place_tiles(tiles, offsets, image_shape):
    """Pastes tiles on a grey image, tile `j` with its top-left corner at
    `offsets[j]`.

    Args:
        tiles: `(num_tiles, size, size, channels)`.
        offsets: `(num_tiles, 2)` int `(row, column)` corners.
        image_shape: `(height, width, channels)` of the result.

    Returns:
        A float32 image; pixels no tile covers are `BACKGROUND`.
    """
    image = np.full(image_shape, BACKGROUND, dtype="float32")
    size = tiles.shape[1]
    for tile, (top, left) in zip(tiles, offsets):
        image[top : top + size, left : left + size] = tile
    return image


def solve_jigsaw(shuffled, permutation):
    """Puts shuffled tiles back in their grid order.

    `JigsawPretrainer` shuffles by a permutation `p` that puts tile `p[i]`
    at position `i`; solving by `p` returns the tiles in grid order, by
    another permutation, in another order.

    Args:
        shuffled: `(num_tiles, ...)` tiles in shuffled order.
        permutation: `(num_tiles,)` ints, the permutation taken to have
            shuffled them.

    Returns:
        The tiles reordered: tile `shuffled[i]` at position
        `permutation[i]`.
    """
    return np.asarray(shuffled)[np.argsort(permutation)]


@register_picture(
    "jigsaw",
    "the shuffled tiles, and the tiles put back by the permutation the "
    "model predicts (the solved puzzle)",
)
def plot_jigsaw_predictions(
    pretrainer, images, correct_color=CORRECT_COLOR, wrong_color=WRONG_COLOR
):
    """Draws each image's puzzle and the puzzle solved by the prediction.

    One row per image: the image with its tiles outlined, the tiles
    shuffled by the drawn permutation (each at the place of the grid
    position it was moved to), and the tiles put back by the permutation
    the model predicts: the solved puzzle, which shows the image's tiles
    in their places where the prediction is right (framed in
    `correct_color`), and a scrambled image where it is wrong (framed in
    `wrong_color`). Titles give the permutations' indices in
    `pretrainer.permutations`. Pixels outside the tiles are grey; the
    tiles are shown as cut, before the model's per-tile normalisation.

    Args:
        pretrainer: a `JigsawPretrainer`.
        images: `(batch, height, width, channels)` images, checked.
        correct_color, wrong_color: matplotlib colours of the right and
            the wrong predictions.

    Returns:
        A `matplotlib.figure.Figure`, one row of 3 panels per image.

    Example:

    ```python
    plot_predictions(jigsaw_pretrainer, test_images[:4], path="jigsaw.png")
    ```
    """
    colors = right_wrong_colors(correct_color, wrong_color)
    outputs = model_outputs(pretrainer, images)
    labels, predicted = outputs["labels"], _predicted(outputs)
    permutations = np.asarray(pretrainer.permutations)
    size = pretrainer.tile_size
    shown = displayable(images)
    rows = []
    for i, image in enumerate(shown):
        offsets = outputs["tile_offsets"][i]
        tiles = np.stack(
            [image[top : top + size, left : left + size]
             for top, left in offsets]
        )
        shuffled = tiles[permutations[labels[i]]]
        solved = solve_jigsaw(shuffled, permutations[predicted[i]])
        right = bool(predicted[i] == labels[i])
        rows.append([
            Panel(
                image, "original",
                outlines=[(top, left, size, size, TILE_COLOR)
                          for top, left in offsets],
            ),
            Panel(
                place_tiles(shuffled, offsets, image.shape),
                f"shuffled by {labels[i]}",
            ),
            Panel(
                place_tiles(solved, offsets, image.shape),
                f"solved by {predicted[i]}"
                + ("" if right else f" (true {labels[i]})"),
                colors[right],
            ),
        ])
    return draw_panels(
        rows,
        "Tiles shuffled by a permutation, and put back by the permutation "
        "the model predicts: "
        + _summary(predicted == labels, correct_color, wrong_color),
    )


def neighbor_name(label):
    """`"top left"`, `"top"`, ... `"bottom right"`: where neighbour `label`
    (`NEIGHBOR_OFFSETS[label]`) lies beside the centre patch."""
    row, col = NEIGHBOR_OFFSETS[label]
    names = ({-1: "top", 1: "bottom"}.get(row), {-1: "left", 1: "right"}.get(
        col
    ))
    return " ".join(name for name in names if name)


def neighbor_layout(centre, neighbor, label, gap=1):
    """The 3x3 layout of patches with the centre patch in the middle and
    the neighbour at position `label`, `gap` grey pixels apart.

    Returns:
        `(image, corners)`: the layout as a float32 image, and the top-left
        `(row, column)` of each of the 8 neighbour positions in it.
    """
    size = centre.shape[0]
    step = size + gap
    image = np.full(
        (3 * size + 2 * gap, 3 * size + 2 * gap, centre.shape[-1]),
        BACKGROUND, dtype="float32",
    )
    corners = [((row + 1) * step, (col + 1) * step)
               for row, col in NEIGHBOR_OFFSETS]
    image[step : step + size, step : step + size] = centre
    top, left = corners[label]
    image[top : top + size, left : left + size] = neighbor
    return image, corners


@register_picture(
    "relative_patch_location",
    "the centre patch and its neighbour, and the neighbour where the model "
    "places it on the 3x3 grid",
)
def plot_relative_patch_location_predictions(
    pretrainer, images, correct_color=CORRECT_COLOR, wrong_color=WRONG_COLOR
):
    """Draws each image's pair of patches and where the model places them.

    One row per image: the image with its centre patch (outlined in
    `CENTRE_COLOR`) and neighbour (`NEIGHBOR_COLOR`), the two patches,
    and the 3x3 layout with the neighbour put at the position the model
    predicts, framed in `correct_color` where that is right and in
    `wrong_color` where it is not (the true position then outlined in
    `correct_color`). With `all_neighbors`, image `i` shows its pair with
    neighbour `i % 8`. The patches are shown as cut, before the colour
    guard the model applies.

    Args:
        pretrainer: a `RelativePatchLocationPretrainer`.
        images: `(batch, height, width, channels)` images, checked.
        correct_color, wrong_color: matplotlib colours of the right and
            the wrong predictions.

    Returns:
        A `matplotlib.figure.Figure`, one row of 4 panels per image.

    Example:

    ```python
    plot_predictions(patch_pretrainer, test_images[:4], path="rpl.png")
    ```
    """
    colors = right_wrong_colors(correct_color, wrong_color)
    batch = len(images)
    outputs, pairs = model_outputs(
        pretrainer, images, replay=lambda: pretrainer.sample_pairs(batch)
    )
    labels, predicted = outputs["labels"], _predicted(outputs)
    size = pretrainer.patch_size
    shown = displayable(images)
    rows, correct = [], []
    for i, image in enumerate(shown):
        # The pairs are neighbour-major with `all_neighbors`.
        pair = (i % len(NEIGHBOR_OFFSETS)) * batch + i if (
            pretrainer.all_neighbors
        ) else i
        (top, left), (n_top, n_left) = pairs["centre"][pair], pairs[
            "neighbor"
        ][pair]
        centre = image[top : top + size, left : left + size]
        neighbor = image[n_top : n_top + size, n_left : n_left + size]
        label, guess = int(labels[pair]), int(predicted[pair])
        layout, corners = neighbor_layout(centre, neighbor, guess)
        correct.append(guess == label)
        rows.append([
            Panel(
                image, "centre and neighbour",
                outlines=[(top, left, size, size, CENTRE_COLOR),
                          (n_top, n_left, size, size, NEIGHBOR_COLOR)],
            ),
            Panel(centre, "centre"),
            Panel(neighbor, f"neighbour: {neighbor_name(label)}"),
            Panel(
                layout, f"predicted: {neighbor_name(guess)}",
                colors[guess == label],
                outlines=[] if guess == label
                else [(*corners[label], size, size, correct_color)],
            ),
        ])
    return draw_panels(
        rows,
        "A centre patch and one of its 8 neighbours, and the neighbour "
        "where the model places it: "
        + _summary(correct, correct_color, wrong_color),
    )


def _copies(pretrainer, images, count):
    # The images as a copying task's `call` prepares them: scaled, in its
    # transformation dtype, tiled `count` times (copy-major).
    prepared = ops.cast(
        pretrainer.preprocess(images), pretrainer.transform_dtype
    )
    return ops.tile(prepared, (count, 1, 1, 1))


@register_picture(
    "exemplar",
    "the transformed copies of each image, each titled with the seed image "
    "(surrogate class) the model predicts for it",
)
def plot_exemplar_predictions(
    pretrainer,
    images,
    surrogate_labels=None,
    correct_color=CORRECT_COLOR,
    wrong_color=WRONG_COLOR,
):
    """Draws each image's transformed copies and their predicted seeds.

    One row per image: the image, then its `transformations_per_image`
    transformed copies, each titled with the surrogate class the model
    predicts for it. With `classifier="batch"` the classes are the images
    of the copy's group of `num_exemplars` consecutive images, and the
    title names the predicted image by its index among `images` (the
    number of images must be a multiple of `num_exemplars`); otherwise it
    names the class. Where the true class is known (`"batch"`, or
    `surrogate_labels` given), titles and frames are in `correct_color`
    or `wrong_color`.

    Args:
        pretrainer: an `ExemplarPretrainer`.
        images: `(batch, height, width, channels)` images, checked.
        surrogate_labels: optional `(batch,)` ints, the images' surrogate
            classes (the seed numbers of `data.exemplar_dataset`), for
            the parametric and memory-bank classifiers.
        correct_color, wrong_color: matplotlib colours of the right and
            the wrong predictions.

    Returns:
        A `matplotlib.figure.Figure`, one row of `1 +
        transformations_per_image` panels per image.

    Example:

    ```python
    plot_predictions(
        exemplar_pretrainer, seed_images[:4], surrogate_labels=[0, 1, 2, 3]
    )
    ```
    """
    colors = right_wrong_colors(correct_color, wrong_color)
    batch, copies = len(images), pretrainer.transformations_per_image
    call_arguments = {} if surrogate_labels is None else {
        "surrogate_labels": np.asarray(surrogate_labels, "int32")
    }
    outputs, transformed = model_outputs(
        pretrainer, images,
        replay=lambda: pretrainer.transform(
            _copies(pretrainer, images, copies),
            pretrainer.sample_transformations(batch),
        ),
        **call_arguments,
    )
    # Row k * batch + i is the k-th copy of image i.
    predicted = _predicted(outputs).reshape(copies, batch)
    labels = outputs.get("labels")
    correct = None if labels is None else (
        predicted == labels.reshape(copies, batch)
    )
    group = pretrainer.num_exemplars
    shown = displayable(images)
    rows = []
    for i in range(batch):
        row = [Panel(shown[i], f"image {i}")]
        for k in range(copies):
            guess = predicted[k, i]
            row.append(Panel(
                transformed[k * batch + i],
                f"predicted: image {i - i % group + guess}"
                if pretrainer.classifier == "batch"
                else f"predicted: class {guess}",
                None if correct is None else colors[bool(correct[k, i])],
            ))
        rows.append(row)
    return draw_panels(
        rows,
        "Transformed copies of each image, titled with the seed the model "
        "predicts"
        + ("" if correct is None else ": " + _summary(
            correct, correct_color, wrong_color
        )),
    )


@register_picture(
    "simclr",
    "the two views of each image, and the view each of them matched among "
    "all views",
)
def plot_simclr_predictions(
    pretrainer, images, correct_color=CORRECT_COLOR, wrong_color=WRONG_COLOR
):
    """Draws each image's two views and the view each one matched.

    One row per image: the image, its first view, the view the first view
    is most similar to among the other `2 * batch - 1` views, its second
    view, and the view that one matched. A match is right, in
    `correct_color`, when it is the other view of the same image, and
    wrong, in `wrong_color`, otherwise; its title names the image and view
    it is (`"image 3 view 2"`).

    Args:
        pretrainer: a `SimCLRPretrainer`.
        images: `(batch, height, width, channels)` images, checked; at
            least 2 for a choice among views.
        correct_color, wrong_color: matplotlib colours of the right and
            the wrong predictions.

    Returns:
        A `matplotlib.figure.Figure`, one row of 5 panels per image.

    Example:

    ```python
    plot_predictions(simclr_pretrainer, test_images[:4], path="simclr.png")
    ```
    """
    colors = right_wrong_colors(correct_color, wrong_color)
    batch = len(images)
    outputs, views = model_outputs(
        pretrainer, images,
        replay=lambda: pretrainer.augment(
            _copies(pretrainer, images, 2),
            pretrainer.sample_views(batch),
        ),
    )
    # Row (and column) v * batch + i is view v + 1 of image i.
    matched = _predicted(outputs)
    correct = matched == outputs["labels"]
    shown = displayable(images)
    rows = []
    for i in range(batch):
        row = [Panel(shown[i], f"image {i}")]
        for view in (i, batch + i):
            match = matched[view]
            row += [
                Panel(views[view], f"view {view // batch + 1}"),
                Panel(
                    views[match],
                    f"image {match % batch} view {match // batch + 1}",
                    colors[bool(correct[view])],
                ),
            ]
        rows.append(row)
    return draw_panels(
        rows,
        "Two views of each image, each followed by the view it is most "
        "similar to among all others, titled with its image and view "
        "(right: the other view of the same image): "
        + _summary(correct, correct_color, wrong_color),
    )
