"""Nested configs as flat dicts: ``{"a": {"b": 1}}`` <-> ``{"a/b": 1}``.

Ray Tune flattens nested param spaces with ``/``; a :class:`SearchSpace` searches the
flat keys and a searcher hands nested configs back with :func:`unflatten_config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SEPARATOR = "/"


def flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}``; empty dicts stay values."""
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    flat: dict[str, Any] = {}

    def visit(prefix: str, mapping: Mapping[str, Any]) -> None:
        for key, value in mapping.items():
            if not isinstance(key, str) or not key or SEPARATOR in key:
                raise ValueError(f"config key {prefix + str(key)!r}: keys must be non-empty "
                                 f"strings without {SEPARATOR!r} (it joins nested keys)")
            if isinstance(value, Mapping) and value:
                visit(prefix + key + SEPARATOR, value)
            else:
                flat[prefix + key] = value

    visit("", config)
    return flat


def unflatten_config(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a/b": 1}`` -> ``{"a": {"b": 1}}``; the inverse of :func:`flatten_config`."""
    if not isinstance(flat, Mapping):
        raise ValueError(f"config must be a mapping, got {type(flat).__name__}")
    nested: dict[str, Any] = {}
    branches: set[tuple[str, ...]] = set()  # paths created here as nested dicts
    for key, value in flat.items():
        parts = tuple(key.split(SEPARATOR)) if isinstance(key, str) else ("",)
        if "" in parts:
            raise ValueError(f"config key {key!r}: expected non-empty names joined by "
                             f"{SEPARATOR!r}")
        node = nested
        for depth, part in enumerate(parts[:-1]):
            if part in node and parts[:depth + 1] not in branches:
                raise ValueError(f"config key {key!r} conflicts with the value at "
                                 f"{SEPARATOR.join(parts[:depth + 1])!r}")
            branches.add(parts[:depth + 1])
            node = node.setdefault(part, {})
        if parts in branches:
            raise ValueError(f"config key {key!r} conflicts with nested keys below it")
        node[parts[-1]] = value
    return nested
