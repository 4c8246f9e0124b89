"""Two seeded runs in two processes give bit-identical training.

`determinism_worker.py` seeds everything from one integer (Keras' global
seed for initialisation and dropout, the pretrainer's split seed, the
pipeline's shuffle and augmentation seed) and turns on TensorFlow's op
determinism. A fresh process runs seed 0; a second process runs seed 1 and
then seed 0. Both runs of seed 0 must give the same losses and the same
weights to the last bit (so neither the process nor an earlier run in it
changes a seeded run); the run of seed 1 must not, which shows the
comparison can fail.
"""

import json
import pathlib

import numpy as np
import pytest

from conftest import TINY
from processes import launch
from processes import wait_all

WORKER = pathlib.Path(__file__).with_name("determinism_worker.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("determinism")
    config = json.dumps(TINY)
    seeds = {"fresh": [0], "after_another_seed": [1, 0]}
    processes = {
        name: launch(WORKER, folder / f"{name}.npz", *process_seeds, config)
        for name, process_seeds in seeds.items()
    }
    wait_all(processes)
    fresh = np.load(folder / "fresh.npz")
    later = np.load(folder / "after_another_seed.npz")
    return {
        "first": run_of(fresh, 0),
        "second": run_of(later, 1),
        "other_seed": run_of(later, 0),
    }


def run_of(arrays, index):
    """The losses and weights of run `index` of a worker's output."""
    prefix = f"run{index}_"
    return {
        key.removeprefix(prefix): arrays[key]
        for key in arrays.files
        if key.startswith(prefix)
    }


def weights(run):
    count = sum(key.startswith("weight_") for key in run)
    return [run[f"weight_{i}"] for i in range(count)]


def test_two_runs_with_one_seed_are_bit_identical(runs):
    first, second = runs["first"], runs["second"]
    assert len(first["losses"]) == 4  # 2 epochs of 2 steps
    assert np.all(np.isfinite(first["losses"]))
    np.testing.assert_array_equal(first["losses"], second["losses"])
    # 99 weights: the shallow P's and the rest of the pretrainer's.
    assert len(weights(first)) == len(weights(second)) > 90
    for a, b in zip(weights(first), weights(second), strict=True):
        np.testing.assert_array_equal(a, b)


def test_another_seed_gives_other_weights(runs):
    first, other = runs["first"], runs["other_seed"]
    assert not np.array_equal(first["losses"], other["losses"])
    differ = [
        not np.array_equal(a, b)
        for a, b in zip(weights(first), weights(other), strict=True)
    ]
    # Every trained weight differs (only constants such as a fresh
    # optimizer's iteration counter may agree).
    assert sum(differ) > 0.9 * len(differ)
