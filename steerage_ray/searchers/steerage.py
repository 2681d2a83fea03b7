"""``SteerageSearcher``: STEERAGE's global search as a Ray Tune Searcher.

A thin adapter in the manner of Tune's own (``OptunaSearch``): it converts the Tune
space, keeps every trial's record and its state picklable, and delegates the choice of
the next architecture to a Ray-free strategy (``steerage_ray.strategies``):

* ``algorithm="steerage"`` (default): ``GuidedStrategy``, asynchronous and
  uncertainty-aware (Sobol design, bootstrap ensemble of boosted trees, Thompson
  sampling optimised over the whole space);
* ``algorithm="paper"``: ``PaperStrategy``, the paper's Algorithms 1 and 2 exactly
  (Sobol pool, rounds of predicted-best pool members, a final EES round).

What the adapter decides (the strategies never see Tune):

* Labels: a trial is labelled with the best finite ``metric`` value it reported, so a
  trial a scheduler (ASHA) stopped early keeps what it reached, with the number of
  reports as its fidelity. An error, a missing metric or NaN/inf make it *failed*: it
  never enters a fit and is never proposed again.
* Budget: ``budget``, else Tune's ``num_samples`` (divided by the repeat count under a
  ``Repeater``), else the paper's 401 trials; the plan is logged when the search starts.
  A space with fewer distinct architectures than the budget is searched exhaustively,
  then the search ends with a warning.
* Inert dimensions (default mode, ``inert_dimensions``): dimensions that change
  nothing trained are left out of the space the strategy searches, and each proposal
  gets seeded random values for them; architectures are told apart by the searched
  dimensions only, so none is trained twice for a different value of an inert one.
* Reproducible (``reproducible=True``): asynchronous proposals see the results that
  happen to be in, so at a concurrency above 1 the order trials finish in changes the
  search. Reproducible, each default-mode proposal sees the results of the
  architectures proposed before the last ``(c - 1) + 2c`` ones (``c``: the concurrency
  limit Tune sets; none at ``c = 1``, where trials finish in order) and waits until
  all of those have reported, so one seed gives one search whatever the timing. A
  slot waits only when a trial is overtaken by more than ``2c`` later ones, but the
  model is ``2c`` results further behind: on the tabular benchmark that cost 17-31 %
  more mean regret at budget 50 (c = 2 and 4), so it is not the default. Paper mode
  is reproducible as it stands (each round waits for the whole round before it).
  Schedulers that stop trials by timing (ASHA) still make runs differ.
* ``points_to_evaluate`` are proposed first (missing keys drawn at random); with
  ``evaluated_rewards`` they are observations instead and are never trained.
* Restore: trials in flight at save time stay in flight, since ``Tuner.restore``
  resumes them under their ids; nothing new is proposed until each has reported. A
  trial Tune dropped instead (``resume_unfinished=False``) never reports: once no trial
  has reported for a grace period (10 s, or twice the longest gap seen between two
  consecutive reports of one trial), its architecture is proposed again under a new
  id, before anything new. (A resumed trial that takes longer than that to report
  again would be trained twice.) A driver killed while Tune wrote its state can leave
  Tune's files from different moments (``searchers.tune_state``): a trial in flight
  that Tune's saved trial list does not hold is taken for dropped at once, and trials
  Tune's generator counted but nobody saved are taken as lost. Each dropped or lost
  trial used one of Tune's ``num_samples``: where the plan then needs more trials than
  Tune will start, it gives up as many proposals (its later phases still fit).
"""

from __future__ import annotations

import logging
import math
import pickle
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from ray import cloudpickle
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search import Searcher

from steerage_ray.checks import integer as _integer
from steerage_ray.checks import optional_integer as _optional_integer
from steerage_ray.complexity_estimate import ResourceConstraint
from steerage_ray.pareto import non_dominated
from steerage_ray.predictor import AccuracyPredictor
from steerage_ray.searchers import arguments
from steerage_ray.searchers.tune_state import created_trial_count, saved_trial_ids
from steerage_ray.searchers.objectives import (CostTable, Objective, check_metric_mode,
                                               objectives, split_objectives)
from steerage_ray.searchers.tune_space import from_tune
from steerage_ray.space import (SearchSpace, flatten_config, preset_for_algorithm,
                                unflatten_config)
from steerage_ray.strategies import DONE, round_scores
from steerage_ray.strategies.guided import GuidedStrategy
from steerage_ray.strategies.history import (COMPLETED, FAILED, FINAL, GIVEN, INITIAL, RUNNING,
                                             WARM_START, History, Proposal, Record)
from steerage_ray.strategies.paper import PaperStrategy
from steerage_ray.strategies.pareto import ParetoStrategy
from steerage_ray.strategies.plan import (ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_BUDGET,
                                          GUIDED_ONLY, PAPER_ONLY, GuidedPlan, SearchPlan,
                                          resolve_plan)

logger = logging.getLogger(__name__)

RESTORE_GRACE_S = 10.0
#: Reproducible default mode: later trials (per slot) that may overtake a running one
#: before a proposal waits for it. With 2, replaying a `make demo` run's trial durations
#: added no idle time at a concurrency of 2 and 0.6 points at 4 (1 added 2.3 and 8.5).
REPRODUCIBLE_SLACK = 2


class SteerageSearcher(Searcher):
    """Predictor-guided architecture search (STEERAGE global search) for Ray Tune.

    Args:
        space: a ``SearchSpace``, a preset name (``"ffnn"``, ``"lenet"``, ...), a Tune
            param-space dict, or None to take Tune's ``param_space`` (through
            ``set_search_properties``). Nested Tune dicts are searched flat
            (``"a/b"`` keys) and handed back nested.
        metric, mode: what to optimise (``mode`` ``"max"`` or ``"min"``); may come from
            ``TuneConfig`` instead. Lists (``["val_acc", "params"]``, ``["max",
            "min"]``) search for the Pareto front of several objectives (default mode
            only); see ``pareto_front``. The ``metric``/``mode`` properties Tune reads
            then name the trained objectives only: Tune requires every result to hold
            them, and objectives ``cost_fn`` computes are never reported by trials.
        algorithm: ``"steerage"`` (default) or ``"paper"`` (see the module docstring).
        budget: total trials; when None, Tune's ``num_samples`` is used, and when that
            is -1 too, 401 trials (the paper's 100 random + 3 x 100 guided + 1 final).
            Tune passes ``num_samples`` only to a Tuner with a ``param_space``; without
            one, give ``budget`` here.
        seed: seeds the Sobol pool, the predictor(s), EES and every random choice.
        final_count: proposals of the final phase (default 1): EES winners in paper
            mode, the ensemble's best predicted architectures in the default mode.
        final_config: keys merged into the final phase's configs (e.g.
            ``{"epochs": 50}`` to train the winners longer).
        constraint: optional ``ResourceConstraint`` (parameter/FLOP budget, or any object
            with ``is_feasible(config)``); infeasible architectures are never proposed.
        cost_fn: ``config -> {name: value}`` for objectives known before training
            (parameters, FLOPs, a latency estimate): those objectives are computed
            exactly for every candidate, never predicted; the others come from trials.
        points_to_evaluate: configs (possibly partial) to train first, as in
            ``OptunaSearch``. ``evaluated_rewards``: their metric values, which makes
            them observations that are never trained.
        count: size of the seeded, scrambled Sobol pool (the paper's 2048): the initial
            design (and in paper mode the only source of Algorithm 1's rounds).
        n_initial: default mode: proposals of the initial design (default: a fifth of
            the budget, between 3 and 10).
        iter_count, iterations, refit_fraction, predictor_params: paper mode only:
            round sizes (None: the paper's 100 and 3, or scaled to the budget, see
            ``SearchPlan.resolve``), the fraction of a round that must report before
            the next is drawn, and ``AccuracyPredictor`` keyword arguments.
        ees_population, ees_generations, mutation_prob: EES (Algorithm 2) settings
            (None: 100, 200, 0.1 in paper mode; 32, 10, 0.2 per candidate refresh in
            the default mode, where EES runs many times).
        reproducible: the same seed gives the same proposals at any concurrency (see
            the module docstring); needs a concurrency limit (Tune's
            ``max_concurrent_trials`` or a ``ConcurrencyLimiter``), and in paper mode
            ``refit_fraction`` 1.
        inert_dimensions: default mode: names of dimensions that change neither the
            trained network nor any objective or constraint (the constraint and
            ``cost_fn`` see configs without them), e.g. ``quant_bits`` when the metric is
            the float model's accuracy (the bits only set a quantized copy's
            precision), or an image filter when no image is resized. The search
            leaves them out: it never trains two architectures that differ only in
            them, and each proposal gets a seeded random value for them. Each must be
            an unconditional dimension that decides no other's activity.
    """

    def __init__(
        self,
        space: SearchSpace | str | Mapping | None = None,
        metric: str | None = None,
        mode: str | None = None,
        *,
        algorithm: str = DEFAULT_ALGORITHM,
        budget: int | None = None,
        seed: int = 0,
        final_count: int | None = None,
        final_config: Mapping[str, Any] | None = None,
        constraint: ResourceConstraint | None = None,
        cost_fn: Callable[[dict], Mapping[str, float]] | None = None,
        points_to_evaluate: Sequence[Mapping] | None = None,
        evaluated_rewards: Sequence[float] | None = None,
        count: int = 2048,
        n_initial: int | None = None,
        iter_count: int | None = None,
        iterations: int | None = None,
        refit_fraction: float | None = None,
        predictor_params: Mapping[str, Any] | None = None,
        ees_population: int | None = None,
        ees_generations: int | None = None,
        mutation_prob: float | None = None,
        inert_dimensions: Sequence[str] = (),
        reproducible: bool = False,
    ) -> None:
        check_metric_mode(metric, mode)
        super().__init__(metric=metric, mode=mode)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        self.algorithm = algorithm
        given = dict(iter_count=iter_count, iterations=iterations,
                     refit_fraction=refit_fraction, predictor_params=predictor_params,
                     n_initial=n_initial)
        wrong = [k for k in (GUIDED_ONLY if algorithm == "paper" else PAPER_ONLY)
                 if given[k] is not None]
        if wrong:
            other = "steerage" if algorithm == "paper" else "paper"
            raise ValueError(f"{wrong[0]} applies to algorithm={other!r} only; remove it "
                             f"or pass algorithm={other!r}")
        self.inert_dimensions = arguments.names(inert_dimensions, "inert_dimensions")
        if self.inert_dimensions and algorithm == "paper":
            raise ValueError("inert_dimensions applies to algorithm='steerage' only: paper "
                             "mode searches every dimension, as Algorithms 1-2 do; remove "
                             "it or use the default algorithm")
        self.count = _integer(count, "count", 1)
        self.seed = _integer(seed, "seed", 0)
        self.budget = None if budget is None else _integer(budget, "budget", 1)
        self.n_initial = None if n_initial is None else _integer(n_initial, "n_initial", 1)
        self.final_count = None if final_count is None else _integer(final_count,
                                                                     "final_count", 0)
        self.ees_population = _optional_integer(ees_population, "ees_population", 1)
        self.ees_generations = _optional_integer(ees_generations, "ees_generations", 0)
        self.mutation_prob = arguments.fraction_or_none(mutation_prob, "mutation_prob", closed=True)
        self.refit_fraction = arguments.fraction_or_none(refit_fraction, "refit_fraction", closed=False)
        if not isinstance(reproducible, bool):
            raise ValueError(f"reproducible must be True or False, got {reproducible!r}")
        if reproducible and self.refit_fraction is not None and self.refit_fraction < 1:
            raise ValueError(f"reproducible=True needs each paper-mode round to wait for "
                             f"all of the round before it: remove refit_fraction "
                             f"({refit_fraction!r}) or set it to 1")
        self.reproducible = reproducible
        if final_config is not None and not isinstance(final_config, Mapping):
            raise ValueError(f"final_config must be a dict of config overrides (e.g. "
                             f"{{'epochs': 50}}) or None, got {final_config!r}")
        self.final_config = dict(final_config or {})
        if constraint is not None and not callable(getattr(constraint, "is_feasible", None)):
            raise ValueError(f"constraint must be a ResourceConstraint (an object with "
                             f"is_feasible(config) -> bool) or None, got {constraint!r}")
        self.constraint = constraint
        if cost_fn is not None and not callable(cost_fn):
            raise ValueError(f"cost_fn must be a function config -> {{objective: value}} "
                             f"(e.g. parameters known before training), got {cost_fn!r}")
        self.cost_fn = cost_fn
        self._check_objectives()
        self.predictor_params = arguments.predictor_params(predictor_params)
        self._sizes = dict(iter_count=iter_count, iterations=iterations,
                           final_count=final_count)
        self._plan_for(self.budget)  # validates the sizes early
        self._points = arguments.given_points(points_to_evaluate, evaluated_rewards)
        self._space: SearchSpace | None = None
        self._searched: SearchSpace | None = None  # the space less its inert dimensions
        self._objective_split: tuple | None = None
        self._costs: CostTable | None = None
        self._pool = np.empty((0, 0))
        self._nested = False
        self._list_keys: frozenset[str] = frozenset()
        self._num_samples: int | None = None
        self._repeat = 1
        self._history = History()
        self._trials: dict[str, Record] = {}
        self._given: list[dict] = []
        self._retry: list[Record] = []
        self._strategy = None
        self._max_concurrent: int | None = None
        self._finished = False
        self._unconfirmed: set[str] = set()
        self._handed_out = 0  # configs suggest gave Tune in this experiment
        self._lost_slots = 0  # trials Tune counted against num_samples that train nothing
        self._quiet_since = 0.0
        self._report_gap = 0.0
        self._last_report: dict[str, float] = {}
        if space is not None:
            self._set_space(space)

    # ------------------------------------------------------------------ Tune API
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        """Take metric/mode/space/``num_samples`` from Tune where none were given.

        Returns True when it adopted Tune's space, or when Tune's is the one it already
        has (a restored searcher handed to a new Tuner with the same ``param_space``);
        False when it has another space (Tune then rejects a ``param_space`` that still
        holds search domains).
        """
        check_metric_mode(metric, mode)
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        if self._strategy is not None:
            self._continue_in_a_new_experiment()
        num_samples = spec.get("num_samples")
        if isinstance(num_samples, Integral) and 0 < num_samples < sys.maxsize:
            self._repeat = arguments.repeat_factor(self)
            self._num_samples = max(1, int(num_samples) // self._repeat)
            if self.budget is not None and self.budget > self._num_samples:
                raise ValueError(f"budget={self.budget} exceeds Tune's num_samples="
                                 f"{num_samples}; raise num_samples (or use -1) or lower "
                                 f"the budget")
        adopted = self._space is None
        if adopted:
            self._set_space(config)
        else:
            adopted = self._same_space(config)
        self._require_ready()
        self._check_objectives()
        self._check_pool()  # also resolves (and so validates) the plan before any trial
        return adopted

    def _continue_in_a_new_experiment(self) -> None:
        """A searcher that already searched is handed to a new Tuner (Ray's warm-start
        pattern: ``save`` in one experiment, ``restore`` into the next). Its trained
        architectures become warm starts of a new plan for this experiment's budget;
        trials the old experiment left in flight will never report and are dropped."""
        for trial_id in self.in_flight:
            self._history.forget(self._trials.pop(trial_id))
        for record in self._history.records:
            record.phase, record.round = WARM_START, -1
        self._strategy, self._finished, self._num_samples = None, False, None
        self._retry, self._unconfirmed = [], set()
        self._handed_out, self._lost_slots = 0, 0
        logger.info("SteerageSearcher: a new experiment continues from %d known "
                    "architectures (warm starts)", len(self._history.records))

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Honoured internally: never more than ``max_concurrent`` trials in flight."""
        if not isinstance(max_concurrent, Integral) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be an integer >= 1, got {max_concurrent!r}")
        self._max_concurrent = int(max_concurrent)
        if isinstance(self._strategy, GuidedStrategy):
            self._strategy.lag = self._refit_lag()
            self._strategy.window = self._window()
        return True

    def _refit_lag(self) -> int:
        """Default mode: propose with the model one refit behind the newest, so a freed
        slot trains while the newest refit runs; at ``max_concurrent=1`` nothing else
        could run meanwhile, so wait for the newest."""
        return 0 if self._max_concurrent == 1 else 1

    def _window(self) -> int | None:
        """Default mode: the proposals a reproducible proposal does not wait for (see
        the module docstring); None when not reproducible."""
        if not self.reproducible:
            return None
        if self._max_concurrent is None:
            raise ValueError("reproducible=True needs a concurrency limit: set "
                             "TuneConfig(max_concurrent_trials=...) or wrap the searcher "
                             "in a ConcurrencyLimiter")
        c = self._max_concurrent
        return 0 if c == 1 else (c - 1) + REPRODUCIBLE_SLACK * c

    def suggest(self, trial_id: str) -> dict | str | None:
        self._require_ready()
        if trial_id in self._trials:  # Tune asked again for the same trial
            return self._tune_config(self._trials[trial_id])
        self._start()
        if self._finished:
            return Searcher.FINISHED
        if self._unconfirmed:  # restored: are the trials in flight still running?
            record = self._dropped_trial()
            if record is None:
                return None
        elif self._max_concurrent is not None and \
                len(self.in_flight) >= self._max_concurrent:
            return None
        else:
            record = self._next_record()
        if record is None:
            return Searcher.FINISHED if self._finished else None
        if self._costs is not None:  # computed objectives are known before training
            record.values.update(self._costs.named(record.codes))
        self._trials[trial_id] = self._history.add(record)
        if self._strategy is not None and hasattr(self._strategy, "after_proposal"):
            self._strategy.after_proposal(self._history)
        self._handed_out += 1
        return self._tune_config(record)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        record = self._trials.get(trial_id)
        self._heard_from(trial_id)
        if record is None or record.status != RUNNING:
            return
        self._absorb(record, record.values, result)
        record.fidelity = max(record.fidelity, arguments.as_int(result.get(TRAINING_ITERATION)))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Record the outcome; errors, a missing metric and NaN/inf count as failed."""
        record = self._trials.get(trial_id)
        self._heard_from(trial_id)
        self._last_report.pop(trial_id, None)
        if record is None:
            logger.debug("SteerageSearcher: ignoring completion of unknown trial %s",
                         trial_id)
            return
        result = result or {}
        running = record.status == RUNNING
        values = dict(record.values) if running else \
            {k: v for k, v in record.values.items() if k not in self._trained_names()}
        values = self._fold(values, {} if error else result)
        if error:
            values.update(dict.fromkeys(self._trained_names(), math.nan))
        if not running and not self._complete(values):
            return  # a re-run of a finished trial that brought nothing new
        record.status = COMPLETED if self._absorb(record, values, {}) else FAILED
        record.fidelity = max(record.fidelity, arguments.as_int(result.get(TRAINING_ITERATION)))
        record.results = arguments.reported_values(result, self._goal_names())

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
        flat = flatten_config(arguments.hashable(dict(parameters)))
        missing = [name for name in self._space.names if name not in flat]
        if missing:
            raise ValueError(f"parameters lack the search-space keys {missing}; give every "
                             f"dimension of the space")
        codes, config = self._encode(flat)
        record = Record(config, codes, WARM_START, -1, fidelity=len(intermediate_values or ()))
        reported = {} if error else self._named_values(value)
        complete = self._absorb(record, {}, reported)
        record.status = COMPLETED if complete else FAILED
        if self.cost_fn is not None and len(self._goal) > 1:
            self._split()  # the computed objectives of a warm start come from cost_fn
            if self._costs is not None:
                record.values.update(self._costs.named(codes))
        self._history.add(record)

    # ------------------------------------------------------------ persistence
    def get_state(self) -> dict:
        return dict(self.__dict__)

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)
        if "_searched" not in state:  # saved before inert dimensions existed
            self._searched, self.inert_dimensions = self._space, ()
        if "reproducible" not in state:  # saved before reproducible searches existed
            self.reproducible = False
            if isinstance(self._strategy, GuidedStrategy):
                self._strategy.window = None

    def save(self, checkpoint_path: str) -> None:
        """Pickle the whole state (cloudpickle, so a lambda ``constraint`` survives)."""
        with open(checkpoint_path, "wb") as file:
            cloudpickle.dump(self.get_state(), file, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, checkpoint_path: str) -> None:
        """Load a saved state; trials in flight at save time stay in flight until Tune
        reports them, or until they are found dropped (see the module docstring)."""
        with open(checkpoint_path, "rb") as file:
            self.set_state(pickle.load(file))
        self._unconfirmed = set(self.in_flight)
        self._quiet_since = time.monotonic()
        self._last_report = {}

    def restore_from_dir(self, checkpoint_dir: str, *, check_tune_trials: bool = True) -> None:
        """Restore from an experiment directory (what ``Tuner.restore`` calls); a trial
        in flight that Tune's saved trial list there does not hold is dropped at once
        and its architecture proposed again first (see the module docstring).
        ``check_tune_trials=False``: the state exactly as saved (a look at a saved
        search that will not continue in this object)."""
        super().restore_from_dir(checkpoint_dir)
        if not check_tune_trials:
            return
        counted = created_trial_count(checkpoint_dir)
        if counted is not None and counted > self._handed_out:
            logger.warning("SteerageSearcher: Tune counted %d trial(s) this searcher's saved "
                           "state does not hold (the driver stopped while Tune saved); "
                           "they train nothing", counted - self._handed_out)
            self._lose_slots(counted - self._handed_out)
            self._handed_out = counted
        known = saved_trial_ids(checkpoint_dir)
        if known is None:
            return
        for trial_id in [t for t in self.in_flight if t not in known]:
            logger.warning("SteerageSearcher: trial %s was proposed, but Tune's saved state "
                           "does not hold it (the driver stopped while Tune saved); its "
                           "architecture is proposed again", trial_id)
            self._retry.append(self._drop(trial_id))

    def requeue_in_flight(self) -> list[str]:
        """Forget the trials in flight and propose their architectures again (first).

        Returns the forgotten trial ids. Use after :meth:`restore` when the experiment
        that ran those trials will not report them; nothing is lost and nothing trained
        twice, since a forgotten trial's completion is then ignored.
        """
        forgotten = self.in_flight
        self._retry.extend(self._forget(trial_id) for trial_id in forgotten)
        self._finished = False
        return forgotten

    # ------------------------------------------------------------ inspection
    @property
    def space(self) -> SearchSpace | None:
        return self._space

    @property
    def plan(self) -> SearchPlan | GuidedPlan:
        """The plan in force: ``SearchPlan`` round sizes in paper mode, ``GuidedPlan``
        phase sizes in the default mode (scaled to the budget once it is known)."""
        if self._strategy is not None:
            return self._strategy.plan
        plan = self._plan_for(self._requested_budget())
        unseen = self._unseen_count()
        return plan if plan.total <= unseen else self._plan_for(max(1, unseen))

    def _plan_for(self, total: int | None) -> SearchPlan | GuidedPlan:
        return resolve_plan(self.algorithm, total, n_initial=self.n_initial, **self._sizes)

    @property
    def phase(self) -> str:
        """Phase of the newest proposal (``"initial"`` before the first suggestion);
        ``"finished"`` once the whole plan is handed out and every trial has reported."""
        if self._finished or (self._all_proposed() and not self.in_flight):
            return "finished"
        proposals = [r for r in self._history.records if r.phase not in (WARM_START, GIVEN)]
        return proposals[-1].phase if proposals else INITIAL

    def _all_proposed(self) -> bool:
        """Whether nothing is left to propose (Tune stops asking once ``num_samples``
        trials exist, so the strategy may never get to say DONE)."""
        if self._finished:
            return True
        if self._strategy is None or self._retry or self._given:
            return False
        return self._strategy.handed_out(self._history)

    @property
    def in_flight(self) -> list[str]:
        """Trial ids proposed and not yet completed, in proposal order."""
        return [tid for tid, record in self._trials.items() if record.status == RUNNING]

    @property
    def predictor(self) -> AccuracyPredictor | None:
        """Paper mode: the predictor fitted for the newest round (the one EES searched
        with). Default mode: the ensemble (``strategies.surrogate.BoostedEnsemble``)."""
        if self._strategy is None:
            return None
        return getattr(self._strategy, "predictor", None) or getattr(self._strategy,
                                                                     "model", None)

    @property
    def ees_result(self):
        """Paper mode: the ``EvolutionResult`` of the final round, None before it."""
        return getattr(self._strategy, "ees_result", None)

    @property
    def observations(self) -> pd.DataFrame:
        """Every known architecture: warm starts and given points, then trials, in the
        order they entered the search.

        Columns: ``trial_id``, ``phase``, ``round``, ``status``, ``metric`` (the label:
        the best value the trial reported of the (first trained) metric, in its own
        direction), ``predicted`` (the predictor's score before training; NaN for the
        initial design), ``iterations`` (Tune's ``training_iteration``: reports made,
        fewer for trials a scheduler stopped early), the trial's other reported values
        (e.g. ``test_acc``, ``params``), with several objectives one column per
        objective, and ``config/<key>`` for each architecture key.
        """
        ids = {id(record): tid for tid, record in self._trials.items()}
        several = self._metric is not None and len(self._goal) > 1
        rows = []
        for record in self._history.records:
            row = {"trial_id": ids.get(id(record)), "phase": record.phase,
                   "round": record.round, "status": record.status,
                   "metric": self._unsign(record.label),
                   "predicted": self._unsign(record.predicted),
                   "iterations": record.fidelity, **record.results}
            if several:
                row.update(self._objective_values(record))
            row.update({f"config/{k}": v for k, v in self._plain(record.config).items()})
            rows.append(row)
        columns = ["trial_id", "phase", "round", "status", "metric", "predicted",
                   "iterations"]
        return pd.DataFrame(rows, columns=None if rows else columns)

    def trial(self, trial_id: str) -> dict:
        """One proposed trial: ``config`` exactly as Tune received it, ``result`` (the
        label under the metric's name plus the other reported numbers), ``phase``,
        ``round``, ``status``, ``predicted`` and ``iterations``."""
        if trial_id not in self._trials:
            raise ValueError(f"trial_id {trial_id!r} was not proposed by this searcher")
        record = self._trials[trial_id]
        return {"trial_id": trial_id, "phase": record.phase, "round": record.round,
                "status": record.status, "predicted": self._unsign(record.predicted),
                "iterations": record.fidelity, "config": self._tune_config(record),
                "result": {**record.results, **self._objective_values(record)}}

    @property
    def pareto_front(self) -> pd.DataFrame:
        """The trained architectures no other trained one beats on every objective
        (rows of :attr:`observations`, best first objective first). With one objective
        it is the best trial (ties included)."""
        obs = self.observations
        if obs.empty or self._metric is None:
            return obs
        names = list(self._goal_names()) if len(self._goal) > 1 else ["metric"]
        done = obs[(obs["status"] == COMPLETED) & obs[names].notna().all(axis=1)]
        signs = [o.sign for o in self._goal]
        front = done.iloc[non_dominated(done[names].to_numpy(float) * signs)]
        return front.sort_values(names[0], ascending=signs[0] < 0, kind="stable")

    def _objective_values(self, record: Record) -> dict:
        """Every objective of a record in its own direction (NaN when unknown)."""
        return {o.name: o.sign * record.values.get(o.name, math.nan) for o in self._goal}

    @property
    def round_scores(self) -> pd.DataFrame:
        """How well the predictor ranked architectures *before* they were trained:
        per round (paper mode) or per block of proposals (default mode), the Kendall
        tau between predictions and measured labels, and the model's refit and
        selection times."""
        if self._strategy is None:
            return round_scores([])
        return self._strategy.round_scores(self._history)

    # ------------------------------------------------------------ setup
    def _same_space(self, config: Any) -> bool:
        """Whether Tune's ``param_space`` describes the space already held."""
        if not isinstance(config, Mapping) or not config:
            return False
        try:
            return from_tune(arguments.hashable(dict(config))) == self._space
        except ValueError:
            return False

    def _set_space(self, space: Any) -> None:
        from_tune_config = False
        if isinstance(space, SearchSpace):
            resolved = space
        elif isinstance(space, str):
            resolved = preset_for_algorithm(space, self.algorithm)
        elif isinstance(space, Mapping):
            self._list_keys = arguments.list_choice_keys(space)
            resolved = from_tune(arguments.hashable(dict(space)))
            from_tune_config = True
        else:
            raise ValueError(f"space must be a SearchSpace, a preset name or a Tune "
                             f"param-space dict, got {type(space).__name__}")
        if resolved.n_dims == 0:
            raise ValueError("space has no search dimensions (only constants); add at "
                             "least one tune.choice / tune.randint / ... to search")
        self._nested = from_tune_config and any(
            "/" in name for name in (*resolved.names, *resolved.constants))
        self._space = resolved
        self._searched = resolved.without(self.inert_dimensions, "inert_dimensions")
        self._take_points()
        searched = self._searched
        pool = searched.sobol(self.count, self.seed)
        if self.constraint is not None:
            pool = [config for config in pool if self.constraint.is_feasible(config)]
        self._pool = searched.encode_many(pool) if pool else np.empty((0, searched.n_dims))
        self._check_pool()

    def _take_points(self) -> None:
        """Given points become warm starts (with rewards) or the first proposals."""
        rng = np.random.default_rng([self.seed, 11])
        for config, reward in self._points:
            flat = flatten_config(arguments.hashable(dict(config)))
            unknown = sorted(set(flat) - set(self._space.names) - set(self._space.constants))
            if unknown:
                raise ValueError(f"points_to_evaluate: {unknown[0]!r} is not a key of the "
                                 f"search space {list(self._space.names)}")
            full = {**self._space.random(1, rng)[0], **flat}
            self._space.validate(full)
            if reward is not None:
                self.add_evaluated_point(full, reward)
            else:
                self._given.append(full)
        self._points = []

    def _requested_budget(self) -> int | None:
        """Trials the strategy should plan (None: nothing said, the default plan)."""
        total = self.budget if self.budget is not None else self._num_samples
        return None if total is None else max(1, total - len(self._given))

    def _unseen_count(self) -> int | float:
        """Architectures of the space not yet known or queued (``math.inf``: many)."""
        if self._space is None:
            return math.inf
        return self._searched.cardinality - len(self._history.records) - len(self._given)

    def _start(self) -> None:
        """Build the strategy at the first suggestion, and log the plan."""
        if self._strategy is not None:
            return
        space, codes, plan = self._searched, self._pool, self.plan
        if self.algorithm == "paper":
            self._strategy = PaperStrategy(
                space, plan, codes, seed=self.seed,
                ees_population=arguments.default(self.ees_population, 100),
                ees_generations=arguments.default(self.ees_generations, 200),
                mutation_prob=arguments.default(self.mutation_prob, 0.1),
                refit_fraction=arguments.default(self.refit_fraction, 1.0),
                constraint=self.constraint, predictor_params=self.predictor_params)
        else:
            options = dict(seed=self.seed, pool=codes, constraint=self.constraint,
                           lag=self._refit_lag(), window=self._window(),
                           ees_population=arguments.default(self.ees_population, 32),
                           ees_generations=arguments.default(self.ees_generations, 10),
                           mutation_prob=arguments.default(self.mutation_prob, 0.2))
            trained, computed = self._split()
            if len(self._goal) == 1:
                self._strategy = GuidedStrategy(space, plan, **options)
            else:
                self._strategy = ParetoStrategy(
                    space, plan, trained=[o.name for o in trained], computed=self._costs,
                    n_computed=len(computed), **options)
        source = ("budget" if self.budget is not None else "Tune's num_samples"
                  if self._num_samples is not None else
                  f"no budget and num_samples=-1: the default of {DEFAULT_BUDGET} trials")
        extra = f" + {len(self._given)} given points" if self._given else ""
        logger.info("SteerageSearcher (algorithm=%r): %d trials planned from %s: %s%s",
                    self.algorithm, plan.total, source, plan.describe(), extra)
        if plan.total < self._plan_for(self._requested_budget()).total:
            logger.warning("SteerageSearcher: the search space has only %s distinct "
                           "architectures; each is proposed once, then the search ends",
                           space.cardinality)

    def _check_pool(self) -> None:
        """Paper mode draws Algorithm 1's rounds from the pool: it must be big enough
        (unless the whole space is smaller, which is then searched exhaustively)."""
        if self.algorithm != "paper" or self._space is None:
            return
        plan, pool_size = self.plan, len(self._pool)
        if pool_size < plan.pool_demand and pool_size < self._searched.cardinality:
            filtered = " satisfying the constraint" if self.constraint else ""
            raise ValueError(
                f"the Sobol pool has {pool_size} distinct architectures{filtered} "
                f"but the search draws {plan.pool_demand} from it "
                f"({plan.describe()}); raise count or lower iter_count/iterations")

    def _require_ready(self) -> None:
        if self._space is None:
            raise ValueError("SteerageSearcher has no search space: pass space= or a "
                             "param_space to the Tuner")
        if not self._metric or not self._mode:
            raise ValueError(f"SteerageSearcher needs metric and mode (got "
                             f"{self._metric!r}, {self._mode!r}): pass them to the "
                             f"searcher or to TuneConfig")

    # ------------------------------------------------------------ proposals
    def _next_record(self) -> Record | None:
        """Lost trials first, then given points, then the strategy's proposal."""
        if self._retry:
            return self._retry.pop(0)
        while self._given:
            codes, config = self._encode(self._given.pop(0))
            if not self._history.seen(codes.tobytes()):
                return Record(config, codes, GIVEN, -1)
        proposal = self._strategy.propose(self._history)
        if isinstance(proposal, Proposal):
            return Record(self._full_config(proposal.config, self._inert_values()),
                          proposal.codes, proposal.phase, proposal.round, proposal.predicted)
        if proposal == DONE:
            self._finished = True
        return None

    def _encode(self, config: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        """A full config's codes in the searched space, and the config as a record
        keeps it (canonical values of the searched dimensions, the config's own values
        of the inert ones)."""
        searched = self._searched
        codes = searched.encode_many([{**{n: config[n] for n in searched.names},
                                       **searched.constants}])[0]
        inert = {name: config[name] for name in self.inert_dimensions}
        return codes, self._full_config(searched.decode_codes(codes[None, :])[0], inert)

    def _full_config(self, searched: Mapping[str, Any], inert: Mapping[str, Any]) -> dict:
        """A config of the searched space completed with inert values, its keys in the
        order of the whole space (then the constants)."""
        merged = {**searched, **inert}
        return {**{name: merged[name] for name in self._space.names}, **self._space.constants}

    def _inert_values(self) -> dict:
        """Values of the inert dimensions for the next proposal: drawn at random,
        seeded by the searcher's seed and the number of known architectures."""
        if not self.inert_dimensions:
            return {}
        rng = np.random.default_rng([self.seed, 17, len(self._history.records)])
        drawn = self._space.random(1, rng)[0]
        return {name: drawn[name] for name in self.inert_dimensions}

    def _dropped_trial(self) -> Record | None:
        """After a restore: once no trial has reported for the grace period, the oldest
        trial still unconfirmed was dropped by Tune; its architecture is proposed again."""
        grace = max(RESTORE_GRACE_S, 2.0 * self._report_gap)
        if time.monotonic() - self._quiet_since < grace:
            return None
        trial_id = next(t for t in self.in_flight if t in self._unconfirmed)
        logger.warning("SteerageSearcher: trial %s has not reported since the restore "
                       "(%.0f s); Tune dropped it, its architecture is proposed again",
                       trial_id, grace)
        return self._drop(trial_id)

    def _drop(self, trial_id: str) -> Record:
        """Forget a trial Tune dropped (it counted against ``num_samples``); a fresh
        record of its architecture is returned."""
        self._lose_slots(1)
        return self._forget(trial_id)

    def _lose_slots(self, count: int) -> None:
        """Tune counted ``count`` more trials against ``num_samples`` that train nothing:
        where the default-mode plan now needs more trials than Tune will start, it gives
        up as many proposals (its later phases still fit; a paper-mode plan cannot)."""
        self._lost_slots += count
        plan = self._strategy.plan if self._strategy is not None else None
        if self._num_samples is None or not isinstance(plan, GuidedPlan):
            return
        given = len(self._given) + sum(r.phase == GIVEN for r in self._history.records)
        fits = self._num_samples - self._lost_slots - given  # given points are trials too
        if 1 <= fits < plan.total:
            self._strategy.plan = GuidedPlan.for_budget(fits, plan.initial, plan.final)

    def _forget(self, trial_id: str) -> Record:
        """Drop an in-flight trial (its late reports are then ignored) and return a
        fresh record of its architecture, to be proposed again."""
        old = self._trials.pop(trial_id)
        self._unconfirmed.discard(trial_id)
        self._history.forget(old)
        return Record(old.config, old.codes, old.phase, old.round, old.predicted)

    def _heard_from(self, trial_id: str) -> None:
        now = time.monotonic()
        self._unconfirmed.discard(trial_id)
        self._quiet_since = now
        last = self._last_report.get(trial_id)
        if last is not None:
            self._report_gap = max(self._report_gap, now - last)
        self._last_report[trial_id] = now

    # ------------------------------------------------------------ objectives
    def _check_objectives(self) -> None:
        if self._metric is None or self._mode is None:
            return
        goal = objectives(self._metric, self._mode)
        if len(goal) > 1 and self.algorithm == "paper":
            raise ValueError("several objectives (metric=[...]) need algorithm='steerage'; "
                             "paper mode optimises one metric")
        if len(goal) > 1 and getattr(self, "_space", None) is not None:
            self._split()  # cost_fn is checked before any trial

    @property
    def metric(self) -> str | list[str] | None:
        """The results Tune requires every trial report to hold (its strict metric
        check): the *trained* objectives only. Objectives ``cost_fn`` computes are never
        reported by trials, so they are left out once the space is known."""
        trained = self._reported()
        return self._metric if trained is None else \
            (trained[0].name if len(trained) == 1 else [o.name for o in trained])

    @property
    def mode(self) -> str | list[str] | None:
        """The modes of :attr:`metric`."""
        trained = self._reported()
        return self._mode if trained is None else \
            (trained[0].mode if len(trained) == 1 else [o.mode for o in trained])

    def _reported(self) -> tuple[Objective, ...] | None:
        """The trained objectives when some objective is computed, else None."""
        if getattr(self, "_space", None) is None or self.cost_fn is None \
                or self._metric is None or self._mode is None or len(self._goal) == 1:
            return None
        return self._split()[0]

    @property
    def _goal(self) -> tuple[Objective, ...]:
        return objectives(self._metric, self._mode)

    def _goal_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self._goal)

    def _split(self) -> tuple[tuple[Objective, ...], tuple[Objective, ...]]:
        """(trained, computed) objectives, decided once (``cost_fn`` is asked once)."""
        if self._objective_split is None:
            trained, computed = split_objectives(self._goal, self._searched, self.cost_fn)
            self._objective_split = (trained, computed)
            self._costs = CostTable(self._searched, self.cost_fn, computed) if computed \
                else None
        return self._objective_split

    def _trained_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self._split()[0])

    def _fold(self, values: dict, result: Mapping) -> dict:
        """``values`` with a result's trained objectives folded in (each objective keeps
        the best value reported; NaN until a finite one arrives)."""
        values = dict(values)
        for objective in self._split()[0]:
            values[objective.name] = objective.better(values.get(objective.name, math.nan),
                                                      result.get(objective.name))
        return values

    def _absorb(self, record: Record, values: dict, result: Mapping) -> bool:
        """Store ``values`` + ``result`` in ``record`` (the first trained objective is
        its label); whether every trained objective now has a finite value."""
        record.values = self._fold(values, result)
        record.label = record.values[self._split()[0][0].name]
        return self._complete(record.values)

    def _complete(self, values: dict) -> bool:
        return all(math.isfinite(values.get(name, math.nan)) for name in self._trained_names())

    def _named_values(self, value: Any) -> dict:
        """A warm start's reported value(s) by objective name: one number for one
        objective; a dict, or a list in ``metric`` order, for several."""
        names = self._goal_names()
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, (list, tuple)):
            if len(value) != len(names):
                raise ValueError(f"value has {len(value)} entries for the {len(names)} "
                                 f"objectives {list(names)}")
            return dict(zip(names, value))
        if len(names) > 1:
            raise ValueError(f"value must give every objective {list(names)} (a dict or "
                             f"a list), got {value!r}")
        return {names[0]: value}

    def _unsign(self, label: float) -> float:
        """A signed label of the first trained objective in its own direction."""
        return label if not math.isfinite(label) else self._split()[0][0].sign * label

    def _plain(self, config: Mapping[str, Any]) -> dict:
        """A config with list-valued choices handed back as lists."""
        return {k: arguments.as_list(v) if k in self._list_keys else v for k, v in config.items()}

    def _tune_config(self, record: Record) -> dict:
        """The config Tune receives: every key filled with a plain value."""
        config = self._plain({**self._space.constants, **record.config})
        if record.phase == FINAL:
            config.update(flatten_config(self.final_config))
        return unflatten_config(config) if self._nested else config
