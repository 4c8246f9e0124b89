import re

import numpy as np
import pytest

from keras_selfie.utils import validation


def assert_rejects(check, name, value, *args, **kwargs):
    """`check(name, value, ...)` raises a `ValueError` naming both."""
    with pytest.raises(ValueError) as info:
        check(name, value, *args, **kwargs)
    message = str(info.value)
    assert f"Argument `{name}`" in message
    assert f"Received: {name}={value!r}" in message
    return message


@pytest.mark.parametrize(
    "check, valid, invalid",
    [
        (validation.check_positive_int, [1, 7], [0, -1, 1.0, True, "1"]),
        (
            validation.check_positive_number,
            [1, 0.5],
            [0, -0.1, float("nan"), True, "1"],
        ),
        (validation.check_non_negative, [0, 0.0, 3.5], [-1, False, None]),
    ],
)
def test_number_checks(check, valid, invalid):
    for value in valid:
        assert check("arg", value) is value
    for value in invalid:
        assert_rejects(check, "arg", value)


def test_check_non_negative_integer():
    assert validation.check_non_negative("n", 0, integer=True) == 0
    message = assert_rejects(
        validation.check_non_negative, "n", 1.0, integer=True
    )
    assert "an integer >= 0" in message


class TestCheckIntInRange:
    def test_valid_values(self):
        assert validation.check_int_in_range("index", 0, 0, 3) == 0
        assert validation.check_int_in_range("index", 2, 0, 3) == 2
        value = np.int64(5)
        assert validation.check_int_in_range("seed", value, 0) is value

    @pytest.mark.parametrize("value", [3, -1, 1.0, True, None])
    def test_invalid_values(self, value):
        message = assert_rejects(
            validation.check_int_in_range, "index", value, 0, 3
        )
        assert "an integer in [0, 3)" in message

    def test_no_upper_bound(self):
        message = assert_rejects(validation.check_int_in_range, "seed", -1, 0)
        assert "an integer >= 0" in message


class TestCheckOptionalInt:
    def test_valid_values(self):
        assert validation.check_optional_int("seed", None) is None
        assert validation.check_optional_int("seed", 0) == 0
        assert validation.check_optional_int("repeat", 3, 1) == 3
        assert validation.check_optional_int(
            "repeat", True, 1, allow_bool=True
        ) is True

    @pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
    def test_invalid_values(self, value):
        message = assert_rejects(validation.check_optional_int, "seed", value)
        assert "None or an integer >= 0" in message

    def test_allow_bool_is_named(self):
        message = assert_rejects(
            validation.check_optional_int, "repeat", 0, 1, allow_bool=True
        )
        assert "None or an integer >= 1, True, False" in message


class TestCheckBool:
    def test_valid_values(self):
        assert validation.check_bool("flip", True) is True
        assert validation.check_bool("flip", False) is False
        assert validation.check_bool("flag", None, allow_none=True) is None

    @pytest.mark.parametrize("value", [None, 0, 1, "yes", np.bool_(True)])
    def test_invalid_values(self, value):
        message = assert_rejects(validation.check_bool, "flip", value)
        assert "True or False" in message

    def test_allow_none_is_named(self):
        message = assert_rejects(
            validation.check_bool, "flag", 1, allow_none=True
        )
        assert "None, True or False" in message


def test_check_non_empty_string():
    assert validation.check_non_empty_string("name", "knn") == "knn"
    for value in ("", None, 3):
        assert_rejects(validation.check_non_empty_string, "name", value)


class TestCheckFraction:
    def test_valid_values(self):
        assert validation.check_fraction("dropout", 0) == 0.0
        assert isinstance(validation.check_fraction("dropout", 0), float)
        assert validation.check_fraction(
            "fraction", 1, include_zero=False, include_one=True
        ) == 1.0

    @pytest.mark.parametrize(
        "value, flags, interval",
        [
            (1.0, {}, "[0, 1)"),
            (-0.1, {}, "[0, 1)"),
            (0.0, {"include_zero": False, "include_one": True}, "(0, 1]"),
            (1.5, {"include_zero": False, "include_one": True}, "(0, 1]"),
        ],
    )
    def test_invalid_values(self, value, flags, interval):
        message = assert_rejects(
            validation.check_fraction, "fraction", value, **flags
        )
        assert f"in {interval}" in message

    def test_rejects_non_numbers(self):
        assert_rejects(validation.check_fraction, "fraction", "half")


class TestCheckInterval:
    def test_valid_values(self):
        assert validation.check_interval("scale", (0.1, 1), 0, 1) == (0.1, 1.0)
        assert validation.check_interval(
            "aspect_ratio", [1, 1], 0, float("inf")
        ) == (1.0, 1.0)

    @pytest.mark.parametrize(
        "value",
        [(0.5, 0.2), (0, 1), (0.5, 1.5), (0.5,), 0.5, (True, 1), ("a", 1)],
    )
    def test_invalid_values(self, value):
        message = assert_rejects(
            validation.check_interval, "scale", value, 0.0, 1.0
        )
        assert "0.0 < min <= max <= 1.0" in message


class TestToPair:
    def test_valid_values(self):
        assert validation.to_pair("image_size", 32) == (32, 32)
        assert validation.to_pair("image_size", [16, 24]) == (16, 24)

    @pytest.mark.parametrize("value", [(0, 1), (1, 2, 3), "32", 2.0])
    def test_invalid_values(self, value):
        assert_rejects(validation.to_pair, "image_size", value)

    def test_shows_the_pair_made_from_an_int(self):
        with pytest.raises(ValueError, match=re.escape("=(-32, -32)")):
            validation.to_pair("image_size", -32)


def test_check_choice():
    assert validation.check_choice("stem", "cifar", ("cifar", "x")) == "cifar"
    message = assert_rejects(
        validation.check_choice, "stem", "resnet", ("cifar", "x")
    )
    assert "one of ['cifar', 'x']" in message


class TestCheckNumClasses:
    def test_valid_values(self):
        assert validation.check_num_classes(None, np.int64(4)) == 5
        assert validation.check_num_classes(10, 4) == 10

    @pytest.mark.parametrize("value", [4, 0, 2.0])
    def test_invalid_values(self, value):
        with pytest.raises(ValueError) as info:
            validation.check_num_classes(value, 4)
        assert f"Received: num_classes={value!r}" in str(info.value)

    def test_names_the_largest_label(self):
        with pytest.raises(ValueError, match=r"largest label \(4\)"):
            validation.check_num_classes(3, 4)
