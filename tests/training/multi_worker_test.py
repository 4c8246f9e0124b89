"""`MultiWorkerMirroredStrategy`: two workers train as one.

Two worker processes on 127.0.0.1 (`multi_worker_worker.py`, with
`TF_CONFIG` naming free ports) pretrain on the shallow P
(`seeded_run.shallow_patch_network`); the second then runs a
single-worker reference with the same global batches. Each run writes what
it read, its losses and its weights. The workers must end with the same
weights as each other and as the reference (float64, so only reordered
sums differ), and each must have read its own half of the data.
"""

import json
import pathlib

import numpy as np
import pytest

from conftest import TINY
from processes import free_ports
from processes import launch
from processes import wait_all

WORKER = pathlib.Path(__file__).with_name("multi_worker_worker.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi_worker")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    config = json.dumps(TINY)
    # The second worker also writes the reference.
    reference = [[], [folder / "reference.npz"]]
    processes = {
        f"worker{i}": launch(
            WORKER,
            folder / f"worker{i}.npz",
            config,
            *reference[i],
            tf_config={
                "cluster": cluster,
                "task": {"type": "worker", "index": i},
            },
        )
        for i in range(2)
    }
    wait_all(processes)
    return {
        name: dict(np.load(folder / f"{name}.npz"))
        for name in ("worker0", "worker1", "reference")
    }


def weights(run):
    count = sum(key.startswith("weight_") for key in run)
    return [run[f"weight_{i}"] for i in range(count)]


def test_each_worker_reads_its_own_shard(runs):
    first, second = runs["worker0"]["seen"], runs["worker1"]["seen"]
    assert len(first) == len(set(first)) == 12  # no example twice
    assert len(second) == len(set(second)) == 12
    assert not set(first) & set(second)
    assert sorted(np.concatenate([first, second])) == list(range(24))


def test_two_workers_train_as_one_with_the_same_global_batch(runs):
    worker0, worker1, reference = (
        runs["worker0"], runs["worker1"], runs["reference"]
    )
    assert int(worker0["num_replicas"]) == 2
    assert int(reference["num_replicas"]) == 1
    # Training moved the weights: the comparison is not of initial values.
    assert float(reference["moved"]) > 1e-3
    # The workers hold the same (all-reduced) weights, bit for bit...
    for a, b in zip(weights(worker0), weights(worker1), strict=True):
        np.testing.assert_array_equal(a, b)
    # ... and those of one worker on the same global batches, up to the
    # order of float64 sums: the cross-worker all-reduces add in another
    # order than one device, and a second step amplifies that (measured
    # on the full P over 4 steps: at most 1.1e-9 absolute, on a batch-norm
    # beta of -0.011; on the shallow P over these 2 steps: 2.2e-16, on a
    # batch-norm gamma of 1.0).
    for name, a, b in zip(
        reference["names"], weights(worker0), weights(reference), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8, err_msg=name)
    assert len(reference["losses"]) == 2  # 2 epochs of one step
    # Keras reports the loss through a float32 metric.
    for worker in (worker0, worker1):
        np.testing.assert_allclose(
            worker["losses"], reference["losses"], rtol=1e-6
        )
