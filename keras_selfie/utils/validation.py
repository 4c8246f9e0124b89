"""Checks of user input at the public boundary.

Every check raises `ValueError` naming the argument, the value received and
what would be valid, in the Keras style ("Argument `name` must be ...
Received: name=value"), so that a bad argument never reaches TensorFlow.
"""

import keras
import numpy as np


def _reject(name, value, requirement):
    """Raises the `ValueError` of every check: `name` must be `requirement`."""
    raise ValueError(
        f"Argument `{name}` must be {requirement}. Received: {name}={value!r}"
    )


def _is_int(value, numpy=False):
    """Whether `value` is an integer (a NumPy one too with `numpy`), not a
    bool."""
    kinds = (int, np.integer) if numpy else int
    return isinstance(value, kinds) and not isinstance(value, bool)


def _is_number(value):
    """Whether `value` is a Python int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive_int(name, value):
    """Returns `value` if it is an integer >= 1, else raises `ValueError`."""
    if not _is_int(value) or value < 1:
        _reject(name, value, "a positive integer")
    return value


def check_positive_number(name, value):
    """Returns `value` if it is a number > 0, else raises `ValueError`."""
    if not _is_number(value) or not value > 0:
        _reject(name, value, "a number > 0")
    return value


def check_non_negative(name, value, integer=False):
    """Returns `value` if it is a number (an int with `integer`) >= 0."""
    valid = _is_int(value) if integer else _is_number(value)
    if not valid or not value >= 0:
        _reject(name, value, f"{'an integer' if integer else 'a number'} >= 0")
    return value


def check_int_in_range(name, value, low, high=None):
    """Returns `value` if it is an integer with `low <= value < high`.

    Python and NumPy integers are accepted (indices and seeds often come
    from arrays); bools are not.

    Args:
        name: the argument's name, for the message.
        value: the value received.
        low: the smallest valid value.
        high: one more than the largest valid value, or `None` for no upper
            bound.

    Returns:
        `value`, unchanged.
    """
    if not _is_int(value, numpy=True) or value < low or (
        high is not None and value >= high
    ):
        valid = f"in [{low}, {high})" if high is not None else f">= {low}"
        _reject(name, value, f"an integer {valid}")
    return value


def check_optional_int(name, value, minimum=0, allow_bool=False):
    """Returns `value` if it is `None` or an integer >= `minimum`.

    Args:
        name: the argument's name, for the message.
        value: the value received.
        minimum: the smallest valid integer.
        allow_bool: whether `True` and `False` are valid as well (e.g. a
            `repeat` that is an endless switch or a count).

    Returns:
        `value`, unchanged.
    """
    if value is None or (allow_bool and isinstance(value, bool)):
        return value
    if not _is_int(value) or value < minimum:
        valid = f"an integer >= {minimum}"
        if allow_bool:
            valid += ", True, False"
        _reject(name, value, f"None or {valid}")
    return value


def check_bool(name, value, allow_none=False):
    """Returns `value` if it is `True` or `False` (or `None` with
    `allow_none`), else raises `ValueError`."""
    if not isinstance(value, bool) and not (allow_none and value is None):
        valid = "None, True or False" if allow_none else "True or False"
        _reject(name, value, valid)
    return value


def check_number_in_range(name, value, low, high):
    """Returns `value` as a float if it is a number with `low <= value <=
    high`, else raises `ValueError`."""
    if not _is_number(value) or not low <= value <= high:
        _reject(name, value, f"a number in [{low}, {high}]")
    return float(value)


def check_non_empty_string(name, value):
    """Returns `value` if it is a non-empty string, else raises."""
    if not isinstance(value, str) or not value:
        _reject(name, value, "a non-empty string")
    return value


def check_fraction(name, value, include_zero=True, include_one=False):
    """Returns `value` as a float in [0, 1) (bounds per the flags), or raises.

    `include_zero=False` excludes 0, `include_one=True` includes 1.
    """
    if not _is_number(value):
        _reject(name, value, "a number")
    low_ok = value >= 0 if include_zero else value > 0
    high_ok = value <= 1 if include_one else value < 1
    if not (low_ok and high_ok):
        interval = ("[" if include_zero else "(") + "0, 1" + (
            "]" if include_one else ")"
        )
        _reject(name, value, f"in {interval}")
    return float(value)


def check_interval(name, value, low, high):
    """Returns a pair `(min, max)` of numbers with `low < min <= max <= high`.

    Args:
        name: the argument's name, for the message.
        value: the value received, a tuple or list of two numbers.
        low: the exclusive lower bound of `min`.
        high: the inclusive upper bound of `max` (may be `float("inf")`).

    Returns:
        `(min, max)` as a tuple of floats.
    """
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(_is_number(v) for v in value)
        or not low < value[0] <= value[1] <= high
    ):
        _reject(
            name,
            value,
            f"a pair `(min, max)` of numbers with {low} < min <= max <= "
            f"{high}",
        )
    return (float(value[0]), float(value[1]))


def to_pair(name, value):
    """Returns `(a, b)` from an int or a pair of positive ints."""
    if _is_int(value):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(_is_int(item) and item >= 1 for item in value)
    ):
        _reject(
            name, value, "a positive integer or a pair of positive integers"
        )
    return tuple(value)


def check_choice(name, value, choices):
    """Returns `value` if it is one of `choices`, else raises `ValueError`."""
    if value not in choices:
        _reject(name, value, f"one of {list(choices)}")
    return value


def check_num_classes(num_classes, largest_label):
    """Returns the number of classes of labels up to `largest_label`.

    Args:
        num_classes: `None`, or a positive int above `largest_label`.
        largest_label: the largest class id of the labels at hand.

    Returns:
        `num_classes`, or `largest_label + 1` when it is `None`.
    """
    largest_label = int(largest_label)
    if num_classes is None:
        return largest_label + 1
    if check_positive_int("num_classes", num_classes) <= largest_label:
        _reject(
            "num_classes",
            num_classes,
            f"larger than the largest label ({largest_label})",
        )
    return num_classes


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
