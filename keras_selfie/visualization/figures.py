"""What every picture of the package shares: resolution, saving, colours.

Figures are made with `matplotlib.figure.Figure`, matplotlib's object API,
never with `pyplot`: they need no display and no backend switch (saving as
PNG goes through Agg), leave the user's chosen backend alone, and are freed
like any Python object instead of piling up in pyplot's list of open
figures.

matplotlib is imported by the functions that draw, not with the package,
so that `import keras_selfie` does not load it.
"""

import io

# Dots per inch of every PNG written, to a file or to TensorBoard.
DPI = 100


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
