"""The model families of the search: the one list every module checks a family against.

``ffnn`` (paper Table 2), ``lenet`` (Table 6) and ``resnet`` (Table 8). How a family's
config becomes a network is ``models.build_model``; its keys are in docs/ARCHITECTURE.md.
Pure Python: importing this needs neither Ray nor torch.
"""

from __future__ import annotations

from typing import Any

FAMILIES = ("ffnn", "lenet", "resnet")


def check_family(family: Any, allowed: tuple[str, ...] = FAMILIES) -> str:
    """``family`` if it is one of ``allowed`` (default: every family)."""
    if family not in allowed:
        raise ValueError(f"family must be one of {allowed}, got {family!r}")
    return family
