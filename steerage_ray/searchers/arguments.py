"""What the user and Tune hand ``SteerageSearcher``, checked and converted: budgets under
a ``Repeater``, given points, list-valued choices, reported results. Pure helpers; the
searcher keeps no state here."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
from ray.tune.result import AUTO_RESULT_KEYS

from steerage_ray.predictor import AccuracyPredictor
from steerage_ray.space import flatten_config

TUNE_BOOKKEEPING = frozenset(AUTO_RESULT_KEYS) | {
    "done", "trial_id", "experiment_tag", "should_checkpoint", "iterations_since_restore"}


def repeat_factor(searcher: Any) -> int:
    """The ``repeat`` of a ``Repeater`` wrapping ``searcher`` (1 without one).

    Repeater hands Tune's ``num_samples`` through unchanged but asks its searcher only
    once per group of ``repeat`` trials; the caller chain of ``set_search_properties``
    is the one place where the wrapper is visible.
    """
    from ray.tune.search import Repeater

    frame = inspect.currentframe()
    for _ in range(8):
        frame = frame.f_back if frame is not None else None
        if frame is None:
            break
        caller = frame.f_locals.get("self")
        if isinstance(caller, Repeater) and caller.searcher is searcher:
            return max(1, int(caller.repeat))
    return 1


def fraction_or_none(value: Any, field: str, closed: bool) -> float | None:
    """None, or a number in [0, 1] (``closed``) or (0, 1]."""
    if value is None:
        return None
    low_ok = (value >= 0.0) if closed else (value > 0.0)
    if not isinstance(value, Real) or isinstance(value, bool) or not (low_ok and value <= 1):
        interval = "[0, 1]" if closed else "(0, 1]"
        raise ValueError(f"{field} must be a number in {interval}, got {value!r}")
    return float(value)


def names(value: Any, field: str) -> tuple[str, ...]:
    """A list or tuple of distinct non-empty strings, as a tuple."""
    if isinstance(value, str) or not isinstance(value, Sequence) or \
            not all(isinstance(name, str) and name for name in value) or \
            len(set(value)) != len(value):
        raise ValueError(f"{field} must be a list of distinct dimension names (e.g. "
                         f"['quant_bits']), got {value!r}")
    return tuple(value)


def default(value: Any, default: Any) -> Any:
    return default if value is None else value


def predictor_params(params: Mapping[str, Any] | None) -> dict:
    params = dict(params or {})
    try:
        AccuracyPredictor(**params)
    except TypeError as error:
        raise ValueError(f"predictor_params has an unknown key ({error}); accepted: "
                         f"{sorted(AccuracyPredictor().get_params())}") from None
    return params


def given_points(points: Sequence[Mapping] | None,
            rewards: Sequence[float] | None) -> list[tuple[dict, float | None]]:
    """``points_to_evaluate`` paired with their ``evaluated_rewards`` (None: untrained)."""
    if points is None:
        if rewards is not None:
            raise ValueError("evaluated_rewards needs points_to_evaluate (one reward per "
                             "point)")
        return []
    if isinstance(points, Mapping) or not isinstance(points, Sequence) \
            or not all(isinstance(p, Mapping) for p in points):
        raise ValueError(f"points_to_evaluate must be a list of config dicts, got {points!r}")
    if rewards is not None and len(rewards) != len(points):
        raise ValueError(f"evaluated_rewards has {len(rewards)} values for "
                         f"{len(points)} points_to_evaluate; give one per point")
    return [(dict(p), None if rewards is None else rewards[i]) for i, p in enumerate(points)]


def hashable(value: Any) -> Any:
    """Lists (e.g. ``tune.choice([[16, 16], [32, 32]])`` entries) as tuples, recursively."""
    from ray.tune.search.sample import Categorical

    if isinstance(value, Categorical):
        copy = Categorical([hashable(c) for c in value.categories])
        return copy.uniform() if value.sampler is None else copy
    if isinstance(value, Mapping):
        return {k: hashable(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    return value


def as_list(value: Any) -> Any:
    return [as_list(v) for v in value] if isinstance(value, tuple) else value


def list_choice_keys(param_space: Mapping) -> frozenset[str]:
    """Flat keys of ``tune.choice`` domains with list-valued choices."""
    from ray.tune.search.sample import Categorical

    return frozenset(key for key, domain in flatten_config(dict(param_space)).items()
                     if isinstance(domain, Categorical)
                     and any(isinstance(c, (list, tuple)) for c in domain.categories))


def as_int(value: Any) -> int:
    return int(value) if isinstance(value, Real) and math.isfinite(value) else 0


def reported_values(result: Mapping[str, Any], objectives: Sequence[str]) -> dict:
    """A trial's last reported scalars (test accuracy, params, ...), minus the objectives
    (kept as labels) and Tune's own bookkeeping."""
    return {key: value for key, value in result.items()
            if key not in objectives and key not in TUNE_BOOKKEEPING
            and not key.startswith("config/")
            and isinstance(value, (Real, str, np.bool_))}
