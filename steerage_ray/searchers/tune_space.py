"""Ray Tune param spaces <-> :class:`SearchSpace`, and search-space files written in
Tune's vocabulary. The Ray side of ``steerage_ray.space``, which itself imports no Ray.

Nested Tune dicts become flat keys joined by ``/`` (as Tune itself flattens them), and
a searcher hands Tune nested configs again with ``space.unflatten_config``.

Mapping (Tune -> ours):

=============================  =========================================================
``tune.randint(a, b)``         ``Integer(a, b - 1)`` (Tune's upper bound is exclusive)
``tune.lograndint(a, b)``      ``Integer(a, b - 1, log=True)``
``tune.qrandint(a, b, q)``     ``Integer(a', b, step=q)``, ``a'`` = first multiple of q
                               >= a (Tune samples multiples of q; upper is inclusive,
                               except for q = 1 where it is exclusive, as in Tune)
``tune.qlograndint(a, b, q)``  same with ``log=True``
``tune.uniform(a, b)``         ``Float(a, b)``; ``loguniform`` adds ``log=True``
``tune.quniform(a, b, q)``     ``Float(a, b, step=q)``; ``qloguniform`` adds ``log=True``
``tune.choice(values)``        ``Choice`` when every value is a number (stored sorted,
                               since a number is its own code), else ``Categorical``
plain value                    a constant of the space
=============================  =========================================================

``tune.grid_search``, ``tune.sample_from``, ``tune.randn``/``qrandn`` and domains
inside lists have no bounded, fixed-grid equivalent and raise ValueError naming the
key and the replacement.

Space files (:func:`load_space_file`) map each key to a one-entry mapping naming a Tune
sampler and its arguments, or to a plain value (a constant); nested mappings without a
sampler name become nested keys::

    num_layers: {randint: [1, 4]}          # tune.randint(1, 4): 1, 2 or 3
    neurons_1: {qrandint: [32, 256, 32]}
    quant_bits: {choice: [8, 32]}
    optimizer: {lr: {loguniform: [0.0001, 0.1]}}
    epochs: 10

The file becomes a Tune param space and then a :class:`SearchSpace` through
:func:`from_tune`, so the two ways of writing a space mean exactly the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ray import tune
from ray.tune.search import sample
from ray.tune.search.sample import Domain

from steerage_ray.space.dimensions import (Categorical, Choice, Dimension, Float,
                                           Integer, is_real)
from steerage_ray.space.nested import SEPARATOR, flatten_config, unflatten_config
from steerage_ray.space.search_space import SearchSpace

SAMPLERS = ("choice", "randint", "lograndint", "qrandint", "qlograndint", "uniform",
            "quniform", "loguniform", "qloguniform")


def from_tune(param_space: Mapping[str, Any]) -> SearchSpace:
    """A SearchSpace from a Tune ``param_space`` (domains -> dimensions, rest constants)."""
    dimensions: list[Dimension] = []
    constants: dict[str, Any] = {}
    for key, value in flatten_config(param_space).items():
        head, _, last = key.rpartition(SEPARATOR)
        if last == "grid_search":
            raise ValueError(f"{head or key}: tune.grid_search cannot be part of a search "
                             "space; use tune.choice(values) instead")
        if isinstance(value, Domain):
            dimensions.append(_dimension_from_domain(key, value))
        elif _holds_domain(value):
            raise ValueError(f"{key}: Tune domains inside lists are not supported; give "
                             "each entry its own key in a dict instead")
        else:
            constants[key] = value
    return SearchSpace(dimensions, constants)


def _holds_domain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, Domain) or _holds_domain(v) for v in value)
    return False


def _dimension_from_domain(key: str, domain: Any) -> Dimension:
    sampler = domain.get_sampler()
    step = None
    if isinstance(sampler, sample.Quantized):
        step, sampler = sampler.q, sampler.get_sampler()
    if isinstance(domain, sample.Function):
        raise ValueError(f"{key}: tune.sample_from cannot be converted (a search space "
                         "needs explicit bounds); use tune.randint/uniform/choice, and a "
                         "Condition in a SearchSpace for values that depend on other keys")
    if isinstance(sampler, sample.Grid):
        raise ValueError(f"{key}: grid sampling cannot be part of a search space; "
                         "use tune.choice(values) instead")
    if isinstance(sampler, sample.Normal):
        raise ValueError(f"{key}: tune.randn/qrandn is unbounded; use tune.uniform or "
                         "tune.quniform with explicit bounds instead")
    log = isinstance(sampler, sample.LogUniform)
    if not (log or isinstance(sampler, sample.Uniform)):
        raise ValueError(f"{key}: unsupported Tune sampler {sampler}; use a uniform or "
                         "log-uniform domain")
    if isinstance(domain, sample.Categorical):
        categories = list(domain.categories)
        if categories and all(is_real(c) for c in categories):
            return Choice(key, categories)
        return Categorical(key, categories)
    if isinstance(domain, sample.Integer):
        return _integer_from_tune(key, domain.lower, domain.upper, step, log)
    if isinstance(domain, sample.Float):
        return Float(key, domain.lower, domain.upper, step=step, log=log)
    raise ValueError(f"{key}: unsupported Tune domain {type(domain).__name__}")


def _integer_from_tune(key: str, lower: Any, upper: Any, step: Any, log: bool) -> Integer:
    q = 1 if step is None else step
    for name, value in (("lower", lower), ("upper", upper), ("q", q)):
        if not (is_real(value) and float(value).is_integer()) or (name == "q" and q <= 0):
            raise ValueError(f"{key}: integer domain {name} must be "
                             f"{'a positive' if name == 'q' else 'an'} integer, got {value!r}")
    lower, upper, q = int(lower), int(upper), int(q)
    low = -(-lower // q) * q  # Tune samples multiples of q
    high = upper - 1 if q == 1 else upper  # q == 1 keeps Tune's exclusive upper bound
    return Integer(key, low, high, step=q, log=log)


def to_tune(space: SearchSpace) -> dict[str, Any]:
    """A nested Tune ``param_space`` with the same values per key, plus the constants.

    Conditions cannot be expressed in Tune and are dropped: conditional dimensions
    become unconditional (Tune samples them always; :class:`SearchSpace` ignores their
    values while inactive). A stepped grid that Tune's quantization (multiples of q)
    cannot express exactly becomes ``tune.choice`` over the grid values.
    """
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space must be a SearchSpace, got {type(space).__name__}")
    flat: dict[str, Any] = {dim.name: _domain_for(dim) for dim in space.dimensions}
    flat.update(space.constants)
    return unflatten_config(flat)


def _domain_for(dim: Dimension) -> Any:
    if isinstance(dim, Choice):
        return tune.choice(list(dim.values))
    if isinstance(dim, Categorical):
        return tune.choice(list(dim.choices))
    if isinstance(dim, Integer):
        if dim.step == 1:
            return (tune.lograndint if dim.log else tune.randint)(dim.low, dim.high + 1)
        if dim.low % dim.step == 0:
            return (tune.qlograndint if dim.log else tune.qrandint)(dim.low, dim.high, dim.step)
    elif dim.continuous:
        return (tune.loguniform if dim.log else tune.uniform)(dim.low, dim.high)
    elif _is_multiple(dim.low, dim.step):
        high = dim.high if _is_multiple(dim.high, dim.step) else dim.max_value
        return (tune.qloguniform if dim.log else tune.quniform)(dim.low, high, dim.step)
    return tune.choice([dim.decode(dim.code_at(k)) for k in range(dim.n_values)])


def _is_multiple(value: float, step: float) -> bool:
    """Tune's own test for a bound on the quantization grid."""
    return math.isclose(value / step, round(value / step))


def load_space_file(path: str | Path) -> SearchSpace:
    """Read a YAML space file (see the module docstring) into a SearchSpace."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"space file not found: {path}")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"space file {path} is not valid YAML: {error}") from None
    if not isinstance(document, dict) or not document:
        raise ValueError(f"space file {path} must be a non-empty mapping of "
                         f"hyperparameter names to samplers or constants")
    return from_tune(tune_space_from_document(document, source=str(path)))


def tune_space_from_document(document: dict, source: str = "space",
                             prefix: str = "") -> dict[str, Any]:
    """Turn ``{key: {sampler: args}}`` into ``{key: tune.<sampler>(*args)}``."""
    space: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in SAMPLERS:
            sampler, args = next(iter(value.items()))
            if sampler == "choice":
                args = [args]
            if not isinstance(args, list):
                raise ValueError(f"{source}: {name}.{sampler} needs a list of arguments, "
                                 f"e.g. {{{sampler}: [low, high]}}; got {args!r}")
            try:
                space[key] = getattr(tune, sampler)(*args)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{source}: {name}: tune.{sampler}{tuple(args)} is "
                                 f"invalid: {error}") from None
        elif isinstance(value, dict) and value:
            space[key] = tune_space_from_document(value, source, prefix=f"{name}/")
        else:
            space[key] = value
    return space
