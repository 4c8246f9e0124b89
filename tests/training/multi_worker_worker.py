"""One worker of the multi-worker test (`multi_worker_test.py`).

    python multi_worker_worker.py OUTPUT.npz '{"image_size": 32, ...}' \
        [REFERENCE.npz]

Run with `TF_CONFIG` set, it is one worker of a
`MultiWorkerMirroredStrategy` cluster; run without, it is the single-worker
reference with the same global batches. Given REFERENCE.npz, the worker
then runs the reference too, in the same process (one interpreter less to
start; its results equal a fresh process' bit for bit). Each run

1. records which examples of an indexed dataset this worker reads in one
   shuffled epoch of `data.distributed_dataset`;
2. pretrains a float64 `SelfiePretrainer` of the given configuration, on
   `shallow_patch_network` (the all-reduces and the sharding are what is
   checked, not P's depth), for 2 epochs of one step on 8 images (a global
   batch);

and writes the indices, the per-step losses and the weights to OUTPUT.npz
(the reference to REFERENCE.npz).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_selfie import data  # noqa: E402
from keras_selfie.utils.distribution import get_strategy  # noqa: E402
from seeded_run import fit_and_record  # noqa: E402
from seeded_run import random_images  # noqa: E402
from seeded_run import seeded_pretrainer  # noqa: E402

NUM_WORKERS = 2
GLOBAL_BATCH = 8
NUM_IMAGES = 8
NUM_INDEXED = 24


def reference_order():
    """The example order in which one worker sees the global batches of two.

    `distributed_dataset` gives worker `w` the examples `w::2`; a global
    batch is worker 0's local batch followed by worker 1's.
    """
    local = GLOBAL_BATCH // NUM_WORKERS
    shards = [np.arange(NUM_IMAGES)[w::NUM_WORKERS] for w in range(2)]
    return np.concatenate(
        [
            shard[start : start + local]
            for start in range(0, NUM_IMAGES // NUM_WORKERS, local)
            for shard in shards
        ]
    )


def seen_indices(strategy):
    """The indices this worker reads in one shuffled epoch."""
    indexed = data.distributed_dataset(
        strategy,
        lambda context: tf.data.Dataset.range(NUM_INDEXED).map(
            lambda i: tf.fill([1, 1, 1], tf.cast(i, tf.float32))
        ),
        global_batch_size=GLOBAL_BATCH,
        seed=0,
    )
    return np.concatenate(
        [
            t.numpy().ravel()
            for batch in indexed
            for t in strategy.experimental_local_results(batch)
        ]
    ).astype("int64")


def main(output_path, config, multi_worker):
    strategy = get_strategy("multi_worker" if multi_worker else "default")
    images = random_images(NUM_IMAGES)
    if multi_worker:
        seen = seen_indices(strategy)
        train = data.distributed_dataset(
            strategy,
            lambda context: data.from_arrays(images),
            global_batch_size=GLOBAL_BATCH,
            training=False,
        )
    else:
        seen = np.arange(NUM_INDEXED)
        train = data.make_dataset(
            data.from_arrays(images[reference_order()]),
            batch_size=GLOBAL_BATCH,
            training=False,
        )
    # Tracing the step would cost more than the 2 steps themselves (one
    # per epoch: the second iterates the sharded dataset again).
    model = seeded_pretrainer(
        config, strategy, run_eagerly=True, shallow=True
    )
    initial = [v.numpy() for v in model.weights]
    losses, weights = fit_and_record(model, train, epochs=2)
    np.savez(
        output_path,
        seen=seen,
        losses=np.asarray(losses),
        num_replicas=strategy.num_replicas_in_sync,
        moved=max(np.abs(w - i).max() for w, i in zip(weights, initial)),
        **{f"weight_{i}": w for i, w in enumerate(weights)},
        names=np.array([v.path for v in model.weights]),
    )


if __name__ == "__main__":
    config = json.loads(sys.argv[2])
    main(sys.argv[1], config, multi_worker=bool(os.environ.get("TF_CONFIG")))
    for reference_path in sys.argv[3:]:
        main(reference_path, config, multi_worker=False)
