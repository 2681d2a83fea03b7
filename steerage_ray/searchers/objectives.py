"""What ``SteerageSearcher`` optimises: one metric, or several at once (a Pareto front).

As in Tune's ``OptunaSearch``, ``metric`` and ``mode`` are a name and ``"max"``/``"min"``,
or equally long lists of them. Every value is *signed* on the way in (a ``"min"``
objective is negated), so the strategies always maximise.

Objectives are either *trained* (a trial reports them: validation accuracy) or
*computed* (known before training: parameters, FLOPs, a latency estimate), given by a
``cost_fn(config) -> {name: value}``. Computed objectives are exact and never learned;
``CostTable`` evaluates and caches them per architecture.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from steerage_ray.space import SearchSpace

MODES = ("max", "min")


@dataclass(frozen=True)
class Objective:
    """One optimised quantity and its direction."""

    name: str
    mode: str

    @property
    def sign(self) -> float:
        return 1.0 if self.mode == "max" else -1.0

    def signed(self, value: Any) -> float:
        """``value`` signed so that higher is better; NaN unless a finite number."""
        if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
            return math.nan
        return self.sign * float(value)

    def better(self, current: float, value: Any) -> float:
        """The better of a signed running value and a newly reported one (NaN-aware)."""
        value = self.signed(value)
        if not math.isfinite(value):
            return current
        return value if not math.isfinite(current) else max(current, value)


def check_metric_mode(metric: Any, mode: Any) -> None:
    """Raise ValueError unless ``metric``/``mode`` are None, a name and a mode, or two
    equally long lists of them (several objectives)."""
    modes = mode if isinstance(mode, (list, tuple)) else [mode]
    for each in modes:
        if each is not None and each not in MODES:
            raise ValueError(f"mode must be 'max' or 'min' (or a list of them, one per "
                             f"metric), got {mode!r}")
    metrics = metric if isinstance(metric, (list, tuple)) else [metric]
    for each in metrics:
        if each is not None and (not isinstance(each, str) or not each):
            raise ValueError(f"metric must be the name (a non-empty str) of a reported "
                             f"result, or a list of names for several objectives, got "
                             f"{metric!r}")
    if isinstance(metric, (list, tuple)) or isinstance(mode, (list, tuple)):
        if not isinstance(metric, (list, tuple)) or not isinstance(mode, (list, tuple)) \
                or len(metric) != len(mode) or not metric:
            raise ValueError(f"several objectives need metric and mode as lists of equal "
                             f"length (e.g. metric=['val_acc', 'params'], mode=['max', "
                             f"'min']), got metric={metric!r}, mode={mode!r}")
        if len(set(metric)) != len(metric):
            raise ValueError(f"metric lists a name twice: {metric!r}")


def objectives(metric: str | Sequence[str], mode: str | Sequence[str]) -> tuple[Objective, ...]:
    """The objectives ``metric``/``mode`` describe (validated)."""
    check_metric_mode(metric, mode)
    if isinstance(metric, str):
        return (Objective(metric, mode),)
    return tuple(Objective(name, each) for name, each in zip(metric, mode))


class CostTable:
    """Signed computed objectives of architectures, from ``cost_fn``, cached by code."""

    def __init__(self, space: SearchSpace, cost_fn: Callable[[dict], Mapping[str, float]],
                 computed: Sequence[Objective]) -> None:
        self.space, self.cost_fn, self.computed = space, cost_fn, tuple(computed)
        self._cache: dict[bytes, np.ndarray] = {}

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        """``(len(codes), len(computed))`` signed costs."""
        codes = np.atleast_2d(codes)
        missing = [row for row in codes if row.tobytes() not in self._cache]
        if missing:
            for row, config in zip(missing, self.space.decode_codes(np.array(missing))):
                self._cache[row.tobytes()] = self.signed(config)
        return np.array([self._cache[row.tobytes()] for row in codes]).reshape(
            len(codes), len(self.computed))

    def named(self, codes: np.ndarray) -> dict[str, float]:
        """The signed computed objectives of one architecture, by name."""
        return dict(zip((o.name for o in self.computed), self(codes[None, :])[0]))

    def values(self, config: Mapping[str, Any]) -> dict[str, float]:
        """The unsigned computed objectives of one config, checked."""
        costs = self.cost_fn(dict(config))
        if not isinstance(costs, Mapping):
            raise ValueError(f"cost_fn must return a dict of objective values, got "
                             f"{costs!r}")
        out = {}
        for objective in self.computed:
            value = costs.get(objective.name)
            if not math.isfinite(objective.signed(value)):
                raise ValueError(f"cost_fn returned {objective.name}={value!r} for "
                                 f"{dict(config)!r}; expected a finite number")
            out[objective.name] = float(value)
        return out

    def signed(self, config: Mapping[str, Any]) -> np.ndarray:
        values = self.values(config)
        return np.array([o.sign * values[o.name] for o in self.computed])


def split_objectives(goal: Sequence[Objective], space: SearchSpace,
                     cost_fn: Callable[[dict], Mapping[str, float]] | None
                     ) -> tuple[tuple[Objective, ...], tuple[Objective, ...]]:
    """(trained, computed): the objectives ``cost_fn`` returns for a sample architecture
    are computed, the others trained. At least one must be trained."""
    if cost_fn is None:
        return tuple(goal), ()
    sample = cost_fn(space.decode_codes(space.encode_many(space.random(1, 0)))[0])
    if not isinstance(sample, Mapping):
        raise ValueError(f"cost_fn(config) must return a dict such as {{'params': "
                         f"1234}}, got {sample!r}")
    computed = tuple(o for o in goal if o.name in sample)
    trained = tuple(o for o in goal if o.name not in sample)
    if not trained:
        raise ValueError(f"every objective {[o.name for o in goal]} comes from cost_fn; "
                         f"at least one must be reported by the trials (e.g. val_acc)")
    return trained, computed

