"""Seeding a run, and TensorFlow's deterministic mode."""

import keras


def set_seed(seed, deterministic=False):
    """Seeds Python, NumPy and the backend; optionally deterministic ops.

    Args:
        seed: int, passed to `keras.utils.set_random_seed` (the initial
            weights and any unseeded `keras.random` draw depend on it).
        deterministic: bool. With TensorFlow, also calls
            `tf.config.experimental.enable_op_determinism()`: every op then
            gives the same result on the same inputs (some run slower, and
            ops without a deterministic kernel raise an error), which a
            bit-exact resumed run needs.
    """
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
