"""One seeded pretraining run of the determinism test.

    python determinism_worker.py OUTPUT.npz SEED '{"image_size": 32, ...}'

Every random choice depends on SEED: `keras.utils.set_random_seed` (the
weights' initialisation, dropout), the pretrainer's `seed` (the
encoder/decoder splits) and `make_dataset`'s `seed` (the shuffle and the
augmentation), with TensorFlow's op determinism on. The run fits 2 epochs
of 2 eager batches of 8 images and writes the losses and weights to
OUTPUT.npz.
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


def main(output_path, seed, config):
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    train = data.make_dataset(
        data.from_arrays(random_images(16)),
        batch_size=8,
        augment=data.pretraining_augmentation(),
        seed=seed,
    )
    model = keras_selfie.SelfiePretrainer(**config, seed=seed)
    # Eager steps: tracing the step would cost more than the 4 steps (2
    # epochs of 2; the second epoch reshuffles).
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        jit_compile=False,
        run_eagerly=True,
    )
    losses, weights = fit_and_record(model, train, epochs=2)
    np.savez(
        output_path,
        losses=np.asarray(losses),
        **{f"weight_{i}": w for i, w in enumerate(weights)},
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
