"""What every picture of the package shares: resolution, saving, colours,
the images' display scale, and rows of titled panels (`draw_panels`).

Figures are made with `matplotlib.figure.Figure`, matplotlib's object API,
never with `pyplot`: they need no display and no backend switch (saving as
PNG goes through Agg), leave the user's chosen backend alone, and are freed
like any Python object instead of piling up in pyplot's list of open
figures.

matplotlib is imported by the functions that draw, not with the package,
so that `import keras_selfie` does not load it.
"""

import collections
import io
import itertools
import math
import textwrap

import keras
import numpy as np

from keras_selfie.utils.validation import check_image_dtype
from keras_selfie.utils.validation import check_image_shape

# Dots per inch of every PNG written, to a file or to TensorBoard.
DPI = 100
# Side of one image cell in a figure, in inches; a title line above it adds
# `TITLE_HEIGHT`, a figure's or section's title `SECTION_TITLE_HEIGHT` a
# line.
CELL = 1.6
TITLE_HEIGHT = 0.45
SECTION_TITLE_HEIGHT = 0.35
# Colours of right and wrong predictions, unless told otherwise.
CORRECT_COLOR = "limegreen"
WRONG_COLOR = "red"
# Characters of a figure title per inch of width, before it wraps.
_TITLE_CHARACTERS_PER_INCH = 13


def new_figure(width, height):
    """Returns an empty `Figure` of `width` x `height` inches.

    Its PNG (`save_figure`, `figure_to_png`) measures
    `round(width * DPI)` x `round(height * DPI)` pixels. Its axes are laid
    out by matplotlib's constrained layout, which fits titles and labels
    without overlap.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def figure_to_png(figure):
    """Returns the PNG encoding of `figure` at `DPI`, as bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def save_figure(figure, path):
    """Writes `figure` as a PNG to `path` (skipped if `None`); returns it."""
    if path is not None:
        figure.savefig(path, format="png", dpi=DPI)
    return figure


def check_color(name, value):
    """Returns `value` if matplotlib reads it as a colour, else raises."""
    import matplotlib.colors

    if not matplotlib.colors.is_color_like(value):
        raise ValueError(
            f"Argument `{name}` must be a matplotlib colour (a name such as "
            f"'red', a hex string such as '#ff0000', or an RGB tuple). "
            f"Received: {name}={value!r}"
        )
    return value


def right_wrong_colors(correct_color, wrong_color):
    """`{True: correct_color, False: wrong_color}`, both checked."""
    return {
        True: check_color("correct_color", correct_color),
        False: check_color("wrong_color", wrong_color),
    }


def to_image_array(images, expected=None):
    """Returns `images` as a NumPy array after checking it, for drawing.

    Args:
        images: a non-empty `(batch, height, width, channels)` uint8 or
            float array or tensor.
        expected: optional `(height, width, channels)` it must match.
    """
    images = keras.ops.convert_to_numpy(images)
    check_image_shape("images", images.shape, expected)
    check_image_dtype("images", images.dtype)
    if len(images) == 0:
        raise ValueError(
            "`images` must hold at least one image. "
            f"Received shape={images.shape}"
        )
    return images


def displayable(images):
    """Float images in [0, 1] for `imshow`: uint8 / 255, others stretched.

    Float images already within [0, 1] are kept; others (e.g. standardised
    ones) are scaled per image from their minimum to their maximum, since
    `imshow` would clip them.
    """
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    images = images.astype("float32")
    if images.min() >= 0 and images.max() <= 1:
        return images
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    return (images - low) / np.maximum(high - low, 1e-12)


def show(axes, image):
    """Draws one `(height, width, channels)` image in [0, 1], pixel for
    pixel (no smoothing), without ticks; one channel is drawn in grey."""
    if image.shape[-1] == 1:
        axes.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1,
                    interpolation="nearest")
    else:
        axes.imshow(image, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])


def cells(subfigure, count, columns):
    """Returns `count` axes in rows of `columns`; the rest are hidden."""
    rows = math.ceil(count / columns)
    axes = subfigure.subplots(rows, columns, squeeze=False).ravel()
    for unused in axes[count:]:
        unused.set_axis_off()
    return axes[:count]


def frame(axes, color, linewidth=4):
    """Draws the border of `axes` in `color`."""
    for spine in axes.spines.values():
        spine.set_color(color)
        spine.set_linewidth(linewidth)


def outline(axes, top, left, height, width, color, linewidth=2.0):
    """Outlines the pixels `[top, top + height) x [left, left + width)` of
    the image shown in `axes`."""
    from matplotlib.patches import Rectangle

    # Pixel centres sit on integers in `imshow`: edges are at -0.5.
    axes.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5), width, height,
            fill=False, edgecolor=color, linewidth=linewidth,
        )
    )


# One cell of `draw_panels`. `image`: `(height, width, channels)` floats,
# drawn clipped to [0, 1]. `title`: the line above it. `color`: `None`, or
# the colour of the title and of a frame around the image (a right or wrong
# prediction). `outlines`: `(top, left, height, width, colour)` rectangles
# drawn on the image, in its pixels.
Panel = collections.namedtuple(
    "Panel", ["image", "title", "color", "outlines"],
    defaults=("", None, ()),
)


def draw_panels(rows, title):
    """Draws rows of `Panel`s, one row a line, under a figure title.

    The pictures of the pretext tasks other than Selfie are drawn this way:
    one row per image, one panel per thing to see (views, inputs,
    predictions). Every panel's image is shown clipped to [0, 1]; a
    shorter row leaves its last cells empty.

    Args:
        rows: a non-empty list of non-empty lists of `Panel`s.
        title: str, the figure's title, wrapped to the figure's width.

    Returns:
        The `matplotlib.figure.Figure`, `max(len(row)) * CELL` inches wide.

    Example:

    ```python
    figure = draw_panels(
        [[Panel(image, "original"), Panel(predicted, "predicted", "red")]],
        "What the model predicts",
    )
    ```
    """
    columns = max(len(row) for row in rows)
    title = textwrap.fill(
        title, int(columns * CELL * _TITLE_CHARACTERS_PER_INCH)
    )
    figure = new_figure(
        columns * CELL,
        len(rows) * (CELL + TITLE_HEIGHT)
        + (title.count("\n") + 1) * SECTION_TITLE_HEIGHT,
    )
    figure.suptitle(title, fontsize=10)
    grid = figure.subplots(len(rows), columns, squeeze=False)
    for axes_row, row in zip(grid, rows):
        for axes, panel in itertools.zip_longest(axes_row, row):
            if panel is None:
                axes.set_axis_off()
                continue
            show(axes, np.clip(np.asarray(panel.image, "float32"), 0, 1))
            axes.set_title(
                panel.title, fontsize=9, color=panel.color or "black"
            )
            if panel.color is not None:
                frame(axes, panel.color)
            for top, left, height, width, color in panel.outlines:
                outline(axes, top, left, height, width, color)
    return figure
