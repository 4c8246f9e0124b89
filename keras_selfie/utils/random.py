"""Random draws inside a training step that XLA does not change, and
seeded model construction."""

import contextlib
import random as python_random

from keras import ops

from keras_selfie.utils.distribution import replica_slice_of_global_draw

_GOLDEN = 0x9E3779B9


def _mix(x):
    # The "lowbias32" integer finalizer (C. Wellons, hash-prospector): every
    # input bit flips each output bit with probability close to 1/2.
    x = ops.bitwise_xor(x, ops.right_shift(x, 16))
    x = x * ops.cast(0x7FEB352D, "uint32")
    x = ops.bitwise_xor(x, ops.right_shift(x, 15))
    x = x * ops.cast(0x846CA68B, "uint32")
    return ops.bitwise_xor(x, ops.right_shift(x, 16))


def uniform(shape, seed_generator):
    """Uniform `[0, 1)` float32 values of a 2-D `shape`, from a seed generator.

    TensorFlow's stateless random ops give other numbers inside an
    XLA-compiled step than outside it (XLA's Philox stream differs from TF's
    CPU kernel when the seed is not a constant), so `jit_compile=True` would
    train on other encoder/decoder splits than `jit_compile=False` for the
    same seed. Hashing `(seed, position)` with integer `keras.ops` gives the
    same numbers on every device, backend and compiler, with static shapes.

    Args:
        shape: `(rows, cols)`; `rows` may be a scalar tensor.
        seed_generator: a `keras.random.SeedGenerator`; advanced by one.
    """
    rows, cols = shape
    seed = ops.cast(seed_generator.next(), "uint32")
    key = _mix(ops.bitwise_xor(_mix(seed[0] + _GOLDEN), seed[1]))
    index = ops.cast(ops.arange(rows * cols, dtype="int32"), "uint32")
    bits = _mix(ops.bitwise_xor(_mix(index + key), key))
    # The top 24 bits fill a float32 mantissa exactly.
    values = ops.cast(ops.right_shift(bits, 8), "float32") * (2.0**-24)
    return ops.reshape(values, (rows, cols))


@contextlib.contextmanager
def seeded_construction(seed):
    """Makes the layers built inside the block draw their seeds from `seed`.

    Keras initializers and dropout layers made without a seed take one from
    Python's `random` module when they are made (the state that
    `keras.utils.set_random_seed` sets). Seeding that module for the block,
    and restoring its state afterwards, makes a model's initial weights and
    dropout streams a function of `seed` alone, whatever ran before, and
    leaves the caller's random state as it was.

    Args:
        seed: int, or `None` for no change (the global state decides).
    """
    if seed is None:
        yield
        return
    state = python_random.getstate()
    python_random.seed(seed)
    try:
        yield
    finally:
        python_random.setstate(state)


def draws_per_copy(seed_generator, batch_size, copies, columns):
    """Uniform draws for `copies` transformed copies of every image.

    Drawn for the global batch and sliced to this replica's rows
    (`replica_slice_of_global_draw`), so that each copy gets the numbers it
    would get on one device, under XLA or not (`uniform`).

    Args:
        seed_generator: a `keras.random.SeedGenerator`; advanced by one.
        batch_size: this replica's number of images (int or scalar tensor).
        copies: int, copies of each image.
        columns: int, numbers per copy.

    Returns:
        `(copies * batch_size, columns)` float32 values in `[0, 1)`,
        copy-major: row `k * batch_size + i` for copy `k` of image `i`.
    """
    draws = replica_slice_of_global_draw(
        lambda size: uniform((size, copies * columns), seed_generator),
        batch_size,
    )
    # (batch, copies, columns) -> (copies * batch, columns).
    return ops.reshape(
        ops.transpose(ops.reshape(draws, (-1, copies, columns)), (1, 0, 2)),
        (-1, columns),
    )


def uniform_index(values, count):
    """Integers uniform in `[0, count)` from uniform `[0, 1)` values.

    `floor(values * count)`, kept below `count`: float32 rounds `values *
    count` up to `count` itself for values just below 1 (e.g. `(1 - 2**-24)
    * 3`).

    Args:
        values: float tensor of `[0, 1)` values, e.g. from `uniform`.
        count: int, or ints broadcasting against `values` (a count per
            column).

    Returns:
        An int32 tensor of the shape of `values`.
    """
    count = ops.convert_to_tensor(count, "int32")
    index = ops.cast(
        ops.floor(values * ops.cast(count, values.dtype)), "int32"
    )
    return ops.minimum(index, count - 1)


def normal(shape, seed_generator):
    """Standard normal float32 values of a 2-D `shape`, from a seed
    generator, as XLA-stable as `uniform` (the Box-Muller transform of two
    of its draws).

    Args:
        shape: `(rows, cols)`; `rows` may be a scalar tensor.
        seed_generator: a `keras.random.SeedGenerator`; advanced by one.
    """
    rows, cols = shape
    values = uniform((rows, 2 * cols), seed_generator)
    # 1 - u is in (0, 1]: the logarithm is finite.
    radius = ops.sqrt(-2.0 * ops.log(1.0 - values[:, :cols]))
    return radius * ops.cos(2.0 * 3.141592653589793 * values[:, cols:])
