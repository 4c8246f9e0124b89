"""The per-epoch log of a run, read back from `CSVLogger`'s file."""

import csv
import os


def read_history(path):
    """Reads a `keras.callbacks.CSVLogger` file into a history dict.

    Args:
        path: the CSV file (one row per epoch, an `epoch` column first).

    Returns:
        A dict `{column: [value per epoch]}` like `History.history`, with
        `"epoch"` holding the 0-based epoch numbers; a value missing in a
        row (e.g. `knn_accuracy` on epochs without a kNN evaluation) is
        `None`; columns without any value are left out. An empty dict when
        the file does not exist.
    """
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        return {}
    history = {}
    for column in rows[0]:
        values = [
            None if row.get(column) in (None, "", "NA") else
            float(row[column])
            for row in rows
        ]
        # `CSVLogger` adds `val_*` columns of "NA" when there is no
        # validation data.
        if any(value is not None for value in values):
            history[column] = values
    history["epoch"] = [int(epoch) for epoch in history["epoch"]]
    return history


def trim_history(path, epochs):
    """Keeps the rows of the first `epochs` epochs of a `CSVLogger` file.

    A run killed after logging an epoch but before backing it up logs that
    epoch again when it resumes; trimming the log to the backed-up epochs
    before resuming keeps one row per epoch.

    Args:
        path: the CSV file; nothing happens when it does not exist.
        epochs: int >= 0, the number of epochs to keep (rows whose `epoch`
            is smaller).

    Returns:
        The number of rows removed.
    """
    if not os.path.exists(path):
        return 0
    with open(path, newline="") as file:
        lines = file.read().splitlines(keepends=True)
    if not lines:
        return 0
    header, body = lines[0], lines[1:]
    kept = [
        line for line in body
        if line.strip() and int(line.split(",", 1)[0]) < epochs
    ]
    with open(path, "w", newline="") as file:
        file.writelines([header] + kept if kept else [])
    return len(body) - len(kept)
