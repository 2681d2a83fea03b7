"""``SteerageSearcher``: the STEERAGE global search (paper Algorithms 1 and 2) as a Tune Searcher.

The search runs in rounds, each a batch of architectures Tune trains in parallel:

====  ============  =============================================================
round phase         members
====  ============  =============================================================
0     ``initial``   random members of a seeded Sobol pool (``plan.initial``)
1..I  ``iterative`` the ``iter_count`` unseen pool members the predictor ranks best
I+1   ``final``     the ``final_count`` best distinct unseen architectures found by
                    EES over the predictor, with ``final_config`` merged in
====  ============  =============================================================

The predictor is refitted on every observation before each round after the first.
``suggest`` returns None ("ask again later") while a round waits for results, and
``Searcher.FINISHED`` once the final round is handed out. Everything runs on Tune's
driver loop, so refits and EES are timed (``round_scores``) and kept small.
"""

from __future__ import annotations

import logging
import math
import pickle
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from ray import cloudpickle
from ray.tune.result import AUTO_RESULT_KEYS, TRAINING_ITERATION
from ray.tune.search import Searcher

from steerage_ray.checks import integer as _integer
from steerage_ray.complexity_estimate import ResourceConstraint
from steerage_ray.evolution import EvolutionResult, evolutionary_search
from steerage_ray.predictor import AccuracyPredictor, rank_correlation
from steerage_ray.searchers.plan import SearchPlan
from steerage_ray.searchers.tune_space import from_tune
from steerage_ray.space import (
    SearchSpace,
    flatten_config,
    get_preset,
    unflatten_config,
)

logger = logging.getLogger(__name__)

INITIAL, ITERATIVE, FINAL, WARM_START = "initial", "iterative", "final", "warm_start"
RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
_TUNE_BOOKKEEPING = frozenset(AUTO_RESULT_KEYS) | {
    "done", "trial_id", "experiment_tag", "should_checkpoint", "iterations_since_restore"}


@dataclass
class _Record:
    """One architecture the searcher knows about: a trial it proposed or a warm-start point.

    ``metric`` is the label the predictor learns: the best finite value of the metric
    the trial reported (so an ASHA-stopped trial is labelled with what it reached in
    its ``iterations`` reports); NaN when the trial failed.
    """

    trial_id: str | None
    phase: str
    round: int
    config: dict
    key: tuple
    predicted: float = math.nan
    status: str = RUNNING
    metric: float = math.nan
    iterations: int = 0
    results: dict = field(default_factory=dict)


@dataclass
class _Round:
    index: int
    phase: str
    queue: list[tuple[dict, float]]  # (config, predicted metric) still to hand out
    size: int
    fit_seconds: float = math.nan
    select_seconds: float = math.nan


class SteerageSearcher(Searcher):
    """Predictor-guided architecture search (STEERAGE global search) for Ray Tune.

    Args:
        space: a ``SearchSpace``, a preset name (``"ffnn"``, ``"lenet"``, ...), a Tune
            param-space dict, or None to take Tune's ``param_space`` (through
            ``set_search_properties``). Nested Tune dicts are searched flat
            (``"a/b"`` keys) and handed back nested.
        metric, mode: what to optimise (``mode`` ``"max"`` or ``"min"``); may come from
            ``TuneConfig`` instead.
        count: Sobol pool size (the paper's 2048).
        iter_count, iterations, final_count: round sizes; None means "default (100, 3,
            1) or scaled to the budget", see :meth:`SearchPlan.resolve`.
        ees_population, ees_generations, mutation_prob: EES (Algorithm 2) settings.
        final_config: keys merged into the final round's configs (e.g.
            ``{"epochs": 50}`` to train the winners longer).
        budget: total trials; when None, Tune's ``num_samples`` (if not -1) is used.
            Tune passes ``num_samples`` only to a Tuner with a ``param_space``; without
            one, give ``budget`` here.
        refit_fraction: start the next round once this fraction of the current round
            has reported; stragglers still enter the following refits.
        constraint: optional ``ResourceConstraint`` (parameter/FLOP budget, or any object
            with ``is_feasible(config)``); infeasible pool members and EES candidates
            are never proposed.
        seed: seeds the pool, the random round, the predictor and EES.
        predictor_params: keyword arguments of ``AccuracyPredictor`` (``n_jobs`` stays 1
            unless given: the predictor is fitted on Tune's driver).

    Decisions where the paper and Tune leave room:

    * Labels: a trial is labelled with the best finite ``metric`` value it reported, so
      a trial a scheduler (ASHA) stopped early keeps what it reached; ``observations``
      records after how many ``iterations``. An error, a missing metric or NaN/inf make
      a trial *failed*: it counts as done for its round, never enters a fit and is never
      proposed again.
    * Rounds: round r + 1 is drawn once round r has been handed out and
      ``refit_fraction`` of it has reported. With the default 1.0 every round, hence
      every proposal, depends only on the seed and the results, not on their arrival
      order or the concurrency. Fewer than 2 successful observations cannot fit the
      predictor; the next round is then drawn at random from the pool.
    * Final round: EES starts from the seen architecture the predictor ranks best (plus
      random ones) and admits no other seen architecture, so its winner is predicted at
      least as good as everything trained, and the final round trains only new
      architectures (its predictions are in ``observations["predicted"]``).
    * Phase bookkeeping stays in the searcher: the configs Tune receives hold only the
      param-space keys (plus ``final_config`` in the final round).
    * Restore: trials in flight at save time stay in flight, since ``Tuner.restore``
      resumes them under their ids; see :meth:`requeue_in_flight` for the other case.
    """

    def __init__(
        self,
        space: SearchSpace | str | Mapping | None = None,
        metric: str | None = None,
        mode: str | None = None,
        *,
        count: int = 2048,
        iter_count: int | None = None,
        iterations: int | None = None,
        ees_population: int = 100,
        ees_generations: int = 200,
        mutation_prob: float = 0.1,
        final_count: int | None = None,
        final_config: Mapping[str, Any] | None = None,
        budget: int | None = None,
        refit_fraction: float = 1.0,
        constraint: ResourceConstraint | None = None,
        seed: int = 0,
        predictor_params: Mapping[str, Any] | None = None,
    ) -> None:
        _check_metric_mode(metric, mode)
        super().__init__(metric=metric, mode=mode)
        self.count = _integer(count, "count", 1)
        self.ees_population = _integer(ees_population, "ees_population", 1)
        self.ees_generations = _integer(ees_generations, "ees_generations", 0)
        self.seed = _integer(seed, "seed", 0)
        if not isinstance(mutation_prob, Real) or not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be a number in [0, 1], got {mutation_prob!r}")
        self.mutation_prob = float(mutation_prob)
        if not isinstance(refit_fraction, Real) or not 0.0 < refit_fraction <= 1.0:
            raise ValueError(f"refit_fraction must be a number in (0, 1], got {refit_fraction!r}")
        self.refit_fraction = float(refit_fraction)
        if final_config is not None and not isinstance(final_config, Mapping):
            raise ValueError(f"final_config must be a dict of config overrides (e.g. "
                             f"{{'epochs': 50}}) or None, got {final_config!r}")
        self.final_config = dict(final_config or {})
        if constraint is not None and not callable(getattr(constraint, "is_feasible", None)):
            raise ValueError(f"constraint must be a ResourceConstraint (an object with "
                             f"is_feasible(config) -> bool) or None, got {constraint!r}")
        self.constraint = constraint
        self.predictor_params = _predictor_params(predictor_params)
        self._sizes = dict(iter_count=iter_count, iterations=iterations,
                           final_count=final_count, budget=budget)
        self._plan = SearchPlan.resolve(**self._sizes)  # validates the sizes early
        self._space: SearchSpace | None = None
        self._nested = False
        self._pool: list[dict] = []
        self._pool_keys: list[tuple] = []
        self._pool_X = np.empty((0, 0))
        self._rounds: list[_Round] = []
        self._records: dict[str, _Record] = {}
        self._warm: list[_Record] = []
        self._seen: set[tuple] = set()
        self._rng = np.random.default_rng(self.seed)
        self._predictor: AccuracyPredictor | None = None
        self._ees_result = None
        self._max_concurrent: int | None = None
        self._finished = False
        if space is not None:
            self._set_space(space)

    # ------------------------------------------------------------------ Tune API
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        """Take metric/mode/space/``num_samples`` from Tune where none were given.

        Returns False when the searcher already has a space (Tune then rejects a
        ``param_space`` that still holds search domains), True when it adopted Tune's.
        """
        _check_metric_mode(metric, mode)
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        num_samples = spec.get("num_samples")
        if isinstance(num_samples, Integral) and 0 < num_samples < sys.maxsize:
            self._apply_budget(int(num_samples))
        adopted = self._space is None
        if adopted:
            self._set_space(config, from_tune_config=True)
        self._require_ready()
        return adopted

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Honoured internally: never more than ``max_concurrent`` trials in flight."""
        if not isinstance(max_concurrent, Integral) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be an integer >= 1, got {max_concurrent!r}")
        self._max_concurrent = int(max_concurrent)
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        self._require_ready()
        if trial_id in self._records:  # Tune asked again for the same trial
            return self._tune_config(self._records[trial_id])
        self._advance()
        if self._finished:
            return Searcher.FINISHED
        if self._max_concurrent is not None and len(self.in_flight) >= self._max_concurrent:
            return None
        for current in self._rounds:  # earlier rounds hold requeued architectures
            while current.queue:
                config, predicted = current.queue.pop(0)
                key = self._space.key(config)
                if key in self._seen:  # became known (warm start) after the draw
                    continue
                self._seen.add(key)
                record = _Record(trial_id, current.phase, current.index, config, key,
                                 predicted)
                self._records[trial_id] = record
                self._advance()  # the final round ends the search once handed out
                return self._tune_config(record)
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        record = self._records.get(trial_id)
        if record is None or record.status != RUNNING:
            return
        record.metric = self._better(record.metric, result.get(self._metric))
        record.iterations = max(record.iterations, _as_int(result.get(TRAINING_ITERATION)))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Record the outcome; errors, a missing metric and NaN/inf count as failed."""
        record = self._records.get(trial_id)
        if record is None:
            logger.warning("SteerageSearcher: ignoring completion of unknown trial %s",
                           trial_id)
            return
        result = result or {}
        label = math.nan if error else self._better(
            record.metric if record.status == RUNNING else math.nan, result.get(self._metric))
        if record.status != RUNNING and (error or not math.isfinite(label)):
            return  # a re-run of a finished trial that brought nothing new
        record.metric = label
        record.status = COMPLETED if math.isfinite(label) else FAILED
        record.iterations = max(record.iterations, _as_int(result.get(TRAINING_ITERATION)))
        record.results = _reported_values(result, self._metric)
        self._advance()

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False,
                            pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        """Warm start: an architecture trained elsewhere becomes an observation.

        It enters every later predictor fit and is never proposed; it does not count
        against the budget. Keys of ``parameters`` outside the space (training settings)
        are ignored. Errored or non-finite points are kept as failed observations
        (excluded from fits); a ``pruned`` point is labelled with ``value`` like an
        early-stopped trial.
        """
        self._require_ready()
        flat = flatten_config(dict(parameters))
        missing = [name for name in self._space.names if name not in flat]
        if missing:
            raise ValueError(f"parameters lack the search-space keys {missing}; give every "
                             f"dimension of the space")
        config = {**{name: flat[name] for name in self._space.names}, **self._space.constants}
        key = self._space.key(config)
        label = math.nan if error else self._better(math.nan, value)
        self._warm.append(_Record(None, WARM_START, -1, config, key,
                                  status=COMPLETED if math.isfinite(label) else FAILED,
                                  metric=label, iterations=len(intermediate_values or ())))
        self._seen.add(key)

    # ------------------------------------------------------------ persistence
    def get_state(self) -> dict:
        return dict(self.__dict__)

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        """Pickle the whole state (cloudpickle, so a lambda ``constraint`` survives)."""
        with open(checkpoint_path, "wb") as file:
            cloudpickle.dump(self.get_state(), file, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, checkpoint_path: str) -> None:
        """Load a saved state; trials in flight at save time stay in flight.

        ``Tuner.restore`` resumes unfinished trials under their old ids, so they must not
        be proposed again. If they will never complete (the state is reused in a fresh
        experiment, or ``resume_unfinished=False``), call :meth:`requeue_in_flight`.
        """
        with open(checkpoint_path, "rb") as file:
            self.set_state(pickle.load(file))

    def requeue_in_flight(self) -> list[str]:
        """Forget the trials in flight and propose their architectures again (first).

        Returns the forgotten trial ids. Use after :meth:`restore` when the experiment
        that ran those trials will not report them; nothing is lost and nothing trained
        twice, since a forgotten trial's completion is then ignored.
        """
        forgotten = self.in_flight
        for trial_id in reversed(forgotten):  # each goes to the front of its round's queue
            record = self._records.pop(trial_id)
            self._seen.discard(record.key)
            self._rounds[record.round].queue.insert(0, (record.config, record.predicted))
        self._finished = False
        return forgotten

    # ------------------------------------------------------------ inspection
    @property
    def space(self) -> SearchSpace | None:
        return self._space

    @property
    def plan(self) -> SearchPlan:
        """Round sizes in force (scaled to Tune's ``num_samples`` once known)."""
        return self._plan

    @property
    def phase(self) -> str:
        """Phase of the newest round (``"initial"`` before the first suggestion)."""
        if self._finished:
            return "finished"
        return self._rounds[-1].phase if self._rounds else INITIAL

    @property
    def in_flight(self) -> list[str]:
        """Trial ids proposed and not yet completed, in proposal order."""
        return [tid for tid, record in self._records.items() if record.status == RUNNING]

    @property
    def predictor(self) -> AccuracyPredictor | None:
        """The predictor fitted for the newest round (the one EES searched with)."""
        return self._predictor

    @property
    def ees_result(self) -> EvolutionResult | None:
        """The ``EvolutionResult`` of the final phase, None before it."""
        return self._ees_result

    @property
    def observations(self) -> pd.DataFrame:
        """Every known architecture: warm starts first, then trials in proposal order.

        Columns: ``trial_id``, ``phase``, ``round``, ``status``, ``metric`` (the label),
        ``predicted`` (the predictor's score before training; NaN for the random round),
        ``iterations`` (Tune's ``training_iteration``: reports made, fewer for trials a
        scheduler stopped early), the trial's other reported values (e.g. ``test_acc``,
        ``params``) and ``config/<key>`` for each architecture key.
        """
        rows = []
        for record in [*self._warm, *self._records.values()]:
            row = {"trial_id": record.trial_id, "phase": record.phase,
                   "round": record.round, "status": record.status,
                   "metric": record.metric, "predicted": record.predicted,
                   "iterations": record.iterations, **record.results}
            row.update({f"config/{k}": v for k, v in record.config.items()})
            rows.append(row)
        columns = ["trial_id", "phase", "round", "status", "metric", "predicted",
                   "iterations"]
        return pd.DataFrame(rows, columns=None if rows else columns)

    def trial(self, trial_id: str) -> dict:
        """One proposed trial: ``config`` exactly as Tune received it, ``result`` (the
        label under the metric's name plus the other reported numbers), ``phase``,
        ``round``, ``status``, ``predicted`` and ``iterations``."""
        if trial_id not in self._records:
            raise ValueError(f"trial_id {trial_id!r} was not proposed by this searcher")
        record = self._records[trial_id]
        return {"trial_id": trial_id, "phase": record.phase, "round": record.round,
                "status": record.status, "predicted": record.predicted,
                "iterations": record.iterations, "config": self._tune_config(record),
                "result": {self._metric: record.metric, **record.results}}

    @property
    def round_scores(self) -> pd.DataFrame:
        """Per predictor-guided round: how well the predictor ranked it *before* training.

        ``kendall_tau`` compares the predictions made when round r was drawn (by a
        predictor fitted on rounds < r) with round r's actual metrics: a held-out score.
        Also ``n_scored``, ``fit_seconds`` (predictor refit) and ``select_seconds``
        (ranking the pool, or EES for the final round).
        """
        rows = []
        for current in self._rounds:
            done = [r for r in self._records.values()
                    if r.round == current.index and r.status == COMPLETED
                    and math.isfinite(r.predicted)]
            rows.append({
                "round": current.index, "phase": current.phase, "size": current.size,
                "n_scored": len(done),
                "kendall_tau": rank_correlation([r.metric for r in done],
                                                [r.predicted for r in done]),
                "fit_seconds": current.fit_seconds,
                "select_seconds": current.select_seconds,
            })
        return pd.DataFrame(rows, columns=["round", "phase", "size", "n_scored", "kendall_tau",
                                           "fit_seconds", "select_seconds"])

    # ------------------------------------------------------------ setup
    def _set_space(self, space: Any, from_tune_config: bool = False) -> None:
        if isinstance(space, SearchSpace):
            resolved = space
        elif isinstance(space, str):
            resolved = get_preset(space)
        elif isinstance(space, Mapping):
            resolved = from_tune(dict(space))
            from_tune_config = True
        else:
            raise ValueError(f"space must be a SearchSpace, a preset name or a Tune "
                             f"param-space dict, got {type(space).__name__}")
        if resolved.n_dims == 0:
            raise ValueError("space has no search dimensions (only constants); add at "
                             "least one tune.choice / tune.randint / ... to search")
        self._nested = from_tune_config and any(
            "/" in name for name in (*resolved.names, *resolved.constants))
        pool = resolved.sobol(self.count, self.seed)
        if self.constraint is not None:
            pool = [config for config in pool if self.constraint.is_feasible(config)]
        self._space, self._pool = resolved, pool
        # Decoded configs are snapped with inactive dims None: their own key, no re-encoding.
        self._pool_keys = [tuple(config[name] for name in resolved.names) for config in pool]
        self._pool_X = resolved.encode_many(pool) if pool else np.empty((0, resolved.n_dims))
        self._check_pool()

    def _apply_budget(self, num_samples: int) -> None:
        if self._rounds:  # a restored, running search keeps its plan
            return
        budget = self._sizes["budget"]
        if budget is not None and budget > num_samples:
            raise ValueError(f"budget={budget} exceeds Tune's num_samples={num_samples}; "
                             f"raise num_samples (or use -1) or lower the budget")
        self._plan = SearchPlan.resolve(**{**self._sizes, "budget": budget or num_samples})
        self._check_pool()

    def _check_pool(self) -> None:
        if self._space is None:
            return
        if len(self._pool) < self._plan.pool_demand:
            filtered = " satisfying the constraint" if self.constraint else ""
            raise ValueError(
                f"the Sobol pool has {len(self._pool)} distinct architectures{filtered} "
                f"but the search draws {self._plan.pool_demand} from it "
                f"({self._plan.describe()}); raise count or lower iter_count/iterations")

    def _require_ready(self) -> None:
        if self._space is None:
            raise ValueError("SteerageSearcher has no search space: pass space= or a "
                             "param_space to the Tuner")
        if not self._metric or not self._mode:
            raise ValueError(f"SteerageSearcher needs metric and mode (got "
                             f"{self._metric!r}, {self._mode!r}): pass them to the "
                             f"searcher or to TuneConfig")

    # ------------------------------------------------------------ rounds
    def _advance(self) -> None:
        """Open the next round once the current one is handed out and has reported."""
        while not self._finished:
            if not self._rounds:
                self._open_round(0)
                continue
            current = self._rounds[-1]
            if current.queue:
                return
            if current.phase == FINAL:
                self._finished = True
                return
            reported = sum(1 for r in self._records.values()
                           if r.round == current.index and r.status != RUNNING)
            proposed = sum(1 for r in self._records.values() if r.round == current.index)
            if reported < math.ceil(self.refit_fraction * proposed - 1e-9):
                return
            self._open_round(current.index + 1)

    def _open_round(self, index: int) -> None:
        plan = self._plan
        size = plan.round_size(index)
        phase = INITIAL if index == 0 else ITERATIVE if index <= plan.iterations else FINAL
        started = time.perf_counter()
        fit_seconds = math.nan
        if index > 0:
            self._predictor = self._fit_predictor()
            fit_seconds = time.perf_counter() - started
        if phase == FINAL:
            queue = self._final_candidates(size)
        elif self._predictor is None:
            queue = self._random_pool_members(size)
        else:
            queue = self._best_pool_members(size)
        select_seconds = time.perf_counter() - started - (0.0 if index == 0 else fit_seconds)
        self._rounds.append(_Round(index, phase, queue, len(queue), fit_seconds, select_seconds))
        what = {INITIAL: "random Sobol-pool members",
                ITERATIVE: "pool members the predictor ranks best",
                FINAL: "EES winners"}[phase]
        timing = "" if phase == INITIAL else (
            f"; predictor refit {fit_seconds:.2f}s, "
            f"{'EES' if phase == FINAL else 'ranking'} {select_seconds:.2f}s")
        logger.info("global search round %d of %d (%s): training %d %s%s", index + 1,
                    self.plan.iterations + 2, phase, len(queue), what, timing)

    def _unseen_pool(self) -> np.ndarray:
        """Indices of pool members never proposed nor observed."""
        return np.array([i for i, key in enumerate(self._pool_keys) if key not in self._seen],
                        dtype=int)

    def _random_pool_members(self, size: int) -> list[tuple[dict, float]]:
        unseen = self._unseen_pool()
        picks = self._rng.choice(unseen, size=min(size, len(unseen)), replace=False)
        return [(self._pool[i], math.nan) for i in sorted(picks)]

    def _best_pool_members(self, size: int) -> list[tuple[dict, float]]:
        """Algorithm 1, steps (1)-(2): the unseen pool members predicted best."""
        unseen = self._unseen_pool()
        predicted = self._predictor.predict(self._pool_X[unseen]) if len(unseen) else []
        order = np.argsort(-self._sign * np.asarray(predicted), kind="stable")[:size]
        return [(self._pool[unseen[i]], float(predicted[i])) for i in order]

    def _final_candidates(self, size: int) -> list[tuple[dict, float]]:
        """Algorithm 2: the best distinct unseen architectures EES finds.

        EES starts from the seen architecture the predictor scores best plus random
        ones, and never admits any other seen architecture. Being elitist, its winner
        therefore scores at least as high as every seen (feasible) architecture. The
        seed itself is not proposed again; if EES yields fewer than ``size`` unseen
        architectures, the best unseen pool members fill the round.
        """
        if self._predictor is None:
            return self._random_pool_members(size)
        seed_config = self._best_seen()
        seed_key = None if seed_config is None else self._space.key(seed_config)
        try:
            self._ees_result = evolutionary_search(
                self._space, self._signed_predict, population=self.ees_population,
                generations=self.ees_generations, mutation_prob=self.mutation_prob,
                seed=self.seed, constraint=self.constraint,
                exclude=[key for key in self._seen if key != seed_key],
                initial=None if seed_config is None else [seed_config])
        except ValueError as error:  # e.g. a tiny space whose every architecture is seen
            logger.warning("SteerageSearcher: EES found no admissible architecture (%s); "
                           "the final round takes the best unseen pool members", error)
        chosen: list[tuple[dict, float]] = []
        ranked = () if self._ees_result is None else zip(self._ees_result.population,
                                                         self._ees_result.scores)
        for config, score in ranked:
            if len(chosen) < size and self._space.key(config) not in self._seen:
                chosen.append((config, self._sign * float(score)))
        picked = {self._space.key(config) for config, _ in chosen}
        fallback = [item for item in self._best_pool_members(size)
                    if self._space.key(item[0]) not in picked]
        return chosen + fallback[: size - len(chosen)]

    # ------------------------------------------------------------ predictor
    def _observed(self) -> list[_Record]:
        """Successful observations in a fixed order (warm starts, then proposal order),
        so that the same observations always give the same (bagged) predictor."""
        return [r for r in [*self._warm, *self._records.values()] if r.status == COMPLETED]

    def _fit_predictor(self) -> AccuracyPredictor | None:
        observed = self._observed()
        if len(observed) < 2:
            logger.warning("SteerageSearcher: %d successful observations, too few to fit "
                           "the predictor; choosing the next round at random", len(observed))
            return None
        X = self._space.encode_many([r.config for r in observed])
        y = np.array([r.metric for r in observed])
        return AccuracyPredictor(**{"seed": self.seed, **self.predictor_params}).fit(X, y)

    def _predict(self, configs: list[dict]) -> np.ndarray:
        if not configs:
            return np.empty(0)
        return self._predictor.predict(self._space.encode_many(configs))

    def _signed_predict(self, X: np.ndarray) -> np.ndarray:
        """EES maximises; for ``mode="min"`` it maximises the negated prediction."""
        return self._sign * self._predictor.predict(X)

    def _best_seen(self) -> dict | None:
        """The proposed or observed (feasible) architecture the predictor scores best."""
        seen = [r.config for r in [*self._warm, *self._records.values()]]
        if self.constraint is not None:
            seen = [config for config in seen if self.constraint.is_feasible(config)]
        if not seen:
            return None
        return seen[int(np.argmax(self._sign * self._predict(seen)))]

    # ------------------------------------------------------------ helpers
    @property
    def _sign(self) -> float:
        return 1.0 if self._mode == "max" else -1.0

    def _better(self, current: float, value: Any) -> float:
        """The better of a running label and a newly reported value (NaN-aware)."""
        if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
            return current
        value = float(value)
        if not math.isfinite(current):
            return value
        return max(current, value) if self._mode == "max" else min(current, value)

    def _tune_config(self, record: _Record) -> dict:
        """The config Tune receives: every key filled with a plain value."""
        config = {**self._space.constants, **record.config}
        if record.phase == FINAL:
            config.update(flatten_config(self.final_config))
        return unflatten_config(config) if self._nested else config


def _check_metric_mode(metric: Any, mode: Any) -> None:
    if mode is not None and mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise ValueError(f"metric must be the name (a non-empty str) of one reported "
                         f"result, got {metric!r}; SteerageSearcher optimises one metric")


def _predictor_params(params: Mapping[str, Any] | None) -> dict:
    params = dict(params or {})
    try:
        AccuracyPredictor(**params)
    except TypeError as error:
        raise ValueError(f"predictor_params has an unknown key ({error}); accepted: "
                         f"{sorted(AccuracyPredictor().get_params())}") from None
    return params


def _as_int(value: Any) -> int:
    return int(value) if isinstance(value, Real) and math.isfinite(value) else 0


def _reported_values(result: Mapping[str, Any], metric: str) -> dict:
    """A trial's last reported scalars (test accuracy, params, ...), minus Tune's own."""
    return {key: value for key, value in result.items()
            if key != metric and key not in _TUNE_BOOKKEEPING
            and not key.startswith("config/")
            and isinstance(value, (Real, str, np.bool_))}
