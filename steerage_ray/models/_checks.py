"""Argument checks shared by the model builders, so every builder fails the same way."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

POOLS = ("max", "avg")


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is a positive integer (numpy integers included)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is an integer >= 0 (numpy integers included)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return str(value)


def image_hw(image_size: object) -> tuple[int, int]:
    """``(height, width)`` from an int (square images) or a pair."""
    if isinstance(image_size, Sequence):
        if len(image_size) != 2:
            raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
        return (positive_int("image_size[0]", image_size[0]),
                positive_int("image_size[1]", image_size[1]))
    size = positive_int("image_size", image_size)
    return size, size
