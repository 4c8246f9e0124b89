"""Seeded pretraining runs of the determinism test.

    python determinism_worker.py OUTPUT.npz SEED [SEED ...] '{"width": ...}'

Every random choice depends on SEED: `keras.utils.set_random_seed` (the
weights' initialisation, dropout), the pretrainer's `seed` (the
encoder/decoder splits) and `make_dataset`'s `seed` (the shuffle and the
augmentation), with TensorFlow's op determinism on. Each run fits 2 epochs
of 2 eager batches of 8 images on `shallow_patch_network` (seeding is what
is checked, not P's depth). The runs, one per SEED, follow each other in
this process; run `i` writes its losses and weights to OUTPUT.npz with the
keys prefixed `run{i}_`.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_selfie  # noqa: E402
from keras_selfie import data  # noqa: E402
from seeded_run import fit_and_record  # noqa: E402
from seeded_run import random_images  # noqa: E402
from seeded_run import shallow_patch_network  # noqa: E402


def seeded_run(seed, config):
    """One run from `seed`; returns its per-batch losses and weights."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    train = data.make_dataset(
        data.from_arrays(random_images(16)),
        batch_size=8,
        augment=data.pretraining_augmentation(),
        seed=seed,
    )
    model = keras_selfie.SelfiePretrainer(
        **config,
        backbone=shallow_patch_network(config["stem"], config["width"]),
        seed=seed,
    )
    # Eager steps: tracing the step would cost more than the 4 steps (2
    # epochs of 2; the second epoch reshuffles).
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        jit_compile=False,
        run_eagerly=True,
    )
    return fit_and_record(model, train, epochs=2)


def main(output_path, seeds, config):
    arrays = {}
    for i, seed in enumerate(seeds):
        losses, weights = seeded_run(seed, config)
        arrays[f"run{i}_losses"] = np.asarray(losses)
        arrays.update(
            {f"run{i}_weight_{j}": w for j, w in enumerate(weights)}
        )
    np.savez(output_path, **arrays)


if __name__ == "__main__":
    main(
        sys.argv[1],
        [int(seed) for seed in sys.argv[2:-1]],
        json.loads(sys.argv[-1]),
    )
