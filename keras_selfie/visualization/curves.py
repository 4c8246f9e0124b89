"""Training curves of a pretraining run: loss and every metric logged."""

import math

import keras
import numpy as np

from keras_selfie.visualization.figures import new_figure
from keras_selfie.visualization.figures import save_figure

# Logged values that are not metrics of the run, never drawn.
NOT_METRICS = ("epoch", "learning_rate", "lr")
# Panel titles that the key does not spell well; others: "Patch accuracy"
# from `patch_accuracy`.
TITLES = {"knn_accuracy": "kNN accuracy"}
_PANEL_SIZE = (4.0, 3.2)


def plot_training_curves(history, path=None):
    """Draws the training curves of a pretraining run, one panel a metric.

    One panel for the loss and one for each other metric in the history, in
    the history's order (whatever the pretext task logs: `patch_accuracy`,
    `pretext_accuracy`, `knn_accuracy`, ...), with its `val_` twin where
    that is present, each line labelled with its key, against the epoch
    (counted from 1, as `fit` prints it). `epoch` and the learning rate are
    not drawn. The loss is drawn on a log scale when positive:
    the first epochs' validation loss can be orders of magnitude above the
    rest while batch normalisation's moving statistics catch up.

    A metric evaluated only on some epochs (`KNNMonitor(every_n_epochs=5)`,
    `fit(validation_freq=5)`) is given either as one value per epoch with
    `None` (or NaN) where it was not evaluated, or as a dict mapping the
    0-based epoch to the value, such as `KNNMonitor.results`. `History`
    keeps only the evaluated values, without their epochs, so a list
    shorter than the number of epochs raises `ValueError` instead of being
    drawn at guessed epochs.

    Args:
        history: a `keras.callbacks.History` (what `fit` returns) or a dict
            of lists, such as `History.history`.
        path: optional file path; the figure is written there as a PNG.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    ```python
    monitor = keras_selfie.evaluation.KNNMonitor(train, test, every_n_epochs=5)
    history = pretrainer.fit(data, epochs=50, callbacks=[monitor])
    plot_training_curves(
        {**history.history, "knn_accuracy": monitor.results},
        path="curves.png",
    )
    ```
    """
    if isinstance(history, keras.callbacks.History):
        history = history.history
    if not isinstance(history, dict):
        raise ValueError(
            "Argument `history` must be a `keras.callbacks.History` or a "
            "dict of lists such as `History.history`. "
            f"Received: history={history!r}"
        )
    present = _metrics(history)
    if not present:
        raise ValueError(
            "Argument `history` holds no metric to draw (only "
            f"{list(NOT_METRICS)} or nothing). Received keys: "
            f"{sorted(history)}"
        )
    num_epochs = max(
        _num_epochs(history[name])
        for key, _ in present
        for name in (key, f"val_{key}")
        if name in history
    )
    if num_epochs == 0:
        raise ValueError(
            "Argument `history` is empty: no epoch has a value. "
            f"Received: history={history!r}"
        )
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(_PANEL_SIZE[0] * len(present), _PANEL_SIZE[1])
    panels = figure.subplots(1, len(present), squeeze=False)[0]
    for axes, (key, title) in zip(panels, present):
        lowest = np.inf
        for name in (key, f"val_{key}"):
            if name not in history:
                continue
            epochs, values = _by_epoch(history, name, num_epochs)
            lowest = min(lowest, values.min(initial=np.inf))
            # Sparse series (kNN every few epochs) need markers to show.
            axes.plot(
                epochs, values, label=name,
                marker="o" if len(epochs) < max(num_epochs, 2) else None,
            )
        if key == "loss" and lowest > 0:
            # The first epochs' validation loss can be 1e10 (batch norm's
            # moving statistics catching up); a log scale keeps the rest
            # readable.
            axes.set_yscale("log")
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    return save_figure(figure, path)


def _metrics(history):
    """`(key, title)` of the panels: the loss first, then the others."""
    keys = []
    for name in history:
        key = name[len("val_"):] if name.startswith("val_") else name
        if key not in NOT_METRICS and key not in keys:
            keys.append(key)
    keys.sort(key=lambda key: key != "loss")  # stable: the rest in order
    return [
        (key, TITLES.get(key, key.replace("_", " ").capitalize()))
        for key in keys
    ]


def _num_epochs(values):
    """The epochs a series spans: its length, or its last epoch + 1."""
    if isinstance(values, dict):
        return max(values, default=-1) + 1
    return len(values)


def _by_epoch(history, name, num_epochs):
    """Returns the 1-based epochs that have a value of `name`, and those."""
    values = history[name]
    if isinstance(values, dict):
        pairs = sorted(values.items())
    else:
        values = list(values)
        if len(values) != num_epochs:
            raise ValueError(
                f"`history[{name!r}]` has {len(values)} values for "
                f"{num_epochs} epochs, so the epochs they belong to are "
                "unknown. Give one value per epoch (None where it was not "
                "evaluated) or a dict {epoch: value} with 0-based epochs, "
                "such as `KNNMonitor.results`."
            )
        pairs = enumerate(values)
    pairs = [
        (epoch + 1, float(value)) for epoch, value in pairs
        if value is not None and not math.isnan(float(value))
    ]
    epochs = np.array([epoch for epoch, _ in pairs], dtype="int64")
    return epochs, np.array([value for _, value in pairs], dtype="float64")
