"""Resolve a method chosen by 1-based index (as search spaces encode it) or by name."""

from __future__ import annotations

from numbers import Real


def resolve_choice(value: int | float | str, names: tuple[str, ...],
                   field: str) -> tuple[int, str]:
    """``(index, name)`` for a 1-based index, an integral float (Tune may send 5.0) or a name."""
    valid = ", ".join(f"{i} {name}" for i, name in enumerate(names, start=1))
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in names:
            return names.index(lowered) + 1, lowered
    elif isinstance(value, Real) and not isinstance(value, bool) and float(value).is_integer():
        index = int(value)
        if 1 <= index <= len(names):
            return index, names[index - 1]
    raise ValueError(f"{field} must be one of {valid} (index or name), got {value!r}")
