"""The resumable-run pieces of `keras_selfie.training`, in process."""

import keras
import numpy as np
import pytest

from keras_selfie import training


def logged_run(path, epochs, logs_by_epoch, keys=()):
    logger = training.CSVLogger(str(path), append=True, keys=keys)
    logger.on_train_begin()
    for epoch in epochs:
        logger.on_epoch_end(epoch, dict(logs_by_epoch[epoch]))
    logger.on_train_end()


def test_csv_log_keeps_its_columns_and_rows_across_a_restart(tmp_path):
    path = tmp_path / "history.csv"
    logs = {
        0: {"loss": 3.0},
        1: {"loss": 2.0, "knn_accuracy": 0.5},
        2: {"loss": 1.0},
    }
    # Killed after logging epoch 1 but before backing it up: the restart
    # resumes at epoch 1, and `trim_history` drops the orphan row.
    logged_run(path, [0, 1], logs, keys=("knn_accuracy",))
    assert training.trim_history(str(path), 1) == 1
    logged_run(path, [1, 2], logs, keys=("knn_accuracy",))
    history = training.read_history(str(path))
    assert history == {
        "epoch": [0, 1, 2],
        "knn_accuracy": [None, 0.5, None],
        "loss": [3.0, 2.0, 1.0],
    }


def test_trim_history_to_zero_epochs_lets_the_logger_write_a_header(
    tmp_path
):
    path = tmp_path / "history.csv"
    logged_run(path, [0], {0: {"loss": 1.0}})
    training.trim_history(str(path), 0)
    logged_run(path, [0], {0: {"loss": 4.0}})
    assert training.read_history(str(path)) == {"epoch": [0], "loss": [4.0]}
    assert training.read_history(str(tmp_path / "missing.csv")) == {}


def test_divergence_stops_at_once_and_keeps_the_backup(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse",
                  run_eagerly=True)
    x = np.ones((8, 2), "float32")
    y = np.ones((8, 1), "float32")
    y[4:] = np.nan  # batches 3 and 4 of each epoch give a NaN loss
    callbacks = training.training_callbacks(tmp_path, checkpoint=False)
    with pytest.raises(training.DivergenceError, match="at batch 3 of an "
                       r"epoch \(step 3\)"):
        model.fit(x, y, batch_size=2, epochs=2, callbacks=callbacks,
                  shuffle=False,
                  verbose=0)
    # `fit` ended without `on_train_end`, so no backup was deleted; none
    # was written either, as no epoch ended.
    assert training.backup_epoch(str(tmp_path / "backup")) == 0


def test_backup_restores_the_seed_generator_states(tmp_path):
    layer = keras.layers.Dropout(0.5, seed=3)
    model = keras.Sequential([keras.Input((4,)), layer])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    states = training.random_state_variables(model)
    assert [v.path.split("/")[-1] for v in states] == ["seed_generator_state"]
    backup = training.BackupAndRestore(str(tmp_path))
    backup.set_model(model)
    states[0].assign([3, 7])
    backup._save_model()
    states[0].assign([3, 0])
    backup.on_train_begin()
    np.testing.assert_array_equal(states[0].numpy(), [3, 7])


def test_step_timer_leaves_out_compiling_steps_and_keeps_epochs(
    tmp_path, monkeypatch
):
    # A clock that each step advances by the next of `durations`.
    clock = {"now": 0.0}
    monkeypatch.setattr(
        training.callbacks.time, "perf_counter", lambda: clock["now"]
    )

    def fit(timer, first_epoch, durations_by_epoch):
        timer.on_train_begin()
        for epoch, durations in enumerate(durations_by_epoch, first_epoch):
            timer.on_epoch_begin(epoch)
            for batch, seconds in enumerate(durations):
                timer.on_train_batch_begin(batch)
                clock["now"] += seconds
                timer.on_train_batch_end(batch)
            timer.on_epoch_end(epoch)

    path = tmp_path / "step_seconds.json"
    timer = training.StepTimer(path)
    # The first step compiles; a pause lengthens one step.
    fit(timer, 0, [[5.0, 1.0, 1.0, 100.0], [1.0, 2.0]])
    assert timer.step_seconds() == [1.0, 1.0, 100.0, 1.0, 2.0]
    assert timer.median_step_seconds() == 1.0
    # Resumed at epoch 1 in a new process: its first step compiles again,
    # and the epoch done again replaces its earlier times.
    resumed = training.StepTimer(path)
    fit(resumed, 1, [[7.0, 3.0, 3.0]])
    assert resumed.seconds == {0: [1.0, 1.0, 100.0], 1: [3.0, 3.0]}
    assert resumed.median_step_seconds() == 3.0
    assert training.StepTimer().median_step_seconds() is None


def test_step_timer_in_fit():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    timer = training.StepTimer()
    model.fit(np.zeros((12, 2)), np.zeros((12, 1)), batch_size=4, epochs=2,
              callbacks=[timer], verbose=0)
    assert sorted(timer.seconds) == [0, 1]
    assert [len(times) for times in timer.seconds.values()] == [2, 3]
    assert 0 < timer.median_step_seconds() < 1
