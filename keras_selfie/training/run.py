"""One pretraining run, from a preset to a saved model: `run_pretraining`.

The command line (`keras-selfie pretrain`) and the examples
(`examples/pretrain_cifar10.py`, `examples/reproduce_table1.py`) all run
this one sequence: seeds, strategy, the chief's or a worker's output
folder, resume bookkeeping (the backed-up epoch, the log trimmed to it, the
batches already seen skipped), the model built and compiled from a preset,
the callbacks, `fit`, and the saved model and per-epoch history.
"""

import dataclasses
import json
import os
import shutil
import time

import tensorflow as tf

from keras_selfie import optimizers
from keras_selfie import presets
from keras_selfie.training.callbacks import BACKUP_DIR
from keras_selfie.training.callbacks import HISTORY_CSV
from keras_selfie.training.callbacks import backup_epoch
from keras_selfie.training.callbacks import training_callbacks
from keras_selfie.training.history import read_history
from keras_selfie.training.history import trim_history
from keras_selfie.training.inputs import num_batches
from keras_selfie.training.inputs import pretraining_batches
from keras_selfie.training.seeding import set_seed
from keras_selfie.utils.distribution import get_strategy
from keras_selfie.utils.validation import check_non_negative


def pretrainer_file(method="selfie"):
    """The file name `run_pretraining` saves a method's model under:
    `selfie_pretrainer.keras`, `rotation_pretrainer.keras`, ..."""
    return f"{method}_pretrainer.keras"


HISTORY_JSON = "history.json"
CURVES_FILE = "training_curves.png"


def build_pretrainer(preset="cpu", method="selfie", **config):
    """A pretrainer from a preset, with some arguments overridden.

    Args:
        preset: a name from `keras_selfie.presets.list()` or a folder
            written by `save_to_preset` (its weights are loaded).
        method: a name from `keras_selfie.methods.list()`: the pretext
            task, whose class takes the preset's backbone and the arguments
            it has.
        **config: constructor arguments overriding the preset's; those set
            to `None` keep the preset's value (or the model's default where
            the preset says nothing).

    Returns:
        A `keras_selfie.Pretrainer`, not compiled.
    """
    from keras_selfie import methods

    overrides = {k: v for k, v in config.items() if v is not None}
    return methods.get(method).from_preset(preset, **overrides)


def run_output_dir(output_dir, strategy):
    """Where this process writes: `output_dir`, or `output_dir/workerN`
    for worker `N > 0` of a `MultiWorkerMirroredStrategy`.

    Every worker saves (the saves hold collective ops), but only the chief
    (worker 0) writes to `output_dir`.
    """
    output_dir = os.fspath(output_dir)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        task = strategy.cluster_resolver.task_id
        if task:
            return os.path.join(output_dir, f"worker{task}")
    return output_dir


@dataclasses.dataclass
class PretrainingRun:
    """What `run_pretraining` did.

    Attributes:
        pretrainer: the trained `keras_selfie.Pretrainer`.
        history: per-epoch values (`loss`, `patch_accuracy`, and what the
            monitors logged), every epoch of the run, those done before a
            resume included.
        output_dir: the folder this process wrote to.
        epochs, steps_per_epoch, batch_size: the run's budget.
        resumed_at_epoch: epochs a backup held when this call started.
        seconds: wall time of `fit` in this call.
        files: what the run wrote, description -> path.
    """

    pretrainer: object
    history: dict
    output_dir: str
    epochs: int
    steps_per_epoch: int
    batch_size: int
    resumed_at_epoch: int
    seconds: float
    files: dict

    @property
    def steps(self):
        """Training steps of the whole run."""
        return self.epochs * self.steps_per_epoch


def run_pretraining(
    images,
    output_dir,
    preset="cpu",
    method="selfie",
    config=None,
    epochs=None,
    steps_per_epoch=None,
    batch_size=None,
    optimizer=None,
    learning_rate=None,
    weight_decay=None,
    warmup_epochs=None,
    seed=0,
    deterministic=False,
    strategy=None,
    resume=True,
    monitors=(),
    log_keys=(),
    validation_data=None,
    backup_every_steps=None,
    checkpoint=True,
    tensorboard=False,
    plot_curves=False,
    jit_compile="auto",
    run_eagerly=False,
    verbose="auto",
    data_name="the images",
):
    """Pretrains a pretrainer (Selfie or another method) in a folder that
    survives a kill.

    1. Seeds everything (`set_seed`), makes the strategy, and picks this
       process's output folder (`run_output_dir`).
    2. With `resume=True` and a backup in `output_dir/backup`, continues
       from it: the per-epoch log is trimmed to the backed-up epoch and the
       seeded batches of the epochs done are skipped, so the run goes on
       with the data an uninterrupted run would have had (several workers
       restart their shards instead). `resume=False` deletes the backup
       and the log first.
    3. Builds the model from `preset` and `config` under the strategy and
       compiles it with `optimizers.make_optimizer` (linear warm-up over
       `warmup_epochs`, then cosine decay to 0 at the last step).
    4. Fits with `training_callbacks` (backup, checkpoint, NaN stop, CSV
       log, `monitors` first), then saves the model
       (`pretrainer_file(method)`: `selfie_pretrainer.keras`, ...), the
       history (`history.json`) and, with `plot_curves`, the
       training curves (`training_curves.png`).

    Args:
        images: unbatched images (or `(image, label)` pairs, labels
            ignored) as a `tf.data.Dataset`, e.g. `data.load_tfds(...)`.
        output_dir: folder of the run.
        preset: a preset name or folder; see `build_pretrainer`.
        method: the pretext task, a name from `keras_selfie.methods.list()`.
        config: dict of the method's constructor arguments overriding the
            preset's (`None` values are ignored), e.g. `{"width": 0.5,
            "dtype": "mixed_bfloat16"}`.
        epochs, steps_per_epoch, batch_size, optimizer, learning_rate,
            weight_decay, warmup_epochs: the run; `None` takes the
            preset's `pretraining` value (`steps_per_epoch=None` there
            means one pass over `images`; `learning_rate=None`, the
            optimizer's default). `batch_size` is the global batch.
        seed: int, seed of the weights, the data order and augmentation
            and the masked positions.
        deterministic: bool, deterministic TensorFlow ops (bit-exact
            reruns and resumes; slower).
        strategy: a `tf.distribute.Strategy`, a name of
            `utils.distribution.STRATEGIES`, or `None`: the strategy in
            scope (by default, one device).
        resume: bool, whether to continue from a backup in `output_dir`.
        monitors: callbacks that add values to the epoch's logs (e.g.
            `evaluation.KNNMonitor`), run before the others.
        log_keys: the keys the monitors add on some epochs only (e.g.
            `("knn_accuracy",)`), so that the log has their column.
        validation_data: passed to `fit`.
        backup_every_steps: `None` (a backup every epoch) or an int.
        checkpoint: bool, keep the last completed epoch as
            `checkpoints/last.keras`.
        tensorboard: bool, TensorBoard logs in `output_dir/logs`.
        plot_curves: bool, draw `training_curves.png` (needs matplotlib).
        jit_compile, run_eagerly: passed to `compile`.
        verbose: Keras verbosity of `fit`; 0 also silences this function.
        data_name: what the images are, for the printed summary.

    Returns:
        A `PretrainingRun`.

    Raises:
        training.DivergenceError: when the loss becomes NaN (the backup of
            before it is kept).

    Example:

    ```python
    run = training.run_pretraining(
        data.load_tfds("cifar10", "train"), "runs/selfie",
        preset="cifar10_short", config={"width": 0.5},
    )
    run.pretrainer, run.history["patch_accuracy"][-1]
    ```
    """
    set_seed(seed, deterministic)
    if strategy is None:
        strategy = tf.distribute.get_strategy()  # the one in scope, if any
    elif isinstance(strategy, str):
        strategy = get_strategy(strategy)
    output_dir = run_output_dir(output_dir, strategy)
    backup_dir = os.path.join(output_dir, BACKUP_DIR)
    history_csv = os.path.join(output_dir, HISTORY_CSV)
    if not resume:
        shutil.rmtree(backup_dir, ignore_errors=True)
        if os.path.exists(history_csv):
            os.remove(history_csv)
    run = _run_settings(
        preset,
        images,
        dict(
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
        ),
    )
    say = print if verbose != 0 else (lambda *args, **kwargs: None)
    total_steps = run["epochs"] * run["steps_per_epoch"]
    done = backup_epoch(backup_dir)
    if done:
        say(f"Resuming from the backup in {backup_dir}: epoch {done} of "
            f"{run['epochs']} done, continuing at step "
            f"{done * run['steps_per_epoch'] + 1} of {total_steps}.")
    else:
        say(f"Starting a new run in {output_dir}.")
    trim_history(history_csv, done)
    multi_worker = isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    )
    train = pretraining_batches(
        images,
        run["batch_size"],
        seed=seed,
        # Several workers restart their shards on resume (documented).
        skip_batches=0 if multi_worker else done * run["steps_per_epoch"],
        strategy=strategy,
    )
    with strategy.scope():
        pretrainer = build_pretrainer(
            preset, method, **{**(config or {}), "seed": seed}
        )
        pretrainer.compile(
            optimizer=optimizers.make_optimizer(
                run["optimizer"],
                run["learning_rate"],
                run["weight_decay"],
                total_steps=total_steps,
                warmup_steps=min(
                    run["warmup_epochs"] * run["steps_per_epoch"],
                    total_steps - 1,
                ),
            ),
            jit_compile=jit_compile,
            run_eagerly=run_eagerly,
        )
    say(describe(pretrainer, data_name, run["batch_size"])
        + f"; {_count(run['epochs'], 'epoch')} of "
        f"{_count(run['steps_per_epoch'], 'step')} on "
        f"{_count(strategy.num_replicas_in_sync, 'replica')}.")
    callbacks = training_callbacks(
        output_dir,
        backup_every_steps=backup_every_steps,
        monitors=monitors,
        log_keys=log_keys,
        checkpoint=checkpoint,
        tensorboard=tensorboard,
    )
    start = time.time()
    pretrainer.fit(
        train,
        epochs=run["epochs"],
        steps_per_epoch=run["steps_per_epoch"],
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.time() - start
    history = read_history(history_csv)
    files = _save(pretrainer, history, output_dir, plot_curves)
    files["loss and accuracies per epoch"] = history_csv
    return PretrainingRun(
        pretrainer=pretrainer,
        history=history,
        output_dir=output_dir,
        epochs=run["epochs"],
        steps_per_epoch=run["steps_per_epoch"],
        batch_size=run["batch_size"],
        resumed_at_epoch=done,
        seconds=seconds,
        files=files,
    )


def describe(pretrainer, data_name, batch_size):
    """One line saying what a pretrainer learns, on what, against what
    chance."""
    return (
        f"{type(pretrainer).__name__} on {data_name}: "
        f"{pretrainer.task_description(batch_size)}; P = ResNet-50 stages "
        f"1-3 at width {pretrainer.width} (d = {pretrainer.feature_dim}), "
        f"{pretrainer.count_params():,} parameters"
    )


def _count(number, noun):
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _run_settings(preset, images, overrides):
    # The preset's `pretraining` (a named preset's, or the defaults for a
    # preset folder), overridden where a value is given.
    base = (
        presets.get(preset)["pretraining"]
        if isinstance(preset, str) and preset in presets.PRESETS
        else dict(presets.DEFAULT_PRETRAINING)
    )
    run = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    if run["steps_per_epoch"] is None:
        run["steps_per_epoch"] = num_batches(images, run["batch_size"])
    check_non_negative("warmup_epochs", run["warmup_epochs"], integer=True)
    return run


def _save(pretrainer, history, output_dir, plot_curves):
    files = {}
    from keras_selfie import methods

    path = os.path.join(
        output_dir, pretrainer_file(methods.name_of(pretrainer))
    )
    pretrainer.save(path)
    files["the pretrained model"] = path
    path = os.path.join(output_dir, HISTORY_JSON)
    with open(path, "w") as file:
        json.dump(history, file, indent=2)
    files["the per-epoch history, as JSON"] = path
    if plot_curves:
        from keras_selfie.visualization import plot_training_curves

        path = os.path.join(output_dir, CURVES_FILE)
        plot_training_curves(history, path)
        files["training curves"] = path
    return files
