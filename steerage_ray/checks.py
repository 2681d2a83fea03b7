"""Argument checks shared by every module, so a value is accepted or refused the same way
wherever it is given. Pure Python: importing this needs neither Ray nor torch.

What counts as what:

- an *integer* is a Python or numpy integer, never a bool (``True`` is not a count);
- a *number* is any real number, numpy scalars included, never a bool;
- a *config integer* (a value of an architecture config: Tune, numpy and YAML produce
  them) may also be a whole float such as ``4.0``.

Every check raises ``ValueError`` naming the field and showing the value it got, and
returns the value converted to a plain ``int`` / ``float``.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a Python or numpy integer (not a bool)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number, numpy scalars included (not a bool)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def integer(value: Any, name: str, minimum: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (>= ``minimum`` when given)."""
    if not is_integer(value) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be {_integer_words(minimum)}, got {value!r}")
    return int(value)


def optional_integer(value: Any, name: str, minimum: int | None = None) -> int | None:
    """None, or ``value`` as an ``int`` if it is an integer (>= ``minimum`` when given)."""
    if value is None:
        return None
    if not is_integer(value) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be None or {_integer_words(minimum)}, got {value!r}")
    return int(value)


def number(value: Any, name: str, minimum: float | None = None) -> float:
    """``value`` as a ``float`` if it is a number (>= ``minimum`` when given)."""
    if not is_number(value) or (minimum is not None and value < minimum):
        words = "a number" if minimum is None else f"a number >= {minimum:g}"
        raise ValueError(f"{name} must be {words}, got {value!r}")
    return float(value)


def fraction(value: Any, name: str) -> float:
    """``value`` as a ``float`` if it lies strictly between 0 and 1."""
    if not is_number(value) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def one_of(value: Any, name: str, allowed: tuple) -> Any:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def config_integer(config: Mapping[str, Any], key: str, minimum: int = 1) -> int:
    """``config[key]`` as an ``int``: an integer or a whole float, at least ``minimum``."""
    value = config.get(key)
    if value is None:
        raise ValueError(f"config is missing key {key!r} (or it is None)")
    whole = is_integer(value) or (is_number(value) and float(value).is_integer())
    if not whole or value < minimum:
        raise ValueError(f"config[{key!r}] must be {_integer_words(minimum)}, got {value!r}")
    return int(value)


def _integer_words(minimum: int | None) -> str:
    return "an integer" if minimum is None else f"an integer >= {minimum}"
