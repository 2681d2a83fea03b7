"""The objectives a run searches, by name: ``val_acc:max,params:min[,flops:min]
[,latency:min]`` (the CLI's ``--objectives``, an experiment's ``search.objectives``).

``searchers/objectives.py`` is the searcher's generic side (any metric names, signed
values); this module fixes the vocabulary of a STEERAGE run and builds its ``cost_fn``:

* ``val_acc`` is the *trained* objective (reported by the trainable) and must come first,
  maximised: it is what the single-objective search optimises, so ``["val_acc:max"]``
  (the default) is exactly today's search;
* ``params`` and ``flops`` are *computed* before training, exactly, by
  ``complexity_estimate.ArchitectureCosts`` (the built model's dense counts);
* ``latency`` is computed from a latency lookup table (``steerage profile-latency``),
  seconds per forward pass of the table's batch.

Computed objectives are always minimised: ``params:max`` is refused rather than
searched. No Ray, no torch at import (``experiment`` validates with it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TRAINED = "val_acc"
#: Every objective a run may name, with the only direction it may take.
MODES = {"val_acc": "max", "params": "min", "flops": "min", "latency": "min"}
DEFAULT = ("val_acc:max",)
EXAMPLE = "val_acc:max,params:min"


def parse_objectives(value: Any, field: str = "search.objectives") -> tuple[str, ...]:
    """Canonical ``("val_acc:max", "params:min", ...)`` from a comma-separated string or
    a list of ``name[:mode]`` strings; ValueError naming ``field`` otherwise."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or not value \
            or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{field} must be a list of name:mode such as {EXAMPLE}, got "
                         f"{value!r}")
    parsed = tuple(_one(item.strip(), field) for item in value)
    names = [item.split(":")[0] for item in parsed]
    if names[0] != TRAINED:
        raise ValueError(f"{field} must start with val_acc:max (the trained metric), e.g. "
                         f"{EXAMPLE}; got {','.join(parsed)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{field} names {repeated[0]} twice; give each objective once")
    return parsed


def _one(item: str, field: str) -> str:
    name, _, mode = item.partition(":")
    if name not in MODES:
        raise ValueError(f"{field}: unknown objective {name!r}; choose from "
                         f"{', '.join(MODES)} (e.g. {EXAMPLE})")
    mode = mode or MODES[name]
    if mode != MODES[name]:
        verb = "maximised" if MODES[name] == "max" else "minimised"
        raise ValueError(f"{field}: {name} can only be {verb}: write "
                         f"{name}:{MODES[name]}, got {item!r}")
    return f"{name}:{mode}"


def metric_mode(objectives: Sequence[str]) -> tuple[list[str], list[str]]:
    """The searcher's ``metric`` and ``mode`` lists of parsed objectives."""
    pairs = [item.split(":") for item in objectives]
    return [name for name, _ in pairs], [mode for _, mode in pairs]


def names(objectives: Sequence[str]) -> list[str]:
    return metric_mode(objectives)[0]


def several(objectives: Sequence[str] | None) -> bool:
    """Whether a run searches a Pareto front (more than the trained metric)."""
    return objectives is not None and len(objectives) > 1


def needs_latency(objectives: Sequence[str] | None) -> bool:
    return objectives is not None and "latency" in names(objectives)


@dataclass(frozen=True)
class ObjectiveCosts:
    """``cost_fn`` of a run's computed objectives: ``params`` and ``flops`` exactly
    (``ArchitectureCosts``), ``latency`` from ``latency_table`` when one is given.
    Picklable, so a restored searcher keeps it."""

    family: str
    input_shape: tuple[int, ...]
    n_classes: int
    latency_table: Any = None  # a latency.LatencyTable

    def __call__(self, config: Mapping[str, object]) -> dict[str, float]:
        from steerage_ray.complexity_estimate import ArchitectureCosts
        from steerage_ray.latency import estimate_latency

        costs = ArchitectureCosts(self.family, self.input_shape, self.n_classes)(config)
        if self.latency_table is not None:
            costs["latency"] = estimate_latency(self.latency_table, self.family, config,
                                                self.input_shape, self.n_classes)
        return costs


def check_latency_table(table: Any, family: str) -> None:
    """A latency objective's table must be one, of the searched family."""
    if table is None:
        raise ValueError("objective latency needs a latency table: run `steerage "
                         "profile-latency -e <experiment> -o <output>` first (the "
                         "search finds the table in its output directory), or give one "
                         "with --latency-table (search.latency_table)")
    if table.family != family:
        raise ValueError(f"search.latency_table holds {table.family} layers but the "
                         f"experiment searches {family}; profile {family} with "
                         f"`steerage profile-latency`")
