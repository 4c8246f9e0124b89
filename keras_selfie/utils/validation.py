"""Checks of user input at the public boundary.

Every check raises `ValueError` naming the argument, the value received and
what would be valid, so that a bad argument never reaches TensorFlow.
"""

import keras


def check_positive_int(name, value):
    """Returns `value` if it is an integer >= 1, else raises `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Argument `{name}` must be a positive integer. "
            f"Received: {name}={value!r}"
        )
    return value


def check_positive_number(name, value):
    """Returns `value` if it is a number > 0, else raises `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        value > 0
    ):
        raise ValueError(
            f"Argument `{name}` must be a number > 0. "
            f"Received: {name}={value!r}"
        )
    return value


def check_non_negative(name, value, integer=False):
    """Returns `value` if it is a number (an int with `integer`) >= 0."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not (
        value >= 0
    ):
        kind = "an integer" if integer else "a number"
        raise ValueError(
            f"Argument `{name}` must be {kind} >= 0. "
            f"Received: {name}={value!r}"
        )
    return value


def check_fraction(name, value, include_zero=True, include_one=False):
    """Returns `value` as a float in [0, 1) (bounds per the flags), or raises.

    `include_zero=False` excludes 0, `include_one=True` includes 1.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"Argument `{name}` must be a number. Received: {name}={value!r}"
        )
    low_ok = value >= 0 if include_zero else value > 0
    high_ok = value <= 1 if include_one else value < 1
    if not (low_ok and high_ok):
        interval = ("[" if include_zero else "(") + "0, 1" + (
            "]" if include_one else ")"
        )
        raise ValueError(
            f"Argument `{name}` must be in {interval}. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def to_pair(name, value):
    """Returns `(a, b)` from an int or a pair of positive ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(
            f"Argument `{name}` must be a positive integer or a pair of "
            f"positive integers. Received: {name}={value!r}"
        )
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ValueError(
                f"Argument `{name}` must hold positive integers. "
                f"Received: {name}={value!r}"
            )
    return tuple(value)


def check_choice(name, value, choices):
    """Returns `value` if it is one of `choices`, else raises `ValueError`."""
    if value not in choices:
        raise ValueError(
            f"Argument `{name}` must be one of {list(choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_image_dtype(name, dtype):
    """Accepts uint8 or floating-point images; raises `ValueError` else."""
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype != "uint8" and not dtype.startswith(("float", "bfloat")):
        raise ValueError(
            f"`{name}` must be uint8 (0-255) or floating-point images. "
            f"Received dtype={dtype}"
        )
    return dtype


def check_image_shape(name, shape, expected=None):
    """Checks a `(batch, height, width, channels)` shape.

    Args:
        name: what the shape belongs to, for the message.
        shape: the shape received, batch dimension included.
        expected: optional `(height, width, channels)` the shape must match.
    """
    shape = tuple(shape)
    if len(shape) != 4:
        raise ValueError(
            f"`{name}` must be a batch of images of rank 4 "
            f"(batch, height, width, channels). Received shape={shape}"
        )
    if expected is not None and tuple(shape[1:]) != tuple(expected):
        raise ValueError(
            f"`{name}` must have shape (batch, {expected[0]}, {expected[1]}, "
            f"{expected[2]}) to match the model's `image_size` and "
            f"`num_channels`. Received shape={shape}"
        )
    return shape
