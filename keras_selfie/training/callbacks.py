"""Callbacks that make a training run survive being killed.

`training_callbacks(output_dir)` gives the standard set of the command line
and the examples: a backup for resuming (`BackupAndRestore`, which also
keeps the random state), the last completed epoch as a `.keras` file
(`ModelCheckpoint`), a stop at the first NaN loss, the per-epoch log in a CSV file that
survives restarts (`CSVLogger(append=True)`) and, optionally, TensorBoard.
`StepTimer` measures the training speed of such a run, across restarts.
"""

import json
import os
import time

import keras
import numpy as np

from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int

BACKUP_DIR = "backup"
CHECKPOINT_PATH = os.path.join("checkpoints", "last.keras")
HISTORY_CSV = "history.csv"
TENSORBOARD_DIR = "logs"


def random_state_variables(model):
    """The model's `SeedGenerator` states (split sampling, dropout).

    They are variables of `model.variables` that are not weights, so
    `model.save_weights` leaves them out.
    """
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that also restores random state.

    Keras' callback backs up the weights and the optimizer's state (its
    variables, the step counter `iterations` included) and the epoch, and a
    restarted `fit()` resumes at the epoch after the last backup. It does not
    back up the states of the model's `keras.random.SeedGenerator`s, so a
    resumed `SelfiePretrainer` would draw its encoder/decoder splits and
    dropout masks from the start of their sequences again. This callback
    writes them beside the weights (`random_state.npz`) and restores them,
    so that a resumed run draws what an uninterrupted one would.

    The input pipeline restarts too; `backup_epoch(backup_dir)` tells how
    many epochs to skip (`dataset.skip(epoch * steps_per_epoch)` on a
    repeated, seeded dataset gives the batches an uninterrupted run sees).

    Keras restores the epoch, not the batch: with an integer `save_freq`,
    a run killed inside an epoch repeats that epoch from its first batch,
    starting from the weights of the last backup (`"epoch"` backups resume
    exactly).

    Args: those of `keras.callbacks.BackupAndRestore`.
    """

    def _random_state_path(self):
        return os.path.join(self.backup_dir, "random_state.npz")

    def _save_model(self):
        super()._save_model()
        states = random_state_variables(self.model)
        np.savez(
            self._random_state_path(),
            **{f"{i}": keras.ops.convert_to_numpy(v)
               for i, v in enumerate(states)},
        )

    def _load_model(self):
        super()._load_model()
        path = self._random_state_path()
        if not os.path.exists(path):
            return
        states = random_state_variables(self.model)
        with np.load(path) as saved:
            if len(saved.files) != len(states):
                raise ValueError(
                    f"The backup in {self.backup_dir!r} holds "
                    f"{len(saved.files)} random states, but the model has "
                    f"{len(states)}: it was written by another model. Start "
                    "over without it (delete the folder)."
                )
            for i, variable in enumerate(states):
                variable.assign(saved[f"{i}"])


class CSVLogger(keras.callbacks.CSVLogger):
    """`keras.callbacks.CSVLogger` whose columns stay fixed across restarts.

    Keras' logger takes its columns from the first epoch's logs, so a value
    logged only on some epochs (`KNNMonitor`'s `knn_accuracy`) is lost when
    the first epoch lacks it, and a resumed run appending to the file may
    write other columns than its header. This one takes the columns of an
    existing file's header, else those of the first epoch plus `keys`;
    a value missing in an epoch is written as `NA`.

    Args:
        filename: the CSV file.
        separator: the column separator.
        append: bool, whether to append to an existing file.
        keys: names of values that some epochs log (e.g.
            `("knn_accuracy",)`).
    """

    def __init__(self, filename, separator=",", append=False, keys=()):
        super().__init__(filename, separator=separator, append=append)
        self.extra_keys = tuple(keys)

    def _header(self):
        if not (self.append and os.path.exists(self.filename)):
            return None
        with open(self.filename) as file:
            line = file.readline().strip()
        return line.split(self.sep)[1:] if line else None

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = self._header() or sorted(
                set(logs or {}) | set(self.extra_keys)
            )
        super().on_epoch_end(epoch, logs)


class DivergenceError(RuntimeError):
    """Raised by `TerminateOnNaN` when the loss becomes NaN or infinite."""


class TerminateOnNaN(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss, with a message.

    Unlike `keras.callbacks.TerminateOnNaN` (which lets `fit` end normally
    before Keras 3.11), it raises `DivergenceError`, so `fit` stops at once:
    no callback's end-of-epoch or end-of-training step runs, and the backup
    of `BackupAndRestore` and the last `ModelCheckpoint` keep the weights
    of before the divergence.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            step = int(self.model.optimizer.iterations.numpy())
            raise DivergenceError(
                f"The loss became {float(loss)} at batch {batch + 1} of an "
                f"epoch (step {step}): training diverged and was stopped. "
                "Lower the learning rate; a backup of before the divergence "
                "is kept, so rerunning resumes from it."
            )


class StepTimer(keras.callbacks.Callback):
    """Times every training step; reports the median, robust to pauses.

    The time of a step runs from `on_train_batch_begin` to
    `on_train_batch_end`: the step itself and the wait for its batch (Keras
    draws the batch inside the step function), not the callbacks' and the
    epochs' ends (backups, logs, evaluations). The first step of every
    `fit` call traces and compiles the step function, and is left out. The
    median over the other steps (`median_step_seconds`) is what a step
    costs: a process paused or slowed for a while (the machine shared, a
    laptop asleep) lengthens a few steps, which the median ignores, where
    the run's wall time divided by its steps would count them all.

    With `path`, the times of each finished epoch are written to that JSON
    file and read back when the callback is made: a run resumed from a
    backup (`training_callbacks`) keeps the times of the epochs done before
    it was killed, and an epoch done again replaces its earlier times.

    Args:
        path: `None`, or the JSON file keeping the times by epoch.
        skip_first: int >= 0, steps left out at the start of every `fit`
            call.

    Example:

    ```python
    timer = StepTimer()
    pretrainer.fit(train, epochs=2, steps_per_epoch=50, callbacks=[timer])
    images_per_second = batch_size / timer.median_step_seconds()
    ```
    """

    def __init__(self, path=None, skip_first=1):
        super().__init__()
        check_non_negative("skip_first", skip_first, integer=True)
        self.path = None if path is None else os.fspath(path)
        self.skip_first = skip_first
        # Epoch (0-based) -> seconds of each timed step.
        self.seconds = {}
        if self.path is not None and os.path.exists(self.path):
            with open(self.path) as file:
                saved = json.load(file)
            self.seconds = {int(epoch): times for epoch, times in
                            saved.items()}
        self._epoch = 0
        self._start = None
        self._steps_in_fit = 0

    def on_train_begin(self, logs=None):
        self._steps_in_fit = 0

    def on_epoch_begin(self, epoch, logs=None):
        # A resumed `fit` starts at the backed-up epoch: its number here.
        self._epoch = epoch
        self.seconds[epoch] = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        seconds = time.perf_counter() - self._start
        self._steps_in_fit += 1
        if self._steps_in_fit > self.skip_first:
            self.seconds.setdefault(self._epoch, []).append(seconds)

    def on_epoch_end(self, epoch, logs=None):
        if self.path is None:
            return
        temporary = self.path + ".tmp"
        with open(temporary, "w") as file:
            json.dump({str(k): v for k, v in sorted(self.seconds.items())},
                      file)
        os.replace(temporary, self.path)

    def step_seconds(self):
        """The timed steps' seconds, in order, of every epoch recorded."""
        return [s for _, times in sorted(self.seconds.items()) for s in times]

    def median_step_seconds(self):
        """The median seconds of a timed step; `None` before any."""
        times = self.step_seconds()
        return float(np.median(times)) if times else None


def backup_epoch(backup_dir):
    """The epoch a run resumes at from `backup_dir`, or 0 without a backup.

    Args:
        backup_dir: the `backup_dir` of a `BackupAndRestore` callback.

    Returns:
        int, the number of completed epochs the backup holds.
    """
    path = os.path.join(backup_dir, "training_metadata.json")
    weights = os.path.join(backup_dir, "latest.weights.h5")
    if not (os.path.exists(path) and os.path.exists(weights)):
        return 0
    with open(path) as file:
        return int(json.load(file)["epoch"])


def training_callbacks(
    output_dir,
    backup_every_steps=None,
    monitors=(),
    log_keys=(),
    checkpoint=True,
    tensorboard=False,
):
    """The standard callbacks of a resumable training run in `output_dir`.

    - `monitors`, callbacks that add values to the epoch's logs (e.g.
      `KNNMonitor`), first, so that the others see their values.
    - `BackupAndRestore(output_dir/backup)` (this module's, which keeps the
      random state too), every epoch or every `backup_every_steps` steps;
      the backup is deleted when `fit()` completes.
    - `ModelCheckpoint(output_dir/checkpoints/last.keras)`: the model
      (`.keras`, optimizer included) after each completed epoch, which
      stays.
    - `TerminateOnNaN` (this module's): raises `DivergenceError` at the
      first NaN loss, leaving the backup and the checkpoint as they were.
    - `CSVLogger(output_dir/history.csv, append=True, keys=log_keys)`
      (this module's): one row per epoch, kept across restarts (see
      `history.trim_history`).
    - `TensorBoard(output_dir/logs)` if `tensorboard=True`.

    Args:
        output_dir: folder of the run (created if missing).
        backup_every_steps: `None` (back up at the end of every epoch) or a
            positive int (every that many steps; a restart then repeats the
            interrupted epoch from its start, see `BackupAndRestore`).
        checkpoint: bool, whether to add the `ModelCheckpoint`.
        tensorboard: bool, whether to add the `TensorBoard` callback.

    Returns:
        A list of `keras.callbacks.Callback`.

    Example:

    ```python
    callbacks = training_callbacks("runs/selfie")
    start = backup_epoch("runs/selfie/backup") * steps_per_epoch
    pretrainer.fit(train.skip(start), epochs=10, steps_per_epoch=100,
                   callbacks=callbacks)
    ```
    """
    output_dir = os.fspath(output_dir)
    save_freq = "epoch"
    if backup_every_steps is not None:
        save_freq = check_positive_int(
            "backup_every_steps", backup_every_steps
        )
    os.makedirs(output_dir, exist_ok=True)
    # The log before the backup: a run killed between the two logs an
    # epoch twice, which `trim_history` repairs, rather than not at all.
    callbacks = list(monitors) + [
        TerminateOnNaN(),
        CSVLogger(
            os.path.join(output_dir, HISTORY_CSV), append=True,
            keys=log_keys,
        ),
        BackupAndRestore(
            os.path.join(output_dir, BACKUP_DIR),
            save_freq=save_freq,
            delete_checkpoint=True,
        ),
    ]
    if checkpoint:
        path = os.path.join(output_dir, CHECKPOINT_PATH)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(path))
    if tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(
                os.path.join(output_dir, TENSORBOARD_DIR)
            )
        )
    return callbacks
