"""The shared argument checks: one rule for integers (numpy integers in, bool out),
numbers, fractions and config integers."""

import numpy as np
import pytest

from steerage_ray.checks import (
    config_integer,
    fraction,
    integer,
    is_integer,
    is_number,
    number,
    one_of,
    optional_integer,
)


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_python_and_numpy_integers_are_integers(value):
    assert is_integer(value) and is_number(value)
    assert integer(value, "n", 1) == 3 and type(integer(value, "n")) is int


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 3.0, "3", None])
def test_bools_floats_and_strings_are_not_integers(value):
    assert not is_integer(value)
    with pytest.raises(ValueError, match="count must be an integer"):
        integer(value, "count")


def test_minimums_name_the_field_and_the_value():
    with pytest.raises(ValueError, match=r"^population must be an integer >= 1, got 0$"):
        integer(0, "population", 1)
    with pytest.raises(ValueError, match=r"budget must be None or an integer >= 1, got -2"):
        optional_integer(-2, "budget", 1)
    assert optional_integer(None, "budget", 1) is None
    assert optional_integer(np.int64(4), "budget", 1) == 4


def test_numbers_and_fractions():
    assert number(np.float32(0.5), "lr") == 0.5 and number(2, "lr", 0) == 2.0
    for bad in (True, "1", None, -1):
        with pytest.raises(ValueError, match="cpus must be a number"):
            number(bad, "cpus", 0)
    assert fraction(np.float64(0.25), "ratio") == 0.25
    for bad in (0, 1, 1.5, -0.2, True, "0.5"):
        with pytest.raises(ValueError, match="ratio must be a number strictly between 0 and 1"):
            fraction(bad, "ratio")


def test_one_of():
    assert one_of("max", "pooling", ("max", "avg")) == "max"
    with pytest.raises(ValueError, match=r"pooling must be one of \('max', 'avg'\)"):
        one_of("sum", "pooling", ("max", "avg"))


def test_config_integers_accept_whole_floats_and_name_missing_keys():
    assert config_integer({"neurons_1": 64.0}, "neurons_1") == 64
    assert config_integer({"neurons_1": np.int64(64)}, "neurons_1") == 64
    for bad in (64.5, 0, True, "64"):
        with pytest.raises(ValueError, match=r"config\['neurons_1'\] must be an integer >= 1"):
            config_integer({"neurons_1": bad}, "neurons_1")
    with pytest.raises(ValueError, match="missing key 'neurons_2'"):
        config_integer({"neurons_2": None}, "neurons_2")
