"""Efficient evolutionary search (EES) over the accuracy predictor (paper Sec. 4.5, Alg. 2).

A population of architectures evolves by mutation only; fitness is the predicted score, so
a generation costs one batched predictor call instead of any training. The search runs
on the Tune driver between trials, so it works on encoded vectors ("codes", the rows of
``SearchSpace.encode_many``) throughout: mutation, de-duplication and the predictor all
act on whole arrays, and only the final population is decoded back into configs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from steerage_ray.checks import integer
from steerage_ray.complexity_estimate import ResourceConstraint
from steerage_ray.space import SearchSpace

__all__ = ["EvolutionResult", "evolutionary_search"]

PredictFn = Callable[[np.ndarray], Sequence[float]]

# Random draws allowed per population slot when filling the initial population with
# feasible, non-excluded, distinct architectures (tight budgets reject most draws).
_DRAWS_PER_SLOT = 100


@dataclass(frozen=True)
class EvolutionResult:
    """Outcome of :func:`evolutionary_search`.

    ``population`` holds the final generation's distinct configs, best predicted first,
    with their predicted ``scores``; ``history`` has one row per generation (0 = the
    initial population) with the survivors' best and mean predicted score and the number
    of newly predicted architectures.
    """

    best_config: dict[str, Any]
    best_score: float
    population: list[dict[str, Any]]
    scores: np.ndarray
    history: pd.DataFrame
    n_predictor_calls: int
    n_predicted: int

    @property
    def frame(self) -> pd.DataFrame:
        """The final population as a table: one row per config plus ``predicted_score``."""
        table = pd.DataFrame(self.population)
        table["predicted_score"] = self.scores
        return table


def evolutionary_search(
    space: SearchSpace,
    predict_fn: PredictFn,
    population: int = 100,
    generations: int = 200,
    mutation_prob: float = 0.1,
    seed: int = 0,
    constraint: ResourceConstraint | None = None,
    exclude: Iterable[tuple | Mapping[str, Any]] | None = None,
    initial: Iterable[Mapping[str, Any]] | None = None,
) -> EvolutionResult:
    """Maximise ``predict_fn`` over ``space`` with Algorithm 2 of the paper.

    ``predict_fn`` maps an ``(m, space.n_dims)`` array of encodings to ``m`` scores,
    higher is better (pass a negated predictor to minimise). It is called once for the
    initial population and once per generation, on the distinct architectures never
    scored before; scores are cached by architecture.

    Each generation, every parent yields one child: each active dimension is resampled
    (to a different value) with probability ``mutation_prob``, and a child whose draw
    changed nothing gets one uniformly chosen dimension resampled. Every child therefore
    differs from its parent (the paper's "mutate with probability rho" would copy most
    parents unchanged and waste their slot). Children and parents are pooled,
    de-duplicated, sorted by score (ties keep parents first) and the best ``population``
    survive, so the best score never decreases.

    The initial population is ``initial`` (validated; e.g. the best architectures
    trained so far), topped up with uniform random draws; the paper uses random draws
    only. Candidates that violate ``constraint`` or appear in ``exclude`` (keys from
    ``space.key`` or configs, e.g. the architectures already trained) never enter the
    population, so the result proposes feasible, unseen architectures. If the space
    yields fewer than ``population`` such architectures within a bounded number of
    draws, the search runs with a smaller population; if it yields none, ValueError.
    Deterministic for a given ``seed``.
    """
    population = integer(population, "population", 1)
    generations = integer(generations, "generations", 0)
    if isinstance(mutation_prob, bool) or not isinstance(mutation_prob, Real) \
            or not 0.0 <= mutation_prob <= 1.0:
        raise ValueError(f"mutation_prob must be a number in [0, 1], got {mutation_prob!r}")
    if not callable(predict_fn):
        raise ValueError(f"predict_fn must be callable (array -> scores), got {predict_fn!r}")
    rng = np.random.default_rng(integer(seed, "seed", 0))
    scorer = _Scorer(space, predict_fn, constraint, _excluded_rows(space, exclude))

    parents = _initial_codes(space, scorer, initial, population, rng)
    parents, parent_scores = _survivors(parents, scorer.scores(parents), population)
    history = [_generation_stats(0, parent_scores, scorer)]
    for generation in range(1, generations + 1):
        children = scorer.admit(space.mutate_codes(parents, mutation_prob, rng))
        pool = np.concatenate([parents, children])
        pool_scores = np.concatenate([parent_scores, scorer.scores(children)])
        parents, parent_scores = _survivors(pool, pool_scores, population)
        history.append(_generation_stats(generation, parent_scores, scorer))

    configs = space.decode_codes(parents)
    return EvolutionResult(
        best_config=configs[0],
        best_score=float(parent_scores[0]),
        population=configs,
        scores=parent_scores,
        history=pd.DataFrame(history),
        n_predictor_calls=scorer.n_calls,
        n_predicted=len(scorer.cache),
    )


class _Scorer:
    """Predicted scores cached by architecture, plus the admission rules.

    An architecture is identified by the bytes of its canonical code row (codes of equal
    values are bit-identical, inactive dimensions are 0), the vector form of
    ``space.key``. Constraint verdicts are cached the same way, so each architecture is
    estimated at most once.
    """

    def __init__(self, space: SearchSpace, predict_fn: PredictFn,
                 constraint: ResourceConstraint | None, excluded: set[bytes]) -> None:
        self.space = space
        self.predict_fn = predict_fn
        self.constraint = constraint
        self.rejected = set(excluded)
        self.accepted: set[bytes] = set()
        self.cache: dict[bytes, float] = {}
        self.n_calls = 0
        self.n_new = 0

    def admit(self, codes: np.ndarray) -> np.ndarray:
        """Distinct rows of ``codes`` that are feasible and not excluded (first-seen order)."""
        keys = [row.tobytes() for row in codes]
        seen: set[bytes] = set()
        keep = []
        for row, key in enumerate(keys):
            if key not in seen and key not in self.rejected:
                seen.add(key)
                keep.append(row)
        if self.constraint is not None:
            unjudged = [row for row in keep if keys[row] not in self.accepted]
            for row, config in zip(unjudged, self.space.decode_codes(codes[unjudged])):
                verdicts = self.accepted if self.constraint.is_feasible(config) else self.rejected
                verdicts.add(keys[row])
            keep = [row for row in keep if keys[row] in self.accepted]
        return codes[keep]

    def scores(self, codes: np.ndarray) -> np.ndarray:
        """Scores of admitted rows, predicting the uncached ones in one batched call."""
        keys = [row.tobytes() for row in codes]
        new = [row for row, key in enumerate(keys) if key not in self.cache]
        self.n_new = len(new)
        if new:
            predicted = np.asarray(self.predict_fn(codes[new]), dtype=float)
            self.n_calls += 1
            if predicted.shape != (len(new),):
                raise ValueError(f"predict_fn must return one score per row: got shape "
                                 f"{predicted.shape} for {len(new)} architectures")
            if not np.isfinite(predicted).all():
                raise ValueError("predict_fn returned NaN or infinite scores; scores must "
                                 "be finite (fit the predictor on finite targets)")
            self.cache.update(zip((keys[row] for row in new), predicted.tolist()))
        return np.array([self.cache[key] for key in keys], dtype=float)


def _initial_codes(space: SearchSpace, scorer: _Scorer,
                   initial: Iterable[Mapping[str, Any]] | None, population: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Given seeds plus random draws until ``population`` admissible ones (or the bound)."""
    seeds = [] if initial is None else list(initial)
    codes = scorer.admit(space.encode_many(seeds)) if seeds else np.empty((0, space.n_dims))
    draws = 0
    while len(codes) < population and draws < _DRAWS_PER_SLOT * population:
        batch = population - len(codes)
        draws += batch
        drawn = space.encode_many(space.random(batch, rng))
        codes = scorer.admit(np.concatenate([codes, drawn]))
    if not len(codes):
        raise ValueError(
            f"no admissible architecture in {draws} random draws (and {len(seeds)} initial "
            f"configs): each was excluded or violated {scorer.constraint!r}; relax "
            "max_params/max_flops or shorten exclude"
        )
    return codes


def _survivors(codes: np.ndarray, scores: np.ndarray,
               population: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``population`` best distinct rows; a stable sort keeps earlier rows on ties."""
    _, first = np.unique(codes, axis=0, return_index=True)
    distinct = np.sort(first)
    order = distinct[np.argsort(-scores[distinct], kind="stable")][:population]
    return codes[order], scores[order]


def _generation_stats(generation: int, scores: np.ndarray, scorer: _Scorer) -> dict:
    return {"generation": generation, "best_score": float(scores[0]),
            "mean_score": float(scores.mean()), "n_new_predictions": scorer.n_new}


def _excluded_rows(space: SearchSpace,
                   exclude: Iterable[tuple | Mapping[str, Any]] | None) -> set[bytes]:
    """Canonical code bytes of excluded architectures given as ``space.key`` tuples or configs."""
    if exclude is None:
        return set()
    configs = []
    for item in exclude:
        if isinstance(item, Mapping):
            configs.append(item)
        elif isinstance(item, tuple) and len(item) == space.n_dims:
            configs.append(dict(zip(space.names, item)))
        else:
            raise ValueError(f"exclude entries must be space.key(config) tuples of length "
                             f"{space.n_dims} or configs, got {item!r}")
    if not configs:
        return set()
    return {row.tobytes() for row in space.encode_many(configs) + 0.0}
