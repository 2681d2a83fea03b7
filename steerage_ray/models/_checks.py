"""Arguments only the model builders take (pooling kinds, image sizes); the general
checks are in :mod:`steerage_ray.checks`."""

from __future__ import annotations

from collections.abc import Sequence

from steerage_ray.checks import integer

POOLS = ("max", "avg")


def image_hw(image_size: object) -> tuple[int, int]:
    """``(height, width)`` from an int (square images) or a pair."""
    if isinstance(image_size, Sequence):
        if len(image_size) != 2:
            raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
        return (integer(image_size[0], "image_size[0]", 1),
                integer(image_size[1], "image_size[1]", 1))
    size = integer(image_size, "image_size", 1)
    return size, size
