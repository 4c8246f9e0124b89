"""Timing and machine-description helpers shared by the benchmarks."""

import os
import platform
import statistics
import subprocess
import time


def median_rate(run_window, items_per_window, windows):
    """Times `windows` calls of `run_window`; returns the median rate.

    Args:
        run_window: callable doing one window of work.
        items_per_window: number of items (images) one window processes.
        windows: number of timed windows.

    Returns:
        `(median items/s, [items/s of each window])`.
    """
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        run_window()
        rates.append(items_per_window / (time.perf_counter() - start))
    return statistics.median(rates), rates


def interleaved_times(run_windows, windows):
    """Times several kinds of window in turn (ABAB...), `windows` rounds.

    Interleaving makes the ratio of two timings robust to a load that
    changes during the run (other processes sharing the CPU): both kinds of
    window see the same conditions within a round. The process's CPU time
    is recorded too: on a shared machine it varies much less than the wall
    time (but counts the threads' spin-waiting as work).

    Args:
        run_windows: dict `name -> callable` doing one window of that kind.
        windows: number of rounds; each round runs every callable once.

    Returns:
        `(wall, cpu)`: dicts `name -> [seconds of each round's window]`,
        wall-clock and process CPU time.
    """
    wall = {name: [] for name in run_windows}
    cpu = {name: [] for name in run_windows}
    for _ in range(windows):
        for name, run_window in run_windows.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run_window()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def cpu_model():
    """The CPU's model name, from `lscpu` where it exists."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_line():
    """One line naming the machine and the library versions."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    accelerators = f", {len(gpus)} GPU(s)" if gpus else ", no GPU"
    cores = (
        len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count()
    )
    return (
        f"Machine: {cores} CPU cores, {cpu_model()}{accelerators}; "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"Python {platform.python_version()}"
    )
