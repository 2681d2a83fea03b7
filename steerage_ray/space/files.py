"""User search spaces written as YAML files, in Ray Tune's vocabulary.

Each key maps to a one-entry mapping naming a Tune sampler and its arguments, or to a
plain value (a constant); nested mappings without a sampler name become nested keys::

    num_layers: {randint: [1, 4]}          # tune.randint(1, 4): 1, 2 or 3
    neurons_1: {qrandint: [32, 256, 32]}
    quant_bits: {choice: [8, 32]}
    optimizer: {lr: {loguniform: [0.0001, 0.1]}}
    epochs: 10

The file becomes a Tune param space and then a :class:`SearchSpace` through
:func:`from_tune`, so the two ways of writing a space mean exactly the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from steerage_ray.space.search_space import SearchSpace
from steerage_ray.space.tune import from_tune

SAMPLERS = ("choice", "randint", "lograndint", "qrandint", "qlograndint", "uniform",
            "quniform", "loguniform", "qloguniform")


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
    from ray import tune

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
